"""Hypothesis-generated loops checked against the same computation unrolled in Python.

A random step function (a short chain of ops over the loop value, the sequence element and a
weight) runs as gc.scan (forwards or in reverse), gc.foldl and gc.while_loop; the values and
the gradients must equal those of the unrolled graph, on the reference interpreter and on the
compiled llvm backend (which runs the loop in machine code and the gradient as a second loop).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="needs the test extras: pip install -e \".[test]\"")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import graphc as gc  # noqa: E402

TESTED_OPS = {"While"}
STEPS = {   # name -> step(h, x, w): smooth, bounded, so values stay in range over a few iterations
    "tanh-affine": lambda h, x, w: gc.tanh(h * w + x),
    "matmul": lambda h, x, w: gc.tanh(h @ gc.reshape(w, [3, 1]) * 0.5 + x),
    "sin-product": lambda h, x, w: gc.sin(h) * w + x * 0.5,
    "sigmoid-mix": lambda h, x, w: gc.sigmoid(h + x) * h + (1.0 - gc.sigmoid(h + x)) * w,
    "square-damped": lambda h, x, w: h * 0.3 + gc.square(x) * w * 0.1,
}


def _unrolled(step, xs, h0, w, length, reverse):
    h, outs = h0, [None] * length
    for t in (reversed(range(length)) if reverse else range(length)):
        h = step(h, xs[t], w)
        outs[t] = h
    return gc.stack(outs), h


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(STEPS)), length=st.integers(1, 5), reverse=st.booleans(),
       backend=st.sampled_from(["numpy", "llvm"]), seed=st.integers(0, 2**16))
def test_random_loops_equal_the_unrolled_graph(name, length, reverse, backend, seed):
    step = STEPS[name]
    rng = np.random.default_rng(seed)
    feed_v = [rng.normal(size=(length, 3)), rng.normal(size=3), rng.normal(size=3)]
    with gc.Graph().as_default():
        xs, h0, w = (gc.placeholder(gc.float64, v.shape) for v in feed_v)
        stacked = gc.scan(lambda h, x: step(h, x, w), xs, initializer=h0, reverse=reverse)
        folded = gc.foldr(lambda h, x: step(h, x, w), xs, initializer=h0) if reverse else \
            gc.foldl(lambda h, x: step(h, x, w), xs, initializer=h0)
        _, looped = gc.while_loop(lambda i, h: i < length,
                                  lambda i, h: (i + 1, step(h, gc.gather(xs, length - 1 - i if reverse else i), w)),
                                  [0, h0])
        ref_stacked, ref_last = _unrolled(step, xs, h0, w, length, reverse)
        loss = gc.reduce_sum(gc.sin(stacked)) + gc.reduce_sum(folded * folded) + gc.reduce_sum(looped)
        ref_loss = gc.reduce_sum(gc.sin(ref_stacked)) + gc.reduce_sum(ref_last * ref_last) + gc.reduce_sum(ref_last)
        grads = gc.gradients(loss, [xs, h0, w])
        ref_grads = gc.gradients(ref_loss, [xs, h0, w])
        with gc.Session(backend=backend) as s:
            got = s.run([stacked, folded, looped, loss] + grads, dict(zip((xs, h0, w), feed_v)))
        with gc.Session(backend="numpy") as s:
            ref = s.run([ref_stacked, ref_last, ref_last, ref_loss] + ref_grads, dict(zip((xs, h0, w), feed_v)))
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)

"""The "loops" pass (graphc/passes/loops.py): an RNN's input projection becomes one product
before the loop, values that do not change are computed once, what nobody reads is dropped,
a gradient's backward loop multiplies only by the columns it needs; and each rewritten loop
computes what the loop as built computes (the reference backend without passes is the oracle,
the LLVM backend runs the restructured loops)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.passes import DEFAULT_PIPELINE

TESTED_OPS = {"While", "MatMul", "Concat", "Split"}
READABLE = ["fold", "cse", "loops", "simplify", "dce"]   # the default pipeline up to fusion, minus the rest
T, B, D, U = 6, 4, 3, 5
RNG = np.random.default_rng(3)


def _program(fetches, feeds, pipeline=READABLE):
    sess = gc.Session(backend="numpy", pipeline=pipeline)
    return sess.compile(list(fetches), {t: np.asarray(v, dtype=t.dtype.np) for t, v in feeds.items()}).program


def _loops(program):
    return [n for n in program.nodes() if n.type == "While"]


def _body(loop):
    return loop.attrs["body"].program


def _matmul_shapes(program):
    return sorted((tuple(n.inputs[0].shape), tuple(n.inputs[1].shape)) for n in program.nodes() if n.type == "MatMul")


def _agree(fetches, feeds, rtol=1e-5):
    """The loops as built (numpy, no passes) against the restructured ones (numpy and llvm)."""
    want = gc.Session(backend="numpy", pipeline=None).run(fetches, feeds)
    for backend, pipeline in (("numpy", READABLE), ("llvm", "default")):
        got = gc.Session(backend=backend, pipeline=pipeline).run(fetches, feeds)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6, err_msg=f"{backend} {pipeline}")
    return want


def _rnn(reverse=False, sequence=None):
    x = gc.placeholder(gc.float32, [T, B, D], name="x") if sequence is None else sequence
    w = gc.placeholder(gc.float32, [D + U, U], name="w")
    b = gc.placeholder(gc.float32, [U], name="b")

    def cell(h, x_t):
        return gc.tanh(gc.matmul(gc.concat([x_t, h], 1), w) + b)

    hs = gc.scan(cell, x, initializer=gc.zeros([B, U]), reverse=reverse)
    return x, w, b, hs


def _feeds(x, w, b):
    return {x: RNG.normal(size=(T, B, D)).astype(np.float32),
            w: 0.5 * RNG.normal(size=(D + U, U)).astype(np.float32), b: RNG.normal(size=(U,)).astype(np.float32)}


@pytest.mark.parametrize("reverse", [False, True])
def test_the_input_projection_of_an_rnn_is_one_product_before_the_loop(reverse):
    x, w, b, hs = _rnn(reverse)
    feeds = _feeds(x, w, b)
    program = _program([hs], feeds)
    (loop,) = _loops(program)
    assert ((T * B, D), (D, U)) in _matmul_shapes(program)                      # x for all steps times w[:D], once
    assert _matmul_shapes(_body(loop)) == [((B, U), (U, U))]      # in the loop, only h @ w[D:]
    assert loop.attrs["n_sequences"] == 2                         # x, and the projection walked as a sequence
    _agree([hs], feeds)


def test_gradients_through_the_restructured_loops_match_the_loops_as_built():
    x, w, b, hs = _rnn()
    loss = gc.reduce_sum(hs[-1] ** 2) + gc.reduce_sum(hs * 0.5)
    grads = gc.gradients(loss, [w, b])
    _agree([loss] + grads, _feeds(x, w, b), rtol=1e-4)


def test_the_backward_loop_multiplies_only_by_the_columns_it_needs():
    x, w, b, hs = _rnn()
    loss = gc.reduce_sum(hs[-1] ** 2)
    (gw,) = gc.gradients(loss, [w])   # not x's: the backward loop needs only h's part of concat's gradient
    program = _program([gw], _feeds(x, w, b))
    _forward, backward = sorted(_loops(program), key=lambda n: n.attrs["reverse"])
    shapes = _matmul_shapes(_body(backward))
    assert all(a[-1] != D + U and bb != (D + U, U) for a, bb in shapes), shapes
    assert ((B, U), (U, U)) in shapes                           # dh = g @ w[D:]^T
    assert backward.inputs[0].node.type == "Const"              # the trip count: the forward count, folded


def test_values_that_do_not_change_are_computed_once_and_pass_through_loop_values_dropped():
    x = gc.placeholder(gc.float32, [T, B], name="x")
    w = gc.placeholder(gc.float32, [B, B], name="w")

    def body(acc, x_t):
        total, fixed, unused = acc
        scale = gc.exp(gc.reduce_sum(w * w))      # does not change in the loop
        return total + x_t * scale + fixed, fixed, unused * 2.0

    init = (gc.zeros([B]), gc.ones([B]) * 3.0, gc.ones([B]))
    totals, fixed, _ = gc.scan(body, x, initializer=init)
    fetches = [totals[-1], fixed[-1]]
    feeds = {x: RNG.normal(size=(T, B)).astype(np.float32), w: 0.1 * RNG.normal(size=(B, B)).astype(np.float32)}
    program = _program(fetches, feeds)
    (loop,) = _loops(program)
    body_ops = _body(loop).op_counts()
    assert "Exp" not in body_ops and "Sum" not in body_ops        # scale is computed before the loop
    assert loop.attrs["n_carries"] == 1                           # fixed passes through; unused is never read
    _agree(fetches, feeds)


def test_loops_with_a_condition_keep_their_loop_values_and_still_agree():
    limit = gc.placeholder(gc.float32, [], name="limit")
    w = gc.placeholder(gc.float32, [3, 3], name="w")

    def cond(i, v, spare):
        return gc.reduce_sum(v) < limit

    def body(i, v, spare):
        return i + 1, gc.matmul(v, w) + 1.0, spare

    i, v, spare = gc.while_loop(cond, body, (gc.constant(0), gc.ones([1, 3]), gc.zeros([2])), maximum_iterations=50)
    feeds = {limit: np.float32(200.0), w: np.eye(3, dtype=np.float32) * 1.5}
    _agree([i, v, spare], feeds)


def test_the_default_pipeline_names_the_pass():
    assert "loops" in DEFAULT_PIPELINE
    assert DEFAULT_PIPELINE.index("loops") > DEFAULT_PIPELINE.index("cse")

"""Random composite graphs: chains of smooth elementwise, reduction and shape ops with
broadcasting between random shapes, differentiated symbolically and checked against finite
differences (gc.testing.check_gradients). Hypothesis draws the chain, the shapes and the float64
inputs; derandomize=True makes the run reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="needs the test extras: pip install -e \".[test]\"")

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphc as gc

MAX_SIZE = 48       # elements of any tensor in a chain
BOUND = 30.0        # every intermediate value stays within +-BOUND (else the example is dropped)


# --------------------------------------------------------------------------- the ops
# Unary ops are smooth (C-infinity) on all reals: those with a restricted domain are fed a value
# mapped into it; softsign and elu, only C1 at 0, are left out (hypothesis likes 0.0, where central
# differences of a C1 function are off by O(eps)).
UNARY: dict[str, Callable[[Any], Any]] = {
    "tanh": gc.tanh,
    "sin": gc.sin,
    "cos": gc.cos,
    "sigmoid": gc.sigmoid,
    "erf": gc.erf,
    "neg": gc.negative,
    "square": gc.square,
    "exp_sin": lambda t: gc.exp(gc.sin(t)),
    "expm1_tanh": lambda t: gc.expm1(gc.tanh(t)),
    "log_1_plus_sq": lambda t: gc.log(gc.square(t) + 1.0),
    "log1p_sq": lambda t: gc.log1p(gc.square(t)),
    "sqrt_sq": lambda t: gc.sqrt(gc.square(t) + 0.5),
    "rsqrt_sq": lambda t: gc.rsqrt(gc.square(t) + 0.5),
    "reciprocal_sq": lambda t: gc.reciprocal(gc.square(t) + 1.0),
    "pow_sq": lambda t: gc.pow(gc.square(t) + 0.5, 1.5),
    "softplus": gc.nn.softplus,
    "silu": gc.nn.silu,
    "gelu": gc.nn.gelu,
    "gelu_tanh": lambda t: gc.nn.gelu(t, approximate=True),
    "scale": lambda t: t * 0.5 - 0.25,
}
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": gc.add,
    "sub": gc.subtract,
    "mul": gc.multiply,
    "div": lambda a, b: a / (gc.square(b) + 1.0),
    "squared_difference": gc.squared_difference,
    "pow": lambda a, b: gc.pow(gc.square(a) + 0.5, gc.tanh(b)),
    "sigmoid_ce": lambda a, b: gc.nn.sigmoid_cross_entropy_with_logits(labels=gc.sigmoid(a), logits=b),
    "add_n": lambda a, b: gc.add_n([a, b, a]),
}
REDUCE: dict[str, Callable[..., Any]] = {
    "sum": gc.reduce_sum,
    "mean": gc.reduce_mean,
    "logsumexp": gc.reduce_logsumexp,
    "prod": gc.reduce_prod,
}


@dataclass(frozen=True)
class Step:
    kind: str                # "unary", "binary", "reduce", or a shape op's name
    op: str
    args: tuple[int, ...]    # indices into the list of tensors made so far (inputs first)
    params: tuple = ()


# --------------------------------------------------------------------------- drawing a chain
def _broadcast(a: tuple, b: tuple) -> tuple | None:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


@st.composite
def input_shapes(draw) -> list[tuple[int, ...]]:
    """1 to 3 shapes that broadcast together: a base shape, each input dropping some leading
    dims and setting some dims to 1. (sampled_from lists put the likelier choices first, as
    hypothesis otherwise favours the smallest values.)"""
    base = [draw(st.sampled_from([3, 2, 4, 1])) for _ in range(draw(st.sampled_from([2, 3, 1, 0])))]
    shapes = []
    for _ in range(draw(st.sampled_from([2, 3, 1]))):
        drop = min(draw(st.sampled_from([0, 0, 1, 2])), len(base))
        shape = [1 if draw(st.integers(0, 3)) == 0 else d for d in base[drop:]]
        shapes.append(tuple(shape))
    return shapes


@st.composite
def chains(draw) -> tuple[list[tuple], list[Step], list[tuple]]:
    shapes = draw(input_shapes())
    pool = list(shapes)      # the shapes of all tensors made so far
    steps: list[Step] = []
    n_steps = draw(st.sampled_from([5, 8, 6, 3, 7, 4]))
    while len(steps) < n_steps:
        last = len(pool) - 1
        # most steps continue the chain from the newest tensor, some pick any earlier one
        i = last if draw(st.integers(0, 3)) else draw(st.integers(0, last))
        shape = pool[i]
        rank = len(shape)
        kind = draw(st.sampled_from(["shape", "binary", "unary", "reduce", "shape", "binary", "unary"]))
        if kind == "unary":
            step, out = Step("unary", draw(st.sampled_from(sorted(UNARY))), (i,)), shape
        elif kind == "binary":
            j = draw(st.integers(0, last))
            out = _broadcast(shape, pool[j])
            if out is None or math.prod(out) > MAX_SIZE:
                continue
            step = Step("binary", draw(st.sampled_from(sorted(BINARY))), (i, j))
        elif kind == "reduce":
            op = draw(st.sampled_from(sorted(REDUCE)))
            keepdims = draw(st.booleans())
            if rank == 0 or draw(st.integers(0, 4)) == 0:
                axis = None
            else:
                axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
                axis = tuple(a - rank if draw(st.booleans()) else a for a in axes)
                if len(axis) == 1 and draw(st.booleans()):
                    axis = axis[0]
            norm = set(range(rank)) if axis is None else {a % rank for a in np.atleast_1d(axis)}
            out = tuple(1 if k in norm else d for k, d in enumerate(shape)) if keepdims else \
                tuple(d for k, d in enumerate(shape) if k not in norm)
            step = Step("reduce", op, (i,), (axis, keepdims))
        else:
            made = _shape_step(draw, i, shape, pool)
            if made is None:
                continue
            step, out = made
        if math.prod(out) > MAX_SIZE:
            continue
        steps.append(step)
        pool.append(tuple(out))
    return shapes, steps, pool


def _shape_step(draw, i: int, shape: tuple, pool: list[tuple]) -> tuple[Step, tuple] | None:
    rank = len(shape)
    op = draw(st.sampled_from(["transpose", "reshape_flat", "reshape_col", "expand_dims", "squeeze", "reverse",
                               "slice", "tile", "broadcast_to", "concat", "stack", "softmax", "log_softmax",
                               "gather", "gram", "unstack_sum", "split_mul", "pad"]))
    if op == "transpose" and rank >= 2:
        perm = tuple(draw(st.permutations(range(rank))))
        return Step(op, op, (i,), (perm,)), tuple(shape[p] for p in perm)
    if op == "reshape_flat":
        return Step(op, op, (i,)), (math.prod(shape),)
    if op == "reshape_col":
        return Step(op, op, (i,)), (math.prod(shape), 1)
    if op == "expand_dims":
        axis = draw(st.integers(-rank - 1, rank))
        out = list(shape)
        out.insert(axis % (rank + 1), 1)
        return Step(op, op, (i,), (axis,)), tuple(out)
    if op == "squeeze" and 1 in shape:
        return Step(op, op, (i,)), tuple(d for d in shape if d != 1)
    if op == "reverse" and rank >= 1:
        return Step(op, op, (i,)), shape
    if op == "slice" and rank >= 1 and shape[-1] >= 2:
        return Step(op, op, (i,)), shape[:-1] + (shape[-1] - 1,)
    if op == "tile" and rank >= 1:
        mult = tuple(draw(st.integers(1, 2)) for _ in shape)
        return Step(op, op, (i,), (mult,)), tuple(d * m for d, m in zip(shape, mult))
    if op == "broadcast_to":
        return Step(op, op, (i,)), (2,) + shape
    if op in ("concat", "stack"):
        same = [j for j, s in enumerate(pool) if s == shape]
        j = draw(st.sampled_from(same))
        if op == "stack":
            axis = draw(st.integers(-rank - 1, rank))
            out = list(shape)
            out.insert(axis % (rank + 1), 2)
            return Step(op, op, (i, j), (axis,)), tuple(out)
        if rank == 0:
            return None
        axis = draw(st.integers(-rank, rank - 1))
        out = list(shape)
        out[axis] *= 2
        return Step(op, op, (i, j), (axis,)), tuple(out)
    if op in ("softmax", "log_softmax") and rank >= 1:
        return Step(op, op, (i,), (draw(st.integers(-rank, rank - 1)),)), shape
    if op == "gather" and rank >= 1:
        idx = tuple(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=4)))
        return Step(op, op, (i,), (idx,)), (len(idx),) + shape[1:]
    if op == "gram" and rank >= 2:
        return Step(op, op, (i,)), shape[:-1] + (shape[-2],)
    if op == "unstack_sum" and rank >= 1:
        axis = draw(st.integers(-rank, rank - 1))
        return Step(op, op, (i,), (axis,)), shape[:axis % rank] + shape[axis % rank + 1:]
    if op == "split_mul" and rank >= 1 and shape[-1] % 2 == 0:
        return Step(op, op, (i,)), shape[:-1] + (shape[-1] // 2,)
    if op == "pad" and rank >= 1:
        mode = draw(st.sampled_from(["CONSTANT", "REFLECT", "SYMMETRIC"]))
        limit = {"CONSTANT": 2, "REFLECT": shape[-1] - 1, "SYMMETRIC": shape[-1]}[mode]
        before, after = draw(st.integers(0, min(limit, 2))), draw(st.integers(0, min(limit, 2)))
        pads = ((0, 0),) * (rank - 1) + ((before, after),)
        return Step(op, op, (i,), (mode, pads)), shape[:-1] + (shape[-1] + before + after,)
    return None


def build(steps: list[Step], xs: list[Any]) -> list[Any]:
    """All tensors of the chain (inputs first); the last one is its output."""
    ts = list(xs)
    for s in steps:
        a = ts[s.args[0]]
        if s.kind == "unary":
            t = UNARY[s.op](a)
        elif s.kind == "binary":
            t = BINARY[s.op](a, ts[s.args[1]])
        elif s.kind == "reduce":
            axis, keepdims = s.params
            t = REDUCE[s.op](a, axis=axis, keepdims=keepdims)
        elif s.op == "transpose":
            t = gc.transpose(a, s.params[0])
        elif s.op == "reshape_flat":
            t = gc.reshape(a, [-1])
        elif s.op == "reshape_col":
            t = gc.reshape(a, [-1, 1])
        elif s.op == "expand_dims":
            t = gc.expand_dims(a, s.params[0])
        elif s.op == "squeeze":
            t = gc.squeeze(a)
        elif s.op == "reverse":
            t = a[::-1]
        elif s.op == "slice":
            t = a[..., 1:]
        elif s.op == "tile":
            t = gc.tile(a, s.params[0])
        elif s.op == "broadcast_to":
            t = gc.broadcast_to(a, (2,) + tuple(a.shape))
        elif s.op == "concat":
            t = gc.concat([a, ts[s.args[1]]], s.params[0])
        elif s.op == "stack":
            t = gc.stack([a, ts[s.args[1]]], s.params[0])
        elif s.op == "softmax":
            t = gc.nn.softmax(a, s.params[0])
        elif s.op == "log_softmax":
            t = gc.nn.log_softmax(a, s.params[0])
        elif s.op == "gather":
            t = gc.gather(a, list(s.params[0]))
        elif s.op == "gram":
            t = gc.matmul(a, a, transpose_b=True)
        elif s.op == "unstack_sum":
            parts = gc.unstack(a, axis=s.params[0])
            t = gc.add_n([p * float(k + 1) for k, p in enumerate(parts)]) if len(parts) > 1 else parts[0]
        elif s.op == "split_mul":
            left, right = gc.split(a, 2, axis=-1)
            t = left * right
        elif s.op == "pad":
            t = gc.pad(a, s.params[1], mode=s.params[0], constant_values=0.5)
        else:  # pragma: no cover - a step kind without a builder is a bug in this file
            raise AssertionError(s)
        ts.append(t)
    return ts


@st.composite
def graphs(draw) -> tuple[list[tuple], list[Step], list[tuple], list[np.ndarray]]:
    shapes, steps, pool = draw(chains())
    values = [draw(hnp.arrays(np.float64, s, elements=st.floats(-2.0, 2.0, allow_subnormal=False))) for s in shapes]
    return shapes, steps, pool, values


def _intermediates_bounded(shapes, steps, pool, values) -> bool:
    """Whether the forward values stay moderate (so that finite differences are meaningful);
    every tensor must also have the shape the chain predicted."""
    with gc.Graph().as_default():
        xs = [gc.placeholder(gc.float64, s) for s in shapes]
        ts = build(steps, xs)
        assert [t.shape for t in ts] == pool
        with gc.Session(backend="numpy") as sess:
            out = sess.run(ts, dict(zip(xs, values)))
    assert [np.shape(v) for v in out] == pool
    return all(np.all(np.abs(v) <= BOUND) for v in out)


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs())
def test_random_chain_gradients_match_finite_differences(graph):
    shapes, steps, pool, values = graph
    assume(_intermediates_bounded(shapes, steps, pool, values))
    worst = gc.testing.check_gradients(lambda *xs: build(steps, list(xs))[-1], values, backend="numpy")
    assert worst <= 1.0


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs())
def test_random_chain_second_derivatives_match_finite_differences(graph):
    """The gradient of sum(sin(chain)) differentiated again (a gradient penalty's shape)."""
    shapes, steps, pool, values = graph
    assume(_intermediates_bounded(shapes, steps, pool, values))

    def grad_norm(*xs):
        y = build(steps, list(xs))[-1]
        grads = gc.gradients(gc.reduce_sum(gc.sin(y)), list(xs), unconnected_gradients="zero")
        return gc.add_n([gc.reduce_sum(gc.square(g)) for g in grads]) if len(grads) > 1 else \
            gc.reduce_sum(gc.square(grads[0]))

    worst = gc.testing.check_gradients(grad_norm, values, backend="numpy")
    assert worst <= 1.0


def test_chains_cover_every_op():
    """The strategy's ops all build and differentiate (a typo in a rarely drawn op shows here)."""
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    for name in UNARY:
        assert gc.testing.check_gradients(UNARY[name], [x]) <= 1.0
    for name in BINARY:
        assert gc.testing.check_gradients(BINARY[name], [x, x[::-1] * 0.7]) <= 1.0
    for name in REDUCE:
        assert gc.testing.check_gradients(lambda t, f=REDUCE[name]: f(t, axis=-1, keepdims=True), [x]) <= 1.0

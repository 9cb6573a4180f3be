"""Merged loops (graphc.lower.loop_merge): consecutive axes that every access walks through
their flat position run as one counter in the LLVM backend. Which runs merge, and that every
kind of kernel they touch still gives the NumPy reference's values."""
import numpy as np
import pytest

import graphc as gc
from graphc.ir.dtypes import float32
from graphc.lower import index as iexpr
from graphc.lower.kernel import Buffer, LoopKernel, Slot, Store
from graphc.lower.loop_merge import merge_target, merged_runs
from graphc.ops import scalar as sexpr


def _kernel(space, order, reduced=(), read_shape=None, read_index=None, valid=None):
    x = Buffer(0, "x", float32, tuple(read_shape or space), "input")
    out = Buffer(1, "out", float32, tuple(space), "output")
    v = tuple(iexpr.var(a) for a in range(len(space)))
    value = sexpr.SExpr("arg", (), float32, 0)
    return LoopKernel("k", tuple(space), tuple(order), tuple(reduced),
                      slots=[Slot(x, read_index if read_index is not None else v, valid)],
                      stores=[Store(out, v, value)])


def test_an_nchw_image_merges_behind_the_split_axis():
    k = _kernel((1, 144, 28, 28), (1, 0, 2, 3))
    assert merged_runs(k) == {1: 4}
    assert merge_target(k, (0, 2, 3)) == 3


def test_a_read_broadcast_along_w_only_keeps_h_and_w_apart():
    v = tuple(iexpr.var(a) for a in range(4))
    k = _kernel((2, 8, 5, 6), (0, 1, 2, 3), read_shape=(2, 8, 5, 1), read_index=(v[0], v[1], v[2], iexpr.const(0)))
    assert merge_target(k, (2, 3)) is None
    assert merged_runs(k) == {1: 3}   # c and h still walk x and out through their flat position


def test_masked_reads_and_transposed_orders_do_not_merge():
    v = tuple(iexpr.var(a) for a in range(3))
    masked = _kernel((4, 5, 6), (0, 1, 2), valid=iexpr.less(v[2], 5))
    assert merged_runs(masked) == {}
    assert merge_target(_kernel((4, 5, 6), (0, 2, 1)), (2, 1)) is None


CASES = {
    "global average pool": lambda x: gc.reduce_mean(x, axis=[2, 3], keepdims=True),
    "bias and relu6": lambda x: gc.minimum(gc.nn.relu(x + np.arange(6, dtype=np.float32).reshape(6, 1, 1)), 6.0),
    "argmax over h x w": lambda x: gc.argmax(gc.reshape(x, [2, 6, 35]), axis=2),
    "max over h, w": lambda x: gc.reduce_max(x, axis=[2, 3]),
    "softmax over w": lambda x: gc.nn.softmax(x),
    "row broadcast": lambda x: x * gc.reduce_sum(x, axis=3, keepdims=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_merged_kernels_match_the_reference(case):
    rng = np.random.default_rng(1)
    xv = rng.normal(size=(2, 6, 5, 7)).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, xv.shape)
        y = CASES[case](x)
    want = gc.Session(graph=g, backend="numpy").run(y, {x: xv})
    got = gc.Session(graph=g, backend="llvm").run(y, {x: xv})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_failed_check_inside_a_merged_nest_reports_its_element():
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 10, size=(3, 4, 5)).astype(np.int64)
    ids[2, 1, 3] = 17
    g = gc.Graph()
    with g.as_default():
        i = gc.placeholder(gc.int64, ids.shape)
        y = gc.gather(gc.constant(np.arange(10, dtype=np.float32)), i)
    with pytest.raises(gc.errors.InvalidArgumentError, match="17"):
        gc.Session(graph=g, backend="llvm").run(y, {i: ids})

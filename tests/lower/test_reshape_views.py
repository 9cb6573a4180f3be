"""Reads through a reshape that a transpose, broadcast or slice then indexes per dimension map
each run of dimensions on its own (graphc.lower.reads.reshape_groups): a channel shuffle reads
its input with one div and mod of the channel index, not one per dimension and element. The
values are NumPy's for every combination, and the spatial dimensions stay affine."""
from __future__ import annotations

import io

import numpy as np
import pytest

import graphc as gc
from graphc.lower.reads import reshape_groups

from ..conftest import CPU_BACKENDS


@pytest.mark.parametrize("out_shape, in_shape, expected", [
    ((1, 48, 28, 28), (1, 2, 24, 28, 28), [(0, 1, 0, 1), (1, 2, 1, 3), (2, 3, 3, 4), (3, 4, 4, 5)]),
    ((6, 4), (2, 3, 4), [(0, 1, 0, 2), (1, 2, 2, 3)]),
    ((24,), (2, 3, 4), [(0, 1, 0, 3)]),
    ((6, 1), (6,), [(0, 1, 0, 1), (1, 2, 1, 1)]),
    ((4, 6), (6, 4), [(0, 2, 0, 2)]),            # no finer runs: one group of all
    ((2, 0), (0, 5), None),                      # an empty dimension: no groups
])
def test_reshape_groups(out_shape, in_shape, expected):
    groups = reshape_groups(out_shape, in_shape)
    assert groups == expected
    for oi, oe, ii, ie in groups or []:
        assert np.prod(out_shape[oi:oe]) == np.prod(in_shape[ii:ie])


def _channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return gc.reshape(gc.transpose(gc.reshape(x, [n, groups, c // groups, h, w]), [0, 2, 1, 3, 4]), [n, c, h, w])


@pytest.mark.parametrize("backend", CPU_BACKENDS + ["cuda-emulator"])
def test_channel_shuffle_of_a_stored_tensor(backend):
    rng = np.random.default_rng(0)
    xv = rng.normal(size=(2, 12, 5, 7)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    stored = gc.nn.relu(x) + 1.0   # computed, so the shuffle reads a buffer through three views
    out = _channel_shuffle(stored, 3)[:, 4:10] * 2.0
    with gc.Session(backend=backend) as sess:
        got = sess.run(out, {x: xv})
    s = np.maximum(xv, 0) + 1
    want = s.reshape(2, 3, 4, 5, 7).transpose(0, 2, 1, 3, 4).reshape(2, 12, 5, 7)[:, 4:10] * 2
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_shuffled_read_keeps_the_spatial_dimensions_affine():
    xv = np.arange(2 * 8 * 4 * 6, dtype=np.float32).reshape(2, 8, 4, 6)
    x = gc.placeholder(gc.float32, xv.shape)
    out = _channel_shuffle(gc.nn.relu(x), 2) * 3.0
    listing = gc.debugprint([out], {x: xv}, level="kernels", backend="llvm", file=io.StringIO())
    [read] = [line for line in listing.splitlines() if "flat" in line]
    assert read.count("floordiv") == 1 and read.count("mod") == 1, read   # the channel only


@pytest.mark.parametrize("seed", range(8))
def test_random_reshape_view_chains_match_numpy(seed):
    """A stored tensor read through reshape -> (transpose | broadcast | slice) -> reshape, shapes
    drawn at random (unit dimensions included)."""
    rng = np.random.default_rng(seed)
    factors = [int(v) for v in rng.choice([1, 2, 3, 4], size=4)]
    total = int(np.prod(factors))
    xv = rng.normal(size=(total, 5)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    stored = gc.exp(x * 0.1)
    split = gc.reshape(stored, factors + [5])
    sv = np.exp(xv * 0.1).reshape(factors + [5])
    kind = ("transpose", "broadcast", "slice")[seed % 3]
    if kind == "transpose":
        perm = [int(p) for p in rng.permutation(5)]
        view, want = gc.transpose(split, perm), sv.transpose(perm)
    elif kind == "broadcast":
        view, want = gc.broadcast_to(split[None], [2] + factors + [5]), np.broadcast_to(sv[None], [2] + factors + [5])
    else:
        view, want = split[..., 1:4], sv[..., 1:4]
    out = gc.reshape(view, [-1]) + 1.0
    with gc.Session(backend="llvm") as sess:
        got = sess.run(out, {x: xv})
    np.testing.assert_allclose(got, want.reshape(-1) + 1.0, rtol=1e-6)



@pytest.mark.parametrize("strided", [True, False], ids=["strided-operands", "stored-view"])
def test_a_product_reads_a_reshaped_input_where_it_lies(strided, monkeypatch):
    """A matmul operand that is a reshape of a fed array (an attention block's [batch * tokens,
    d] input, an MLP's flattened images) is read in the input's memory: as a strided operand
    (the LLVM target) or, where a target reads operands only dense (the CUDA target's GEMM),
    through stored(), which gives the input's memory under another shape. No copy kernel, the
    reference's values."""
    from graphc.backends.llvm import LLVMTarget
    monkeypatch.setattr(LLVMTarget, "strided_operands", strided)
    rng = np.random.default_rng(4)
    x = gc.placeholder(gc.float32, [3, 10, 16])
    w = gc.constant(rng.normal(size=(16, 8)).astype(np.float32))
    flat = gc.reshape(x, [30, 16])
    out = [flat @ w, gc.matmul(flat, flat, transpose_a=True)]
    xv = rng.normal(size=(3, 10, 16)).astype(np.float32)
    listing = gc.debugprint(out, {x: xv}, level="kernels", backend="llvm", file=io.StringIO())
    assert "/contiguous" not in listing and " loop " not in listing, listing   # the products alone
    assert ("%0(ld 16, at 0)" in listing) == strided and ("Reshape:0/view" in listing) != strided, listing
    got = gc.Session(backend="llvm").run(out, {x: xv})
    want = gc.Session(backend="numpy").run(out, {x: xv})
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def test_a_view_in_another_order_is_not_read_in_place():
    """Only a view whose elements lie in the input in its own order is the input's memory; a
    transposed one is read through its index map or copied, with the reference's values."""
    rng = np.random.default_rng(5)
    x = gc.placeholder(gc.float32, [2, 15, 16])
    w = gc.constant(rng.normal(size=(2, 8)).astype(np.float32))
    out = gc.reshape(gc.transpose(x, [2, 1, 0]), [240, 2]) @ w
    xv = rng.normal(size=(2, 15, 16)).astype(np.float32)
    listing = gc.debugprint([out], {x: xv}, level="kernels", backend="llvm", file=io.StringIO())
    assert "/view" not in listing, listing
    got = gc.Session(backend="llvm").run(out, {x: xv})
    np.testing.assert_allclose(got, gc.Session(backend="numpy").run(out, {x: xv}), rtol=1e-5, atol=1e-5)

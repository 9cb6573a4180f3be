"""The pointwise kernel (graphc.lower.conv_pointwise, graphc.codegen.llvm_pointwise): an NCHW 1x1
convolution with a constant filter multiplies the packed filter into each image as it lies.
Against the NumPy reference backend (the oracle) over batches, float64, output channels that
leave a partial panel, pixel counts that leave a partial tile, one and two threads; with
epilogues; in an AOT library for SSE2 vectors; and the convolutions it must leave alone."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.lower import conv_direct, conv_pointwise
from graphc.lower.conv_pointwise import (
    BLOCK_ELEMENTS,
    CHANNEL_BLOCK_MAX_K,
    MIN_BLOCKS,
    PANEL_ROWS,
    ROW_BLOCK_ELEMENTS,
    SPLIT_WORK,
    packed_rows,
    pointwise_blocks,
)
from tests.helpers import assert_close, kernel_listing

# (batch, input channels, (h, w), output channels, dtype)
CASES = [
    (1, 16, (14, 14), 96, "float32"),    # whole panels, whole tiles
    (2, 13, (17, 13), 17, "float64"),    # a partial panel, a partial last tile of pixels
    (3, 40, (20, 21), 30, "float32"),    # a long reduction, 420 pixels: blocks of columns
    (1, 14, (15, 15), 1, "float32"),     # one output channel
    (1, 24, (7, 7), 40, "float32"),      # 49 pixels: a last chunk of one pixel, narrow tiles
    (1, 20, (6, 4), 12, "float32"),      # a last chunk of exactly one AVX2 vector
    (2, 16, (5, 5), 30, "float64"),      # narrow tiles in float64
    (1, 32, (16, 16), 16, "float32"),    # 16 output channels: a whole tile, then one of 4 rows
    (1, 13, (9, 9), 20, "float64"),      # 20: a whole tile, then one of 8 rows
]


def _ids(case) -> str:
    n, ci, (h, w), co, dtype = case
    return f"n{n}-ci{ci}-co{co}-{h}x{w}-{dtype}"


def _conv(case, rng, epilogue: str = "bias-relu6"):
    n, ci, (h, w), co, dtype = case
    x = gc.placeholder(dtype, (n, ci, h, w))
    y = gc.nn.conv2d(x, gc.constant(rng.uniform(-1, 1, (1, 1, ci, co)).astype(dtype)), [1, 1], "VALID",
                     data_format="NCHW")
    if epilogue == "bias-relu6":
        y = gc.nn.relu6(y + gc.constant(rng.uniform(-1, 1, (co, 1, 1)).astype(dtype)))
    elif epilogue == "residual":
        y = y + gc.constant(rng.uniform(-1, 1, tuple(y.shape)).astype(dtype))
    return x, y, {x: rng.uniform(-1, 1, (n, ci, h, w)).astype(dtype)}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("epilogue", ["none", "bias-relu6", "residual"])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_a_pointwise_convolution_matches_the_reference(case, epilogue, threads, monkeypatch):
    # small planes run as direct kernels by default (tests/lower/test_conv_direct.py); here
    # they exercise this kernel's partial and narrow tiles
    monkeypatch.setattr(conv_direct, "POINTWISE_MAX_PIXELS", 0)
    rng = np.random.default_rng(31)
    _, out, feed = _conv(case, rng, epilogue)
    listing = kernel_listing(out, feed)
    assert " pointwise-conv " in listing and " direct-conv " not in listing, listing
    if epilogue != "none":   # the tail runs on each block of the kernel's output
        assert "then on each block" in listing, listing
    config = gc.ConfigProto(intra_op_parallelism_threads=threads)
    got = gc.Session(backend="llvm", config=config).run(out, feed)
    want = gc.Session(backend="numpy").run(out, feed)
    assert_close(got, want, dtype=case[-1])


def test_the_packed_filter_holds_each_panel_of_rows_step_by_step():
    """Panel q, step s, lane l holds F[q * PANEL_ROWS + l, s], zero past the last row."""
    weights = np.arange(17 * 5, dtype=np.float32).reshape(17, 5) + 1
    packed = packed_rows(weights)
    assert packed.shape == (2, 5, PANEL_ROWS)
    for q in range(2):
        for s in range(5):
            lanes = weights[q * PANEL_ROWS:(q + 1) * PANEL_ROWS, s]
            np.testing.assert_array_equal(packed[q, s, :len(lanes)], lanes)
            assert not packed[q, s, len(lanes):].any()


@pytest.mark.parametrize("m, n, k", [(96, 12544, 16), (1280, 196, 320), (17, 221, 13), (160, 3136, 96),
                                     (1, 5000, 20), (160, 49, 960), (1280, 49, 320), (24, 49, 8),
                                     (96, 50176, 16),    # a plane too big for a block of channels
                                     (96, 196, 576)])    # a projection: x packed once per row block
def test_blocks_are_whole_panels_and_tiles_small_and_enough(m, n, k):
    rows, cols = pointwise_blocks(m, n, k)
    assert rows == m or rows % PANEL_ROWS == 0
    assert cols == n or cols % 32 == 0
    if cols == n and m >= MIN_BLOCKS * PANEL_ROWS and m * n * k >= SPLIT_WORK and k <= CHANNEL_BLOCK_MAX_K:
        assert rows * cols <= ROW_BLOCK_ELEMENTS and -(-m // rows) >= MIN_BLOCKS
    else:
        assert rows * cols <= max(BLOCK_ELEMENTS, PANEL_ROWS * 64)
    blocks = -(-m // rows) * -(-n // cols)
    if m * n * k >= SPLIT_WORK:   # every thread gets work (a projection: in blocks of columns only)
        projection = k >= m and rows == m and blocks >= conv_pointwise.COLUMN_ONLY_BLOCKS
        assert projection or blocks >= min(MIN_BLOCKS, -(-m // PANEL_ROWS) * -(-n // 32)), (rows, cols)


def test_a_projection_packs_its_pixels_once():
    """A long reduction (a projection) is cut into columns only, where they make blocks enough:
    each block of rows would pack its chunks of pixels again (14 x 14 and 28 x 28 planes: 7
    columns of blocks, cut into 2 row blocks before)."""
    for m, n, k in [(96, 196, 576), (64, 196, 384), (32, 784, 192), (24, 3136, 144)]:
        rows, cols = pointwise_blocks(m, n, k)
        assert rows == m and cols < n and -(-n // cols) >= conv_pointwise.COLUMN_ONLY_BLOCKS
    rows, cols = pointwise_blocks(96, 196, CHANNEL_BLOCK_MAX_K)   # an expansion's short reduction
    assert (rows, cols) == (PANEL_ROWS, 196)


def test_it_is_left_to_the_other_forms_where_it_does_not_apply(monkeypatch):
    """Tiny planes, more input channels than a packed chunk holds, NHWC, a variable filter, a
    stride and GRAPHC_DIRECT_CONV=0 keep their forms; results agree either way."""
    rng = np.random.default_rng(5)
    x = gc.placeholder(gc.float32, (1, 16, 16, 16))
    xv = {x: rng.normal(size=(1, 16, 16, 16)).astype(np.float32)}
    fv = rng.normal(size=(1, 1, 16, 24)).astype(np.float32)
    constant = gc.nn.conv2d(x, gc.constant(fv), [1, 1], "VALID", data_format="NCHW")
    strided = gc.nn.conv2d(x, gc.constant(fv), [2, 2], "VALID", data_format="NCHW")
    variable = gc.nn.conv2d(x, gc.Variable(fv), [1, 1], "VALID", data_format="NCHW")
    wide = gc.placeholder(gc.float32, (1, conv_pointwise.MAX_CHANNELS + 1, 4, 4))
    on_wide = gc.nn.conv2d(wide, gc.constant(np.ones((1, 1, conv_pointwise.MAX_CHANNELS + 1, 2), np.float32)),
                           [1, 1], "VALID", data_format="NCHW")
    small = gc.placeholder(gc.float32, (1, 16, 3, 3))
    on_small = gc.nn.conv2d(small, gc.constant(fv), [1, 1], "VALID", data_format="NCHW")
    nhwc_x = gc.placeholder(gc.float32, (1, 16, 16, 16))
    nhwc = gc.nn.conv2d(nhwc_x, gc.constant(fv), [1, 1], "VALID")
    assert " pointwise-conv " in kernel_listing(constant, xv)
    for fetch, feed in ((strided, xv), (variable, xv), (on_small, {small: xv[x][:, :, :3, :3]}),
                        (on_wide, {wide: np.ones(tuple(wide.shape), np.float32)}),
                        (nhwc, {nhwc_x: xv[x].transpose(0, 2, 3, 1)})):
        assert " pointwise-conv " not in kernel_listing(fetch, feed)
    with gc.Session(backend="llvm") as sess:
        sess.run(gc.global_variables_initializer())
        got = sess.run([constant, variable], xv)
    assert_close(got[1], got[0], dtype="float32")
    pointwise = gc.Session(backend="llvm").run(constant, xv)
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    assert " pointwise-conv " not in kernel_listing(constant, xv)
    assert_close(gc.Session(backend="llvm").run(constant, xv), pointwise, dtype="float32")
    monkeypatch.setattr(conv_pointwise, "MIN_PIXELS", 1 << 30)
    monkeypatch.delenv("GRAPHC_DIRECT_CONV")
    assert " pointwise-conv " not in kernel_listing(constant, xv)


def test_an_aot_library_carries_its_pointwise_kernel(tmp_path):
    """An AOT library for SSE2 vectors (x86-64: 4 float32 lanes, 6-row tiles) defines the kernel
    itself and computes the reference's result."""
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("x86-64 levels run on an x86-64 host only")
    rng = np.random.default_rng(9)
    x, out, feed = _conv(CASES[1][:-1] + ("float32",), rng)
    assert " pointwise-conv " in kernel_listing(out, feed)
    lib = gc.aot.compile(out, [x], tmp_path, "pointwise", cpu="x86-64")
    want = gc.Session(backend="numpy").run(out, feed)
    assert_close(lib.load()(feed[x])[0], want, dtype="float32")

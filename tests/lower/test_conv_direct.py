"""The direct convolution (graphc.lower.conv_direct, graphc.codegen.llvm_conv_direct): NCHW
convolutions with a constant filter read the padded input through their windows instead of a
patch matrix. Against the NumPy reference backend (the oracle) over strides, dilations,
padding, batches, float64, output channels that leave a partial panel and pixel counts that
leave a partial tile; with epilogues; in an AOT library blocked for SSE2 vectors; and the forms
it must leave alone."""
from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.lower.conv_direct import packed_filter, panel_channels
from tests.helpers import assert_close

# (batch, input channels, (h, w), output channels, (kh, kw), strides, padding, dilation, dtype)
CASES = [
    (1, 3, (9, 9), 8, (3, 3), (1, 1), "SAME", 1, "float32"),
    (2, 5, (11, 10), 20, (3, 3), (2, 2), "SAME", 1, "float64"),
    (1, 4, (12, 12), 17, (5, 5), (1, 1), "VALID", 2, "float32"),
    (3, 16, (7, 7), 33, (3, 3), (1, 1), ((1, 2), (0, 1)), 1, "float32"),
    (1, 3, (23, 21), 16, (7, 7), (2, 2), "SAME", 1, "float32"),    # a stem: 7x7, stride 2
    (2, 24, (8, 8), 40, (1, 1), (2, 2), "VALID", 1, "float32"),    # a 1x1 stride-2 downsample
    (1, 64, (5, 5), 9, (3, 2), (1, 3), "SAME", 1, "float64"),      # long reduction, uneven strides
]


def _ids(case) -> str:
    n, ci, (h, w), co, (kh, kw), (sh, sw), _, dil, dtype = case
    return f"n{n}-ci{ci}-co{co}-{h}x{w}-k{kh}x{kw}-s{sh}{sw}-d{dil}-{dtype}"


def _conv(case, rng, epilogue: str = "bias-relu"):
    n, ci, (h, w), co, (kh, kw), strides, padding, dil, dtype = case
    x = gc.placeholder(dtype, (n, ci, h, w))
    f = gc.constant(rng.uniform(-1, 1, (kh, kw, ci, co)).astype(dtype))
    y = gc.nn.conv2d(x, f, list(strides), padding, data_format="NCHW", dilations=dil)
    if epilogue == "bias-relu":
        y = gc.nn.relu(y + gc.constant(rng.uniform(-1, 1, (co, 1, 1)).astype(dtype)))
    elif epilogue == "residual":
        y = y + gc.constant(rng.uniform(-1, 1, tuple(y.shape)).astype(dtype))
    return y, {x: rng.uniform(-1, 1, (n, ci, h, w)).astype(dtype)}


def _listing(fetch, feed) -> str:
    return gc.debugprint([fetch], feed, level="kernels", backend="llvm", file=io.StringIO())


@pytest.mark.parametrize("epilogue", ["none", "bias-relu", "residual"])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_a_direct_convolution_matches_the_reference(case, epilogue):
    rng = np.random.default_rng(21)
    out, feed = _conv(case, rng, epilogue)
    listing = _listing(out, feed)
    assert " direct-conv " in listing and "/patches" not in listing and "/padded_channels_last" in listing, listing
    if epilogue != "none":   # the tail runs on each block of the direct kernel's output
        assert "then on each block" in listing, listing
    got = gc.Session(backend="llvm").run(out, feed)
    want = gc.Session(backend="numpy").run(out, feed)
    scale = max(1.0, float(np.abs(want).max()))
    assert_close(got / scale, want / scale, dtype=case[-1])


def test_the_packed_filter_holds_each_panel_of_output_channels_step_by_step():
    """Panel q, step s = (row i, column j, input channel c), lane l holds f[i, j, c, q * CB + l],
    zero past the last output channel."""
    rng = np.random.default_rng(3)
    f = rng.normal(size=(2, 3, 5, 21)).astype(np.float32)
    cb = panel_channels(4)
    packed = packed_filter(f, 4)
    assert packed.shape == (2, 5 * 2 * 3, cb)
    for q in range(2):
        for c in range(5):
            for i in range(2):
                for j in range(3):
                    s = (i * 3 + j) * 5 + c
                    lanes = f[i, j, c, q * cb:(q + 1) * cb]
                    np.testing.assert_array_equal(packed[q, s, :len(lanes)], lanes)
                    assert not packed[q, s, len(lanes):].any()


def test_it_is_left_to_patches_and_blas_where_it_does_not_apply(monkeypatch):
    """A variable filter (training), NHWC, a 1x1 stride-1 convolution and GRAPHC_DIRECT_CONV=0
    keep the GEMM form; results agree either way."""
    rng = np.random.default_rng(5)
    x = gc.placeholder(gc.float32, (1, 8, 10, 10))
    xv = {x: rng.normal(size=(1, 8, 10, 10)).astype(np.float32)}
    fv = rng.normal(size=(3, 3, 8, 16)).astype(np.float32)
    variable = gc.nn.conv2d(x, gc.Variable(fv), [1, 1], "SAME", data_format="NCHW")
    pointwise = gc.nn.conv2d(x, gc.constant(fv[:1, :1]), [1, 1], "SAME", data_format="NCHW")
    xh = gc.placeholder(gc.float32, (1, 10, 10, 8))
    nhwc = gc.nn.conv2d(xh, gc.constant(fv), [1, 1], "SAME", data_format="NHWC")
    constant = gc.nn.conv2d(x, gc.constant(fv), [1, 1], "SAME", data_format="NCHW")
    feeds = {variable: xv, pointwise: xv, nhwc: {xh: xv[x].transpose(0, 2, 3, 1)}, constant: xv}
    for fetch in (variable, pointwise, nhwc):
        assert " direct-conv " not in _listing(fetch, feeds[fetch])
    assert " direct-conv " in _listing(constant, xv)
    direct = gc.Session(backend="llvm").run(constant, xv)
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    assert " direct-conv " not in _listing(constant, xv)
    assert_close(gc.Session(backend="llvm").run(constant, xv), direct, dtype="float32")
    session = gc.Session(backend="llvm")
    session.run(gc.global_variables_initializer())
    assert_close(session.run(variable, xv), direct, dtype="float32")


def test_an_aot_library_carries_its_direct_convolution(tmp_path):
    """An AOT library for SSE2 vectors (x86-64: 4 float32 lanes, 2-pixel tiles) defines the direct
    kernel itself and computes the reference's result."""
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("x86-64 levels run on an x86-64 host only")
    rng = np.random.default_rng(9)
    out, feed = _conv(CASES[3], rng)
    (x, xv), = feed.items()
    lib = gc.aot.compile(out, [x], tmp_path, "direct", cpu="x86-64")
    want = gc.Session(backend="numpy").run(out, feed)
    assert_close(lib.load()(xv)[0], want, dtype="float32")


def test_a_filter_that_is_a_view_is_copied_once():
    """Deciding against the direct kernel must not emit anything: a transposed (view) filter of
    an NHWC convolution is made contiguous once, by the GEMM form, not also by the direct
    form's check (an extra copy kernel that nothing read)."""
    rng = np.random.default_rng(6)
    x = gc.placeholder(gc.float32, (1, 10, 10, 8))
    fp = gc.placeholder(gc.float32, (16, 3, 3, 8))
    out = gc.nn.conv2d(x, gc.transpose(fp, [1, 2, 3, 0]), [1, 1], "SAME", data_format="NHWC")
    feed = {x: rng.normal(size=(1, 10, 10, 8)).astype(np.float32), fp: rng.normal(size=(16, 3, 3, 8)).astype(np.float32)}
    listing = _listing(out, feed)
    assert listing.count("/contiguous ") == 1, listing
    assert_close(gc.Session(backend="llvm").run(out, feed), gc.Session(backend="numpy").run(out, feed), dtype="float32")

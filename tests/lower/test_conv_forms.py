"""Each way the LLVM backend lowers a convolution, forced in turn, against the NumPy reference
backend (the oracle; its convolution and gradients are checked against naive loops and finite
differences in tests/ops and tests/test_gradients.py): the direct kernel (the forward pass,
graphc.lower.conv_direct; the gradients in the GEMM form), the GEMM form (patches + GEMM, col2im
for the input gradient), the same cut into batch chunks, the unrolled direct form and the
reduction loops. Forward pass and both gradients, both data formats, strides, dilations,
explicit padding and 1x1 convolutions."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

import graphc as gc
import graphc.lower.conv_depthwise as conv_depthwise
import graphc.lower.conv_gemm as conv_gemm
import graphc.lower.conv_unrolled as conv_unrolled
import graphc.lower.library_nn as library_nn
from tests.helpers import assert_close


@pytest.fixture(autouse=True)
def _loop_kernel_depthwise(monkeypatch):
    """These tests are about the loop-kernel forms of grouped and depthwise convolutions (NHWC,
    channel multipliers, column strides past 2, GRAPHC_DIRECT_CONV=0 keep them); an NCHW
    depthwise convolution takes the depthwise kernel otherwise (tests/lower/test_conv_depthwise.py)."""
    monkeypatch.setattr(conv_depthwise, "ENABLED", False)

# (data format, batch, input channels, (h, w), output channels, (kh, kw), strides, padding, dilation)
GEOMETRIES = [
    ("NHWC", 3, 4, (9, 8), 5, (3, 3), (1, 1), "SAME", 1),
    ("NCHW", 3, 4, (9, 8), 5, (3, 2), (2, 1), ((1, 2), (0, 1)), 1),
    ("NCHW", 2, 3, (10, 7), 4, (3, 3), (1, 1), "VALID", 2),
    ("NHWC", 2, 5, (7, 9), 3, (2, 3), (2, 2), "SAME", 1),
    ("NHWC", 2, 3, (7, 7), 4, (1, 1), (1, 1), "VALID", 1),
    ("NCHW", 2, 3, (7, 7), 4, (1, 1), (1, 1), "VALID", 1),
    ("NCHW", 1, 3, (7, 7), 4, (1, 1), (1, 1), "SAME", 1),
    ("NCHW", 1, 6, (7, 6), 4, (1, 1), (2, 2), "SAME", 1),
]
FORMS = ["direct", "gemm", "gemm-chunked", "unrolled", "loops"]


def _force(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if form != "direct":
        monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    if form == "gemm-chunked":
        monkeypatch.setattr(conv_gemm, "PATCH_BYTES", 1)   # one image per chunk
    elif form == "unrolled":
        monkeypatch.setattr(library_nn, "UNROLLED_BEFORE_GEMM", 10 ** 6)
    elif form == "loops":
        monkeypatch.setattr(conv_gemm, "eligible", lambda lw, node: False)
        monkeypatch.setattr(library_nn, "UNROLLED_TERMS", 0)
        monkeypatch.setattr(library_nn, "UNROLLED_BEFORE_GEMM", 0)


def _build(geometry, dtype, rng):
    fmt, n, ci, (h, w), co, (kh, kw), strides, padding, dil = geometry
    x_shape = (n, h, w, ci) if fmt == "NHWC" else (n, ci, h, w)
    xv = rng.uniform(-1, 1, x_shape).astype(dtype)
    fv = rng.uniform(-1, 1, (kh, kw, ci, co)).astype(dtype)
    x, f = gc.placeholder(dtype, x_shape), gc.placeholder(dtype, fv.shape)
    out = gc.nn.conv2d(x, f, strides=list(strides), padding=padding, data_format=fmt, dilations=dil)
    weights = gc.constant(rng.uniform(-1, 1, tuple(out.shape)).astype(dtype))
    dx, df = gc.gradients(gc.reduce_sum(out * weights), [x, f])
    return [out, dx, df], {x: xv, f: fv}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("geometry", GEOMETRIES,
                         ids=lambda g: f"{g[0]}-n{g[1]}-k{g[5][0]}x{g[5][1]}-s{g[6][0]}{g[6][1]}")
def test_convolution_form_matches_the_reference(form, geometry, monkeypatch):
    rng = np.random.default_rng(7)
    dtype = "float64" if geometry[1] == 2 else "float32"
    fetches, feed = _build(geometry, dtype, rng)
    expected = gc.Session(backend="numpy").run(fetches, feed)
    _force(form, monkeypatch)
    listing = gc.debugprint(fetches, feed, level="kernels", backend="llvm", file=io.StringIO())
    got = gc.Session(backend="llvm").run(fetches, feed)
    for name, a, e in zip(("output", "input gradient", "filter gradient"), got, expected):
        scale = max(1.0, float(np.abs(e).max()))
        assert_close(np.asarray(a) / scale, np.asarray(e) / scale, dtype=dtype), f"{form}: {name} differs"
    uses_gemm = " gemm " in listing
    assert uses_gemm == (form in ("direct", "gemm", "gemm-chunked", "unrolled")), listing
    _, n, ci, _, _, (kh, kw), strides, _, _ = geometry
    big = kh * kw * ci > library_nn.UNROLLED_BEFORE_GEMM
    assert (" direct-conv " in listing) == (form == "direct" and big and (kh, kw, *strides) != (1, 1, 1, 1)), listing
    if form == "gemm-chunked" and kh * kw * ci > library_nn.UNROLLED_BEFORE_GEMM and (kh, kw, *strides) != (1, 1, 1, 1):
        forward_gemms = [line for line in listing.splitlines() if " gemm " in line and line.endswith("'Conv2D'")]
        assert len(forward_gemms) == n, listing   # one GEMM per image
        if geometry[0] == "NHWC":   # the filter gradient too: one partial gradient per image, then their sum
            filter_gemms = [line for line in listing.splitlines()
                            if " gemm " in line and "# Conv2DBackpropFilter " in line]
            assert len(filter_gemms) == n, listing


@pytest.mark.parametrize("backend", ["llvm", "cuda-emulator"])
@pytest.mark.parametrize("form", ["gemm", "gemm-chunked"])
@pytest.mark.parametrize("geometry", [
    ("NCHW", 3, 4, (9, 8), 5, (3, 2), (2, 1), ((1, 2), (0, 1)), 1),
    ("NCHW", 2, 3, (10, 7), 4, (3, 3), (1, 1), "VALID", 2),
    ("NCHW", 2, 16, (7, 7), 6, (1, 1), (1, 1), "VALID", 1),    # pointwise: no patches
    ("NCHW", 1, 16, (7, 6), 4, (1, 1), (2, 2), "SAME", 1),
], ids=lambda g: f"n{g[1]}-k{g[5][0]}x{g[5][1]}-s{g[6][0]}{g[6][1]}")
def test_a_constant_nchw_filter_is_multiplied_as_rows_of_output_channels(backend, form, geometry, monkeypatch):
    """An NCHW convolution whose filter is a constant (every imported ONNX model) multiplies a
    [co, kh*kw*ci] copy of it made at compile time, not the HWIO filter read transposed; the
    result still matches the reference, and so do its gradient with respect to the input."""
    if backend == "cuda-emulator" and shutil.which("g++") is None:
        pytest.skip("the CUDA emulator needs g++")
    fmt, n, ci, (h, w), co, (kh, kw), strides, padding, dil = geometry
    rng = np.random.default_rng(11)
    dtype = "float64" if n == 2 else "float32"
    x = gc.placeholder(dtype, (n, ci, h, w))
    f = gc.constant(rng.uniform(-1, 1, (kh, kw, ci, co)).astype(dtype))
    out = gc.nn.conv2d(x, f, strides=list(strides), padding=padding, data_format=fmt, dilations=dil)
    weights = gc.constant(rng.uniform(-1, 1, tuple(out.shape)).astype(dtype))
    dx = gc.gradients(gc.reduce_sum(out * weights), [x])[0]
    feed = {x: rng.uniform(-1, 1, (n, ci, h, w)).astype(dtype)}
    expected = gc.Session(backend="numpy").run([out, dx], feed)
    _force(form, monkeypatch)
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")   # the GEMM form (tests/lower/test_conv_direct.py: the direct one)
    if backend == "llvm":
        listing = gc.debugprint([out], feed, level="kernels", backend="llvm", file=io.StringIO())
        rows = [line.split()[0] for line in listing.splitlines() if "Conv2D/filter_rows" in line]
        assert rows and f"{rows[0]}[{co}x{kh * kw * ci}] @" in listing, listing
    for a, e in zip(gc.Session(backend=backend).run([out, dx], feed), expected):
        assert_close(np.asarray(a), np.asarray(e), dtype=dtype)


def test_a_depthwise_convolution_is_unrolled_without_bounds_tests():
    """A depthwise convolution reads a padded copy of its input: the per-tap reads carry no
    select, so they vectorize (the padding is written once, by its own kernel)."""
    x = gc.placeholder(gc.float32, [1, 8, 12, 12])
    f = gc.placeholder(gc.float32, [3, 3, 1, 8])
    out = gc.nn.conv2d(x, f, strides=1, padding="SAME", data_format="NCHW", groups=8)
    rng = np.random.default_rng(3)
    feed = {x: rng.normal(size=(1, 8, 12, 12)).astype(np.float32), f: rng.normal(size=(3, 3, 1, 8)).astype(np.float32)}
    listing = gc.debugprint(out, feed, level="kernels", backend="llvm", file=io.StringIO())
    body = listing[listing.index("k1_Conv2D"):]
    assert "select" not in body and "/padded" in listing
    assert_close(gc.Session(backend="llvm").run(out, feed), gc.Session(backend="numpy").run(out, feed),
                 dtype="float32")


@pytest.mark.skipif(shutil.which("g++") is None, reason="the CUDA emulator needs g++")
@pytest.mark.parametrize("form", ["gemm", "gemm-chunked"])
@pytest.mark.parametrize("geometry", [GEOMETRIES[0], GEOMETRIES[1]], ids=["NHWC", "NCHW"])
def test_convolution_gemm_form_on_the_cuda_emulator(form, geometry, monkeypatch):
    """The CUDA backend lowers convolutions alike; its GEMMs take the chunks' offsets."""
    rng = np.random.default_rng(8)
    fetches, feed = _build(geometry, "float32", rng)
    expected = gc.Session(backend="numpy").run(fetches, feed)
    _force(form, monkeypatch)
    got = gc.Session(backend="cuda-emulator").run(fetches, feed)
    for a, e in zip(got, expected):
        scale = max(1.0, float(np.abs(e).max()))
        assert_close(np.asarray(a) / scale, np.asarray(e) / scale, dtype="float32")


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("op", ["depthwise", "pool", "avg_pool"])
def test_an_elementwise_epilogue_runs_inside_a_direct_kernel_in_nhwc(fmt, op):
    """Bias and a clipped activation after a depthwise convolution or a pool: in NHWC they run in
    the convolution's (pool's) own kernel, on the value in a register; in NCHW in a second pass
    (where the fused kernel measured slower). Values are the reference's either way."""
    rng = np.random.default_rng(3)
    c = 6
    shape = (2, 9, 10, c) if fmt == "NHWC" else (2, c, 9, 10)
    xv = rng.normal(size=shape).astype(np.float32)
    x = gc.placeholder(gc.float32, shape)
    if op == "depthwise":
        y = gc.nn.conv2d(x, gc.constant(rng.normal(size=(3, 3, 1, c)).astype(np.float32)), [2, 2], "SAME",
                         data_format=fmt, groups=c)
    elif op == "pool":
        y = gc.nn.max_pool2d(x, 2, 2, "SAME", data_format=fmt)
    else:
        y = gc.nn.avg_pool2d(x, 3, 2, "SAME", data_format=fmt)
    bias = rng.normal(size=(c,) if fmt == "NHWC" else (c, 1, 1)).astype(np.float32)
    out = gc.minimum(gc.maximum(y + gc.constant(bias), 0.0), 6.0)
    want = gc.Session(backend="numpy").run(out, {x: xv})
    got = gc.Session(backend="llvm").run(out, {x: xv})
    assert_close(got, want, dtype="float32")
    listing = gc.debugprint([out], {x: xv}, level="kernels", backend="llvm", file=io.StringIO())
    separate = [line for line in listing.splitlines() if line.startswith("k") and "'Minimum" in line]
    assert (separate == []) == (fmt == "NHWC"), listing


@pytest.mark.parametrize("width,tail,fused", [(40, "relu6", True), (40, "silu", False), (10, "relu6", True),
                                              (10, "silu", False)])
def test_an_nchw_depthwise_convolution_with_stride_one_takes_a_cheap_epilogue_inside(width, tail, fused):
    """NCHW, stride 1, rows of 32 or more: bias + ReLU6 run in the depthwise kernel; a SiLU (a
    sigmoid per element) keeps its own pass, where it measured faster. Narrower rows: the
    flattened-plane form, whose compacting pass takes the cheap epilogue alike. Values are the
    reference's either way."""
    rng = np.random.default_rng(4)
    c = 6
    xv = rng.normal(size=(1, c, 9, width)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    y = gc.nn.conv2d(x, gc.constant(rng.normal(size=(3, 3, 1, c)).astype(np.float32)), [1, 1], "SAME",
                     data_format="NCHW", groups=c) + gc.constant(rng.normal(size=(c, 1, 1)).astype(np.float32))
    out = gc.minimum(gc.maximum(y, 0.0), 6.0) if tail == "relu6" else y * gc.sigmoid(y)
    want = gc.Session(backend="numpy").run(out, {x: xv})
    got = gc.Session(backend="llvm").run(out, {x: xv})
    assert_close(got, want, dtype="float32")
    listing = gc.debugprint([out], {x: xv}, level="kernels", backend="llvm", file=io.StringIO())
    last = "'Minimum" if tail == "relu6" else "'Mul"
    separate = [line for line in listing.splitlines() if line.startswith("k") and last in line]
    assert (separate == []) == fused, listing
    assert ("/flat_planes" in listing) == (width < conv_unrolled.FLAT_PLANE_BELOW_WIDTH), listing


@pytest.mark.parametrize("backend", ["llvm", "cuda-emulator"])
@pytest.mark.parametrize("case", [
    # (batch, channels, groups, (h, w), (kh, kw), padding, dilation, dtype)
    (1, 8, 8, (7, 7), (3, 3), "SAME", 1, "float32"),
    (2, 6, 6, (14, 13), (5, 5), "SAME", 1, "float64"),
    (2, 6, 3, (9, 11), (3, 3), "VALID", 1, "float32"),   # two channels per group, no padding
    (1, 4, 4, (10, 9), (3, 2), ((2, 1), (0, 1)), 2, "float32"),
    (3, 5, 5, (1, 1), (3, 3), "SAME", 1, "float32"),     # one pixel: every tap but the centre is padding
], ids=["7x7", "5x5-f64", "groups-valid", "dilated-explicit", "one-pixel"])
def test_a_narrow_nchw_grouped_convolution_runs_over_flattened_planes(backend, case):
    """Stride-1 NCHW convolutions with narrow rows run over each padded plane flattened; the
    positions that fall in the padding columns are dropped. Output and both gradients match the
    reference for groups, dilations, explicit padding, no padding, batches and float64."""
    if backend == "cuda-emulator" and shutil.which("g++") is None:
        pytest.skip("the CUDA emulator needs g++")
    n, c, groups, (h, w), (kh, kw), padding, dil, dtype = case
    rng = np.random.default_rng(12)
    xv = rng.uniform(-1, 1, (n, c, h, w)).astype(dtype)
    fv = rng.uniform(-1, 1, (kh, kw, c // groups, c)).astype(dtype)
    x, f = gc.placeholder(dtype, xv.shape), gc.placeholder(dtype, fv.shape)
    out = gc.nn.conv2d(x, f, [1, 1], padding, data_format="NCHW", dilations=dil, groups=groups)
    weights = gc.constant(rng.uniform(-1, 1, tuple(out.shape)).astype(dtype))
    fetches = [out, *gc.gradients(gc.reduce_sum(out * weights), [x, f])]
    feed = {x: xv, f: fv}
    if backend == "llvm":
        listing = gc.debugprint([out], feed, level="kernels", backend="llvm", file=io.StringIO())
        assert "/flat_planes" in listing, listing
    for a, e in zip(gc.Session(backend=backend).run(fetches, feed), gc.Session(backend="numpy").run(fetches, feed)):
        assert_close(np.asarray(a), np.asarray(e), dtype=dtype)


@pytest.mark.parametrize("backend", ["llvm", "cuda-emulator"])
@pytest.mark.parametrize("taps,strides,padding,copy", [
    (3, (2, 2), "SAME", None),                   # mobilenet_v2's stride-2 depthwise: masked reads
    (3, (2, 1), ((1, 0), (2, 1)), None),         # uneven strides and explicit padding
    (5, (2, 2), "SAME", "/phases"),              # 25 taps: the input's four phases, then stride 1
    (5, (2, 2), ((2, 1), (0, 2)), "/phases"),    # explicit, uneven padding
    (5, (3, 3), "SAME", "/padded"),              # stride 3: the padded copy
])
def test_a_strided_nchw_depthwise_convolution_reads_its_input_masked(backend, taps, strides, padding, copy):
    """NCHW with strides and at most 3 x 3 taps: no copy of the input, each tap reads the input
    masked at its borders. More taps with stride 2: the input's four phases, and a stride-1
    convolution over them. Output and both gradients match the reference."""
    if backend == "cuda-emulator" and shutil.which("g++") is None:
        pytest.skip("the CUDA emulator needs g++")
    rng = np.random.default_rng(13)
    c = 6
    xv = rng.uniform(-1, 1, (2, c, 11, 10)).astype(np.float32)
    fv = rng.uniform(-1, 1, (taps, taps, 1, c)).astype(np.float32)
    x, f = gc.placeholder(gc.float32, xv.shape), gc.placeholder(gc.float32, fv.shape)
    out = gc.nn.relu(gc.nn.conv2d(x, f, list(strides), padding, data_format="NCHW", groups=c))
    weights = gc.constant(rng.uniform(-1, 1, tuple(out.shape)).astype(np.float32))
    fetches = [out, *gc.gradients(gc.reduce_sum(out * weights), [x, f])]
    feed = {x: xv, f: fv}
    if backend == "llvm":
        listing = gc.debugprint([out], feed, level="kernels", backend="llvm", file=io.StringIO())
        copies = [name for name in ("/padded", "/phases") if name in listing]
        assert copies == ([copy] if copy else []), listing
    for a, e in zip(gc.Session(backend=backend).run(fetches, feed), gc.Session(backend="numpy").run(fetches, feed)):
        assert_close(np.asarray(a), np.asarray(e), dtype="float32")


@pytest.mark.parametrize("backend", ["llvm", "cuda-emulator"])
@pytest.mark.parametrize("op,window,strides,padding,dilation,dtype", [
    ("max", 3, 2, "SAME", 1, "float32"),      # resnet18's stem pool (after its explicit pad: VALID)
    ("max", 3, 2, "VALID", 1, "float64"),
    ("avg", 3, 1, "SAME", 1, "float32"),      # the count excludes the padding
    ("avg", 2, 2, "VALID", 1, "float32"),
    ("max", 2, 1, "SAME", 2, "float32"),      # a dilated max pool
    ("max", 4, 3, "SAME", 1, "float32"),      # 16 taps: still unrolled
    ("avg", 5, 1, "SAME", 1, "float32"),      # 25 taps: the reduction loop
])
def test_a_small_nchw_pool_is_unrolled_over_its_taps(backend, op, window, strides, padding, dilation, dtype):
    """NCHW pools of at most 16 taps are one expression per output (no reduction loop), so the
    output's columns vectorize; output and gradient match the reference."""
    if backend == "cuda-emulator" and shutil.which("g++") is None:
        pytest.skip("the CUDA emulator needs g++")
    rng = np.random.default_rng(14)
    xv = rng.normal(size=(2, 3, 11, 10)).astype(dtype)
    x = gc.placeholder(dtype, xv.shape)
    if op == "max":
        y = gc.nn.max_pool2d(x, window, strides, padding, data_format="NCHW", dilations=dilation)
    else:
        y = gc.nn.avg_pool2d(x, window, strides, padding, data_format="NCHW")
    weights = gc.constant(rng.normal(size=tuple(y.shape)).astype(dtype))
    fetches = [y, gc.gradients(gc.reduce_sum(y * weights), [x])[0]]
    if backend == "llvm":
        listing = gc.debugprint([y], {x: xv}, level="kernels", backend="llvm", file=io.StringIO())
        pool_lines = [line for line in listing.splitlines() if line.startswith("k") and "Pool" in line]
        assert pool_lines and all((" reduce " in line) == (window * window > 16) for line in pool_lines), listing
    for a, e in zip(gc.Session(backend=backend).run(fetches, {x: xv}),
                    gc.Session(backend="numpy").run(fetches, {x: xv})):
        assert_close(np.asarray(a), np.asarray(e), dtype=dtype)

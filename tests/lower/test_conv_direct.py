"""The direct convolution (graphc.lower.conv_direct, graphc.codegen.llvm_conv_direct): NCHW and
NHWC convolutions with a constant or variable filter read the padded input through their
windows instead of a patch matrix. Against the NumPy reference backend (the oracle) over strides, dilations,
padding, batches, float64, output channels that leave a partial panel and pixel counts that
leave a partial tile; with epilogues; in an AOT library blocked for SSE2 vectors; and the forms
it must leave alone."""
from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm_conv_direct import transpose_plan
from graphc.lower.conv_direct import packed_filter, panel_channels, wide_panels
from tests.helpers import assert_close, kernel_listing

# (batch, input channels, (h, w), output channels, (kh, kw), strides, padding, dilation, dtype)
CASES = [
    (1, 3, (9, 9), 8, (3, 3), (1, 1), "SAME", 1, "float32"),
    (2, 5, (11, 10), 20, (3, 3), (2, 2), "SAME", 1, "float64"),
    (1, 4, (12, 12), 17, (5, 5), (1, 1), "VALID", 2, "float32"),
    (3, 16, (7, 7), 33, (3, 3), (1, 1), ((1, 2), (0, 1)), 1, "float32"),
    (1, 3, (23, 21), 16, (7, 7), (2, 2), "SAME", 1, "float32"),    # a stem: 7x7, stride 2
    (2, 24, (8, 8), 40, (1, 1), (2, 2), "VALID", 1, "float32"),    # a 1x1 stride-2 downsample
    (1, 64, (5, 5), 9, (3, 2), (1, 3), "SAME", 1, "float64"),      # long reduction, uneven strides
    # 288 steps: two chunks of 144 (2.25 chunks of 128 before), two full groups of tiles and a
    # partial one of 8 + 7 pixels, a partial panel of output channels
    (1, 32, (13, 11), 40, (3, 3), (1, 1), "SAME", 1, "float32"),
    (1, 37, (10, 9), 35, (3, 3), (1, 1), "SAME", 1, "float32"),   # 333 steps: chunks of 112, 112 and 109
    # output channels that fill wide panels (64 float32, 32 float64): tiles of 6 pixels x 4 vectors
    (1, 16, (9, 10), 128, (3, 3), (1, 1), "SAME", 1, "float32"),
    (2, 5, (7, 8), 32, (3, 3), (2, 2), "SAME", 1, "float64"),
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


@pytest.mark.parametrize("epilogue", ["none", "bias-relu", "residual"])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_a_direct_convolution_matches_the_reference(case, epilogue):
    rng = np.random.default_rng(21)
    out, feed = _conv(case, rng, epilogue)
    listing = kernel_listing(out, feed)
    assert " direct-conv " in listing and "/patches" not in listing and "/padded_channels_last" in listing, listing
    if epilogue != "none":   # the tail runs on each block of the direct kernel's output
        assert "then on each block" in listing, listing
    got = gc.Session(backend="llvm").run(out, feed)
    want = gc.Session(backend="numpy").run(out, feed)
    scale = max(1.0, float(np.abs(want).max()))
    assert_close(got / scale, want / scale, dtype=case[-1])


def test_wide_panels_only_where_the_output_channels_fill_them():
    assert [wide_panels(co, 4) for co in (64, 512, 32, 96, 160)] == [256, 256, 128, 128, 128]
    assert [wide_panels(co, 8) for co in (32, 16, 48)] == [256, 128, 128]


def test_the_packed_filter_holds_each_panel_of_output_channels_step_by_step():
    """Panel q, step s = (row i, column j, input channel c), lane l holds f[i, j, c, q * CB + l],
    zero past the last output channel."""
    rng = np.random.default_rng(3)
    cb = panel_channels(4)
    f = rng.normal(size=(2, 3, 5, cb + 5)).astype(np.float32)
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
    """A 1x1 stride-1 convolution, a grouped one and GRAPHC_DIRECT_CONV=0 keep their forms;
    results agree either way."""
    rng = np.random.default_rng(5)
    x = gc.placeholder(gc.float32, (1, 8, 10, 10))
    xv = {x: rng.normal(size=(1, 8, 10, 10)).astype(np.float32)}
    fv = rng.normal(size=(3, 3, 8, 16)).astype(np.float32)
    pointwise = gc.nn.conv2d(x, gc.constant(fv[:1, :1]), [1, 1], "SAME", data_format="NCHW")
    grouped = gc.nn.conv2d(x, gc.constant(fv[:, :, :4]), [1, 1], "SAME", data_format="NCHW", groups=2)
    constant = gc.nn.conv2d(x, gc.constant(fv), [1, 1], "SAME", data_format="NCHW")
    for fetch in (pointwise, grouped):
        assert " direct-conv " not in kernel_listing(fetch, xv)
    assert " direct-conv " in kernel_listing(constant, xv)
    direct = gc.Session(backend="llvm").run(constant, xv)
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    assert " direct-conv " not in kernel_listing(constant, xv)
    assert_close(gc.Session(backend="llvm").run(constant, xv), direct, dtype="float32")


# (batch, (h, w), input channels, output channels, kernel, strides, padding, dilation)
NHWC_CASES = [
    (2, (9, 9), 5, 20, 3, 1, "SAME", 1),
    (1, (12, 11), 8, 33, 3, 2, "SAME", 1),     # stride 2, a partial panel of output channels
    (3, (7, 7), 16, 16, 3, 1, "VALID", 1),     # no padding: the input is read as it is
    (2, (10, 10), 4, 8, 3, 1, "SAME", 2),      # dilated
    (2, (6, 5), 24, 40, 1, 1, "VALID", 1),     # 1x1 stride 1: steps are the channels, read in place
    (1, (7, 9), 12, 64, 3, 1, "SAME", 1),      # a wide panel
]


@pytest.mark.parametrize("variable", [False, True], ids=["constant", "variable"])
@pytest.mark.parametrize("case", NHWC_CASES, ids=lambda c: f"n{c[0]}-{c[1][0]}x{c[1][1]}-ci{c[2]}-co{c[3]}-s{c[5]}-{c[6]}-d{c[7]}")
def test_an_nhwc_convolution_with_a_constant_or_variable_filter_runs_direct(case, variable):
    """NHWC (TF1's default layout) with a filter that is a constant or a variable (training: the
    filter is packed by a kernel each call): the direct kernel stores each pixel's channels
    as vectors, and the bias + ReLU tail runs on its blocks, channels innermost."""
    n, (h, w), ci, co, k, stride, padding, dil = case
    rng = np.random.default_rng(31)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (n, h, w, ci))
        fv = rng.uniform(-1, 1, (k, k, ci, co)).astype(np.float32)
        f = gc.Variable(fv) if variable else gc.constant(fv)
        y = gc.nn.relu(gc.nn.conv2d(x, f, [stride, stride], padding, dilations=dil)
                       + gc.constant(rng.uniform(-1, 1, co).astype(np.float32)))
        feed = {x: rng.uniform(-1, 1, (n, h, w, ci)).astype(np.float32)}
        listing = kernel_listing(y, feed)
        assert " direct-conv " in listing and "/patches" not in listing and "then on each block" in listing, listing
        cb = panel_channels(4, wide_panels(co, 4))
        packing = re.search(rf"k\d+_Conv2D loop [^\n]*i4<{cb} ", listing)   # [panels, kh, kw, ci, CB]
        assert (packing is not None) == variable, listing   # packed by a kernel only when variable
        assert ("/padded_channels_last" in listing) == (padding == "SAME"), listing
        results = []
        for backend in ("llvm", "numpy"):
            session = gc.Session(backend=backend)
            session.run(gc.global_variables_initializer())
            results.append(session.run(y, feed))
    assert_close(results[0], results[1], dtype="float32")


def test_a_training_step_through_a_direct_convolution_matches_the_reference():
    """The forward pass of a training step runs direct (variable filter, NHWC); the loss and
    the updated filter after an SGD step agree with the reference backend."""
    rng = np.random.default_rng(8)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (4, 8, 8, 3))
        f = gc.Variable(rng.normal(size=(3, 3, 3, 12)).astype(np.float32) * 0.3)
        loss = gc.reduce_mean(gc.square(gc.nn.relu(gc.nn.conv2d(x, f, [1, 1], "SAME"))))
        step = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
        xv = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
        assert " direct-conv " in kernel_listing(loss, {x: xv})
        results = []
        for backend in ("llvm", "numpy"):
            session = gc.Session(backend=backend)
            session.run(gc.global_variables_initializer())
            first = session.run([step, loss], {x: xv})[1]
            results.append((first, session.run(loss, {x: xv}), session.run(f)))
    for got, want in zip(results[0], results[1]):
        assert_close(np.asarray(got), np.asarray(want), dtype="float32")
    assert results[0][1] < results[0][0]   # the step lowered the loss


@pytest.mark.parametrize("cpu", ["x86-64", "x86-64-v3"])
@pytest.mark.parametrize("fmt", ["NCHW", "NHWC", "NCHW-wide"])
def test_an_aot_library_carries_its_direct_convolution(tmp_path, fmt, cpu):
    """An AOT library for SSE2 vectors (x86-64: 4 float32 lanes, tiles of 8 channels, four to a
    panel of 32) or AVX2 ones (x86-64-v3: tiles of 16, two to a panel) defines the direct kernel
    itself and computes the reference's result, in either layout, 33 channels leaving a panel of
    one; 128 channels take wide panels (64 channels, run as eight or four tiles' worth)."""
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("x86-64 levels run on an x86-64 host only")
    from llvmlite import binding
    if cpu != "x86-64" and not binding.get_host_cpu_features().get("avx2"):
        pytest.skip(f"this CPU cannot run {cpu} code")
    rng = np.random.default_rng(9)
    if fmt == "NCHW":
        out, feed = _conv(CASES[3], rng)
    elif fmt == "NCHW-wide":
        out, feed = _conv(CASES[-2], rng)
    else:
        x = gc.placeholder(gc.float32, (2, 7, 7, 16))
        out = gc.nn.relu(gc.nn.conv2d(x, gc.constant(rng.uniform(-1, 1, (3, 3, 16, 33)).astype(np.float32)), [1, 1], "SAME"))
        feed = {x: rng.uniform(-1, 1, (2, 7, 7, 16)).astype(np.float32)}
    (x, xv), = feed.items()
    lib = gc.aot.compile(out, [x], tmp_path, "direct", cpu=cpu)
    want = gc.Session(backend="numpy").run(out, feed)
    assert_close(lib.load()(xv)[0], want, dtype="float32")


def test_a_filter_that_is_a_view_is_packed_without_a_copy():
    """A transposed (view) filter of an NHWC convolution is read through its view by the kernel
    that packs it: no copy kernel makes it contiguous first."""
    rng = np.random.default_rng(6)
    x = gc.placeholder(gc.float32, (1, 10, 10, 8))
    fp = gc.placeholder(gc.float32, (16, 3, 3, 8))
    out = gc.nn.conv2d(x, gc.transpose(fp, [1, 2, 3, 0]), [1, 1], "SAME", data_format="NHWC")
    feed = {x: rng.normal(size=(1, 10, 10, 8)).astype(np.float32), fp: rng.normal(size=(16, 3, 3, 8)).astype(np.float32)}
    listing = kernel_listing(out, feed)
    assert " direct-conv " in listing and "/contiguous " not in listing, listing
    got, want = gc.Session(backend="llvm").run(out, feed), gc.Session(backend="numpy").run(out, feed)
    scale = float(np.abs(want).max())
    assert_close(got / scale, want / scale, dtype="float32")


@pytest.mark.parametrize("pixels, lanes", [(8, 16), (8, 8), (4, 16), (2, 8), (4, 4)])
def test_the_transposition_in_registers_gives_each_channel_its_pixels_in_order(pixels, lanes):
    tile = np.arange(pixels * lanes).reshape(pixels, lanes)   # tile[p, c]: pixel p, channel c
    vectors = [tile[p] for p in range(pixels)]
    stages = transpose_plan(pixels, lanes)
    assert len(stages) == int(np.log2(pixels)) and all(len(stage) == pixels for stage in stages)
    for stage in stages:
        vectors = [np.concatenate([vectors[a], vectors[b]])[mask] for a, b, mask in stage]
    group = lanes // pixels
    for j, vector in enumerate(vectors):
        for g in range(group):
            np.testing.assert_array_equal(vector[g * pixels:(g + 1) * pixels], tile[:, j * group + g])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 960, (7, 7), 160), (2, 24, (5, 5), 40), (1, 1280, (1, 1), 100),
                                   (1, 33, (8, 8), 70)], ids=lambda c: f"n{c[0]}-ci{c[1]}-{c[2][0]}x{c[2][1]}-co{c[3]}")
def test_a_1x1_convolution_over_a_small_plane_runs_direct_from_the_input_as_it_lies(shape, threads):
    """Output channels in the lanes and pixels broadcast, input channel s of pixel p read at
    x[s * plane + p]: no copy, and no tiles of 32 pixels over 49."""
    n, ci, (h, w), co = shape
    rng = np.random.default_rng(5)
    x = gc.placeholder(gc.float32, (n, ci, h, w))
    y = gc.nn.conv2d(x, gc.constant(rng.uniform(-1, 1, (1, 1, ci, co)).astype(np.float32)), [1, 1], "VALID",
                     data_format="NCHW")
    y = gc.nn.relu6(y + gc.constant(rng.uniform(-1, 1, (co, 1, 1)).astype(np.float32)))
    feed = {x: rng.uniform(-1, 1, (n, ci, h, w)).astype(np.float32)}
    listing = kernel_listing(y, feed)
    assert " direct-conv " in listing and " pointwise-conv " not in listing and "padded" not in listing, listing
    got = gc.Session(backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=threads)).run(y, feed)
    # a sum of up to 1280 products in another order than NumPy's, then clipped near zero
    assert_close(got, gc.Session(backend="numpy").run(y, feed), dtype="float32", rtol=1e-4, atol=ci * 2e-7)

"""The depthwise kernel (graphc.lower.conv_depthwise, graphc.codegen.llvm_depthwise): NCHW
depthwise convolutions in one pass from the unpadded input, compared with the NumPy reference
backend over the geometries that exercise its paths (vectors inside the plane with plain loads,
border vectors through lane masks, tap rows outside the plane, partial last vectors, stride-2
shuffles, dilations, uneven padding), with fused epilogues, on one and two threads, and in an
AOT library; where it does not apply, the loop kernels keep the convolution."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.lower.conv_depthwise as conv_depthwise
from graphc.lower.conv_depthwise import depthwise_blocks
from tests.helpers import assert_close, kernel_listing, window_case_id

# (channels, (h, w), taps, strides, padding, dilations)
GEOMETRIES = [
    (5, (9, 9), 3, (1, 1), "SAME", (1, 1)),             # one partial vector per row
    (3, (40, 37), 3, (1, 1), "SAME", (1, 1)),            # flattened: vectors across rows
    (2, (70, 67), 3, (1, 1), "SAME", (1, 1)),            # by rows: plain vectors inside, borders both sides
    (4, (14, 14), 3, (2, 2), "SAME", (1, 1)),            # stride 2: two loads and a shuffle per tap
    (3, (37, 45), 3, (2, 2), [(1, 1), (1, 1)], (1, 1)),  # stride 2 with plain vectors
    (2, (64, 64), 3, (2, 2), [(1, 1), (1, 1)], (1, 1)),  # stride 2: the last vector's loads end at the row's end
    (6, (13, 13), 5, (2, 2), "SAME", (1, 1)),            # 25 taps, stride 2: two output rows a vector (odd rows)
    (3, (9, 12), 3, (1, 2), "SAME", (1, 1)),             # a column stride of 2 only, two output rows a vector
    (2, (8, 8), 3, (2, 2), "SAME", (1, 1)),              # 4 columns: two output rows a vector in float64 too
    (2, (30, 33), 5, (1, 1), "SAME", (1, 1)),            # 25 taps, flattened
    (2, (40, 36), 5, (1, 1), "SAME", (1, 1)),            # 25 taps over three vectors a row
    (3, (11, 10), 3, (2, 1), [(1, 0), (2, 1)], (1, 1)),  # uneven strides and padding
    (4, (20, 19), 3, (1, 1), "SAME", (2, 2)),            # dilated
    (3, (8, 40), 3, (1, 2), "VALID", (1, 1)),            # no padding, a column stride only
    (2, (3, 3), 5, (1, 1), "SAME", (1, 1)),              # taps wider than the plane (flattened)
    (6, (7, 7), 3, (1, 1), "SAME", (1, 1)),              # flattened: 4 vectors of the 49 pixels
    (4, (8, 8), 3, (1, 1), "SAME", (2, 2)),              # flattened and dilated
    (3, (10, 7), 3, (1, 1), [(0, 0), (1, 1)], (1, 1)),   # flattened, rows unpadded
    (3, (6, 6), 1, (1, 1), [(2, 2), (2, 2)], (1, 1)),    # one tap, padding wider than it: zero borders
    (2, (10, 10), 3, (2, 2), [(4, 4), (4, 4)], (2, 2)),  # stride 2 and dilated: a load per tap column
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", GEOMETRIES, ids=window_case_id)
def test_it_matches_the_reference(case, dtype):
    c, (h, w), taps, strides, padding, dilations = case
    rng = np.random.default_rng(sum(map(ord, window_case_id(case))))
    xv = rng.uniform(-1, 1, (2, c, h, w)).astype(dtype)
    fv = rng.uniform(-1, 1, (taps, taps, 1, c)).astype(dtype)
    x = gc.placeholder(dtype, xv.shape)
    out = gc.nn.conv2d(x, gc.constant(fv), list(strides), padding, data_format="NCHW", dilations=list(dilations),
                       groups=c)
    listing = kernel_listing([out], {x: xv})
    assert " depthwise-conv " in listing
    oh, ow = tuple(out.shape)[2:]
    flat = strides == (1, 1) and ow == w and taps * taps * oh * ow <= conv_depthwise.FLAT_TABLE_BYTES
    assert (" flat " in listing) == flat
    got = gc.Session(backend="llvm").run(out, {x: xv})
    want = gc.Session(backend="numpy").run(out, {x: xv})
    assert_close(got, want, dtype=dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("epilogue", ["bias-relu6", "silu", "residual"])
def test_the_tail_runs_on_its_blocks(epilogue, threads):
    """Bias + ReLU6 (mobilenet_v2), x * sigmoid(x) (efficientnet_b0) and a residual add: the
    cheap tails run on each block of planes (no kernel of their own), results as the reference."""
    rng = np.random.default_rng(7)
    c = 24
    xv = rng.uniform(-1, 1, (1, c, 28, 28)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    y = gc.nn.conv2d(x, gc.constant(rng.uniform(-1, 1, (3, 3, 1, c)).astype(np.float32)), 1, "SAME",
                     data_format="NCHW", groups=c)
    bias = gc.constant(rng.uniform(-1, 1, (c, 1, 1)).astype(np.float32))
    y = {"bias-relu6": lambda: gc.nn.relu6(y + bias), "silu": lambda: y * gc.sigmoid(y),
         "residual": lambda: y + x}[epilogue]()
    listing = kernel_listing([y], {x: xv})
    assert " depthwise-conv " in listing
    if epilogue != "silu":
        assert "then on each block" in listing
    config = gc.ConfigProto(intra_op_parallelism_threads=threads)
    got = gc.Session(backend="llvm", config=config).run(y, {x: xv})
    assert_close(got, gc.Session(backend="numpy").run(y, {x: xv}), dtype="float32")


def test_a_variable_filter_and_its_gradients():
    """Training: the filter is a variable, read as it lies; both gradients (their own kernels)
    match the reference."""
    rng = np.random.default_rng(11)
    c = 8
    xv = rng.uniform(-1, 1, (2, c, 17, 17)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    f = gc.Variable(rng.uniform(-1, 1, (3, 3, 1, c)).astype(np.float32))
    out = gc.nn.conv2d(x, f, 2, "SAME", data_format="NCHW", groups=c)
    weights = gc.constant(rng.uniform(-1, 1, tuple(out.shape)).astype(np.float32))
    fetches = [out, *gc.gradients(gc.reduce_sum(out * weights), [x, f])]
    results = []
    for backend in ("llvm", "numpy"):
        with gc.Session(backend=backend) as sess:
            sess.run(gc.global_variables_initializer())
            results.append(sess.run(fetches, {x: xv}))
    for got, want in zip(*results):
        assert_close(np.asarray(got), np.asarray(want), dtype="float32")


def test_split_over_the_pool_it_gives_the_serial_bits():
    """Blocks of whole planes: the same sums whichever thread runs a block."""
    rng = np.random.default_rng(5)
    c = 64
    xv = rng.uniform(-1, 1, (1, c, 30, 30)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    out = gc.nn.relu6(gc.nn.conv2d(x, gc.constant(rng.uniform(-1, 1, (5, 5, 1, c)).astype(np.float32)), 1, "SAME",
                                   data_format="NCHW", groups=c))
    serial = gc.Session(backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=1)).run(out, {x: xv})
    split = gc.Session(backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=2)).run(out, {x: xv})
    np.testing.assert_array_equal(split, serial)


@pytest.mark.parametrize("channels, pixels", [(32, 12544), (96, 3136), (960, 49), (1, 5), (7, 100000)])
def test_blocks_are_whole_planes_small_and_enough(channels, pixels):
    rows = depthwise_blocks(channels, pixels)
    assert 1 <= rows <= channels
    assert rows == 1 or rows * pixels <= conv_depthwise.BLOCK_ELEMENTS
    assert -(-channels // rows) >= min(conv_depthwise.MIN_BLOCKS, channels)


def test_it_is_left_to_the_loop_kernels_where_it_does_not_apply(monkeypatch):
    """NHWC, a channel multiplier of 2, a column stride of 3 and GRAPHC_DIRECT_CONV=0 keep the
    loop kernels; results agree either way."""
    rng = np.random.default_rng(3)
    c = 4
    xv = rng.uniform(-1, 1, (1, c, 12, 12)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    fv = rng.uniform(-1, 1, (3, 3, 1, c)).astype(np.float32)
    native = gc.nn.conv2d(x, gc.constant(fv), 1, "SAME", data_format="NCHW", groups=c)
    nhwc_x = gc.placeholder(gc.float32, (1, 12, 12, c))
    others = [
        (gc.nn.conv2d(nhwc_x, gc.constant(fv), 1, "SAME", groups=c), {nhwc_x: xv.transpose(0, 2, 3, 1)}),
        (gc.nn.conv2d(x, gc.constant(rng.uniform(-1, 1, (3, 3, 1, 2 * c)).astype(np.float32)), 1, "SAME",
                      data_format="NCHW", groups=c), {x: xv}),
        (gc.nn.conv2d(x, gc.constant(fv), 3, "SAME", data_format="NCHW", groups=c), {x: xv}),
    ]
    assert " depthwise-conv " in kernel_listing([native], {x: xv})
    for fetch, feed in others:
        assert " depthwise-conv " not in kernel_listing([fetch], feed)
        assert_close(gc.Session(backend="llvm").run(fetch, feed), gc.Session(backend="numpy").run(fetch, feed),
                     dtype="float32")
    kernel = gc.Session(backend="llvm").run(native, {x: xv})
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    assert " depthwise-conv " not in kernel_listing([native], {x: xv})
    assert_close(gc.Session(backend="llvm").run(native, {x: xv}), kernel, dtype="float32")


def test_an_aot_library_carries_its_own(tmp_path):
    """The library defines the depthwise block functions it calls (one per tap geometry)."""
    rng = np.random.default_rng(2)
    c = 6
    x = gc.placeholder(gc.float32, (1, c, 15, 15), name="images")
    y = gc.nn.relu6(gc.nn.conv2d(x, gc.constant(rng.uniform(-1, 1, (3, 3, 1, c)).astype(np.float32)), 2, "SAME",
                                 data_format="NCHW", groups=c))
    y = gc.nn.conv2d(y, gc.constant(rng.uniform(-1, 1, (5, 5, 1, c)).astype(np.float32)), 1, "SAME",
                     data_format="NCHW", groups=c)
    lib = gc.aot.compile(y, [x], tmp_path / "lib", "depthwise")
    xv = rng.uniform(-1, 1, (1, c, 15, 15)).astype(np.float32)
    got = lib.load()(xv)[0]
    assert_close(got, gc.Session(backend="numpy").run(y, {x: xv}), dtype="float32")

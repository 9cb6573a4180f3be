"""NCHW max pools through the depthwise kernel (graphc.lower.conv_depthwise.maxpool_planes,
graphc.codegen.llvm_depthwise with a maximum for the multiply-add): compared bit for bit with the
NumPy reference backend over the geometries that exercise the kernel's forms (plain vectors
inside the plane, lane masks at its borders, stride-2 shuffles, two output rows a vector, the
flattened form, dilations, padding as wide as a window allows), with NaN and infinities in the input,
on one and two threads, with a fused tail, under gradients, and in an AOT library; where it does
not apply, the loop kernels keep the pool."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.lower.conv_depthwise as conv_depthwise
from tests.helpers import kernel_listing, window_case_id

# (channels, (h, w), window, strides, padding, dilations)
GEOMETRIES = [
    (3, (112, 112), 3, (2, 2), [(1, 1), (1, 1)], (1, 1)),   # resnet18's: plain vectors and masked borders
    (4, (9, 9), 3, (1, 1), "SAME", (1, 1)),                  # flattened (stride 1, the output as wide)
    (2, (70, 67), 3, (1, 1), "SAME", (1, 1)),                # by rows: stride 1 over wide rows
    (5, (14, 14), 3, (2, 2), "SAME", (1, 1)),                # two output rows a vector
    (3, (13, 12), 2, (2, 2), "VALID", (1, 1)),               # the 2 x 2 / 2 pool, odd rows dropped
    (2, (37, 45), 5, (2, 2), "SAME", (1, 1)),                # 25 taps
    (3, (11, 10), 3, (2, 1), [(1, 0), (2, 1)], (1, 1)),      # uneven strides and padding
    (2, (20, 19), 3, (1, 1), "SAME", (2, 2)),                # dilated
    (2, (10, 10), 3, (2, 2), [(2, 2), (2, 2)], (2, 2)),      # stride 2 and dilated: a load per tap column
    (2, (6, 6), 3, (1, 1), [(2, 2), (2, 2)], (1, 1)),        # padding as wide as allowed: corner windows of one tap
    (3, (8, 8), 2, (2, 2), "SAME", (1, 1)),                  # 4 columns, no padding needed
]


def _pool(x, case):
    _, _, window, strides, padding, dilations = case
    return gc.nn.max_pool2d(x, window, list(strides), padding, data_format="NCHW", dilations=list(dilations))


def _input(case, dtype, seed=0):
    c, (h, w), *_ = case
    rng = np.random.default_rng(seed + sum(map(ord, window_case_id(case))))
    xv = rng.uniform(-1, 1, (2, c, h, w)).astype(dtype)
    xv[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]   # NaN wins its windows, as in the reference
    xv[1, -1, h // 2, w // 2] = np.nan
    return xv


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", GEOMETRIES, ids=window_case_id)
def test_it_matches_the_reference_bit_for_bit(case, dtype):
    xv = _input(case, dtype)
    x = gc.placeholder(dtype, xv.shape)
    y = _pool(x, case)
    assert " max-pool " in kernel_listing([y], {x: xv})
    got = gc.Session(backend="llvm").run(y, {x: xv})
    want = gc.Session(backend="numpy").run(y, {x: xv})
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_split_over_the_pool_it_gives_the_serial_bits():
    case = (64, (56, 56), 3, (2, 2), "SAME", (1, 1))
    xv = _input(case, "float32", seed=3)
    x = gc.placeholder(gc.float32, xv.shape)
    y = _pool(x, case)
    runs = [gc.Session(backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=t)).run(y, {x: xv})
            for t in (1, 2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], gc.Session(backend="numpy").run(y, {x: xv}))


def test_a_tail_runs_on_its_blocks_and_gradients_match():
    """A ReLU after the pool runs on each block of planes; the gradient (its own kernels) still
    matches the reference."""
    rng = np.random.default_rng(9)
    xv = rng.uniform(-1, 1, (2, 8, 17, 17)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    y = gc.nn.relu(gc.nn.max_pool2d(x, 3, 2, "SAME", data_format="NCHW") - 0.25)
    listing = kernel_listing([y], {x: xv})
    assert " max-pool " in listing and "then on each block" in listing
    weights = gc.constant(rng.uniform(-1, 1, tuple(y.shape)).astype(np.float32))
    fetches = [y, gc.gradients(gc.reduce_sum(y * weights), [x])[0]]
    for got, want in zip(gc.Session(backend="llvm").run(fetches, {x: xv}),
                         gc.Session(backend="numpy").run(fetches, {x: xv})):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)


def test_it_is_left_to_the_loop_kernels_where_it_does_not_apply(monkeypatch):
    """NHWC, a column stride of 3, average pools, MAX_POOLS off and GRAPHC_DIRECT_CONV=0 keep
    the loop kernels; results agree either way."""
    rng = np.random.default_rng(4)
    xv = rng.uniform(-1, 1, (1, 4, 12, 12)).astype(np.float32)
    x = gc.placeholder(gc.float32, xv.shape)
    nhwc_x = gc.placeholder(gc.float32, (1, 12, 12, 4))
    native = gc.nn.max_pool2d(x, 3, 2, "SAME", data_format="NCHW")
    others = [
        (gc.nn.max_pool2d(nhwc_x, 3, 2, "SAME"), {nhwc_x: xv.transpose(0, 2, 3, 1)}),
        (gc.nn.max_pool2d(x, 3, 3, "SAME", data_format="NCHW"), {x: xv}),
        (gc.nn.avg_pool2d(x, 3, 2, "SAME", data_format="NCHW"), {x: xv}),
    ]
    assert " max-pool " in kernel_listing([native], {x: xv})
    for fetch, feed in others:
        assert " max-pool " not in kernel_listing([fetch], feed)
        np.testing.assert_allclose(gc.Session(backend="llvm").run(fetch, feed),
                                   gc.Session(backend="numpy").run(fetch, feed), rtol=1e-6)
    kernel = gc.Session(backend="llvm").run(native, {x: xv})
    monkeypatch.setattr(conv_depthwise, "MAX_POOLS", False)
    assert " max-pool " not in kernel_listing([native], {x: xv})
    np.testing.assert_array_equal(gc.Session(backend="llvm").run(native, {x: xv}), kernel)
    monkeypatch.setattr(conv_depthwise, "MAX_POOLS", True)
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    assert " max-pool " not in kernel_listing([native], {x: xv})


def test_an_aot_library_carries_its_own(tmp_path):
    """The library defines the pool's block function next to a depthwise convolution's."""
    rng = np.random.default_rng(2)
    c = 6
    x = gc.placeholder(gc.float32, (1, c, 15, 15), name="images")
    y = gc.nn.max_pool2d(x, 3, 2, "SAME", data_format="NCHW")
    y = gc.nn.conv2d(y, gc.constant(rng.uniform(-1, 1, (3, 3, 1, c)).astype(np.float32)), 1, "SAME",
                     data_format="NCHW", groups=c)
    lib = gc.aot.compile(y, [x], tmp_path / "lib", "maxpool")
    xv = rng.uniform(-1, 1, (1, c, 15, 15)).astype(np.float32)
    np.testing.assert_allclose(lib.load()(xv)[0], gc.Session(backend="numpy").run(y, {x: xv}), rtol=1e-5, atol=1e-6)

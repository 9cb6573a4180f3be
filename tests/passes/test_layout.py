"""The channels-last layout pass (graphc.passes.layout): which NCHW regions change layout, and
that the compiled programs agree with the NumPy reference, which runs no passes."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm import LLVMTarget
from graphc.passes import CHANNELS_LAST_PIPELINE, DEFAULT_PIPELINE, run_pipeline
from graphc.program.from_graph import build_program

from tests.helpers import assert_close

RNG = np.random.default_rng(7)


def _filter(kh: int, ci: int, co: int) -> gc.Tensor:
    return gc.constant((RNG.standard_normal((kh, kh, ci, co)) * 0.2).astype(np.float32))


def _conv(x: gc.Tensor, kh: int, co: int, stride: int = 1, groups: int = 1) -> gc.Tensor:
    ci = x.shape[1]
    f = _filter(kh, ci // groups, co)
    y = gc.nn.conv2d(x, f, [1, 1, stride, stride], "SAME", data_format="NCHW", groups=groups)
    bias = gc.constant(RNG.standard_normal(co).astype(np.float32))
    return gc.nn.relu(gc.nn.bias_add(y, bias, data_format="NCHW"))


def _passed(fetches: list, feeds: list) -> gc.program.Program:
    """The program after the channels-last pipeline up to and including the layout pass."""
    program = build_program(gc.get_default_graph(), fetches, [(x, x.dtype, tuple(x.shape)) for x in feeds])
    return run_pipeline(program, CHANNELS_LAST_PIPELINE[:CHANNELS_LAST_PIPELINE.index("layout") + 1])


def _formats(program) -> list[str]:
    return [n.attrs["data_format"] for n in program.nodes() if n.type in ("Conv2D", "MaxPool", "AvgPool")]


def _agree(fetches: list, feed: dict) -> list[str]:
    """The LLVM backend (with the pass) gives the reference backend's values; returns what the
    layout pass logged for the compiled program."""
    with gc.Session(backend="numpy") as ref, gc.Session(backend="llvm") as llvm:
        for want, got in zip(ref.run(fetches, feed), llvm.run(fetches, feed)):
            assert_close(got, want, rtol=1e-4, atol=1e-4)
        return [line for line in llvm.compile(fetches, feed).program.log if line.startswith("layout:")]


def _residual_net(x: gc.Tensor) -> tuple[gc.Tensor, gc.Tensor]:
    """A resnet-like NCHW block: stem, max pool, two 3x3 convolutions and a residual add, a
    global average pool; also returns the block's output."""
    stem = _conv(x, 3, 8, stride=2)
    pooled = gc.nn.max_pool2d(stem, [1, 1, 3, 3], [1, 1, 2, 2], "SAME", data_format="NCHW")
    block = gc.nn.relu(_conv(_conv(pooled, 3, 8), 3, 8) + pooled)
    return gc.reduce_mean(block, axis=[2, 3], keepdims=True), block


def test_a_residual_network_runs_channels_last_and_agrees_with_the_reference():
    x = gc.placeholder(gc.float32, [2, 3, 16, 16], name="x")
    head, block = _residual_net(x)
    program = _passed([head], [x])
    assert any(line.startswith("layout:") and "to NHWC" in line for line in program.log)
    assert _formats(program) == ["NHWC"] * 4
    # the input enters once and the pooled head (1 x 1 planes) leaves once: two transposes
    assert sum(n.type == "Transpose" for n in program.nodes()) == 2
    value = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
    assert _agree([head, block], {x: value}) == ["layout: 13 ops to NHWC"]


def test_a_fetched_tensor_of_the_region_comes_back_as_nchw():
    x = gc.placeholder(gc.float32, [1, 4, 12, 12], name="x")
    a = _conv(x, 3, 6)
    b = _conv(_conv(a, 3, 6), 3, 6)
    shapes = [tuple(t.shape) for t in (a, b)]
    value = RNG.standard_normal((1, 4, 12, 12)).astype(np.float32)
    with gc.Session(backend="llvm") as sess:
        got = sess.run([a, b], {x: value})
    assert [g.shape for g in got] == shapes
    assert _agree([a, b], {x: value}) == ["layout: 9 ops to NHWC"]


def test_one_convolution_keeps_nchw():
    """Two transposes (in and out) would cost more than one convolution saves."""
    x = gc.placeholder(gc.float32, [1, 4, 12, 12], name="x")
    y = _conv(x, 3, 6)
    program = _passed([y], [x])
    assert _formats(program) == ["NCHW"]
    assert "layout: nothing" in program.log


def test_convolutions_separated_by_depthwise_ones_keep_nchw():
    """mobilenet's pattern: each region between grouped convolutions has one spatial convolution
    and planes crossing both of its edges."""
    x = gc.placeholder(gc.float32, [1, 8, 12, 12], name="x")
    y = _conv(_conv(_conv(x, 3, 8), 3, 8, groups=8), 3, 8)
    program = _passed([y], [x])
    assert _formats(program) == ["NCHW"] * 3
    _agree([y], {x: RNG.standard_normal((1, 8, 12, 12)).astype(np.float32)})


def test_operands_from_outside_concat_and_reductions_are_relaid():
    """A variable-like bias of rank 3 (fed), a concatenation along channels, a max over one
    negative axis, an average pool, and a depthwise convolution reading the region's tensor."""
    x = gc.placeholder(gc.float32, [2, 4, 10, 10], name="x")
    scale = gc.placeholder(gc.float32, [6, 1, 1], name="scale")
    a = _conv(x, 3, 6) * scale
    b = _conv(_conv(x, 3, 6), 3, 6)
    joined = gc.concat([a, b], axis=1)
    pooled = gc.nn.avg_pool2d(joined, [1, 1, 2, 2], [1, 1, 2, 2], "VALID", data_format="NCHW")
    widest = gc.reduce_max(pooled, axis=-1, keepdims=True)
    depthwise = _conv(joined, 3, 12, groups=12)
    feed = {x: RNG.standard_normal((2, 4, 10, 10)).astype(np.float32),
            scale: RNG.standard_normal((6, 1, 1)).astype(np.float32)}
    program = _passed([widest, depthwise], [x, scale])
    formats = _formats(program)
    # three convolutions pay for the input entering and two planes leaving; the depthwise one keeps NCHW
    assert formats.count("NHWC") == 4 and formats.count("NCHW") == 1
    assert _agree([widest, depthwise], feed) != ["layout: nothing"]


def test_the_llvm_target_runs_the_pass_only_with_the_direct_kernel(monkeypatch):
    assert LLVMTarget().default_pipeline == CHANNELS_LAST_PIPELINE
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    assert LLVMTarget().default_pipeline == DEFAULT_PIPELINE
    x = gc.placeholder(gc.float32, [1, 3, 9, 9], name="x")
    head, _ = _residual_net(x)
    assert _agree([head], {x: RNG.standard_normal((1, 3, 9, 9)).astype(np.float32)}) == []


@pytest.mark.parametrize("dtype", [gc.float32, gc.float64])
def test_a_gradient_program_keeps_nchw(dtype):
    """The pass runs after differentiation: the backward ops (NCHW) read the forward
    convolutions' inputs and outputs, so every plane would leave the region."""
    x = gc.placeholder(dtype, [1, 3, 8, 8], name="x")
    f1 = gc.constant((RNG.standard_normal((3, 3, 3, 4)) * 0.3).astype(dtype.np))
    f2 = gc.constant((RNG.standard_normal((3, 3, 4, 4)) * 0.3).astype(dtype.np))
    y = gc.nn.conv2d(gc.tanh(gc.nn.conv2d(x, f1, 1, "SAME", data_format="NCHW")), f2, 1, "SAME", data_format="NCHW")
    loss = gc.reduce_sum(y * y)
    (grad,) = gc.gradients(loss, [x])
    assert _agree([loss, grad], {x: RNG.standard_normal((1, 3, 8, 8)).astype(dtype.np)}) == ["layout: nothing"]


@pytest.mark.parametrize("transpose_b", [False, True])
def test_planes_flattened_into_a_classifier_stay_channels_last(transpose_b):
    """vgg's and alexnet's head: the last pool's planes flattened (NCHW order) into a product
    with constant weights. The flatten reads the NHWC planes as they lie and the weights' rows
    are reordered at compile time, instead of transposing the planes back."""
    x = gc.placeholder(gc.float32, [2, 3, 12, 12], name="x")
    pooled = gc.nn.max_pool2d(_conv(_conv(x, 3, 5), 3, 5), [1, 1, 2, 2], [1, 1, 2, 2], "VALID", data_format="NCHW")
    flat = gc.reshape(pooled, [2, 5 * 6 * 6])
    weights = (RNG.standard_normal((10, 180) if transpose_b else (180, 10)) * 0.1).astype(np.float32)
    logits = gc.matmul(flat, gc.constant(weights), transpose_b=transpose_b)
    program = _passed([logits], [x])
    assert "layout: 7 ops to NHWC, 1 flattened channels last" in program.log
    assert sum(n.type == "Transpose" for n in program.nodes()) == 1   # the input's only
    assert _agree([logits], {x: RNG.standard_normal((2, 3, 12, 12)).astype(np.float32)}) == [
        "layout: 7 ops to NHWC, 1 flattened channels last"]


def test_a_pad_inside_a_region_is_padded_channels_last():
    """inception's average pools come from onnx as an explicit pad and a VALID pool."""
    x = gc.placeholder(gc.float32, [1, 4, 9, 9], name="x")
    padded = gc.pad(_conv(x, 3, 6), [[0, 0], [0, 0], [1, 2], [2, 1]])
    pooled = gc.nn.avg_pool2d(padded, [1, 1, 3, 3], [1, 1, 1, 1], "VALID", data_format="NCHW")
    y = _conv(_conv(pooled, 3, 6), 3, 6)
    program = _passed([y], [x])
    pads = [n.attrs["paddings"] for n in program.nodes() if n.type == "Pad"]
    assert pads == [((0, 0), (1, 2), (2, 1), (0, 0))]
    assert _agree([y], {x: RNG.standard_normal((1, 4, 9, 9)).astype(np.float32)}) != ["layout: nothing"]

"""Depthwise convolutions over planar (NCHW) images as a kernel of graphc's own, one pass from
the unpadded input (graphc.codegen.llvm_depthwise renders it; GemmCall.depthwise marks it).

Why: as loop kernels (graphc.lower.conv_unrolled) these convolutions made a padded copy of
their input, and over planes narrower than a vector's worth of columns computed rows over the
padded width and compacted them in a third pass; with strides their epilogue (bias, ReLU6)
kept a pass of its own. Each pass costs about what the convolution does (9 or 25
multiply-adds per element), and in mobilenet_v2 the depthwise layers took 2.3 ms against
onnxruntime's 1.4 at one thread (profiled). As a GemmCall (rows: channels, columns: a plane's
pixels, reduction: the taps) the product gets the GEMM's machinery: blocks of whole planes
split over the pool, and the fusion group's tail run on each block while it is in cache
(graphc.lower.gemm_epilogue). In-process A/B of the first form (by rows only; benchmarks/ab.py
ENABLED False against True, both ways): mobilenet_v2 0.935-0.975 at one thread, 0.953-0.957 at
two; efficientnet_b0 within noise (its loop kernels chained the swish with the planes). With
the stride-2 paired loads and the flattened form (graphc.codegen.llvm_depthwise), the profiled
depthwise layers of mobilenet_v2 at one thread are within 1.0-1.1x of onnxruntime's, except the
stride-2 ones into 28 x 28 and 7 x 7 (1.2-2x).

Where: LLVM targets (Lowering.direct_conv; GRAPHC_DIRECT_CONV=0 turns it off), NCHW, one
input channel per group and as many groups as channels (a channel multiplier of one), column
strides of 1 or 2, float32 and float64. Everything else keeps the loop kernels. NCHW max pools
of the same strides take the same kernel with a maximum for the multiply-add (maxpool_planes).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.dtypes import bool_, float32, float64
from ..ir.node import Node
from .conv_gemm import ConvShape, conv_shape, image_layout
from .kernel import DepthwiseWindows, GemmCall
from .library_table import stored

ENABLED = True           # False: the loop kernels (graphc.lower.conv_unrolled), to measure the difference
MAX_POOLS = True         # False: max pools as loop kernels (graphc.lower.library_nn), to measure the difference
# stride 1, the output as wide as the input, and a table of lane masks of at most this many
# bytes (taps x pixels: 3 x 3 taps over 56 x 56, not over 112 x 112): the flattened form
FLAT_TABLE_BYTES = 32 << 10
BLOCK_ELEMENTS = 16384   # elements of C per block at most (64 KB of float32): the epilogue hits L1/L2
MIN_BLOCKS = 8           # blocks per image at least where there are channels enough: every thread gets work


def conv2d_depthwise(lw: Any, node: Node) -> bool:
    """Lower an NCHW depthwise convolution as the depthwise kernel; False (nothing emitted)
    where it does not apply."""
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    if f.shape[2] != 1 or node.attrs.get("groups", 1) != s.ci or s.co != s.ci:
        return False
    return _planes(lw, node, s, f, "sum")


def maxpool_planes(lw: Any, node: Node, s: ConvShape) -> bool:
    """Lower an NCHW max pool (s: its window as a convolution's shape, one channel per group) as
    the depthwise kernel with a maximum for the multiply-add; False (nothing emitted) where it
    does not apply.

    Why: as a loop kernel, a 3 x 3 stride-2 max pool read each tap through a bounds test and a
    select, and its stride-2 columns vectorized as gathers. Here vectors at the plane's border
    load through lane masks (-inf outside) and stride 2 takes the even and odd lanes of two
    loads, as in the convolutions. resnet18's pool alone ([64] 112 x 112 -> 56 x 56, profiled):
    252 -> 209 us at one thread, 137 -> 107 at two. In the model it is bound by its input
    coming from L3 (in-process A/B, MAX_POOLS False against True, both ways: resnet18 within
    noise, 0.998-1.004; squeezenet1_1 0.977 and 1/1.006 at two threads)."""
    return MAX_POOLS and _planes(lw, node, s, None, "max")


def _planes(lw: Any, node: Node, s: ConvShape, taps: Any, combiner: str) -> bool:
    """Emit the GemmCall where the kernel applies (else nothing, and False): rows are channels,
    columns a plane's pixels, the reduction its taps (A holds them; a max pool has none, and
    passes B for A). Its conditions, for convolutions and pools alike: LLVM targets, NCHW, a
    column stride of 1 or 2, no empty axis, float32 or float64 throughout."""
    out = node.outputs[0]
    if not (ENABLED and lw.direct_conv) or s.fmt != "NCHW" or s.sw not in (1, 2) \
            or min(s.n, s.oh, s.ow, s.co) == 0 or out.dtype not in (float32, float64) \
            or any(t.dtype != out.dtype for t in node.inputs):
        return False
    plane = s.h * s.w
    masks, stride = flat_masks(lw, node, s) if flattened(s) else (None, 0)
    window = DepthwiseWindows(s.h, s.w, s.oh, s.ow, (s.kh, s.kw), (s.sh, s.sw), (s.dh, s.dw), (s.pt, s.pl),
                              masks, stride, combiner)
    b = stored(lw, node, node.inputs[0])
    a = b if taps is None else stored(lw, node, taps)
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, b, lw.buffer_of[out], s.co, s.oh * s.ow, s.kh * s.kw,
                               False, False, (s.n,), (0,), (s.ci * plane,), node, layout=image_layout(s.fmt),
                               depthwise=window))
    return True


def flattened(s: Any) -> bool:
    """Whether the convolution takes the flattened form."""
    return (s.sh, s.sw) == (1, 1) and s.ow == s.w and s.kh * s.kw * s.oh * s.ow <= FLAT_TABLE_BYTES


def flat_masks(lw: Any, node: Node, s: Any) -> tuple[Any, int]:
    """The flattened form's table (a constant): row (i * kw + j), column q (an output pixel,
    y * ow + x), whether tap (i, j) of that pixel reads inside the plane, 0 past the last
    pixel; columns padded to a multiple of 64 (whole vectors of any width)."""
    pixels = s.oh * s.ow
    stride = -(-pixels // 64) * 64
    y, x = np.divmod(np.arange(stride), s.ow)
    table = np.zeros((s.kh * s.kw, stride), np.bool_)
    for i in range(s.kh):
        for j in range(s.kw):
            row, col = y + i * s.dh - s.pt, x + j * s.dw - s.pl
            table[i * s.kw + j] = (np.arange(stride) < pixels) & (row >= 0) & (row < s.h) & (col >= 0) & (col < s.w)
    return lw.new_buffer(f"{node.name}/flat_masks", bool_, table.shape, kind="const", value=table), stride


def depthwise_blocks(channels: int, pixels: int) -> int:
    """Channels per block (a block is whole planes): at most BLOCK_ELEMENTS of output where a
    plane is smaller, and at least MIN_BLOCKS blocks where there are channels enough."""
    return max(1, min(-(-channels // MIN_BLOCKS), BLOCK_ELEMENTS // max(pixels, 1)))

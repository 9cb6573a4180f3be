"""Depthwise convolutions over planar (NCHW) images as a kernel of graphc's own, one pass from
the unpadded input (graphc.codegen.llvm_depthwise renders it; GemmCall.depthwise marks it).

Why: as loop kernels (graphc.lower.conv_unrolled) these convolutions made a padded copy of
their input, and over planes narrower than a vector's worth of columns computed rows over the
padded width and compacted them in a third pass; with strides their epilogue (bias, ReLU6)
kept a pass of its own. Each pass costs about what the convolution does (9 or 25
multiply-adds per element), and in mobilenet_v2 the depthwise layers took 2.3 ms against
onnxruntime's 1.4 at one thread. As a GemmCall (rows: channels, columns: a plane's pixels,
reduction: the taps) the product gets the GEMM's machinery: blocks of whole planes split over
the pool, and the fusion group's tail run on each block while it is in cache
(graphc.lower.gemm_epilogue).

Where: LLVM targets (Lowering.direct_conv; GRAPHC_DIRECT_CONV=0 turns it off), NCHW, one
input channel per group and as many groups as channels (a channel multiplier of one), column
strides of 1 or 2, float32 and float64. Everything else keeps the loop kernels.
"""
from __future__ import annotations

from typing import Any

from ..ir.dtypes import float32, float64
from ..ir.node import Node
from .conv_gemm import conv_shape, image_layout
from .kernel import DepthwiseWindows, GemmCall
from .library_table import stored

ENABLED = True           # False: the loop kernels (graphc.lower.conv_unrolled), to measure the difference
BLOCK_ELEMENTS = 16384   # elements of C per block at most (64 KB of float32): the epilogue hits L1/L2
MIN_BLOCKS = 8           # blocks per image at least where there are channels enough: every thread gets work


def conv2d_depthwise(lw: Any, node: Node) -> bool:
    """Lower an NCHW depthwise convolution as the depthwise kernel; False (nothing emitted)
    where it does not apply."""
    if not (ENABLED and lw.direct_conv):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    dtypes = {t.dtype for t in (x, f, out)}
    if len(dtypes) != 1 or dtypes.pop() not in (float32, float64):
        return False
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    if s.fmt != "NCHW" or f.shape[2] != 1 or node.attrs.get("groups", 1) != s.ci or s.co != s.ci \
            or s.sw not in (1, 2) or min(s.n, s.oh, s.ow, s.co) == 0:
        return False
    plane = s.h * s.w
    window = DepthwiseWindows(s.h, s.w, s.oh, s.ow, (s.kh, s.kw), (s.sh, s.sw), (s.dh, s.dw), (s.pt, s.pl))
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", stored(lw, node, f), stored(lw, node, x),
                               lw.buffer_of[out], s.co, s.oh * s.ow, s.kh * s.kw, False, False, (s.n,), (0,),
                               (s.ci * plane,), node, layout=image_layout(s.fmt), depthwise=window))
    return True


def depthwise_blocks(channels: int, pixels: int) -> int:
    """Channels per block (a block is whole planes): at most BLOCK_ELEMENTS of output where a
    plane is smaller, and at least MIN_BLOCKS blocks where there are channels enough."""
    return max(1, min(-(-channels // MIN_BLOCKS), BLOCK_ELEMENTS // max(pixels, 1)))

"""1x1 convolutions over planar (NCHW) images as a kernel of graphc's own: the product
out[co, p] = F[co, ci] @ x[ci, p] of each image, with F packed at compile time and x read
where it lies (graphc.codegen.llvm_pointwise renders it; GemmCall.pointwise marks it).

Why: in mobilenet_v2 and efficientnet_b0 these convolutions are three quarters of the time, with
16-960 input channels against 49-12,544 pixels. OpenBLAS packs x on every call and runs its
AVX2 kernel here (OPENBLAS_CORETYPE=Haswell), and its blocks of C were large enough that the
epilogue (bias, clip, swish) read them back from L2; onnxruntime ran these layers 1.3-1.9x
faster in the model. The kernel reads x in place, and its blocks are small (BLOCK_ELEMENTS of
C), so the epilogue runs on C while it is in L1.

Where: LLVM targets (Lowering.direct_conv; GRAPHC_DIRECT_CONV=0 turns it off with the direct
convolution), NCHW, a 1x1 unpadded stride-1 convolution, a constant filter (an imported model's weights), at least MIN_PIXELS pixels per image (below
that a tile's partial columns waste too much of the vectors: OpenBLAS ran 7 x 7 planes in
0.65-0.9 of the time). Everything else keeps the GEMM form (graphc.lower.conv_gemm).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.node import Node
from . import conv_gemm
from .conv_gemm import conv_shape, image_layout
from .kernel import GemmCall
from .library_table import stored

PANEL_ROWS = 12          # output channels per panel of the packed filter (a multiple of every MR)
MIN_PIXELS = 196         # pixels per image below which OpenBLAS does better (14 x 14 and up here)
BLOCK_ELEMENTS = 16384   # elements of C per block at most (64 KB of float32), so the epilogue hits L1/L2


def packed_rows(weights: np.ndarray) -> np.ndarray:
    """F[co, ci] as [ceil(co / PANEL_ROWS)][ci][PANEL_ROWS], zero past co: a panel's weights for
    one reduction step are adjacent, and a panel is one contiguous stream."""
    co, ci = weights.shape
    panels = -(-co // PANEL_ROWS)
    out = np.zeros((panels * PANEL_ROWS, ci), weights.dtype)
    out[:co] = weights
    return np.ascontiguousarray(out.reshape(panels, PANEL_ROWS, ci).transpose(0, 2, 1))


def conv2d_pointwise(lw: Any, node: Node) -> bool:
    """Lower an NCHW 1x1 convolution with a constant filter as the pointwise kernel; False
    (nothing emitted) where it does not apply."""
    if not lw.direct_conv or not conv_gemm.eligible(lw, node):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    fb = lw.buffer_of.get(f)   # a constant has its buffer from the start
    if s.fmt != "NCHW" or not s.pointwise or s.oh * s.ow < MIN_PIXELS or fb is None or fb.kind != "const" \
            or fb.value is None:
        return False
    weights = packed_rows(np.asarray(fb.value).reshape(s.ci, s.co).T)
    a = lw.new_buffer(f"{node.name}/filter_rows", fb.dtype, weights.shape, kind="const", value=weights)
    ohw = s.oh * s.ow
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, stored(lw, node, x), lw.buffer_of[out], s.co, ohw,
                               s.ci, False, False, (s.n,), (0,), (s.ci * ohw,), node,
                               layout=image_layout(s.fmt), pointwise=True))
    return True


def pointwise_blocks(m: int, n: int) -> tuple[int, int]:
    """(rows, columns) of C per block: at most BLOCK_ELEMENTS, rows whole panels; columns in
    whole tiles of 64 (the widest tile) where a row is longer than that."""
    cols = n if n <= 64 else max(64, min(n, (BLOCK_ELEMENTS // max(m, 1)) // 64 * 64))
    rows = min(m, max(PANEL_ROWS, (BLOCK_ELEMENTS // cols) // PANEL_ROWS * PANEL_ROWS))
    return rows, cols

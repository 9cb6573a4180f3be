"""NCHW convolutions with a constant filter as direct kernels: the GEMM out[co, p] = F[co, s] @
patches[s, p] with the patch matrix read where it lies in the padded input, never built
(graphc.codegen.llvm_conv_direct renders it; the GemmCall carries ConvWindows).

Why: at batch 1 the patch matrix of resnet18's 3x3 convolutions is written and read once per
call, and OpenBLAS packs it again before multiplying; onnxruntime's direct kernels ran those
convolutions 1.3-1.6x faster than patches + OpenBLAS. Single-threaded, the direct kernel ran
resnet18's convolution shapes in 0.5-0.95 of the time of patches + OpenBLAS.

Operands, made at compile time from the constant filter (an imported model's weights):
- A: the filter packed [ceil(co / CB)][k][CB], CB = PANEL_BYTES / itemsize output channels
  per panel (zero past co), reduction steps s = (input channel, tap row, tap column);
- koff[s]: where step s lies from a window's first element in the padded image
  (channel * hp * wp + i * dh * wp + j * dw), so strides, dilations and padding are one loop;
- B: the padded input (graphc.lower.conv_gemm.padded_input), one image per batch element.
C is the output as the GEMM form's C ([co, oh * ow] per image), so bias, batch norm, residual
add and activation run on its blocks as GEMM epilogues. LLVM targets only (Lowering.direct_conv;
GRAPHC_DIRECT_CONV=0 turns it off); a filter that is a variable (training) keeps the GEMM form.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.dtypes import int64
from ..ir.node import Node
from . import conv_gemm
from .conv_gemm import conv_shape, image_layout, padded_input
from .kernel import ConvWindows, GemmCall
from .library_table import stored

PANEL_BYTES = 64   # output channels per panel of the packed filter: one cache line


def panel_channels(itemsize: int) -> int:
    """CB: output channels per panel (16 float32, 8 float64)."""
    return PANEL_BYTES // itemsize


def packed_filter(hwio: np.ndarray, itemsize: int) -> np.ndarray:
    """An HWIO filter as [ceil(co / CB)][ci * kh * kw][CB], steps ordered (channel, row, column)."""
    kh, kw, ci, co = hwio.shape
    cb = panel_channels(itemsize)
    panels = -(-co // cb)
    steps = np.zeros((ci * kh * kw, panels * cb), hwio.dtype)
    steps[:, :co] = hwio.transpose(2, 0, 1, 3).reshape(ci * kh * kw, co)
    return np.ascontiguousarray(steps.reshape(-1, panels, cb).transpose(1, 0, 2))


def conv2d_direct(lw: Any, node: Node) -> bool:
    """Lower an NCHW convolution with a constant filter as a direct kernel; False (nothing
    emitted) where it does not apply: other targets, NHWC, a variable filter, groups, and 1x1
    stride-1 convolutions (their input is already the patch matrix: a plain GEMM)."""
    if not lw.direct_conv or not conv_gemm.eligible(lw, node):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    fb = stored(lw, node, f)
    if s.fmt != "NCHW" or s.pointwise or fb.kind != "const" or fb.value is None:
        return False
    padded = padded_input(lw, node, x, s)
    _, _, hp, wp = padded.shape
    steps = np.array([c * hp * wp + i * s.dh * wp + j * s.dw
                      for c in range(s.ci) for i in range(s.kh) for j in range(s.kw)], np.int64)
    koff = lw.new_buffer(f"{node.name}/window_steps", int64, steps.shape, kind="const", value=steps)
    weights = packed_filter(np.asarray(fb.value), fb.dtype.itemsize)
    a = lw.new_buffer(f"{node.name}/filter_panels", fb.dtype, weights.shape, kind="const", value=weights)
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, padded, lw.buffer_of[out], s.co, s.oh * s.ow, s.k,
                               False, False, (s.n,), (0,), (s.ci * hp * wp,), node,
                               layout=image_layout(s.fmt), window=ConvWindows(koff, s.ow, s.sh * wp, s.sw)))
    return True

"""NCHW convolutions with a constant filter as direct kernels: the GEMM out[co, p] = F[co, s] @
patches[s, p] with the patch matrix read where it lies in the padded input, never built
(graphc.codegen.llvm_conv_direct renders it; the GemmCall carries ConvWindows).

Why: at batch 1 the patch matrix of resnet18's 3x3 convolutions is written and read once per
call, and OpenBLAS packs it again before multiplying; onnxruntime's direct kernels ran those
convolutions 1.3-1.6x faster than patches + OpenBLAS. Single-threaded, the direct kernel ran
resnet18's convolution shapes in 0.5-0.95 of the time of NumPy-built patches + OpenBLAS; in the
model (2 threads, in-process A/B) 0.80-0.83 of graphc's patches + OpenBLAS, and 0.92 of that
again with the channels-last input.

Operands, made at compile time from the constant filter (an imported model's weights):
- A: the filter packed [ceil(co / CB)][k][CB], CB = PANEL_BYTES / itemsize output channels
  per panel (zero past co), reduction steps s = (tap row, tap column, input channel);
- koff[s]: where step s lies from a window's first element in the padded image
  ((i * dh * wp + j * dw) * ci + channel), so strides, dilations and padding are one loop;
- B: the input padded and channels last, [n, hp, wp, ci] (padded_channels_last), one image
  per batch element.
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
from . import index as iexpr
from .conv_gemm import conv_shape, image_layout, padded_size, read_inside
from .kernel import ConvWindows, GemmCall
from .library_table import kernel_builder

PANEL_BYTES = 64   # output channels per panel of the packed filter: one cache line


def panel_channels(itemsize: int) -> int:
    """CB: output channels per panel (16 float32, 8 float64)."""
    return PANEL_BYTES // itemsize


def packed_filter(hwio: np.ndarray, itemsize: int) -> np.ndarray:
    """An HWIO filter as [ceil(co / CB)][kh * kw * ci][CB], steps ordered (row, column, channel)."""
    kh, kw, ci, co = hwio.shape
    cb = panel_channels(itemsize)
    panels = -(-co // cb)
    steps = np.zeros((kh * kw * ci, panels * cb), hwio.dtype)
    steps[:, :co] = hwio.reshape(kh * kw * ci, co)
    return np.ascontiguousarray(steps.reshape(-1, panels, cb).transpose(1, 0, 2))


def padded_channels_last(lw: Any, node: Node, x: Any, s: Any) -> Any:
    """x, NCHW, copied to [n, hp, wp, ci] with its zero padding written out (one pass, as the
    GEMM form's padded copy): consecutive reduction steps (channels of one tap) are then
    adjacent, so each cache line of the input serves 16 float32 steps, where
    in NCHW each step read a line of its own (the kernel 0.81-0.92 of its time on the NCHW
    padded input, single-threaded, resnet18's shapes)."""
    hp, wp = padded_size(s)
    buf = lw.new_buffer(f"{node.name}/padded_channels_last", x.dtype, (s.n, hp, wp, s.ci))
    kb = kernel_builder(lw, node, buf.shape)
    vn, vh, vw, vc = kb.vars
    kb.store(buf, kb.vars, read_inside(kb, x, s, vn, iexpr.add(vh, -s.pt), iexpr.add(vw, -s.pl), vc))
    kb.finish()
    return buf


def conv2d_direct(lw: Any, node: Node) -> bool:
    """Lower an NCHW convolution with a constant filter as a direct kernel; False (nothing
    emitted) where it does not apply: other targets, NHWC, a variable filter, groups, and 1x1
    stride-1 convolutions (their input is already the patch matrix: a plain GEMM)."""
    if not lw.direct_conv or not conv_gemm.eligible(lw, node):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    fb = lw.buffer_of.get(f)   # a constant has its buffer from the start (not stored(): a view's copy)
    if s.fmt != "NCHW" or s.pointwise or fb is None or fb.kind != "const" or fb.value is None:
        return False
    padded = padded_channels_last(lw, node, x, s)
    _, hp, wp, _ = padded.shape
    steps = np.array([(i * s.dh * wp + j * s.dw) * s.ci + c
                      for i in range(s.kh) for j in range(s.kw) for c in range(s.ci)], np.int64)
    koff = lw.new_buffer(f"{node.name}/window_steps", int64, steps.shape, kind="const", value=steps)
    weights = packed_filter(np.asarray(fb.value), fb.dtype.itemsize)
    a = lw.new_buffer(f"{node.name}/filter_panels", fb.dtype, weights.shape, kind="const", value=weights)
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, padded, lw.buffer_of[out], s.co, s.oh * s.ow, s.k,
                               False, False, (s.n,), (0,), (hp * wp * s.ci,), node,
                               layout=image_layout(s.fmt),
                               window=ConvWindows(koff, s.ow, s.sh * wp * s.ci, s.sw * s.ci)))
    return True

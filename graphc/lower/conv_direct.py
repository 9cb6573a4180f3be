"""Convolutions as direct kernels: the GEMM out[co, p] = F[co, s] @ patches[s, p] with the patch
matrix read where it lies in the padded input, never built (graphc.codegen.llvm_conv_direct
renders it; the GemmCall carries ConvWindows).

Why: at batch 1 the patch matrix of resnet18's 3x3 convolutions is written and read once per
call, and OpenBLAS packs it again before multiplying; onnxruntime's direct kernels ran those
convolutions 1.3-1.6x faster than patches + OpenBLAS. Single-threaded, the direct kernel ran
resnet18's convolution shapes in 0.5-0.95 of the time of NumPy-built patches + OpenBLAS; in the
model (2 threads, in-process A/B) 0.80-0.83 of graphc's patches + OpenBLAS, and 0.92 of that
again with the channels-last input. The NHWC CNN of `graphc bench cnn` (batch 64, a variable
filter) ran its forward pass in 0.73-0.86 of the time of patches + OpenBLAS; its training step
within noise of it (0.95-1.13, the backward passes keep the GEMM form).

Operands:
- A: the filter packed [ceil(co / CB)][k][CB], CB = PANEL_BYTES / itemsize output channels
  per panel (zero past co), reduction steps s = (tap row, tap column, input channel): at
  compile time from a constant filter (an imported model's weights), else by a kernel per call;
- koff[s]: where step s lies from a window's first element in the padded image
  ((i * dh * wp + j * dw) * ci + channel), so strides, dilations and padding are one loop;
- B: the input padded and channels last, [n, hp, wp, ci] (an NHWC input as it is where it
  needs no padding), one image per batch element.
C is the output: NCHW as the GEMM form's C ([co, oh * ow] per image); NHWC with each pixel's
channels adjacent (ConvWindows.channels_last). Bias, batch norm, residual add and activation
run on its blocks as GEMM epilogues. LLVM targets only (Lowering.direct_conv; GRAPHC_DIRECT_CONV=0
turns it off); grouped convolutions keep their forms, and so do NCHW 1x1 stride-1 ones except over
small planes (pointwise_direct). NHWC 1x1 stride-1 ones run direct, reading their input as it
lies (the steps are its channels): as OpenBLAS GEMMs (AVX2 kernels on the AVX-512 VMs, which
set OPENBLAS_CORETYPE=Haswell) resnet50's, channels last, took 38.6 ms of kernel time at two
threads, direct 30.2.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.dtypes import int64
from ..ir.node import Node
from . import conv_gemm
from . import index as iexpr
from .conv_gemm import conv_shape, image_layout, padded_size, read_inside
from .gemm_epilogue import GemmLayout
from .kernel import ConvWindows, GemmCall
from .library_table import kernel_builder, stored

PANEL_BYTES = 128   # output channels per panel of the packed filter: two AVX-512 vectors
# ... four, for a convolution whose output channels fill such panels (resnet's 64 to 512): each
# input value broadcast then feeds four multiply-adds, not two (see wide_panels)
WIDE_PANEL_BYTES = 256
PANEL_WIDTHS = (PANEL_BYTES, WIDE_PANEL_BYTES)
# NCHW 1x1 convolutions over planes of at most this many pixels run as direct kernels (see
# pointwise_direct)
POINTWISE_MAX_PIXELS = 64
POINTWISE_NHWC = True   # NHWC 1x1 stride-1 convolutions as direct kernels too (their input read in place)
# C of an NHWC direct convolution over [n, oh, ow, co]: batch n, rows co, columns oh x ow
CHANNELS_ROWS_NHWC = GemmLayout((0,), (3,), (1, 2), (0,))


def panel_channels(itemsize: int, panel_bytes: int = PANEL_BYTES) -> int:
    """CB: output channels per panel (32 float32, 16 float64; twice that in wide panels)."""
    return panel_bytes // itemsize


def wide_panels(co: int, itemsize: int) -> int:
    """The panel width of a spatial convolution with co output channels: WIDE_PANEL_BYTES where
    they fill its panels, else PANEL_BYTES (a half-empty wide panel would compute zeros).

    Why: with 64-channel panels a tile is 6 pixels x 4 vectors, each input value broadcast
    once for four multiply-adds where 8 x 2 tiles broadcast it for two. In-process A/B
    (`benchmarks/ab.py MODEL graphc.lower.conv_direct.WIDE_PANEL_BYTES 128 256`): resnet18
    0.969 and 1 / 1.034 at two threads, 0.971 at one; resnet50 0.955; mobilenet_v2 0.996 and
    efficientnet_b0 0.995 (noise: their convolutions keep narrow panels). As the only width,
    mobilenet_v2 took 1.061 of its time and efficientnet_b0 1.025: their 32-channel stems and
    pointwise convolutions of 160 channels would fill half a panel."""
    return WIDE_PANEL_BYTES if co % panel_channels(itemsize, WIDE_PANEL_BYTES) == 0 else PANEL_BYTES


def packed_filter(hwio: np.ndarray, itemsize: int, panel_bytes: int = PANEL_BYTES) -> np.ndarray:
    """An HWIO filter as [ceil(co / CB)][kh * kw * ci][CB], steps ordered (row, column, channel)."""
    kh, kw, ci, co = hwio.shape
    cb = panel_channels(itemsize, panel_bytes)
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


def channels_last_input(lw: Any, node: Node, x: Any, s: Any) -> Any:
    """B: the input channels last with its padding written out. An NHWC input already is
    channels last; it is copied only where it has padding to write (or is a view)."""
    hp, wp = padded_size(s)
    if s.fmt == "NHWC" and (s.pt, s.pl, hp, wp) == (0, 0, s.h, s.w):
        return stored(lw, node, x)
    return padded_channels_last(lw, node, x, s)


def filter_panels(lw: Any, node: Node, f: Any, s: Any, panel_bytes: int = PANEL_BYTES) -> Any | None:
    """A: the HWIO filter packed in panels of output channels ([ceil(co / CB)][k][CB]): at
    compile time for a constant, else by a kernel each call (a variable: training). The
    kernel is one pass over the filter, which the product reads oh * ow times per image."""
    fb = lw.buffer_of.get(f)   # a constant has its buffer from the start (not stored(): a view's copy)
    if fb is not None and fb.kind == "const" and fb.value is not None:
        weights = packed_filter(np.asarray(fb.value), fb.dtype.itemsize, panel_bytes)
        return lw.new_buffer(f"{node.name}/filter_panels", fb.dtype, weights.shape, kind="const", value=weights)
    cb = panel_channels(f.dtype.itemsize, panel_bytes)
    panels = -(-s.co // cb)
    buf = lw.new_buffer(f"{node.name}/filter_panels", f.dtype, (panels, s.kh, s.kw, s.ci, cb))
    kb = kernel_builder(lw, node, buf.shape)
    vp, vi, vj, vc, vl = kb.vars
    channel = iexpr.add(iexpr.mul(vp, cb), vl)
    kb.store(buf, kb.vars, kb.read(f, (vi, vj, vc, iexpr.minimum(channel, s.co - 1)), iexpr.less(channel, s.co), 0))
    kb.finish()
    return buf


def conv2d_direct(lw: Any, node: Node) -> bool:
    """Lower a convolution as a direct kernel; False (nothing emitted) where it does not apply:
    other targets, groups, and NCHW 1x1 stride-1 convolutions (their input is already the patch
    matrix: a plain GEMM, or pointwise_direct). NCHW and NHWC, constant and variable filters."""
    if not lw.direct_conv or not conv_gemm.eligible(lw, node):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    if s.pointwise and not (POINTWISE_NHWC and s.fmt == "NHWC"):
        return False
    padded = channels_last_input(lw, node, x, s)
    wp = padded_size(s)[1]
    steps = np.array([(i * s.dh * wp + j * s.dw) * s.ci + c
                      for i in range(s.kh) for j in range(s.kw) for c in range(s.ci)], np.int64)
    koff = lw.new_buffer(f"{node.name}/window_steps", int64, steps.shape, kind="const", value=steps)
    panel_bytes = wide_panels(s.co, f.dtype.itemsize)
    a = filter_panels(lw, node, f, s, panel_bytes)
    nhwc = s.fmt == "NHWC"
    image = int(np.prod(padded.shape[1:]))
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, padded, lw.buffer_of[out], s.co, s.oh * s.ow, s.k,
                               False, False, (s.n,), (0,), (image,), node,
                               layout=CHANNELS_ROWS_NHWC if nhwc else image_layout(s.fmt),
                               window=ConvWindows(koff, s.ow, s.sh * wp * s.ci, s.sw * s.ci, channels_last=nhwc,
                                                  panel_bytes=panel_bytes)))
    return True


def pointwise_direct(lw: Any, node: Node) -> bool:
    """Lower an NCHW 1x1 stride-1 convolution over a small plane (at most POINTWISE_MAX_PIXELS
    pixels: 7 x 7) as a direct kernel reading the input where it lies: pixel p of input channel
    s is x[s * oh * ow + p], so a window starts at p and step s is s * oh * ow further on (no
    copy). False (nothing emitted) where it does not apply.

    Why: the pointwise kernel (graphc.lower.conv_pointwise) puts pixels in vector lanes, and a
    7 x 7 plane is 49 = 3 x 16 + 1 of them: its tiles of 32 pixels ran 64 pixels' work for 49.
    Here output channels fill the lanes and pixels are broadcast, 8 per tile: [960 -> 160] at
    7 x 7 ran in 0.67 of the time, [320 -> 1280] in 0.89; over a 1 x 1 plane (efficientnet_b0's
    squeeze-and-excite convolutions, which went to BLAS as matrix-vector products), [1280 ->
    1000] 390 -> 198 us. In-process A/B (benchmarks/ab.py, POINTWISE_MAX_PIXELS 0 against 64):
    efficientnet_b0 0.900 at 2 threads and 0.911 at 1, mobilenet_v2 0.950 and 0.953,
    shufflenet_v2_x0_5 1.010; planes of 14 x 14 as well (256) gained nothing (1.006)."""
    if not lw.direct_conv or not conv_gemm.eligible(lw, node):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    pixels = s.oh * s.ow
    if s.fmt != "NCHW" or not s.pointwise or pixels > POINTWISE_MAX_PIXELS:
        return False
    b = stored(lw, node, x)
    steps = np.arange(s.ci, dtype=np.int64) * pixels
    koff = lw.new_buffer(f"{node.name}/window_steps", int64, steps.shape, kind="const", value=steps)
    a = filter_panels(lw, node, f, s)
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, b, lw.buffer_of[out], s.co, pixels, s.ci,
                               False, False, (s.n,), (0,), (s.ci * pixels,), node, layout=image_layout(s.fmt),
                               window=ConvWindows(koff, pixels, 0, 1)))
    return True

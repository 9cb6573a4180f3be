"""Convolutions with few multiply-adds per output (depthwise: kh * kw; one or two input
channels) as one unrolled expression per output element: no reduction loop, so the innermost
axis vectorizes. On LLVM targets an NCHW depthwise convolution with a column stride of 1 or 2
takes graphc.lower.conv_depthwise's kernel instead (one pass, no copies); these forms keep NHWC,
channel multipliers, other strides, other targets and GRAPHC_DIRECT_CONV=0. Four forms, each
chosen where it measured fastest:

- rows (the general form): over the output in its own layout, from a padded copy of the input,
  so the taps' reads are plain affine loads without bounds tests;
- flattened planes (NCHW, stride 1, rows narrower than FLAT_PLANE_BELOW_WIDTH): each padded
  plane runs as one contiguous loop (_conv2d_flat);
- masked (NCHW, stride > 1, at most MASKED_MAX_TAPS taps): the taps read the input itself,
  masked at its borders. The strided reads vectorize as interleaved loads either way, and the
  padded copy was a whole pass over the largest tensors of mobilenet_v2 (its 96 x 112 x 112
  depthwise input: 451 us of padding against 334 us of convolution). In-process A/B: that
  convolution 730 -> 274 us, mobilenet_v2 0.90-0.99, efficientnet_b0 0.92-1.0. With 5 x 5 taps
  the selects cost more than the copy (efficientnet_b0's two: +360 us each);
- phases (NCHW, stride 2, more taps, rows narrower than FLAT_PLANE_BELOW_WIDTH): the input's four
  phases (even / odd rows and columns) are written in one pass instead of a padded copy, and
  the convolution runs over them as a stride-1 one, flattened (_conv2d_phases).
  efficientnet_b0's 5 x 5 stride-2 depthwise convolutions 0.58 and 0.69 of the padded row form.
  With 3 x 3 taps the phase pass cost more than the masked reads (mobilenet_v2's largest:
  1072 against 274 us).
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

from ..ir.node import Node
from ..ops import scalar as sexpr
from . import index as iexpr
from .conv_geometry import forward_tap, layout
from .conv_gemm import ConvShape, conv_shape, padded_input, read_inside, window_load
from .library_table import kernel_builder

# NCHW stride-1 convolutions with output rows narrower than this run over flattened planes: a
# row of 7 or 14 elements left most of each vector idle
FLAT_PLANE_BELOW_WIDTH = 32
MASKED_MAX_TAPS = 9


def group_channel(node: Node, vco: Any, vci: Any, co: int, cig: int) -> Any:
    """The input channel that filter channel vci of output channel vco reads: vci itself, or
    in group co // (outputs per group), at that group's offset."""
    groups = node.attrs.get("groups", 1)
    if groups == 1:
        return vci
    return iexpr.add(iexpr.mul(iexpr.floordiv(vco, co // groups), cig), vci)


def _tap_sum(kb: Any, node: Node, s: ConvShape, vc: Any, tap_value: Callable[[int, int, Any], Any]) -> Any:
    """sum over taps (i, j) and filter channels k of tap_value(i, j, input channel) * f[i, j, k, vc]."""
    f, out = node.inputs[1], node.outputs[0]
    total = None
    for i, j, k in itertools.product(range(s.kh), range(s.kw), range(f.shape[2])):
        channel = group_channel(node, vc, iexpr.const(k), s.co, f.shape[2])
        weight = kb.read(f, (iexpr.const(i), iexpr.const(j), iexpr.const(k), vc))
        term = sexpr.cast(tap_value(i, j, channel), out.dtype) * sexpr.cast(weight, out.dtype)
        total = term if total is None else total + term
    return total


def conv2d_unrolled(lw: Any, node: Node) -> None:
    """Lower a convolution with few multiply-adds per output in the form that suits its shape."""
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    if s.fmt == "NCHW" and (s.sh, s.sw) != (1, 1) and s.kh * s.kw <= MASKED_MAX_TAPS:
        _conv2d_masked(lw, node, s)
        return
    if s.fmt == "NCHW" and (s.sh, s.sw, s.dh, s.dw) == (2, 2, 1, 1) and s.ow < FLAT_PLANE_BELOW_WIDTH:
        _conv2d_phases(lw, node, s)
        return
    padded = padded_input(lw, node, x, s)
    if s.fmt == "NCHW" and (s.sh, s.sw) == (1, 1) and s.ow < FLAT_PLANE_BELOW_WIDTH:
        wp = padded.shape[3]
        _conv2d_flat(lw, node, s, wp, lambda kb, vn, ch, vq, i, j: kb.load(
            padded, (vn, ch, iexpr.const(0), iexpr.add(vq, i * s.dh * wp + j * s.dw))))
        return
    kb = kernel_builder(lw, node, layout(s.fmt, s.n, s.oh, s.ow, s.co))
    vn, vh, vw, vc = (kb.vars if s.fmt == "NHWC" else (kb.vars[0], kb.vars[2], kb.vars[3], kb.vars[1]))
    total = _tap_sum(kb, node, s, vc, lambda i, j, ch: window_load(kb, padded, s, vn, vh, vw, iexpr.const(i),
                                                                    iexpr.const(j), ch))
    # NHWC: channels innermost, contiguous; the epilogue in the kernel measured 3-9% faster than
    # a second pass. NCHW with stride 2: 2x slower; with stride 1, once the kernels of a batch of
    # one ran on every thread, 0.85-0.91 with a cheap epilogue (bias, ReLU6), 1.3x with a SiLU
    lw.store_result(kb, out, kb.vars, total,
                    inline=True if s.fmt == "NHWC" else "cheap" if (s.sh, s.sw) == (1, 1) else False)
    kb.finish()


def _conv2d_masked(lw: Any, node: Node, s: ConvShape) -> None:
    """NCHW with strides: each tap reads the input where it lies inside, 0 in the padding. The
    epilogue keeps its own pass (inside, the strided loop stopped vectorizing: mobilenet_v2's
    stride-2 depthwise convolutions 2-3x slower)."""
    x, out = node.inputs[0], node.outputs[0]
    kb = kernel_builder(lw, node, layout(s.fmt, s.n, s.oh, s.ow, s.co))
    vn, vc, vh, vw = kb.vars

    def tap(i: int, j: int, channel: Any) -> Any:
        ph = forward_tap(vh, iexpr.const(i), s.sh, s.dh, s.pt, s.h)[0]
        pw = forward_tap(vw, iexpr.const(j), s.sw, s.dw, s.pl, s.w)[0]
        return read_inside(kb, x, s, vn, ph, pw, channel)

    lw.store_result(kb, out, kb.vars, _tap_sum(kb, node, s, vc, tap), inline=False)
    kb.finish()


def _conv2d_flat(lw: Any, node: Node, s: ConvShape, width: int, tap_load: Callable[..., Any]) -> None:
    """An NCHW convolution over planes of `width` columns flattened: output position q of a
    plane (row q // width, column q % width) sums tap_load(kb, n, channel, q, i, j) over the
    taps, so the inner loop runs over the whole plane, contiguous, instead of over rows of 7 or
    14 elements (mobilenet_v2's and efficientnet_b0's depthwise convolutions at 7 x 7 and
    14 x 14: in-process A/B, the models 0.956 and 0.98). Positions with q % width >= ow fall in
    the padding columns and are dropped by a second kernel, which writes the output compacted
    and takes a cheap epilogue (bias, ReLU6) in the same pass. A SiLU keeps its own pass, which
    runs over the whole tensor vectorized, where the compacting pass walks rows of 7
    (efficientnet_b0's 7 x 7 depthwise convolutions 1.3-1.4x with it inside; the model 0.95-0.97
    with it apart). q stops at the last row's last column, so the last tap's read stays inside
    the plane it reads."""
    out = node.outputs[0]
    plane = (s.oh - 1) * width + s.ow
    flat = lw.new_buffer(f"{node.name}/flat_planes", out.dtype, (s.n, s.co, plane))
    kb = kernel_builder(lw, node, (s.n, s.co, plane))
    vn, vc, vq = kb.vars
    kb.store(flat, kb.vars, _tap_sum(kb, node, s, vc, lambda i, j, ch: tap_load(kb, vn, ch, vq, i, j)))
    kb.finish()
    kb = kernel_builder(lw, node, tuple(out.shape))
    vn, vc, vh, vw = kb.vars
    lw.store_result(kb, out, kb.vars, kb.load(flat, (vn, vc, iexpr.add(iexpr.mul(vh, width), vw))), inline="cheap")
    kb.finish()


def _conv2d_phases(lw: Any, node: Node, s: ConvShape) -> None:
    """An NCHW stride-2 convolution as a stride-1 one over the input's four phases: phase (a, b)
    holds the padded input's rows 2y + a and columns 2x + b, so tap (i, j) of output (y, x) is
    phase (i % 2, j % 2) at (y + i // 2, x + j // 2), and each phase plane runs flattened
    (_conv2d_flat). Writing the phases is one pass over the input, as the padded copy was."""
    x = node.inputs[0]
    hq, wq = s.oh + (s.kh - 1) // 2, s.ow + (s.kw - 1) // 2
    phases = lw.new_buffer(f"{node.name}/phases", x.dtype, (s.n, s.ci, 2, 2, hq, wq))
    # one kernel over (n, c, y, x) with a store per phase: as loops of 2 x 2 under the channels,
    # LLVM unrolled the phase axes and spent 150-230 ms on each such kernel
    kb = kernel_builder(lw, node, (s.n, s.ci, hq, wq))
    vn, vc, vy, vx = kb.vars
    for a in range(2):
        for b in range(2):
            kb.store(phases, (vn, vc, iexpr.const(a), iexpr.const(b), vy, vx),
                     read_inside(kb, x, s, vn, iexpr.add(iexpr.mul(vy, 2), a - s.pt),
                                 iexpr.add(iexpr.mul(vx, 2), b - s.pl), vc))
    kb.finish()
    _conv2d_flat(lw, node, s, wq, lambda kb, vn, ch, vq, i, j: kb.load(
        phases, (vn, ch, iexpr.const(i % 2), iexpr.const(j % 2), iexpr.const(0),
                 iexpr.add(vq, (i // 2) * wq + j // 2))))

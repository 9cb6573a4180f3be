"""Convolution and pooling as reduction kernels over windows (where GEMMs are available, float
convolutions without groups take the GEMM form of conv_gemm.py instead).

A window position is an affine index (out * stride + tap * dilation - pad), masked where it
falls into padding; the transposed directions (gradients with respect to the input) invert the
map, keeping taps whose position divides by the stride. Max pooling's gradient scatters each
window's gradient to the window's first maximum (argmax over the flattened window), serially,
because windows overlap.
"""
from __future__ import annotations

from typing import Any

from ..ir.node import Node
from ..ops import scalar as sexpr
from . import index as iexpr
from .loop_builder import LoopBuilder, condition, index_value
from .conv_geometry import backward_tap, forward_tap, hwc, layout, pads
from .conv_gemm import ConvShape, conv2d_as_gemm, conv2d_backprop_filter_as_gemm, conv2d_backprop_input_as_gemm
from .conv_depthwise import conv2d_depthwise, maxpool_planes
from .conv_direct import conv2d_direct, pointwise_direct
from .conv_pointwise import conv2d_pointwise
from .conv_unrolled import conv2d_unrolled, group_channel
from .library_table import fill, kernel_builder, library

# Multiply-adds per output (kh * kw * input channels per group) up to which the unrolled
# direct form beats the GEMM form (measured: a 3x3 convolution of one channel runs 2.3x faster
# unrolled; of three channels, 1.6x slower), and beyond which, without GEMMs, the reduction loop
# is used rather than an unrolled expression.
UNROLLED_BEFORE_GEMM = 12
UNROLLED_TERMS = 32


@library("Conv2D")
def _conv2d(lw: Any, node: Node) -> None:
    x, f = node.inputs
    terms = f.shape[0] * f.shape[1] * f.shape[2]
    if conv2d_depthwise(lw, node):
        return
    if terms > UNROLLED_BEFORE_GEMM and (pointwise_direct(lw, node) or conv2d_pointwise(lw, node)
                                          or conv2d_direct(lw, node) or conv2d_as_gemm(lw, node)):
        return
    if terms <= UNROLLED_TERMS:
        conv2d_unrolled(lw, node)
        return
    out = node.outputs[0]
    fmt, (sh, sw), (dh, dw) = node.attrs["data_format"], node.attrs["strides"], node.attrs["dilations"]
    n, h, w, ci = hwc(tuple(x.shape), fmt)
    _, oh, ow, co = hwc(tuple(out.shape), fmt)
    kh, kw, cig = f.shape[:3]   # cig: input channels per group (all of them without groups)
    pt, pl = pads(node.attrs, (h, w), (kh, kw))
    kb = kernel_builder(lw, node, (n, oh, ow, co, kh, kw, cig), reduced=(4, 5, 6))
    vn, vh, vw, vc, vkh, vkw, vci = kb.vars
    ph, okh = forward_tap(vh, vkh, sh, dh, pt, h)
    pw, okw = forward_tap(vw, vkw, sw, dw, pl, w)
    valid = iexpr.logical_and(okh, okw)
    channel = group_channel(node, vc, vci, co, cig)
    xv = kb.read(x, layout(fmt, vn, iexpr.select(okh, ph, 0), iexpr.select(okw, pw, 0), channel), valid, 0)
    acc = kb.accumulate(
        "sum", sexpr.cast(xv, out.dtype) * sexpr.cast(kb.read(f, (vkh, vkw, vci, vc)), out.dtype), out.dtype
    )
    lw.store_result(kb, out, layout(fmt, vn, vh, vw, vc), acc, inline=fmt == "NHWC")
    kb.finish()


@library("Conv2DBackpropInput")
def _conv2d_backprop_input(lw: Any, node: Node) -> None:
    if conv2d_backprop_input_as_gemm(lw, node):
        return
    f, g = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    fmt, (sh, sw), (dh, dw) = node.attrs["data_format"], node.attrs["strides"], node.attrs["dilations"]
    n, h, w, ci = hwc(tuple(out.shape), fmt)
    _, oh, ow, co = hwc(tuple(g.shape), fmt)
    kh, kw, cig = f.shape[:3]
    groups = node.attrs.get("groups", 1)
    per = co // groups   # output channels per group: input channel ci meets only its group's
    pt, pl = pads(node.attrs, (h, w), (kh, kw))
    kb = kernel_builder(lw, node, (n, h, w, ci, kh, kw, per), reduced=(4, 5, 6))
    vn, vh, vw, vci, vkh, vkw, vj = kb.vars
    if groups == 1:
        vco, vfi = vj, vci
    else:
        vco = iexpr.add(iexpr.mul(iexpr.floordiv(vci, cig), per), vj)
        vfi = iexpr.mod(vci, cig)
    yh, okh = backward_tap(vh, vkh, sh, dh, pt, oh)
    yw, okw = backward_tap(vw, vkw, sw, dw, pl, ow)
    valid = iexpr.logical_and(okh, okw)
    gv = kb.read(
        g,
        layout(fmt, vn, iexpr.select(okh or iexpr.const(1), yh, 0), iexpr.select(okw or iexpr.const(1), yw, 0), vco),
        valid,
        0,
    )
    acc = kb.accumulate(
        "sum", sexpr.cast(gv, out.dtype) * sexpr.cast(kb.read(f, (vkh, vkw, vfi, vco)), out.dtype), out.dtype
    )
    kb.store(lw.buffer_of[out], layout(fmt, vn, vh, vw, vci), acc)
    kb.finish()


@library("Conv2DBackpropFilter")
def _conv2d_backprop_filter(lw: Any, node: Node) -> None:
    if conv2d_backprop_filter_as_gemm(lw, node):
        return
    x, g = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    fmt, (sh, sw), (dh, dw) = node.attrs["data_format"], node.attrs["strides"], node.attrs["dilations"]
    n, h, w, ci = hwc(tuple(x.shape), fmt)
    _, oh, ow, co = hwc(tuple(g.shape), fmt)
    kh, kw, cig = out.shape[:3]
    pt, pl = pads(node.attrs, (h, w), (kh, kw))
    kb = kernel_builder(lw, node, (kh, kw, cig, co, n, oh, ow), reduced=(4, 5, 6))
    vkh, vkw, vci, vco, vn, voh, vow = kb.vars
    ph, okh = forward_tap(voh, vkh, sh, dh, pt, h)
    pw, okw = forward_tap(vow, vkw, sw, dw, pl, w)
    valid = iexpr.logical_and(okh, okw)
    channel = group_channel(node, vco, vci, co, cig)
    xv = kb.read(x, layout(fmt, vn, iexpr.select(okh, ph, 0), iexpr.select(okw, pw, 0), channel), valid, 0)
    gv = kb.read(g, layout(fmt, vn, voh, vow, vco))
    acc = kb.accumulate("sum", sexpr.cast(xv, out.dtype) * sexpr.cast(gv, out.dtype), out.dtype)
    kb.store(lw.buffer_of[out], (vkh, vkw, vci, vco), acc)
    kb.finish()


def _pool_setup(node: Node, x_shape: tuple, out_shape: tuple):
    fmt, (kh, kw), (sh, sw) = node.attrs["data_format"], node.attrs["ksize"], node.attrs["strides"]
    n, h, w, c = hwc(x_shape, fmt)
    _, oh, ow, _ = hwc(out_shape, fmt)
    pt, pl = pads(dict(node.attrs, dilations=_dilations(node)), (h, w), (kh, kw))
    return fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl


def _dilations(node: Node) -> tuple[int, int]:
    """A max pool's tap spacing (other pools have none)."""
    return tuple(node.attrs.get("dilations") or (1, 1))


def _window_read(kb: LoopBuilder, x, fmt, vn, voh, vow, vc, vkh, vkw, sh, sw, pt, pl, h, w, fill_value,
                 dilations: tuple[int, int] = (1, 1)):
    ph, okh = forward_tap(voh, vkh, sh, dilations[0], pt, h)
    pw, okw = forward_tap(vow, vkw, sw, dilations[1], pl, w)
    return kb.read(
        x,
        layout(fmt, vn, iexpr.select(okh, ph, 0), iexpr.select(okw, pw, 0), vc),
        iexpr.logical_and(okh, okw),
        fill_value,
    )


def _count(o, stride: int, pad: int, k: int, size: int) -> iexpr.IExpr:
    """How many real (unpadded) input positions window o covers along one axis."""
    start = iexpr.add(iexpr.mul(o, stride), -pad)
    return iexpr.add(iexpr.minimum(iexpr.add(start, k), size), iexpr.mul(iexpr.maximum(start, 0), -1))


@library("MaxPool", "AvgPool")
def _pool(lw: Any, node: Node) -> None:
    (x,) = node.inputs
    out = node.outputs[0]
    fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl = _pool_setup(node, tuple(x.shape), tuple(out.shape))
    if node.type == "MaxPool" and maxpool_planes(lw, node, ConvShape(fmt, n, h, w, c, oh, ow, c, kh, kw, sh, sw,
                                                                      *_dilations(node), pt, pl)):
        return
    if kh * kw <= UNROLLED_POOL_TAPS:
        _pool_unrolled(lw, node)
        return
    kb = kernel_builder(lw, node, (n, oh, ow, c, kh, kw), reduced=(4, 5))
    vn, voh, vow, vc, vkh, vkw = kb.vars
    is_max = node.type == "MaxPool"
    value = _window_read(kb, x, fmt, vn, voh, vow, vc, vkh, vkw, sh, sw, pt, pl, h, w, float("-inf") if is_max else 0.0,
                         _dilations(node))
    acc = kb.accumulate("max" if is_max else "sum", value, out.dtype)
    if not is_max:
        count = iexpr.mul(_count(voh, sh, pt, kh, h), _count(vow, sw, pl, kw, w))
        acc = acc / sexpr.cast(index_value(count), out.dtype)
    lw.store_result(kb, out, layout(fmt, vn, voh, vow, vc), acc, inline=fmt == "NHWC")
    kb.finish()


# NCHW pools with at most this many taps are unrolled (_pool_unrolled)
UNROLLED_POOL_TAPS = 16


def _pool_unrolled(lw: Any, node: Node) -> None:
    """A pool with a small window as one expression per output element (the max or the sum of
    its taps), over the output in its own layout: the output's last axis (NCHW: columns; NHWC:
    channels) is the innermost loop and vectorizes, where the reduction loop over a 3 x 3
    window ran innermost (resnet18's 3 x 3 stride-2 max pool, NCHW: 617 -> 214 us,
    in-process). Channels last, alone at one thread, against the reduction loop: [480] 28 x 28
    3 x 3 stride-1 max pool 430 -> 227 us, [288] 35 x 35 3 x 3 average pool 225 -> 172, [768]
    17 x 17 139 -> 89 (with graphc.codegen.llvm_loops's last_axis_unmasked; without it the
    unrolled reads were gathers, and slower)."""
    (x,) = node.inputs
    out = node.outputs[0]
    fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl = _pool_setup(node, tuple(x.shape), tuple(out.shape))
    is_max = node.type == "MaxPool"
    if fmt == "NCHW":
        kb = kernel_builder(lw, node, (n, c, oh, ow))
        vn, vc, voh, vow = kb.vars
    else:
        kb = kernel_builder(lw, node, (n, oh, ow, c))
        vn, voh, vow, vc = kb.vars
    total = None
    for i in range(kh):
        for j in range(kw):
            tap = sexpr.cast(_window_read(kb, x, fmt, vn, voh, vow, vc, iexpr.const(i), iexpr.const(j), sh, sw, pt,
                                          pl, h, w, float("-inf") if is_max else 0.0, _dilations(node)), out.dtype)
            total = tap if total is None else (sexpr.maximum(total, tap) if is_max else total + tap)
    if not is_max:
        count = iexpr.mul(_count(voh, sh, pt, kh, h), _count(vow, sw, pl, kw, w))
        total = total / sexpr.cast(index_value(count), out.dtype)
    # as for depthwise convolutions: NCHW takes a cheap epilogue inside with stride 1 (with
    # strides it stopped the strided loop vectorizing, and keeps its own pass); NHWC, whose
    # channels are the vector, takes any epilogue inside
    inline = True if fmt == "NHWC" else "cheap" if (sh, sw) == (1, 1) else False
    lw.store_result(kb, out, kb.vars, total, inline=inline)
    kb.finish()


def _argmax_window(lw, node, x, out_shape, serial: bool):
    fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl = _pool_setup(node, tuple(x.shape), out_shape)
    kb = kernel_builder(lw, node, (n, oh, ow, c, kh, kw), reduced=(4, 5), serial=serial)
    vn, voh, vow, vc, vkh, vkw = kb.vars
    dh, dw = _dilations(node)
    value = _window_read(kb, x, fmt, vn, voh, vow, vc, vkh, vkw, sh, sw, pt, pl, h, w, float("-inf"), (dh, dw))
    kb.accumulate("argmax", value, x.dtype)
    best = iexpr.IExpr("acc", (), 0)
    at_h = iexpr.add(iexpr.add(iexpr.mul(voh, sh), iexpr.mul(iexpr.floordiv(best, kw), dh)), -pt)
    at_w = iexpr.add(iexpr.add(iexpr.mul(vow, sw), iexpr.mul(iexpr.mod(best, kw), dw)), -pl)
    return kb, fmt, (vn, voh, vow, vc), (at_h, at_w)


@library("MaxPoolGrad")
def _max_pool_grad(lw: Any, node: Node) -> None:
    x, g = node.inputs
    out = lw.buffer_of[node.outputs[0]]
    fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl = _pool_setup(node, tuple(x.shape), tuple(g.shape))
    if sh >= kh and sw >= kw and _dilations(node) == (1, 1):
        _max_pool_grad_disjoint(lw, node, x, g, out)
        return
    # overlapping windows: each window adds its gradient at its argmax, one window after another
    fill(lw, node, out, 0)
    kb, fmt, (vn, voh, vow, vc), (at_h, at_w) = _argmax_window(lw, node, x, tuple(g.shape), serial=True)
    kb.store(out, layout(fmt, vn, at_h, at_w, vc), kb.read(g, layout(fmt, vn, voh, vow, vc)), mode="add")
    kb.finish()


def _max_pool_grad_disjoint(lw: Any, node: Node, x, g, out) -> None:
    """MaxPoolGrad when windows never overlap (stride >= window, the usual 2x2 / 2): each input
    position lies in at most one window, so its gradient is a gather, not a scatter: the
    window's gradient where this position is the window's argmax (the first maximum, as the
    forward pass and TensorFlow pick it), else 0. Every position is computed on its own
    (parallel, vectorized over the inner axis) instead of a serial scatter-add, which took a
    third of a small CNN's training step."""
    fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl = _pool_setup(node, tuple(x.shape), tuple(g.shape))
    kb = kernel_builder(lw, node, layout(fmt, n, h, w, c) + (kh, kw), reduced=(4, 5))
    if fmt == "NHWC":
        vn, vh, vw, vc = kb.vars[:4]
    else:
        vn, vc, vh, vw = kb.vars[:4]
    vkh, vkw = kb.vars[4], kb.vars[5]
    # the window holding (vh, vw), and this position's tap in it
    wh, ww = iexpr.floordiv(iexpr.add(vh, pt), sh), iexpr.floordiv(iexpr.add(vw, pl), sw)
    th = iexpr.add(iexpr.add(vh, pt), iexpr.mul(wh, -sh))
    tw = iexpr.add(iexpr.add(vw, pl), iexpr.mul(ww, -sw))
    inside = iexpr.logical_and(iexpr.less(th, kh), iexpr.less(tw, kw), iexpr.less(wh, oh), iexpr.less(ww, ow))
    safe_h, safe_w = iexpr.minimum(wh, oh - 1), iexpr.minimum(ww, ow - 1)
    value = _window_read(kb, x, fmt, vn, safe_h, safe_w, vc, vkh, vkw, sh, sw, pt, pl, h, w, float("-inf"))
    kb.accumulate("argmax", value, x.dtype)
    best = iexpr.IExpr("acc", (), 0)
    mine = iexpr.logical_and(inside, iexpr.equal(best, iexpr.add(iexpr.mul(th, kw), tw)))
    grad = kb.read(g, layout(fmt, vn, safe_h, safe_w, vc))
    kb.store(out, layout(fmt, vn, vh, vw, vc), sexpr.select(condition(mine), grad, sexpr.const(0, g.dtype)))
    kb.finish()


@library("MaxPoolGradGrad")
def _max_pool_grad_grad(lw: Any, node: Node) -> None:
    x, gg = node.inputs
    out = node.outputs[0]
    kb, fmt, (vn, voh, vow, vc), (at_h, at_w) = _argmax_window(lw, node, x, tuple(out.shape), serial=False)
    kb.store(lw.buffer_of[out], layout(fmt, vn, voh, vow, vc), kb.read(gg, layout(fmt, vn, at_h, at_w, vc)))
    kb.finish()


@library("AvgPoolGrad")
def _avg_pool_grad(lw: Any, node: Node) -> None:
    g = node.inputs[0]
    out = node.outputs[0]
    fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl = _pool_setup(node, tuple(out.shape), tuple(g.shape))
    kb = kernel_builder(lw, node, (n, h, w, c, kh, kw), reduced=(4, 5))
    vn, vh, vw, vc, vkh, vkw = kb.vars
    yh, okh = backward_tap(vh, vkh, sh, 1, pt, oh)
    yw, okw = backward_tap(vw, vkw, sw, 1, pl, ow)
    valid = iexpr.logical_and(okh, okw)
    sy, sx = iexpr.select(okh or iexpr.const(1), yh, 0), iexpr.select(okw or iexpr.const(1), yw, 0)
    gv = kb.read(g, layout(fmt, vn, sy, sx, vc), valid, 0)
    count = iexpr.mul(_count(sy, sh, pt, kh, h), _count(sx, sw, pl, kw, w))
    safe = iexpr.maximum(count, 1)
    acc = kb.accumulate("sum", gv / sexpr.cast(index_value(safe), out.dtype), out.dtype)
    kb.store(lw.buffer_of[out], layout(fmt, vn, vh, vw, vc), acc)
    kb.finish()

"""Convolution and pooling as reduction kernels over windows.

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
from ..ops.conv import window_output
from . import index as iexpr
from .loop_builder import LoopBuilder, index_value
from .library_table import fill, kernel_builder, library


def _layout(fmt: str, n, h, w, c) -> tuple:
    """A logical (n, h, w, c) index in the tensor's data format."""
    return (n, h, w, c) if fmt == "NHWC" else (n, c, h, w)


def _hwc(shape: tuple, fmt: str) -> tuple[int, int, int, int]:
    return (shape[0], shape[1], shape[2], shape[3]) if fmt == "NHWC" else (shape[0], shape[2], shape[3], shape[1])


def _pads(attrs: dict, hw: tuple[int, int], khw: tuple[int, int]) -> list[int]:
    """(pad_top, pad_left) for an input of spatial size hw and a kernel of size khw."""
    pad = attrs["padding"]
    dil = attrs.get("dilations") or (1, 1)
    return [window_output(hw[i], khw[i], attrs["strides"][i], dil[i], pad if isinstance(pad, str) else pad[i])[1][0]
            for i in range(2)]


def _forward_tap(o, k, stride: int, dilation: int, pad: int, size: int):
    """Input position read by output o at tap k, and whether it is inside the input."""
    pos = iexpr.add(iexpr.add(iexpr.mul(o, stride), iexpr.mul(k, dilation)), -pad)
    return pos, iexpr.in_range(pos, 0, size)


def _backward_tap(i, k, stride: int, dilation: int, pad: int, out_size: int):
    """Output position that reads input i at tap k (if any), and whether it exists."""
    num = iexpr.add(iexpr.add(i, pad), iexpr.mul(k, -dilation))
    o = iexpr.floordiv(num, stride)
    ok = iexpr.logical_and(iexpr.greater_equal(num, 0), iexpr.less(o, out_size),
                       iexpr.equal(iexpr.mod(num, stride), 0) if stride > 1 else None)
    return o, ok


@library("Conv2D")
def _conv2d(lw: Any, node: Node) -> None:
    x, f = node.inputs
    out = node.outputs[0]
    fmt, (sh, sw), (dh, dw) = node.attrs["data_format"], node.attrs["strides"], node.attrs["dilations"]
    n, h, w, ci = _hwc(tuple(x.shape), fmt)
    _, oh, ow, co = _hwc(tuple(out.shape), fmt)
    kh, kw, cig = f.shape[:3]   # cig: input channels per group (all of them without groups)
    pt, pl = _pads(node.attrs, (h, w), (kh, kw))
    kb = kernel_builder(lw, node, (n, oh, ow, co, kh, kw, cig), reduced=(4, 5, 6))
    vn, vh, vw, vc, vkh, vkw, vci = kb.vars
    ph, okh = _forward_tap(vh, vkh, sh, dh, pt, h)
    pw, okw = _forward_tap(vw, vkw, sw, dw, pl, w)
    valid = iexpr.logical_and(okh, okw)
    channel = _group_channel(node, vc, vci, co, cig)
    xv = kb.read(x, _layout(fmt, vn, iexpr.select(okh, ph, 0), iexpr.select(okw, pw, 0), channel), valid, 0)
    acc = kb.accumulate(
        "sum", sexpr.cast(xv, out.dtype) * sexpr.cast(kb.read(f, (vkh, vkw, vci, vc)), out.dtype), out.dtype
    )
    kb.store(lw.buffer_of[out], _layout(fmt, vn, vh, vw, vc), acc)
    kb.finish()


def _group_channel(node: Node, vco: Any, vci: Any, co: int, cig: int) -> Any:
    """The input channel that filter channel vci of output channel vco reads: vci itself, or
    in group co // (outputs per group), at that group's offset."""
    groups = node.attrs.get("groups", 1)
    if groups == 1:
        return vci
    return iexpr.add(iexpr.mul(iexpr.floordiv(vco, co // groups), cig), vci)


@library("Conv2DBackpropInput")
def _conv2d_backprop_input(lw: Any, node: Node) -> None:
    f, g = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    fmt, (sh, sw), (dh, dw) = node.attrs["data_format"], node.attrs["strides"], node.attrs["dilations"]
    n, h, w, ci = _hwc(tuple(out.shape), fmt)
    _, oh, ow, co = _hwc(tuple(g.shape), fmt)
    kh, kw, cig = f.shape[:3]
    groups = node.attrs.get("groups", 1)
    per = co // groups   # output channels per group: input channel ci meets only its group's
    pt, pl = _pads(node.attrs, (h, w), (kh, kw))
    kb = kernel_builder(lw, node, (n, h, w, ci, kh, kw, per), reduced=(4, 5, 6))
    vn, vh, vw, vci, vkh, vkw, vj = kb.vars
    if groups == 1:
        vco, vfi = vj, vci
    else:
        vco = iexpr.add(iexpr.mul(iexpr.floordiv(vci, cig), per), vj)
        vfi = iexpr.mod(vci, cig)
    yh, okh = _backward_tap(vh, vkh, sh, dh, pt, oh)
    yw, okw = _backward_tap(vw, vkw, sw, dw, pl, ow)
    valid = iexpr.logical_and(okh, okw)
    gv = kb.read(
        g,
        _layout(fmt, vn, iexpr.select(okh or iexpr.const(1), yh, 0), iexpr.select(okw or iexpr.const(1), yw, 0), vco),
        valid,
        0,
    )
    acc = kb.accumulate(
        "sum", sexpr.cast(gv, out.dtype) * sexpr.cast(kb.read(f, (vkh, vkw, vfi, vco)), out.dtype), out.dtype
    )
    kb.store(lw.buffer_of[out], _layout(fmt, vn, vh, vw, vci), acc)
    kb.finish()


@library("Conv2DBackpropFilter")
def _conv2d_backprop_filter(lw: Any, node: Node) -> None:
    x, g = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    fmt, (sh, sw), (dh, dw) = node.attrs["data_format"], node.attrs["strides"], node.attrs["dilations"]
    n, h, w, ci = _hwc(tuple(x.shape), fmt)
    _, oh, ow, co = _hwc(tuple(g.shape), fmt)
    kh, kw, cig = out.shape[:3]
    pt, pl = _pads(node.attrs, (h, w), (kh, kw))
    kb = kernel_builder(lw, node, (kh, kw, cig, co, n, oh, ow), reduced=(4, 5, 6))
    vkh, vkw, vci, vco, vn, voh, vow = kb.vars
    ph, okh = _forward_tap(voh, vkh, sh, dh, pt, h)
    pw, okw = _forward_tap(vow, vkw, sw, dw, pl, w)
    valid = iexpr.logical_and(okh, okw)
    channel = _group_channel(node, vco, vci, co, cig)
    xv = kb.read(x, _layout(fmt, vn, iexpr.select(okh, ph, 0), iexpr.select(okw, pw, 0), channel), valid, 0)
    gv = kb.read(g, _layout(fmt, vn, voh, vow, vco))
    acc = kb.accumulate("sum", sexpr.cast(xv, out.dtype) * sexpr.cast(gv, out.dtype), out.dtype)
    kb.store(lw.buffer_of[out], (vkh, vkw, vci, vco), acc)
    kb.finish()


def _pool_setup(node: Node, x_shape: tuple, out_shape: tuple):
    fmt, (kh, kw), (sh, sw) = node.attrs["data_format"], node.attrs["ksize"], node.attrs["strides"]
    n, h, w, c = _hwc(x_shape, fmt)
    _, oh, ow, _ = _hwc(out_shape, fmt)
    pt, pl = _pads(dict(node.attrs, dilations=_dilations(node)), (h, w), (kh, kw))
    return fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl


def _dilations(node: Node) -> tuple[int, int]:
    """A max pool's tap spacing (other pools have none)."""
    return tuple(node.attrs.get("dilations") or (1, 1))


def _window_read(kb: LoopBuilder, x, fmt, vn, voh, vow, vc, vkh, vkw, sh, sw, pt, pl, h, w, fill_value,
                 dilations: tuple[int, int] = (1, 1)):
    ph, okh = _forward_tap(voh, vkh, sh, dilations[0], pt, h)
    pw, okw = _forward_tap(vow, vkw, sw, dilations[1], pl, w)
    return kb.read(
        x,
        _layout(fmt, vn, iexpr.select(okh, ph, 0), iexpr.select(okw, pw, 0), vc),
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
    kb = kernel_builder(lw, node, (n, oh, ow, c, kh, kw), reduced=(4, 5))
    vn, voh, vow, vc, vkh, vkw = kb.vars
    is_max = node.type == "MaxPool"
    value = _window_read(kb, x, fmt, vn, voh, vow, vc, vkh, vkw, sh, sw, pt, pl, h, w, float("-inf") if is_max else 0.0,
                         _dilations(node))
    acc = kb.accumulate("max" if is_max else "sum", value, out.dtype)
    if not is_max:
        count = iexpr.mul(_count(voh, sh, pt, kh, h), _count(vow, sw, pl, kw, w))
        acc = acc / sexpr.cast(index_value(count), out.dtype)
    kb.store(lw.buffer_of[out], _layout(fmt, vn, voh, vow, vc), acc)
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
    fill(lw, node, out, 0)
    kb, fmt, (vn, voh, vow, vc), (at_h, at_w) = _argmax_window(lw, node, x, tuple(g.shape), serial=True)
    kb.store(out, _layout(fmt, vn, at_h, at_w, vc), kb.read(g, _layout(fmt, vn, voh, vow, vc)), mode="add")
    kb.finish()


@library("MaxPoolGradGrad")
def _max_pool_grad_grad(lw: Any, node: Node) -> None:
    x, gg = node.inputs
    out = node.outputs[0]
    kb, fmt, (vn, voh, vow, vc), (at_h, at_w) = _argmax_window(lw, node, x, tuple(out.shape), serial=False)
    kb.store(lw.buffer_of[out], _layout(fmt, vn, voh, vow, vc), kb.read(gg, _layout(fmt, vn, at_h, at_w, vc)))
    kb.finish()


@library("AvgPoolGrad")
def _avg_pool_grad(lw: Any, node: Node) -> None:
    g = node.inputs[0]
    out = node.outputs[0]
    fmt, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl = _pool_setup(node, tuple(out.shape), tuple(g.shape))
    kb = kernel_builder(lw, node, (n, h, w, c, kh, kw), reduced=(4, 5))
    vn, vh, vw, vc, vkh, vkw = kb.vars
    yh, okh = _backward_tap(vh, vkh, sh, 1, pt, oh)
    yw, okw = _backward_tap(vw, vkw, sw, 1, pl, ow)
    valid = iexpr.logical_and(okh, okw)
    sy, sx = iexpr.select(okh or iexpr.const(1), yh, 0), iexpr.select(okw or iexpr.const(1), yw, 0)
    gv = kb.read(g, _layout(fmt, vn, sy, sx, vc), valid, 0)
    count = iexpr.mul(_count(sy, sh, pt, kh, h), _count(sx, sw, pl, kw, w))
    safe = iexpr.maximum(count, 1)
    acc = kb.accumulate("sum", gv / sexpr.cast(index_value(safe), out.dtype), out.dtype)
    kb.store(lw.buffer_of[out], _layout(fmt, vn, vh, vw, vc), acc)
    kb.finish()

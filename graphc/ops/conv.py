"""2-D convolution and pooling with TF semantics (NHWC or NCHW, HWIO filters, SAME / VALID /
explicit padding), and the ops their gradients need (TF's Conv2DBackpropInput,
Conv2DBackpropFilter, MaxPoolGrad, AvgPoolGrad), each with a NumPy reference.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..ir.dtypes import promote
from ..ir.shapes import format_shape
from .base import OpDef, register, register_gradient
from .nn import _require_float
from .shape_ops import _ShapeInputOp, _shape_arg, _unknown_of_length


def window_output(n: int | None, k: int | None, stride: int, dilation: int, padding: Any) -> tuple[int | None, tuple[int, int]]:
    """Output size and (before, after) padding of one spatial dim, TF rules."""
    if n is None or k is None:
        return None, (0, 0)
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        out = math.ceil(n / stride)
        total = max((out - 1) * stride + eff - n, 0)
        return out, (total // 2, total - total // 2)
    before, after = (0, 0) if padding == "VALID" else padding
    span = n + before + after - eff
    return (span // stride + 1 if span >= 0 else 0), (before, after)


def _check_window_attrs(op: str, attrs: dict[str, Any]) -> None:
    if attrs["data_format"] not in ("NHWC", "NCHW"):
        raise ShapeError(f"{op} data_format must be 'NHWC' or 'NCHW', got {attrs['data_format']!r}")
    for name in ("strides", "dilations", "ksize"):
        v = attrs.get(name)
        if v is not None and (len(v) != 2 or any((not isinstance(s, int)) or s < 1 for s in v)):
            raise ShapeError(f"{op} {name} must be two positive ints (height, width), got {v!r}")
    pad = attrs["padding"]
    if pad not in ("SAME", "VALID"):
        ok = isinstance(pad, (tuple, list)) and len(pad) == 2 and all(
            len(p) == 2 and all(isinstance(x, int) and x >= 0 for x in p) for p in pad)
        if not ok:
            raise ShapeError(f"{op} padding must be 'SAME', 'VALID' or ((top, bottom), (left, right)), got {pad!r}")


def _hw(shape: tuple, data_format: str) -> tuple[Any, Any, Any, Any]:
    """(batch, height, width, channels) of a 4-D shape in either layout."""
    if data_format == "NHWC":
        return shape[0], shape[1], shape[2], shape[3]
    return shape[0], shape[2], shape[3], shape[1]


def _layout(n: Any, h: Any, w: Any, c: Any, data_format: str) -> tuple:
    return (n, h, w, c) if data_format == "NHWC" else (n, c, h, w)


def _windows(x: np.ndarray, kh: int, kw: int, attrs: dict[str, Any], pads: list, fill: float) -> np.ndarray:
    """(N, OH, OW, C, kh, kw) windows of an NHWC array, padded with `fill`."""
    dh, dw = attrs.get("dilations") or (1, 1)
    sh, sw = attrs["strides"]
    xp = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=fill)
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if xp.shape[1] < eff_h or xp.shape[2] < eff_w:
        return np.zeros((x.shape[0], 0, 0, x.shape[3], kh, kw), x.dtype)
    win = np.lib.stride_tricks.sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))
    return win[:, ::sh, ::sw, :, ::dh, ::dw]


@register
class Conv2D(OpDef):
    """2-D cross-correlation of x (NHWC or NCHW) with filters of shape (kh, kw, in, out)."""

    name = "Conv2D"
    arity = 2
    attr_defaults = {"strides": (1, 1), "padding": "VALID", "data_format": "NHWC", "dilations": (1, 1)}

    def infer(self, inputs, attrs):
        x, f = inputs
        _check_window_attrs("conv2d", attrs)
        _require_float("conv2d", x, f)
        dtype = promote(x.dtype, f.dtype)
        if x.shape is not None and len(x.shape) != 4:
            raise ShapeError(f"conv2d input must be 4-D ({attrs['data_format']}), got shape {format_shape(x.shape)}")
        if f.shape is not None and len(f.shape) != 4:
            raise ShapeError(f"conv2d filters must be 4-D (height, width, in, out), got shape {format_shape(f.shape)}")
        if x.shape is None or f.shape is None:
            return [(dtype, None if x.shape is None and f.shape is None else (None,) * 4)]
        n, h, w, c = _hw(x.shape, attrs["data_format"])
        kh, kw, cin, cout = f.shape
        if c is not None and cin is not None and c != cin:
            raise ShapeError(f"conv2d input has {c} channels but the filters expect {cin}")
        (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
        pad = attrs["padding"]
        oh, _ = window_output(h, kh, sh, dh, pad if isinstance(pad, str) else pad[0])
        ow, _ = window_output(w, kw, sw, dw, pad if isinstance(pad, str) else pad[1])
        return [(dtype, _layout(n, oh, ow, cout, attrs["data_format"]))]

    def reference(self, inputs, attrs):
        x, f = inputs
        dtype = np.result_type(x, f)
        if attrs["data_format"] == "NCHW":
            x = np.transpose(x, (0, 2, 3, 1))
        kh, kw = f.shape[:2]
        pad = attrs["padding"]
        pads = [window_output(x.shape[1 + i], (kh, kw)[i], attrs["strides"][i], attrs["dilations"][i],
                              pad if isinstance(pad, str) else pad[i])[1] for i in range(2)]
        win = _windows(x.astype(dtype), kh, kw, attrs, pads, 0)
        out = np.tensordot(win, f.astype(dtype), axes=([3, 4, 5], [2, 0, 1]))
        if attrs["data_format"] == "NCHW":
            out = np.transpose(out, (0, 3, 1, 2))
        return np.ascontiguousarray(out)


class _Pool(OpDef):
    arity = 1
    attr_defaults = {"ksize": (2, 2), "strides": (2, 2), "padding": "VALID", "data_format": "NHWC"}

    def infer(self, inputs, attrs):
        x = inputs[0]
        _check_window_attrs(self.name, attrs)
        _require_float(self.name, x)
        if attrs["padding"] not in ("SAME", "VALID"):
            raise ShapeError(f"{self.name} padding must be 'SAME' or 'VALID'")
        if x.shape is None:
            return [(x.dtype, (None,) * 4)]
        if len(x.shape) != 4:
            raise ShapeError(f"{self.name} input must be 4-D ({attrs['data_format']}), got shape {format_shape(x.shape)}")
        n, h, w, c = _hw(x.shape, attrs["data_format"])
        (kh, kw), (sh, sw) = attrs["ksize"], attrs["strides"]
        oh, _ = window_output(h, kh, sh, 1, attrs["padding"])
        ow, _ = window_output(w, kw, sw, 1, attrs["padding"])
        return [(x.dtype, _layout(n, oh, ow, c, attrs["data_format"]))]

    def pooled_windows(self, x: np.ndarray, attrs: dict[str, Any], fill: float) -> tuple[np.ndarray, list]:
        (kh, kw), (sh, sw) = attrs["ksize"], attrs["strides"]
        pads = [window_output(x.shape[1], kh, sh, 1, attrs["padding"])[1],
                window_output(x.shape[2], kw, sw, 1, attrs["padding"])[1]]
        return _windows(x, kh, kw, attrs, pads, fill), pads

    def reference(self, inputs, attrs):
        x = inputs[0]
        if attrs["data_format"] == "NCHW":
            x = np.transpose(x, (0, 2, 3, 1))
        out = self.pool(x, attrs)
        if attrs["data_format"] == "NCHW":
            out = np.transpose(out, (0, 3, 1, 2))
        return np.ascontiguousarray(out)

    def pool(self, x: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError


@register
class MaxPool(_Pool):
    """Maximum over each window (SAME padding never wins the max)."""

    name = "MaxPool"

    def pool(self, x, attrs):
        win, _ = self.pooled_windows(x, attrs, -np.inf)
        return win.max(axis=(4, 5), initial=-np.inf).astype(x.dtype)


@register
class AvgPool(_Pool):
    """Mean over each window, counting only real (unpadded) elements, as TF does."""

    name = "AvgPool"

    def pool(self, x, attrs):
        win, _ = self.pooled_windows(x, attrs, 0)
        ones, _ = self.pooled_windows(np.ones((1,) + x.shape[1:3] + (1,), x.dtype), attrs, 0)
        return (win.sum(axis=(4, 5)) / ones.sum(axis=(4, 5))).astype(x.dtype)


# --------------------------------------------------------------------------- gradient ops
def _to_nhwc(x: np.ndarray, data_format: str) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1)) if data_format == "NCHW" else x


def _from_nhwc(x: np.ndarray, data_format: str) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)) if data_format == "NCHW" else x)


def _pads(in_hw: tuple[int, int], k_hw: tuple[int, int], attrs: dict[str, Any]) -> list[tuple[int, int]]:
    pad = attrs["padding"]
    dil = attrs.get("dilations") or (1, 1)
    return [window_output(in_hw[i], k_hw[i], attrs["strides"][i], dil[i], pad if isinstance(pad, str) else pad[i])[1]
            for i in range(2)]


def _scatter_windows(g_nhwc: np.ndarray, contrib, in_hw: tuple[int, int], k_hw: tuple[int, int],
                     attrs: dict[str, Any], channels: int) -> np.ndarray:
    """Sum contrib(i, j) -> (N, OH, OW, C) into the padded input at kernel offset (i, j); crop."""
    (pt, pb), (pl, pr) = _pads(in_hw, k_hw, attrs)
    (sh, sw), (dh, dw) = attrs["strides"], attrs.get("dilations") or (1, 1)
    n, oh, ow = g_nhwc.shape[:3]
    out = np.zeros((n, in_hw[0] + pt + pb, in_hw[1] + pl + pr, channels), dtype=g_nhwc.dtype)
    if oh and ow:
        for i in range(k_hw[0]):
            for j in range(k_hw[1]):
                out[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw, :] += contrib(i, j)
    return out[:, pt: pt + in_hw[0], pl: pl + in_hw[1], :]


@register
class Conv2DBackpropInput(_ShapeInputOp):
    """The gradient of conv2d with respect to its input (a transposed convolution).
    Inputs: filters, output gradient[, input shape]."""

    name = "Conv2DBackpropInput"
    arity = (2, 3)
    attr_defaults = dict(Conv2D.attr_defaults, shape=None)
    shape_inputs = (2,)

    def infer(self, inputs, attrs):
        f, g = inputs[0], inputs[1]
        target = _shape_arg(inputs, attrs, "shape", 2)
        dtype = promote(f.dtype, g.dtype)
        if target is None:
            return [(dtype, _unknown_of_length(inputs[2]))]
        return [(dtype, tuple(target))]

    def reference(self, inputs, attrs):
        f, g = inputs[0], inputs[1]
        fmt = attrs["data_format"]
        shape = self.target(inputs, attrs)
        n, h, w, c = _hw(shape, fmt)
        g = _to_nhwc(g, fmt)
        out = _scatter_windows(g, lambda i, j: np.tensordot(g, f[i, j], axes=([3], [1])), (h, w), f.shape[:2], attrs, c)
        return _from_nhwc(out, fmt)


@register
class Conv2DBackpropFilter(_ShapeInputOp):
    """The gradient of conv2d with respect to its filters. Inputs: x, output gradient[, filter shape]."""

    name = "Conv2DBackpropFilter"
    arity = (2, 3)
    attr_defaults = dict(Conv2D.attr_defaults, shape=None)
    shape_inputs = (2,)

    def infer(self, inputs, attrs):
        x, g = inputs[0], inputs[1]
        target = _shape_arg(inputs, attrs, "shape", 2)
        dtype = promote(x.dtype, g.dtype)
        if target is None:
            return [(dtype, _unknown_of_length(inputs[2]))]
        return [(dtype, tuple(target))]

    def reference(self, inputs, attrs):
        x, g = inputs[0], inputs[1]
        fmt = attrs["data_format"]
        kh, kw, cin, cout = self.target(inputs, attrs)
        x, g = _to_nhwc(x, fmt), _to_nhwc(g, fmt)
        (pt, pb), (pl, pr) = _pads(x.shape[1:3], (kh, kw), attrs)
        xp = np.pad(x, [(0, 0), (pt, pb), (pl, pr), (0, 0)])
        (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
        oh, ow = g.shape[1:3]
        out = np.zeros((kh, kw, cin, cout), dtype=np.result_type(x, g))
        if oh and ow:
            for i in range(kh):
                for j in range(kw):
                    patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
                    out[i, j] = np.tensordot(patch, g, axes=([0, 1, 2], [0, 1, 2]))
        return out


def _argmax_positions(x: np.ndarray, attrs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list]:
    """For each pooling window of NHWC x: the padded-input row and column of its (first) maximum."""
    (kh, kw), (sh, sw) = attrs["ksize"], attrs["strides"]
    pads = _pads(x.shape[1:3], (kh, kw), dict(attrs, dilations=(1, 1)))
    win = _windows(x, kh, kw, attrs, pads, -np.inf)          # (N, OH, OW, C, kh, kw)
    flat = win.reshape(win.shape[:4] + (-1,))
    best = np.argmax(flat, axis=-1) if flat.shape[-1] else np.zeros(flat.shape[:4], np.int64)
    oh, ow = win.shape[1:3]
    rows = np.arange(oh)[None, :, None, None] * sh + best // kw
    cols = np.arange(ow)[None, None, :, None] * sw + best % kw
    return rows, cols, pads


@register
class MaxPoolGrad(OpDef):
    """The gradient of max pooling: each window's gradient goes to its (first) maximum.
    Inputs: x, output gradient."""

    name = "MaxPoolGrad"
    arity = 2
    attr_defaults = dict(MaxPool.attr_defaults)

    def infer(self, inputs, attrs):
        return [(inputs[0].dtype, inputs[0].shape)]

    def reference(self, inputs, attrs):
        fmt = attrs["data_format"]
        x, g = _to_nhwc(inputs[0], fmt), _to_nhwc(inputs[1], fmt)
        rows, cols, ((pt, pb), (pl, pr)) = _argmax_positions(x, attrs)
        n, h, w, c = x.shape
        out = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
        ni = np.arange(n)[:, None, None, None]
        ci = np.arange(c)[None, None, None, :]
        np.add.at(out, (ni, rows, cols, ci), g)
        return _from_nhwc(out[:, pt: pt + h, pl: pl + w, :], fmt)


@register
class MaxPoolGradGrad(OpDef):
    """The adjoint of MaxPoolGrad: each window takes the value at its (first) maximum's place.
    Inputs: x, a tensor shaped like x."""

    name = "MaxPoolGradGrad"
    arity = 2
    attr_defaults = dict(MaxPool.attr_defaults)

    def infer(self, inputs, attrs):
        return MaxPool().infer(inputs[:1], attrs)

    def reference(self, inputs, attrs):
        fmt = attrs["data_format"]
        x, gg = _to_nhwc(inputs[0], fmt), _to_nhwc(inputs[1], fmt)
        rows, cols, ((pt, pb), (pl, pr)) = _argmax_positions(x, attrs)
        padded = np.pad(gg, [(0, 0), (pt, pb), (pl, pr), (0, 0)])
        n, c = x.shape[0], x.shape[3]
        out = padded[np.arange(n)[:, None, None, None], rows, cols, np.arange(c)[None, None, None, :]]
        return _from_nhwc(out, fmt)


@register
class AvgPoolGrad(_ShapeInputOp):
    """The gradient of average pooling: each window's gradient, divided by its count of real
    elements, spread over them. Inputs: output gradient[, input shape]."""

    name = "AvgPoolGrad"
    arity = (1, 2)
    attr_defaults = dict(AvgPool.attr_defaults, shape=None)
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        target = _shape_arg(inputs, attrs, "shape", 1)
        if target is None:
            return [(inputs[0].dtype, _unknown_of_length(inputs[1]))]
        return [(inputs[0].dtype, tuple(target))]

    def reference(self, inputs, attrs):
        fmt = attrs["data_format"]
        g = _to_nhwc(inputs[0], fmt)
        n, h, w, c = _hw(self.target(inputs, attrs), fmt)
        attrs = dict(attrs, dilations=(1, 1))
        kh, kw = attrs["ksize"]
        ones, _ = AvgPool().pooled_windows(np.ones((1, h, w, 1), g.dtype), attrs, 0)
        share = g / ones.sum(axis=(4, 5)) if g.size else g
        out = _scatter_windows(share, lambda i, j: share, (h, w), (kh, kw), attrs, c)
        return _from_nhwc(out, fmt)


# --------------------------------------------------------------------------- gradient rules
def _window_attrs(node) -> dict[str, Any]:
    return {k: v for k, v in node.attrs.items() if k != "shape"}


@register_gradient("Conv2D")
def _(b, node, g):
    x, f = node.inputs
    attrs = _window_attrs(node)
    dx = _with_shape(b, "Conv2DBackpropInput", [f, g], attrs, x)
    df = _with_shape(b, "Conv2DBackpropFilter", [x, g], attrs, f)
    return [b.cast(dx, x.dtype), b.cast(df, f.dtype)]


def _with_shape(b, op: str, inputs: list, attrs: dict[str, Any], like) -> Any:
    shape = b.shape_arg(like)
    if isinstance(shape, tuple):
        return b.apply1(op, inputs, dict(attrs, shape=shape))
    return b.apply1(op, inputs + [shape], dict(attrs, shape=None))


@register_gradient("Conv2DBackpropInput")
def _(b, node, gg):
    f, g = node.inputs[0], node.inputs[1]
    attrs = _window_attrs(node)
    d_g = b.apply1("Conv2D", [gg, f], attrs)
    d_f = _with_shape(b, "Conv2DBackpropFilter", [gg, g], attrs, f)
    return [b.cast(d_f, f.dtype), b.cast(d_g, g.dtype)] + [None] * (len(node.inputs) - 2)


@register_gradient("Conv2DBackpropFilter")
def _(b, node, gf):
    x, g = node.inputs[0], node.inputs[1]
    attrs = _window_attrs(node)
    d_x = _with_shape(b, "Conv2DBackpropInput", [gf, g], attrs, x)
    d_g = b.apply1("Conv2D", [x, gf], attrs)
    return [b.cast(d_x, x.dtype), b.cast(d_g, g.dtype)] + [None] * (len(node.inputs) - 2)


@register_gradient("MaxPool")
def _(b, node, g):
    return [b.apply1("MaxPoolGrad", [node.inputs[0], g], dict(node.attrs))]


@register_gradient("MaxPoolGrad")
def _(b, node, gg):
    return [None, b.apply1("MaxPoolGradGrad", [node.inputs[0], gg], dict(node.attrs))]


@register_gradient("MaxPoolGradGrad")
def _(b, node, g):
    return [None, b.apply1("MaxPoolGrad", [node.inputs[0], g], dict(node.attrs))]


@register_gradient("AvgPool")
def _(b, node, g):
    return [_with_shape(b, "AvgPoolGrad", [g], dict(node.attrs), node.inputs[0])]


@register_gradient("AvgPoolGrad")
def _(b, node, gg):
    return [b.apply1("AvgPool", [gg], _window_attrs(node))] + [None] * (len(node.inputs) - 1)

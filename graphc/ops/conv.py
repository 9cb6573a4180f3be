"""2-D convolution and pooling with TF semantics (NHWC or NCHW, HWIO filters, SAME / VALID /
explicit padding), and the ops their gradients need (TF's Conv2DBackpropInput,
Conv2DBackpropFilter, MaxPoolGrad, AvgPoolGrad), each with a NumPy reference.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.dtypes import promote
from ..ir.shapes import Shape, compatible, format_shape
from ..ir.tensor import Tensor
from .attrs import is_int
from .attrs import shape as shape_check
from .base import OpDef, register, register_gradient
from .nn import _require_float
from .shape_ops import _ShapeInputOp, _shape_arg, _unknown_of_length


_MAX_WINDOW = (1 << 31) - 1   # strides, dilations, window sizes and paddings


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


def _check_window_attrs(op: str, attrs: dict[str, Any], pool: bool = False) -> None:
    """The rules of the window attributes, shared by every convolution and pooling op and their
    gradient twins (which carry the forward op's attributes), so a node of any of them with
    attributes its forward op would refuse is refused when it is created, not when it runs."""
    if attrs.get("data_format") not in ("NHWC", "NCHW"):
        raise ShapeError(f"{op} data_format must be 'NHWC' or 'NCHW', got {attrs.get('data_format')!r}")
    for name in ("strides", "dilations", "ksize"):
        if name not in attrs:
            continue
        v = attrs[name]
        if not (isinstance(v, (tuple, list)) and len(v) == 2
                                  and all(is_int(s) and 1 <= s <= _MAX_WINDOW for s in v)):
            raise ShapeError(f"{op} {name} must be two positive ints (height, width), got {v!r}")
    groups = attrs.get("groups", 1)
    if not (is_int(groups) and 1 <= groups <= _MAX_WINDOW):
        raise ShapeError(f"{op} groups must be a positive int, got {groups!r}")
    pad = attrs.get("padding")
    if pad not in ("SAME", "VALID"):
        # a max pool takes explicit padding too (what ONNX's MaxPool pads are: never the
        # window's maximum); an average pool's count of padded elements stays TF's
        explicit = not pool or op.startswith("MaxPool")
        ok = explicit and isinstance(pad, (tuple, list)) and len(pad) == 2 and all(
            isinstance(p, (tuple, list)) and len(p) == 2 and all(is_int(x) and 0 <= x <= _MAX_WINDOW for x in p)
            for p in pad)
        if not ok:
            allowed = "'SAME' or 'VALID'" if not explicit else "'SAME', 'VALID' or ((top, bottom), (left, right))"
            raise ShapeError(f"{op} padding must be {allowed}, got {pad!r}")
        if pool and "ksize" in attrs:   # a window wholly in the padding would have no maximum
            dilations = attrs.get("dilations") or (1, 1)
            spans = [(attrs["ksize"][i] - 1) * dilations[i] + 1 for i in range(2)]
            if any(x >= spans[i] for i, p in enumerate(pad) for x in p):
                raise ShapeError(f"{op} padding must be smaller than the window ({spans[0]} x {spans[1]}), got {pad!r}")


def conv_output_shape(x_shape: Shape, f_shape: Shape, attrs: dict[str, Any]) -> Shape:
    """The shape conv2d gives for input and filter shapes (ShapeError where they cannot work)."""
    if x_shape is not None and len(x_shape) != 4:
        raise ShapeError(f"conv2d input must be 4-D ({attrs['data_format']}), got shape {format_shape(x_shape)}")
    if f_shape is not None and len(f_shape) != 4:
        raise ShapeError(f"conv2d filters must be 4-D (height, width, in, out), got shape {format_shape(f_shape)}")
    if x_shape is None or f_shape is None:
        return None if x_shape is None and f_shape is None else (None,) * 4
    n, h, w, c = _hw(x_shape, attrs["data_format"])
    kh, kw, cin, cout = f_shape
    groups = attrs.get("groups", 1)
    if cout is not None and cout % groups:
        raise ShapeError(f"conv2d with {groups} groups needs a multiple of {groups} output channels, got {cout}")
    if c is not None and cin is not None and c != cin * groups:
        more = f" ({cin} per group x {groups} groups)" if groups > 1 else ""
        raise ShapeError(f"conv2d input has {c} channels but the filters expect {cin * groups}{more}")
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    pad = attrs["padding"]
    oh, _ = window_output(h, kh, sh, dh, pad if isinstance(pad, str) else pad[0])
    ow, _ = window_output(w, kw, sw, dw, pad if isinstance(pad, str) else pad[1])
    return _layout(n, oh, ow, cout, attrs["data_format"])


def pool_output_shape(op: str, x_shape: Shape, attrs: dict[str, Any]) -> Shape:
    """The shape max / average pooling gives for an input shape."""
    if x_shape is None:
        return (None,) * 4
    if len(x_shape) != 4:
        raise ShapeError(f"{op} input must be 4-D ({attrs['data_format']}), got shape {format_shape(x_shape)}")
    n, h, w, c = _hw(x_shape, attrs["data_format"])
    (kh, kw), (sh, sw) = attrs["ksize"], attrs["strides"]
    dh, dw = attrs.get("dilations") or (1, 1)
    pad = attrs["padding"]
    oh, _ = window_output(h, kh, sh, dh, pad if isinstance(pad, str) else pad[0])
    ow, _ = window_output(w, kw, sw, dw, pad if isinstance(pad, str) else pad[1])
    return _layout(n, oh, ow, c, attrs["data_format"])


def _check_gradient(op: str, what: str, g: Tensor, expected: Shape) -> None:
    """A gradient op's incoming gradient must have the shape its forward op gives."""
    if not compatible(expected, g.shape):
        raise ShapeError(f"{op} {what} has shape {format_shape(g.shape)}, but the forward op's result has "
                         f"shape {format_shape(expected)}")


def _target(op: str, target: tuple | None) -> tuple | None:
    if target is not None and (len(target) != 4 or any(d < 0 for d in target)):
        raise ShapeError(f"{op} target shape must be 4 sizes >= 0, got {tuple(target)}")
    return None if target is None else tuple(target)


class _WindowOp(OpDef):
    """Convolution and pooling ops and their gradients: one set of attribute rules."""

    is_pool: ClassVar[bool] = False   # pooling attributes (ksize) rather than convolution's
    attr_checks = {"shape": shape_check(optional=True, allow_unknown=False)}

    def check_attrs(self, attrs: dict[str, Any]) -> None:
        _check_window_attrs(self.name, attrs, self.is_pool)
        super().check_attrs(attrs)
        if attrs.get("shape") is not None and len(attrs["shape"]) != 4:
            raise ShapeError(f"{self.name} shape must have 4 sizes, got {attrs['shape']!r}")


def _require_same_float(op: str, x: Tensor, g: Tensor) -> None:
    _require_float(op, x, g)
    if x.dtype != g.dtype:
        raise DTypeError(f"{op} takes two tensors of one dtype, got {x.dtype.name} and {g.dtype.name}")


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
class Conv2D(_WindowOp):
    """2-D cross-correlation of x (NHWC or NCHW) with filters of shape (kh, kw, in, out)."""

    name = "Conv2D"
    arity = 2
    # groups: the channels split into that many groups, each convolved with its own filters
    # (filters (kh, kw, in / groups, out)); groups == in is a depthwise convolution
    attr_defaults = {"strides": (1, 1), "padding": "VALID", "data_format": "NHWC", "dilations": (1, 1), "groups": 1}

    def infer(self, inputs, attrs):
        x, f = inputs
        _require_float("conv2d", x, f)
        return [(promote(x.dtype, f.dtype), conv_output_shape(x.shape, f.shape, attrs))]

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
        groups, cin = attrs.get("groups", 1), f.shape[2]
        per = f.shape[3] // groups
        out = np.concatenate([np.tensordot(win[:, :, :, g * cin:(g + 1) * cin], f[..., g * per:(g + 1) * per].astype(dtype),
                                           axes=([3, 4, 5], [2, 0, 1])) for g in range(groups)], axis=3)
        if attrs["data_format"] == "NCHW":
            out = np.transpose(out, (0, 3, 1, 2))
        return np.ascontiguousarray(out)


class _Pool(_WindowOp):
    is_pool = True
    arity = 1
    attr_defaults = {"ksize": (2, 2), "strides": (2, 2), "padding": "VALID", "data_format": "NHWC"}

    def infer(self, inputs, attrs):
        x = inputs[0]
        _require_float(self.name, x)
        return [(x.dtype, pool_output_shape(self.name, x.shape, attrs))]

    def pooled_windows(self, x: np.ndarray, attrs: dict[str, Any], fill: float) -> tuple[np.ndarray, list]:
        (kh, kw), (sh, sw) = attrs["ksize"], attrs["strides"]
        dh, dw = attrs.get("dilations") or (1, 1)
        pad = attrs["padding"]
        pads = [window_output(x.shape[1], kh, sh, dh, pad if isinstance(pad, str) else pad[0])[1],
                window_output(x.shape[2], kw, sw, dw, pad if isinstance(pad, str) else pad[1])[1]]
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
    """Maximum over each window (padding, SAME or explicit ((top, bottom), (left, right)), never
    wins the max); `dilations` spaces the window's taps (a dilated pool, as ONNX's MaxPool has)."""

    name = "MaxPool"
    attr_defaults = dict(_Pool.attr_defaults, dilations=(1, 1))

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
class Conv2DBackpropInput(_WindowOp, _ShapeInputOp):
    """The gradient of conv2d with respect to its input (a transposed convolution).
    Inputs: filters, output gradient[, input shape]."""

    name = "Conv2DBackpropInput"
    arity = (2, 3)
    attr_defaults = dict(Conv2D.attr_defaults, shape=None)
    shape_inputs = (2,)

    def infer(self, inputs, attrs):
        f, g = inputs[0], inputs[1]
        _require_float(self.name, f, g)
        target = _target(self.name, _shape_arg(inputs, attrs, "shape", 2))
        dtype = promote(f.dtype, g.dtype)
        if target is None:
            conv_output_shape(None, f.shape, attrs)
            return [(dtype, _unknown_of_length(inputs[2]))]
        _check_gradient(self.name, "output gradient (input 1)", g, conv_output_shape(target, f.shape, attrs))
        return [(dtype, target)]

    def reference(self, inputs, attrs):
        f, g = inputs[0], inputs[1]
        fmt = attrs["data_format"]
        shape = self.target(inputs, attrs)
        n, h, w, c = _hw(shape, fmt)
        g = _to_nhwc(g, fmt)
        groups = attrs.get("groups", 1)
        per = f.shape[3] // groups

        def contrib(i: int, j: int) -> np.ndarray:   # each group's output gradient through its filters
            return np.concatenate([np.tensordot(g[..., k * per:(k + 1) * per], f[i, j, :, k * per:(k + 1) * per],
                                                axes=([3], [1])) for k in range(groups)], axis=3)

        out = _scatter_windows(g, contrib, (h, w), f.shape[:2], attrs, c)
        return _from_nhwc(out, fmt)


@register
class Conv2DBackpropFilter(_WindowOp, _ShapeInputOp):
    """The gradient of conv2d with respect to its filters. Inputs: x, output gradient[, filter shape]."""

    name = "Conv2DBackpropFilter"
    arity = (2, 3)
    attr_defaults = dict(Conv2D.attr_defaults, shape=None)
    shape_inputs = (2,)

    def infer(self, inputs, attrs):
        x, g = inputs[0], inputs[1]
        _require_float(self.name, x, g)
        target = _target(self.name, _shape_arg(inputs, attrs, "shape", 2))
        dtype = promote(x.dtype, g.dtype)
        if target is None:
            conv_output_shape(x.shape, None, attrs)
            return [(dtype, _unknown_of_length(inputs[2]))]
        _check_gradient(self.name, "output gradient (input 1)", g, conv_output_shape(x.shape, target, attrs))
        return [(dtype, target)]

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
        groups = attrs.get("groups", 1)
        per = cout // groups
        if oh and ow:
            for i in range(kh):
                for j in range(kw):
                    patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
                    for k in range(groups):   # group k: its input channels against its outputs
                        out[i, j, :, k * per:(k + 1) * per] = np.tensordot(
                            patch[..., k * cin:(k + 1) * cin], g[..., k * per:(k + 1) * per], axes=([0, 1, 2], [0, 1, 2]))
        return out


def _argmax_positions(x: np.ndarray, attrs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list]:
    """For each pooling window of NHWC x: the padded-input row and column of its (first) maximum."""
    (kh, kw), (sh, sw) = attrs["ksize"], attrs["strides"]
    dh, dw = attrs.get("dilations") or (1, 1)
    pads = _pads(x.shape[1:3], (kh, kw), dict(attrs, dilations=(dh, dw)))
    win = _windows(x, kh, kw, attrs, pads, -np.inf)          # (N, OH, OW, C, kh, kw)
    flat = win.reshape(win.shape[:4] + (-1,))
    best = np.argmax(flat, axis=-1) if flat.shape[-1] else np.zeros(flat.shape[:4], np.int64)
    oh, ow = win.shape[1:3]
    rows = np.arange(oh)[None, :, None, None] * sh + (best // kw) * dh
    cols = np.arange(ow)[None, None, :, None] * sw + (best % kw) * dw
    return rows, cols, pads


@register
class MaxPoolGrad(_WindowOp):
    """The gradient of max pooling: each window's gradient goes to its (first) maximum.
    Inputs: x, output gradient."""

    name = "MaxPoolGrad"
    is_pool = True
    arity = 2
    attr_defaults = dict(MaxPool.attr_defaults)

    def infer(self, inputs, attrs):
        x, g = inputs
        _require_same_float(self.name, x, g)
        _check_gradient(self.name, "output gradient (input 1)", g, pool_output_shape(self.name, x.shape, attrs))
        return [(x.dtype, x.shape)]

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
class MaxPoolGradGrad(_WindowOp):
    """The adjoint of MaxPoolGrad: each window takes the value at its (first) maximum's place.
    Inputs: x, a tensor shaped like x."""

    name = "MaxPoolGradGrad"
    is_pool = True
    arity = 2
    attr_defaults = dict(MaxPool.attr_defaults)

    def infer(self, inputs, attrs):
        x, gg = inputs
        _require_same_float(self.name, x, gg)
        _check_gradient(self.name, "input 1", gg, x.shape)
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
class AvgPoolGrad(_WindowOp, _ShapeInputOp):
    """The gradient of average pooling: each window's gradient, divided by its count of real
    elements, spread over them. Inputs: output gradient[, input shape]."""

    name = "AvgPoolGrad"
    is_pool = True
    arity = (1, 2)
    attr_defaults = dict(AvgPool.attr_defaults, shape=None)
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        g = inputs[0]
        _require_float(self.name, g)
        target = _target(self.name, _shape_arg(inputs, attrs, "shape", 1))
        if target is None:
            return [(g.dtype, _unknown_of_length(inputs[1]))]
        _check_gradient(self.name, "output gradient (input 0)", g, pool_output_shape(self.name, target, attrs))
        return [(g.dtype, target)]

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
def _conv2_d_gradient(build, node, g):
    x, f = node.inputs
    attrs = _window_attrs(node)
    dx = _with_shape(build, "Conv2DBackpropInput", [f, g], attrs, x)
    df = _with_shape(build, "Conv2DBackpropFilter", [x, g], attrs, f)
    return [build.cast(dx, x.dtype), build.cast(df, f.dtype)]


def _with_shape(build, op: str, inputs: list, attrs: dict[str, Any], like) -> Any:
    shape = build.shape_arg(like)
    if isinstance(shape, tuple):
        return build.apply1(op, inputs, dict(attrs, shape=shape))
    return build.apply1(op, inputs + [shape], dict(attrs, shape=None))


@register_gradient("Conv2DBackpropInput")
def _conv2_d_backprop_input_gradient(build, node, gg):
    f, g = node.inputs[0], node.inputs[1]
    attrs = _window_attrs(node)
    d_g = build.apply1("Conv2D", [gg, f], attrs)
    d_f = _with_shape(build, "Conv2DBackpropFilter", [gg, g], attrs, f)
    return [build.cast(d_f, f.dtype), build.cast(d_g, g.dtype)] + [None] * (len(node.inputs) - 2)


@register_gradient("Conv2DBackpropFilter")
def _conv2_d_backprop_filter_gradient(build, node, gf):
    x, g = node.inputs[0], node.inputs[1]
    attrs = _window_attrs(node)
    d_x = _with_shape(build, "Conv2DBackpropInput", [gf, g], attrs, x)
    d_g = build.apply1("Conv2D", [x, gf], attrs)
    return [build.cast(d_x, x.dtype), build.cast(d_g, g.dtype)] + [None] * (len(node.inputs) - 2)


@register_gradient("MaxPool")
def _max_pool_gradient(build, node, g):
    return [build.apply1("MaxPoolGrad", [node.inputs[0], g], dict(node.attrs))]


@register_gradient("MaxPoolGrad")
def _max_pool_grad_gradient(build, node, gg):
    return [None, build.apply1("MaxPoolGradGrad", [node.inputs[0], gg], dict(node.attrs))]


@register_gradient("MaxPoolGradGrad")
def _max_pool_grad_grad_gradient(build, node, g):
    return [None, build.apply1("MaxPoolGrad", [node.inputs[0], g], dict(node.attrs))]


@register_gradient("AvgPool")
def _avg_pool_gradient(build, node, g):
    return [_with_shape(build, "AvgPoolGrad", [g], dict(node.attrs), node.inputs[0])]


@register_gradient("AvgPoolGrad")
def _avg_pool_grad_gradient(build, node, gg):
    return [build.apply1("AvgPool", [gg], _window_attrs(node))] + [None] * (len(node.inputs) - 1)

"""Neural-network ops that are not elementwise: softmax family, cross-entropies, 2-D convolution
and pooling (TF semantics: NHWC or NCHW, HWIO filters, SAME / VALID / explicit padding).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..ir.dtypes import promote
from ..ir.shapes import format_shape, merge, normalize_axis
from ..ir.tensor import Tensor
from .base import OpDef, TensorType, register


def _require_float(op: str, *tensors: Tensor) -> None:
    for t in tensors:
        if not t.dtype.is_floating:
            raise DTypeError(f"{op} takes float32 or float64 tensors, got {t.dtype.name}",
                             hint="cast the input with gc.cast(x, gc.float32)")


def log_softmax_np(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True) if x.size else np.zeros_like(x)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    shifted = x - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@register
class Softmax(OpDef):
    """exp(x) / sum(exp(x)) along `axis`, computed with the max shift."""

    name = "Softmax"
    arity = 1
    attr_defaults = {"axis": -1}

    def infer(self, inputs, attrs):
        x = inputs[0]
        _require_float(self.name, x)
        if x.shape is not None:
            if not x.shape:
                raise ShapeError(f"{self.name} needs a tensor of rank >= 1")
            normalize_axis(attrs["axis"], len(x.shape))
        return [(x.dtype, x.shape)]

    def reference(self, inputs, attrs):
        return np.exp(log_softmax_np(inputs[0], attrs["axis"]))


@register
class LogSoftmax(Softmax):
    """x - logsumexp(x) along `axis`: finite wherever x is."""

    name = "LogSoftmax"

    def reference(self, inputs, attrs):
        return log_softmax_np(inputs[0], attrs["axis"])


@register
class SoftmaxCrossEntropyWithLogits(OpDef):
    """-sum(labels * log_softmax(logits)) along `axis` (0 * -inf counts as 0)."""

    name = "SoftmaxCrossEntropyWithLogits"
    arity = 2
    attr_defaults = {"axis": -1}

    def infer(self, inputs, attrs):
        labels, logits = inputs
        _require_float(self.name, labels, logits)
        try:
            shape = merge(labels.shape, logits.shape)
        except ShapeError:
            raise ShapeError(
                f"labels and logits must have the same shape, got {format_shape(labels.shape)} "
                f"and {format_shape(logits.shape)}"
            ) from None
        dtype = promote(labels.dtype, logits.dtype)
        if shape is None:
            return [(dtype, None)]
        if not shape:
            raise ShapeError("logits must have rank >= 1")
        axis = normalize_axis(attrs["axis"], len(shape))
        return [(dtype, shape[:axis] + shape[axis + 1:])]

    def reference(self, inputs, attrs):
        labels, logits = inputs
        dtype = np.result_type(labels, logits)
        logp = log_softmax_np(logits.astype(dtype), attrs["axis"])
        terms = np.where(labels != 0, labels * logp, 0).astype(dtype)
        return -np.sum(terms, axis=attrs["axis"])


@register
class SparseSoftmaxCrossEntropyWithLogits(OpDef):
    """logsumexp(logits) - logits[label] over the last axis; a label outside [0, classes) is an
    error when run."""

    name = "SparseSoftmaxCrossEntropyWithLogits"
    arity = 2

    def infer(self, inputs, attrs):
        labels, logits = inputs
        _require_float(self.name, logits)
        if not labels.dtype.is_integer:
            raise DTypeError(f"sparse labels must be int32 or int64 class indices, got {labels.dtype.name}",
                             hint="for one-hot or probability labels use softmax_cross_entropy_with_logits")
        if logits.shape is not None and not logits.shape:
            raise ShapeError("logits must have rank >= 1")
        if labels.shape is not None and logits.shape is not None:
            try:
                return [(logits.dtype, merge(labels.shape, logits.shape[:-1]))]
            except ShapeError:
                raise ShapeError(
                    f"labels must have the shape of logits without its last axis: labels "
                    f"{format_shape(labels.shape)}, logits {format_shape(logits.shape)}"
                ) from None
        return [(logits.dtype, labels.shape if logits.shape is None else logits.shape[:-1])]

    def reference(self, inputs, attrs):
        labels, logits = inputs
        classes = logits.shape[-1]
        bad = (labels < 0) | (labels >= classes)
        if np.any(bad):
            value = int(labels[tuple(np.argwhere(bad)[0])])
            raise InvalidArgumentError(f"label value {value} is outside the valid range [0, {classes})")
        logp = log_softmax_np(logits, -1)
        return -np.take_along_axis(logp, labels[..., None].astype(np.int64), axis=-1)[..., 0]


# --------------------------------------------------------------------------- convolution
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

"""Neural-network ops that are not elementwise: the softmax family and the cross-entropies.
Convolution and pooling live in conv.py."""
from __future__ import annotations


import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..ir.dtypes import promote
from ..ir.shapes import format_shape, merge, normalize_axis
from ..ir.tensor import Tensor
from . import attrs as attr_rules
from .base import OpDef, register, register_gradient


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
    attr_checks = {"axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError)}

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
    attr_checks = {"axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError)}

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


# --------------------------------------------------------------------------- gradient rules
@register_gradient("Softmax")
def _softmax_gradient(build, node, g):
    y = node.outputs[0]
    axis = node.attrs["axis"]
    inner = build.apply1("Sum", [build.multiply(g, y)], {"axis": (axis,), "keepdims": True})
    return [build.multiply(y, build.subtract(g, inner))]


@register_gradient("LogSoftmax")
def _log_softmax_gradient(build, node, g):
    y = node.outputs[0]
    total = build.apply1("Sum", [g], {"axis": (node.attrs["axis"],), "keepdims": True})
    return [build.subtract(g, build.multiply(build.exp(y), total))]


@register_gradient("SoftmaxCrossEntropyWithLogits")
def _softmax_cross_entropy_with_logits_gradient(build, node, g):
    """loss = -sum(l * x) + sum(l) * logsumexp(x): d/dx = sum(l) softmax(x) - l, d/dl = -log_softmax(x)."""
    labels, logits = node.inputs
    axis = node.attrs["axis"]
    dtype = node.outputs[0].dtype
    lf = labels if labels.dtype == dtype else build.cast(labels, dtype)
    xf = logits if logits.dtype == dtype else build.cast(logits, dtype)
    ge = build.expand_dims(g, axis)
    mass = build.apply1("Sum", [lf], {"axis": (axis,), "keepdims": True})
    d_logits = build.multiply(ge, build.subtract(build.multiply(build.softmax(xf, axis=axis), mass), lf))
    d_labels = build.multiply(ge, build.negative(build.apply1("LogSoftmax", [xf], {"axis": axis})))
    return [build.cast(d_labels, labels.dtype), build.cast(d_logits, logits.dtype)]


@register_gradient("SparseSoftmaxCrossEntropyWithLogits")
def _sparse_softmax_cross_entropy_with_logits_gradient(build, node, g):
    labels, logits = node.inputs
    classes = logits.shape[-1] if logits.shape is not None else None
    if classes is None:
        raise ShapeError("the gradient of sparse_softmax_cross_entropy_with_logits needs the number of classes")
    # The loss op rejects labels outside [0, classes); a training program that needs only this
    # gradient never runs the loss, so the gradient checks them too: a gather from 0..classes-1
    # is the labels themselves, or an InvalidArgumentError naming the bad one.
    checked = build.gather(build.constant(np.arange(classes, dtype=labels.dtype.np)), labels)
    onehot = build.apply1("OneHot", [checked], {"depth": classes, "on_value": 1.0, "off_value": 0.0, "axis": -1,
                                           "dtype": logits.dtype})
    return [None, build.multiply(build.expand_dims(g, -1), build.subtract(build.softmax(logits), onehot))]

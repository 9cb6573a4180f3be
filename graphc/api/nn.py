"""`gc.nn`: activations, softmax family, cross-entropies, convolution, pooling, dropout.

TF1 argument names and forms are accepted (strides as [1, s, s, 1], `filter=`, `dim=`,
`keep_prob=`), so TF1 code ports by renaming the module.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import GraphcError, ShapeError
from ..ir.shapes import is_fully_defined
from ..ir.tensor import Tensor
from . import array, math, rnn_cell
from .composite import conv2d_transpose, embedding_lookup, in_top_k, l2_normalize, top_k
from .control import identity, stop_gradient
from .convert import apply1, as_int_tuple, convert_to_tensor, elementwise_op, graph_of, is_tensor_like
from .random import random_uniform
from .rnn import bidirectional_dynamic_rnn, dynamic_rnn


def _activation(op: str, doc: str):
    def fn(features: Any, name: str | None = None) -> Tensor:
        return elementwise_op(op, features, name=name)
    fn.__doc__ = doc
    return fn


relu = _activation("Relu", "max(x, 0).")
relu6 = _activation("Relu6", "min(max(x, 0), 6).")
selu = _activation("Selu", "Scaled exponential linear unit.")
softplus = _activation("Softplus", "log(1 + e^x), stable for large |x|.")
softsign = _activation("Softsign", "x / (1 + |x|).")
silu = _activation("Silu", "x * sigmoid(x).")
swish = silu
sigmoid = math.sigmoid
tanh = math.tanh


def elu(features: Any, alpha: float = 1.0, name: str | None = None) -> Tensor:
    """x if x > 0 else alpha * (e^x - 1)."""
    return elementwise_op("Elu", features, name=name, attrs={"alpha": float(alpha)})


def leaky_relu(features: Any, alpha: float = 0.2, name: str | None = None) -> Tensor:
    """x if x > 0 else alpha * x."""
    return elementwise_op("LeakyRelu", features, name=name, attrs={"alpha": float(alpha)})


def gelu(features: Any, approximate: bool = False, name: str | None = None) -> Tensor:
    """x * Phi(x) (the tanh approximation if approximate)."""
    return elementwise_op("Gelu", features, name=name, attrs={"approximate": bool(approximate)})


def softmax(logits: Any, axis: int = -1, name: str | None = None, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along axis, computed stably."""
    return apply1("Softmax", [convert_to_tensor(logits)], {"axis": int(dim if dim is not None else axis)}, name)


def log_softmax(logits: Any, axis: int = -1, name: str | None = None, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along axis."""
    return apply1("LogSoftmax", [convert_to_tensor(logits)], {"axis": int(dim if dim is not None else axis)}, name)


def bias_add(value: Any, bias: Any, data_format: str | None = None, name: str | None = None) -> Tensor:
    """value + bias, bias being 1-D over the channel (last, or second for NC... formats)."""
    x, b = convert_to_tensor(value), convert_to_tensor(bias)
    if b.shape is not None and len(b.shape) != 1:
        raise ShapeError(f"bias_add needs a 1-D bias, got shape {b.shape}")
    channels_first = data_format is not None and data_format.startswith("NC")
    if x.shape is not None:
        if len(x.shape) < 2:
            raise ShapeError(f"bias_add needs a value of rank >= 2, got shape {x.shape}")
        c = x.shape[1] if channels_first else x.shape[-1]
        if c is not None and b.shape is not None and b.shape[0] not in (None, c):
            raise ShapeError(f"bias_add: bias has {b.shape[0]} entries but the value has {c} channels")
    if channels_first:
        if x.shape is None:
            raise ShapeError("bias_add with an NC.. data_format needs a value of known rank")
        b = array.reshape(b, [-1] + [1] * (len(x.shape) - 2))
    return elementwise_op("Add", x, b, name=name or "BiasAdd")


def _pair(value: Any, data_format: str, what: str) -> tuple[int, int]:
    """TF forms of strides / ksize / dilations: int, [h, w], or [1, h, w, 1] / [1, 1, h, w]."""
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    v = [int(x) for x in value]
    if len(v) == 1:
        return v[0], v[0]
    if len(v) == 2:
        return v[0], v[1]
    if len(v) == 4:
        batch_and_channel = (v[0], v[3]) if data_format == "NHWC" else (v[0], v[1])
        if batch_and_channel != (1, 1):
            raise GraphcError(f"{what} over the batch and channel dimensions must be 1, got {value!r}")
        return (v[1], v[2]) if data_format == "NHWC" else (v[2], v[3])
    raise GraphcError(f"{what} must be an int, [h, w] or a 4-element list, got {value!r}")


def _padding(padding: Any, data_format: str) -> Any:
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID"):
            raise GraphcError(f"padding must be 'SAME' or 'VALID' (or explicit pairs), got {padding!r}")
        return mode
    pairs = [tuple(int(x) for x in p) for p in padding]
    if len(pairs) == 4:
        pairs = pairs[1:3] if data_format == "NHWC" else pairs[2:4]
    if len(pairs) != 2:
        raise GraphcError(f"explicit padding needs 2 (or 4) (before, after) pairs, got {padding!r}")
    return tuple(pairs)


def conv2d(input: Any, filters: Any = None, strides: Any = 1, padding: Any = "VALID",
           data_format: str = "NHWC", dilations: Any = 1, name: str | None = None, filter: Any = None,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) with filters of shape (height, width, in, out); with
    `groups`, the input channels split into that many groups, each convolved with its share of
    the filters (shape (height, width, in / groups, out)) as one op."""
    filters = filters if filters is not None else filter
    if filters is None:
        raise GraphcError("conv2d needs filters")
    x, f = convert_to_tensor(input), convert_to_tensor(filters)
    attrs = {"strides": _pair(strides, data_format, "strides"), "padding": _padding(padding, data_format),
             "data_format": data_format, "dilations": _pair(dilations, data_format, "dilations")}
    if groups != 1:
        attrs["groups"] = groups
    return apply1("Conv2D", [x, f], attrs, name)


def depthwise_conv2d(input: Any, filter: Any, strides: Any, padding: Any, data_format: str = "NHWC",
                     dilations: Any = 1, name: str | None = None) -> Tensor:
    """TF's depthwise convolution: filter (height, width, in, multiplier); each input channel
    convolved with its own `multiplier` filters (out = in * multiplier), one grouped Conv2D."""
    x, f = convert_to_tensor(input), convert_to_tensor(filter)
    if f.shape is None or len(f.shape) != 4 or None in f.shape:
        raise GraphcError(f"depthwise_conv2d needs a filter of known shape (height, width, in, multiplier), "
                          f"got {f.shape}")
    kh, kw, cin, mult = f.shape
    from . import array

    return conv2d(x, array.reshape(f, [kh, kw, 1, cin * mult]), strides, padding, data_format, dilations, name,
                  groups=cin)


def _pool(op: str, input: Any, ksize: Any, strides: Any, padding: Any, data_format: str, name: str | None,
          dilations: Any = None) -> Tensor:
    attrs = {"ksize": _pair(ksize, data_format, "ksize"), "strides": _pair(strides, data_format, "strides"),
             "padding": _padding(padding, data_format), "data_format": data_format}
    if dilations is not None:
        attrs["dilations"] = _pair(dilations, data_format, "dilations")
    return apply1(op, [convert_to_tensor(input)], attrs, name)


def max_pool2d(input: Any, ksize: Any, strides: Any, padding: Any, data_format: str = "NHWC",
               name: str | None = None, dilations: Any = None) -> Tensor:
    """Maximum over windows; `dilations` spaces a window's taps (an atrous / dilated pool)."""
    return _pool("MaxPool", input, ksize, strides, padding, data_format, name, dilations)


def avg_pool2d(input: Any, ksize: Any, strides: Any, padding: Any, data_format: str = "NHWC",
               name: str | None = None) -> Tensor:
    """Mean over windows (padding excluded from the count)."""
    return _pool("AvgPool", input, ksize, strides, padding, data_format, name)


max_pool = max_pool2d
avg_pool = avg_pool2d


def sigmoid_cross_entropy_with_logits(labels: Any = None, logits: Any = None, name: str | None = None) -> Tensor:
    """Elementwise -z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x)), computed stably."""
    if labels is None or logits is None:
        raise GraphcError("sigmoid_cross_entropy_with_logits needs labels and logits")
    return elementwise_op("SigmoidCrossEntropyWithLogits", labels, logits, name=name)


def softmax_cross_entropy_with_logits(labels: Any = None, logits: Any = None, axis: int = -1,
                                      name: str | None = None, dim: int | None = None) -> Tensor:
    """-sum(labels * log_softmax(logits)) along axis (labels are probabilities)."""
    if labels is None or logits is None:
        raise GraphcError("softmax_cross_entropy_with_logits needs labels and logits")
    lg = convert_to_tensor(logits)
    with graph_of([lg]).as_default():
        lb = convert_to_tensor(labels) if not isinstance(labels, (list, tuple, float, int)) else \
            convert_to_tensor(labels, dtype=lg.dtype)
    attrs = {"axis": int(dim if dim is not None else axis)}
    return apply1("SoftmaxCrossEntropyWithLogits", [lb, lg], attrs, name)


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def sparse_softmax_cross_entropy_with_logits(labels: Any = None, logits: Any = None,
                                             name: str | None = None) -> Tensor:
    """logsumexp(logits) - logits[label] over the last axis (labels are class indices)."""
    if labels is None or logits is None:
        raise GraphcError("sparse_softmax_cross_entropy_with_logits needs labels and logits")
    lg = convert_to_tensor(logits)
    with graph_of([lg]).as_default():
        lb = convert_to_tensor(labels)
    return apply1("SparseSoftmaxCrossEntropyWithLogits", [lb, lg], {}, name)


def l2_loss(t: Any, name: str | None = None) -> Tensor:
    """sum(t ** 2) / 2."""
    x = convert_to_tensor(t)
    with graph_of([x]).as_default():
        return math.multiply(math.reduce_sum(math.square(x)), 0.5, name=name or "L2Loss")


def moments(x: Any, axes: Any, keepdims: bool = False, name: str | None = None) -> tuple[Tensor, Tensor]:
    """(mean, variance) over axes."""
    x = convert_to_tensor(x)
    with graph_of([x]).as_default():
        mean = math.reduce_mean(x, axes, keepdims=True)
        variance = math.reduce_mean(math.squared_difference(x, stop_gradient(mean)), axes, keepdims=keepdims)
        # squeeze with an empty list would remove every size-1 dim, not just the reduced ones
        if not keepdims and (axes is None or as_int_tuple(axes, "axes")):
            mean = array.squeeze(mean, axes)
        return mean, variance


def batch_normalization(x: Any, mean: Any, variance: Any, offset: Any, scale: Any,
                        variance_epsilon: float, name: str | None = None) -> Tensor:
    """(x - mean) * scale / sqrt(variance + epsilon) + offset (offset/scale may be None)."""
    x = convert_to_tensor(x)
    with graph_of([x]).as_default():
        inv = math.rsqrt(math.add(variance, variance_epsilon))
        if scale is not None:
            inv = math.multiply(inv, scale)
        y = math.multiply(math.subtract(x, mean), inv)
        return math.add(y, offset, name=name) if offset is not None else y


def dropout(x: Any, rate: Any = None, noise_shape: Any = None, seed: int | None = None,
            name: str | None = None, keep_prob: Any = None) -> Tensor:
    """Zero each element with probability `rate` and scale the rest by 1 / (1 - rate).
    `rate` may be a tensor (e.g. a placeholder that is 0 at test time); TF1's keep_prob works too."""
    if (rate is None) == (keep_prob is None):
        raise GraphcError("dropout needs exactly one of rate and keep_prob")
    x = convert_to_tensor(x)
    with graph_of([x]).as_default():
        # A number (Python or NumPy) becomes a Python float and a tensor takes x's dtype, so the
        # result keeps x's dtype (np.float64(0.5) would otherwise make a float32 x float64).
        if rate is None:
            if is_tensor_like(keep_prob):
                rate = math.subtract(1.0, _as_dtype_of(keep_prob, x))
            else:
                rate = 1.0 - _as_float(keep_prob, "keep_prob")
        elif is_tensor_like(rate):
            rate = _as_dtype_of(rate, x)
        else:
            rate = _as_float(rate, "rate")
        if isinstance(rate, numbers.Real) and not 0 <= rate < 1:
            raise GraphcError(f"dropout rate must be in [0, 1), got {rate}")
        if isinstance(rate, numbers.Real) and rate == 0:
            return identity(x)
        shape = noise_shape if noise_shape is not None else (x.shape if is_fully_defined(x.shape) else array.shape(x))
        u = random_uniform(shape, dtype=x.dtype, seed=seed)
        keep = math.greater_equal(u, rate)
        scaled = math.divide(x, math.subtract(1.0, rate)) if not isinstance(rate, numbers.Real) \
            else math.multiply(x, 1.0 / (1.0 - rate))
        return math.where(keep, scaled, 0.0, name=name or "dropout")


def _as_float(value: Any, what: str) -> float:
    try:
        return float(np.asarray(value).item())
    except (TypeError, ValueError):
        raise GraphcError(f"dropout {what} must be a number or a scalar tensor, got {value!r}") from None


def _as_dtype_of(t: Any, x: Tensor) -> Tensor:
    t = convert_to_tensor(t)
    return t if t.dtype == x.dtype or not x.dtype.is_floating else math.cast(t, x.dtype)


__all__ = [
    "avg_pool",
    "avg_pool2d",
    "batch_normalization",
    "bias_add",
    "bidirectional_dynamic_rnn",
    "conv2d",
    "conv2d_transpose",
    "dropout",
    "dynamic_rnn",
    "elu",
    "embedding_lookup",
    "gelu",
    "in_top_k",
    "l2_loss",
    "l2_normalize",
    "leaky_relu",
    "log_softmax",
    "max_pool",
    "max_pool2d",
    "moments",
    "relu",
    "relu6",
    "rnn_cell",
    "selu",
    "sigmoid",
    "sigmoid_cross_entropy_with_logits",
    "silu",
    "softmax",
    "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2",
    "softplus",
    "softsign",
    "sparse_softmax_cross_entropy_with_logits",
    "swish",
    "tanh",
    "top_k",
]

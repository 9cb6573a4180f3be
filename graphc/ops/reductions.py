"""Reductions over axes: sum, mean, max, min, prod, logsumexp, any, all, argmax, argmin.

Attribute `axis` is None (all axes) or a tuple of possibly negative ints, kept as the user wrote
it so that it also works on inputs whose rank is unknown until run time.

Dtypes: sum and prod keep int and float dtypes and count bools as int32 (TF/JAX style, where
NumPy would widen to int64); mean and logsumexp of ints give float64 like NumPy's mean.
Empty reductions give the identity (0, 1, -inf / dtype min for max, +inf / max for min), as TF
does; mean of nothing is NaN; argmax of nothing is an error.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.dtypes import DType, float_result, from_numpy, int32, int64
from ..ir.shapes import Shape, normalize_axes, normalize_axis
from ..ir.tensor import Tensor
from . import attrs as attr_rules
from .base import OpDef, TensorType, register, register_gradient
from .shape_ops import _ShapeInputOp, _shape_arg, _unknown_of_length


def reduced_shape(shape: Shape, axis: tuple[int, ...] | None, keepdims: bool) -> Shape:
    """The static shape after reducing `axis` (None: all) of `shape`."""
    if shape is None:
        return () if axis is None and not keepdims else None
    axes = normalize_axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _np_axis(axis: tuple[int, ...] | None) -> Any:
    return None if axis is None else tuple(axis)


class _Reduction(OpDef):
    arity = 1
    attr_defaults = {"axis": None, "keepdims": False}
    attr_checks = {
        "axis": attr_rules.int_tuple(
            low=-attr_rules.MAX_RANK, high=attr_rules.MAX_RANK - 1, optional=True, max_length=attr_rules.MAX_RANK
        ),
        "keepdims": attr_rules.boolean(),
    }
    allow_bool = True

    def result_dtype(self, dtype: DType) -> DType:
        return dtype

    def infer(self, inputs: Sequence[Tensor], attrs: dict[str, Any]) -> list[TensorType]:
        x = inputs[0]
        if x.dtype.is_bool and not self.allow_bool:
            raise DTypeError(f"{self.name} does not take bool tensors; cast to a number first")
        return [(self.result_dtype(x.dtype), reduced_shape(x.shape, attrs["axis"], attrs["keepdims"]))]


@register
class Sum(_Reduction):
    """Sum over axes (identity 0)."""

    name = "Sum"

    def result_dtype(self, dtype: DType) -> DType:
        return int32 if dtype.is_bool else dtype

    def reference(self, inputs, attrs):
        x = inputs[0]
        out_dtype = self.result_dtype(_dt(x))
        return np.sum(x, axis=_np_axis(attrs["axis"]), keepdims=attrs["keepdims"], dtype=out_dtype.np)


@register
class Prod(Sum):
    """Product over axes (identity 1)."""

    name = "Prod"

    def reference(self, inputs, attrs):
        x = inputs[0]
        out_dtype = self.result_dtype(_dt(x))
        return np.prod(x, axis=_np_axis(attrs["axis"]), keepdims=attrs["keepdims"], dtype=out_dtype.np)


@register
class Mean(_Reduction):
    """Arithmetic mean over axes (NaN over nothing)."""

    name = "Mean"

    def result_dtype(self, dtype: DType) -> DType:
        return float_result(dtype)

    def reference(self, inputs, attrs):
        # sum / count rather than np.mean, which warns (a RuntimeWarning, not a floating-point
        # flag) on an empty slice; the result is the same, and NaN over nothing.
        x = inputs[0]
        out = self.result_dtype(_dt(x)).np
        axes = normalize_axes(attrs["axis"], x.ndim)
        count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        total = np.asarray(np.sum(x, axis=_np_axis(attrs["axis"]), keepdims=attrs["keepdims"], dtype=out))
        with np.errstate(all="ignore"):
            return (total / np.asarray(count, dtype=out)).astype(out, copy=False)


class _Extremum(_Reduction):
    fn = staticmethod(np.max)

    def identity(self, dtype: DType) -> Any:
        raise NotImplementedError

    def reference(self, inputs, attrs):
        x = inputs[0]
        return self.fn(x, axis=_np_axis(attrs["axis"]), keepdims=attrs["keepdims"], initial=self.identity(_dt(x)))


@register
class Max(_Extremum):
    """Maximum over axes; NaN propagates; over nothing: -inf (dtype min for ints)."""

    name = "Max"
    fn = staticmethod(np.max)

    def identity(self, dtype: DType) -> Any:
        return -np.inf if dtype.is_floating else dtype.min


@register
class Min(_Extremum):
    """Minimum over axes; NaN propagates; over nothing: +inf (dtype max for ints)."""

    name = "Min"
    fn = staticmethod(np.min)

    def identity(self, dtype: DType) -> Any:
        return np.inf if dtype.is_floating else dtype.max


@register
class Any_(_Reduction):
    """Logical or over axes (False over nothing)."""

    name = "Any"

    def infer(self, inputs, attrs):
        if not inputs[0].dtype.is_bool:
            raise DTypeError(f"reduce_any takes bool tensors, got {inputs[0].dtype.name}")
        return super().infer(inputs, attrs)

    def reference(self, inputs, attrs):
        return np.any(inputs[0], axis=_np_axis(attrs["axis"]), keepdims=attrs["keepdims"])


@register
class All(Any_):
    """Logical and over axes (True over nothing)."""

    name = "All"

    def reference(self, inputs, attrs):
        return np.all(inputs[0], axis=_np_axis(attrs["axis"]), keepdims=attrs["keepdims"])


@register
class LogSumExp(_Reduction):
    """log(sum(exp(x))) over axes, computed with the max shift (finite for x = +-800)."""

    name = "LogSumExp"
    allow_bool = False

    def result_dtype(self, dtype: DType) -> DType:
        return float_result(dtype)

    def reference(self, inputs, attrs):
        x = inputs[0]
        dtype = self.result_dtype(_dt(x)).np
        x = x.astype(dtype, copy=False)
        axis, keepdims = _np_axis(attrs["axis"]), attrs["keepdims"]
        if x.size == 0:
            shape = np.sum(x, axis=axis, keepdims=keepdims).shape
            return np.full(shape, -np.inf, dtype=dtype)
        m = np.max(x, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0).astype(dtype)
        s = np.sum(np.exp(x - m), axis=axis, keepdims=True)
        out = np.log(s) + m
        if not keepdims:
            out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
        return out.astype(dtype, copy=False)


class _ArgExtremum(OpDef):
    arity = 1
    attr_defaults = {"axis": 0, "output_type": int64}
    attr_checks = {
        "axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError),
        "output_type": attr_rules.dtype(),
    }

    def infer(self, inputs, attrs):
        x = inputs[0]
        if x.dtype.is_bool:
            raise DTypeError(f"{self.name} does not take bool tensors; cast to int32 first")
        out_type = attrs["output_type"]
        if out_type not in (int32, int64):
            raise DTypeError(f"{self.name} output_type must be int32 or int64, got {out_type}")
        if x.shape is None:
            return [(out_type, None)]
        axis = normalize_axis(attrs["axis"], len(x.shape))
        if x.shape[axis] == 0:
            raise ShapeError(f"{self.name} over an empty axis {axis} of shape {x.shape} has no answer")
        return [(out_type, tuple(d for i, d in enumerate(x.shape) if i != axis))]

    def reference(self, inputs, attrs):
        x = inputs[0]
        if x.shape[attrs["axis"]] == 0:
            raise ShapeError(f"{self.name} over an empty axis has no answer")
        fn = np.argmax if self.name == "ArgMax" else np.argmin
        return fn(x, axis=attrs["axis"]).astype(attrs["output_type"].np)


@register
class ArgMax(_ArgExtremum):
    """Index of the largest value along `axis` (first one on ties; a NaN counts as largest)."""

    name = "ArgMax"


@register
class ArgMin(_ArgExtremum):
    """Index of the smallest value along `axis` (first one on ties; a NaN counts as smallest)."""

    name = "ArgMin"


def _dt(x: np.ndarray) -> DType:
    return from_numpy(x.dtype)


@register
class SumToShape(_ShapeInputOp):
    """Sum a broadcast result back to `shape` (the gradient of broadcasting): leading extra
    dims and dims where `shape` has 1 are summed. The target comes from an attribute or, while
    building, a shape input (folded when compiling)."""

    name = "SumToShape"
    arity = (1, 2)
    attr_defaults = {"shape": None}
    attr_checks = {"shape": attr_rules.shape(allow_unknown=False)}
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        x = inputs[0]
        target = _shape_arg(inputs, attrs, "shape", 1)
        if target is None:
            return [(x.dtype, _unknown_of_length(inputs[1]))]
        if any(t < 0 for t in target):
            raise ShapeError(f"cannot sum to shape {tuple(target)}: it has a negative size")
        if x.shape is not None:
            if len(target) > len(x.shape):
                raise ShapeError(f"cannot sum shape {x.shape} to the higher-rank shape {target}")
            for d, t in zip(x.shape[::-1], target[::-1]):
                if d is not None and t != 1 and d != t:
                    raise ShapeError(f"cannot sum shape {x.shape} to shape {target}")
        return [(x.dtype, tuple(target))]

    def reference(self, inputs, attrs):
        x = inputs[0]
        target = self.target(inputs, attrs)
        lead = x.ndim - len(target)
        axes = tuple(range(lead)) + tuple(lead + i for i, t in enumerate(target) if t == 1 and x.shape[lead + i] != 1)
        return np.sum(x, axis=axes, dtype=x.dtype).reshape(target) if axes else x.reshape(target)


# --------------------------------------------------------------------------- gradient rules
@register_gradient("SumToShape")
def _sum_to_shape_gradient(build, node, g):
    # no gradient for the optional shape input (present when the target was unknown while building)
    return [build.broadcast_to(g, build.shape_arg(node.inputs[0]))] + [None] * (len(node.inputs) - 1)


@register_gradient("Sum")
def _sum_gradient(build, node, g):
    x = node.inputs[0]
    return [build.cast(build.unreduce(g, x, node.attrs["axis"], node.attrs["keepdims"]), x.dtype)]


@register_gradient("Mean")
def _mean_gradient(build, node, g):
    x, y = node.inputs[0], node.outputs[0]
    if x.size is not None and y.size is not None:
        count = float(x.size // max(y.size, 1)) if y.size else 1.0
    else:  # sizes known when compiling: the ratio of element counts
        count = build.divide(
            build.cast(build.reduce_sum(build.ones_like(x)), y.dtype),
            build.cast(build.reduce_sum(build.ones_like(y)), y.dtype),
        )
    return [build.cast(build.unreduce(build.divide(g, count), x, node.attrs["axis"], node.attrs["keepdims"]), x.dtype)]


def _extremum_grad(build, node, g):
    """Split g equally among the elements that attain the max (min): ties handled consistently."""
    x, y = node.inputs[0], node.outputs[0]
    axis, keepdims = node.attrs["axis"], node.attrs["keepdims"]
    y_full = build.unreduce(y, x, axis, keepdims)
    hits = build.cast(build.equal(x, y_full), x.dtype)
    count = build.unreduce(build.apply1("Sum", [hits], {"axis": axis, "keepdims": keepdims}), x, axis, keepdims)
    return [build.divide(build.multiply(hits, build.unreduce(g, x, axis, keepdims)), count)]


register_gradient("Max")(_extremum_grad)
register_gradient("Min")(_extremum_grad)


def _exclusive_cumprod(build, t, n: int):
    """out[:, i] = prod(t[:, :i]) (1 for i = 0) along axis 1 of an (M, n) tensor, n >= 1, by
    log2(n) doubling steps of slices, pads and products (so it is differentiable again)."""

    def shifted(c, k):  # c moved right by k along axis 1, ones coming in
        return build.pad(c[:, : n - k], [(0, 0), (k, 0)], constant_values=1)

    c, k = t, 1
    while k < n:
        c = build.multiply(c, shifted(c, k))
        k *= 2
    return shifted(c, 1)


def _prod_others_static(build, x, axis):
    """For each element, the product of the other elements of its reduced slice, as TF computes
    it: exclusive products from the left times those from the right. No division, so exact with
    zeros (and with products that underflow), and its own derivatives are exact too."""
    rank = len(x.shape)
    axes = sorted(normalize_axes(axis, rank))
    kept = [i for i in range(rank) if i not in axes]
    perm = kept + axes
    m = int(np.prod([x.shape[i] for i in kept], dtype=np.int64))
    n = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    if m == 0 or n == 0:
        return build.zeros_like(x)
    moved = x if perm == list(range(rank)) else build.transpose(x, perm)
    flat = build.reshape(moved, (m, n))
    left = _exclusive_cumprod(build, flat, n)
    right = _exclusive_cumprod(build, flat[:, ::-1], n)[:, ::-1]
    others = build.reshape(build.multiply(left, right), tuple(x.shape[p] for p in perm))
    if perm == list(range(rank)):
        return others
    inverse = [0] * rank
    for i, p in enumerate(perm):
        inverse[p] = i
    return build.transpose(others, inverse)


def _prod_others_dynamic(build, x, axis, keepdims):
    """The product of the others when x's shape is only known at run time: prod / x_i where the
    slice has no zero; where it has zeros, written so that the first derivative of "the others"
    is right as well (second derivatives, Hessians): with one zero z, the product P of the
    non-zeros at z's place and z * P / x_i elsewhere (0, with derivative P / x_i in z); with two
    zeros z, w, (z + w - x_i) * P at the zeros (the other zero times P) and 0 elsewhere; with
    more, 0. (A product that underflows to 0 without a zero loses the others; see the static path.)"""

    def reduce_back(op, t):
        return build.unreduce(build.apply1(op, [t], {"axis": axis, "keepdims": keepdims}), x, axis, keepdims)

    is_zero = build.equal(x, 0)
    zero = build.zeros_like(x)
    safe = build.where(is_zero, build.ones_like(x), x)
    nonzero_prod = reduce_back("Prod", safe)  # P: the product of the non-zeros
    count = reduce_back("Sum", build.cast(is_zero, x.dtype))  # the number of zeros
    zero_sum = reduce_back("Sum", build.where(is_zero, x, zero))  # 0, but its derivative is 1 at each zero
    no_zero = build.divide(nonzero_prod, safe)
    one_zero = build.where(is_zero, nonzero_prod, build.divide(build.multiply(zero_sum, nonzero_prod), safe))
    two_zeros = build.where(is_zero, build.multiply(build.subtract(zero_sum, x), nonzero_prod), zero)
    return build.where(
        build.equal(count, 0),
        no_zero,
        build.where(build.equal(count, 1), one_zero, build.where(build.equal(count, 2), two_zeros, zero)),
    )


@register_gradient("Prod")
def _prod_gradient(build, node, g):
    """d prod / d x_i = the product of the other elements of x_i's reduced slice."""
    x = node.inputs[0]
    axis, keepdims = node.attrs["axis"], node.attrs["keepdims"]
    if x.size is not None:
        others = _prod_others_static(build, x, axis)
    else:
        others = _prod_others_dynamic(build, x, axis, keepdims)
    return [build.multiply(others, build.unreduce(g, x, axis, keepdims))]


@register_gradient("LogSumExp")
def _log_sum_exp_gradient(build, node, g):
    x, y = node.inputs[0], node.outputs[0]
    axis, keepdims = node.attrs["axis"], node.attrs["keepdims"]
    xf = x if x.dtype == y.dtype else build.cast(x, y.dtype)
    weights = build.exp(build.subtract(xf, build.unreduce(y, x, axis, keepdims)))
    return [build.cast(build.multiply(weights, build.unreduce(g, x, axis, keepdims)), x.dtype)]

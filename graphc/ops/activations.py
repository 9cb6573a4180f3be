"""Neural-network activations and the elementwise cross-entropy, as scalar expressions.

Each body is written in its numerically stable form (softplus never computes exp(x) for large
x; the sigmoid cross-entropy never takes log(sigmoid)), so the reference and every generated
kernel are stable by construction.
"""
from __future__ import annotations

import math

from ..ir.dtypes import float_result, promote
from . import scalar as S
from .base import elementwise, register_gradient

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _floating(body):
    """Compute in the float type of the inputs (float_result of their promotion, as NumPy's exp
    would): a composite activation of int32 is float64, of bool float32, never an int or a
    refusal (e.g. -|x| would be undefined for bools)."""
    def wrapped(*xs: S.SExpr, **attrs):
        dtype = float_result(promote(*(x.dtype for x in xs)))
        return body(*(S.cast(x, dtype) for x in xs), **attrs)
    return wrapped


def _softplus(x: S.SExpr) -> S.SExpr:
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for any x.
    return S.maximum(x, 0) + S.log1p(S.exp(-S.abs_(x)))


def _elu(x: S.SExpr, alpha: float) -> S.SExpr:
    return S.select(x > 0, x, alpha * S.expm1(x))


def _gelu(x: S.SExpr, approximate: bool) -> S.SExpr:
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + S.tanh(inner))
    return 0.5 * x * (1 + S.erf(x * (1 / math.sqrt(2))))


Relu = elementwise("Relu", 1, lambda x: S.maximum(x, 0), doc="max(x, 0)")
Relu6 = elementwise("Relu6", 1, lambda x: S.minimum(S.maximum(x, 0), 6), doc="min(max(x, 0), 6)")
LeakyRelu = elementwise(
    "LeakyRelu", 1, _floating(lambda x, alpha: S.select(x > 0, x, x * alpha)), {"alpha": 0.2},
    doc="x if x > 0 else alpha * x",
)
Elu = elementwise("Elu", 1, _floating(_elu), {"alpha": 1.0}, doc="x if x > 0 else alpha * (e^x - 1)")
Selu = elementwise("Selu", 1, _floating(lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA)), doc="scaled ELU")
Softplus = elementwise("Softplus", 1, _floating(_softplus), doc="log(1 + e^x), stable")
Softsign = elementwise("Softsign", 1, _floating(lambda x: x / (1 + S.abs_(x))), doc="x / (1 + |x|)")
Silu = elementwise("Silu", 1, _floating(lambda x: x * S.sigmoid(x)), doc="x * sigmoid(x) (swish)")
Gelu = elementwise("Gelu", 1, _floating(_gelu), {"approximate": False},
                   doc="x * Phi(x); tanh form if approximate")
SigmoidCrossEntropyWithLogits = elementwise(
    "SigmoidCrossEntropyWithLogits", 2,
    _floating(lambda z, x: S.maximum(x, 0) - x * z + S.log1p(S.exp(-S.abs_(x)))),
    doc="-(z log sigmoid(x) + (1-z) log(1-sigmoid(x))), as max(x,0) - x z + log1p(e^-|x|)",
)


# --------------------------------------------------------------------------- gradient rules
def _activation_grad(op: str):
    """Register rule(b, node, g) from fn(b, x, g, y) -> dx, cast back to x's dtype."""
    def deco(fn):
        register_gradient(op)(lambda b, node, g: [b.unbroadcast(fn(b, node.inputs[0], g, node.outputs[0]),
                                                                node.inputs[0])])
        return fn
    return deco


def _x_float(b, x, y):
    """x in the dtype the activation computed in (its output's)."""
    return x if x.dtype == y.dtype else b.cast(x, y.dtype)


@_activation_grad("Relu")
def _(b, x, g, y):
    return b.where(b.greater(x, 0), g, b.zeros_like(g))


@_activation_grad("Relu6")
def _(b, x, g, y):
    return b.where(b.logical_and(b.greater(x, 0), b.less(x, 6)), g, b.zeros_like(g))


@register_gradient("LeakyRelu")
def _(b, node, g):
    x = node.inputs[0]
    return [b.unbroadcast(b.where(b.greater(x, 0), g, b.multiply(g, node.attrs["alpha"])), x)]


@register_gradient("Elu")
def _(b, node, g):
    x, y = node.inputs[0], node.outputs[0]
    slope = b.add(y, node.attrs["alpha"])  # d/dx alpha (e^x - 1) = y + alpha
    return [b.unbroadcast(b.where(b.greater(x, 0), g, b.multiply(g, slope)), x)]


@_activation_grad("Selu")
def _(b, x, g, y):
    return b.where(b.greater(x, 0), b.multiply(g, _SELU_SCALE), b.multiply(g, b.add(y, _SELU_SCALE * _SELU_ALPHA)))


@_activation_grad("Softplus")
def _(b, x, g, y):
    return b.multiply(g, b.sigmoid(_x_float(b, x, y)))


@_activation_grad("Softsign")
def _(b, x, g, y):
    return b.divide(g, b.square(b.add(b.abs(_x_float(b, x, y)), 1.0)))


@_activation_grad("Silu")
def _(b, x, g, y):
    xf = _x_float(b, x, y)
    s = b.sigmoid(xf)
    return b.multiply(g, b.multiply(s, b.add(1.0, b.multiply(xf, b.subtract(1.0, s)))))


@register_gradient("Gelu")
def _(b, node, g):
    x, y = node.inputs[0], node.outputs[0]
    xf = _x_float(b, x, y)
    if node.attrs["approximate"]:
        c = math.sqrt(2 / math.pi)
        t = b.apply1("Tanh", [b.multiply(c, b.add(xf, b.multiply(0.044715, b.multiply(xf, b.square(xf)))))])
        inner = b.multiply(c, b.add(1.0, b.multiply(3 * 0.044715, b.square(xf))))
        d = b.add(b.multiply(0.5, b.add(1.0, t)),
                  b.multiply(b.multiply(0.5, xf), b.multiply(b.subtract(1.0, b.square(t)), inner)))
    else:
        cdf = b.multiply(0.5, b.add(1.0, b.erf(b.multiply(xf, 1 / math.sqrt(2)))))
        pdf = b.multiply(1 / math.sqrt(2 * math.pi), b.exp(b.multiply(-0.5, b.square(xf))))
        d = b.add(cdf, b.multiply(xf, pdf))
    return [b.unbroadcast(b.multiply(g, d), x)]


@register_gradient("SigmoidCrossEntropyWithLogits")
def _(b, node, g):
    z, x = node.inputs
    y = node.outputs[0]
    zf, xf = _x_float(b, z, y), _x_float(b, x, y)
    return [b.unbroadcast(b.multiply(g, b.negative(xf)), z),
            b.unbroadcast(b.multiply(g, b.subtract(b.sigmoid(xf), zf)), x)]

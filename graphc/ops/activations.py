"""Neural-network activations and the elementwise cross-entropy, as scalar expressions.

Each body is written in its numerically stable form (softplus never computes exp(x) for large
x; the sigmoid cross-entropy never takes log(sigmoid)), so the reference and every generated
kernel are stable by construction.
"""
from __future__ import annotations

import math

from ..ir.dtypes import float_result, promote
from . import scalar as sexpr
from .base import elementwise, register_gradient

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _floating(body):
    """Compute in the float type of the inputs (float_result of their promotion, as NumPy's exp
    would): a composite activation of int32 is float64, of bool float32, never an int or a
    refusal (e.g. -|x| would be undefined for bools)."""
    def wrapped(*xs: sexpr.SExpr, **attrs):
        dtype = float_result(promote(*(x.dtype for x in xs)))
        return body(*(sexpr.cast(x, dtype) for x in xs), **attrs)
    return wrapped


def _softplus(x: sexpr.SExpr) -> sexpr.SExpr:
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for any x.
    return sexpr.maximum(x, 0) + sexpr.log1p(sexpr.exp(-sexpr.abs_(x)))


def _elu(x: sexpr.SExpr, alpha: float) -> sexpr.SExpr:
    return sexpr.select(x > 0, x, alpha * sexpr.expm1(x))


def _gelu(x: sexpr.SExpr, approximate: bool) -> sexpr.SExpr:
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + sexpr.tanh(inner))
    return 0.5 * x * (1 + sexpr.erf(x * (1 / math.sqrt(2))))


Relu = elementwise("Relu", 1, lambda x: sexpr.maximum(x, 0), doc="max(x, 0)")
Relu6 = elementwise("Relu6", 1, lambda x: sexpr.minimum(sexpr.maximum(x, 0), 6), doc="min(max(x, 0), 6)")
LeakyRelu = elementwise(
    "LeakyRelu", 1, _floating(lambda x, alpha: sexpr.select(x > 0, x, x * alpha)), {"alpha": 0.2},
    doc="x if x > 0 else alpha * x",
)
Elu = elementwise("Elu", 1, _floating(_elu), {"alpha": 1.0}, doc="x if x > 0 else alpha * (e^x - 1)")
Selu = elementwise("Selu", 1, _floating(lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA)), doc="scaled ELU")
Softplus = elementwise("Softplus", 1, _floating(_softplus), doc="log(1 + e^x), stable")
Softsign = elementwise("Softsign", 1, _floating(lambda x: x / (1 + sexpr.abs_(x))), doc="x / (1 + |x|)")
Silu = elementwise("Silu", 1, _floating(lambda x: x * sexpr.sigmoid(x)), doc="x * sigmoid(x) (swish)")
Gelu = elementwise("Gelu", 1, _floating(_gelu), {"approximate": False},
                   doc="x * Phi(x); tanh form if approximate")
SigmoidCrossEntropyWithLogits = elementwise(
    "SigmoidCrossEntropyWithLogits", 2,
    _floating(lambda z, x: sexpr.maximum(x, 0) - x * z + sexpr.log1p(sexpr.exp(-sexpr.abs_(x)))),
    doc="-(z log sigmoid(x) + (1-z) log(1-sigmoid(x))), as max(x,0) - x z + log1p(e^-|x|)",
)


# --------------------------------------------------------------------------- gradient rules
def _activation_grad(op: str):
    """Register rule(build, node, g) from fn(build, x, g, y) -> dx, cast back to x's dtype."""
    def deco(fn):
        register_gradient(op)(lambda build, node, g: [build.unbroadcast(fn(build, node.inputs[0], g, node.outputs[0]),
                                                                node.inputs[0])])
        return fn
    return deco


def _x_float(build, x, y):
    """x in the dtype the activation computed in (its output's)."""
    return x if x.dtype == y.dtype else build.cast(x, y.dtype)


@_activation_grad("Relu")
def _relu_gradient(build, x, g, y):
    return build.where(build.greater(x, 0), g, build.zeros_like(g))


@_activation_grad("Relu6")
def _relu6_gradient(build, x, g, y):
    return build.where(build.logical_and(build.greater(x, 0), build.less(x, 6)), g, build.zeros_like(g))


@register_gradient("LeakyRelu")
def _leaky_relu_gradient(build, node, g):
    x = node.inputs[0]
    return [build.unbroadcast(build.where(build.greater(x, 0), g, build.multiply(g, node.attrs["alpha"])), x)]


@register_gradient("Elu")
def _elu_gradient(build, node, g):
    x, y = node.inputs[0], node.outputs[0]
    slope = build.add(y, node.attrs["alpha"])  # d/dx alpha (e^x - 1) = y + alpha
    return [build.unbroadcast(build.where(build.greater(x, 0), g, build.multiply(g, slope)), x)]


@_activation_grad("Selu")
def _selu_gradient(build, x, g, y):
    return build.where(
        build.greater(x, 0), build.multiply(g, _SELU_SCALE), build.multiply(g, build.add(y, _SELU_SCALE * _SELU_ALPHA))
    )


@_activation_grad("Softplus")
def _softplus_gradient(build, x, g, y):
    return build.multiply(g, build.sigmoid(_x_float(build, x, y)))


@_activation_grad("Softsign")
def _softsign_gradient(build, x, g, y):
    return build.divide(g, build.square(build.add(build.abs(_x_float(build, x, y)), 1.0)))


@_activation_grad("Silu")
def _silu_gradient(build, x, g, y):
    xf = _x_float(build, x, y)
    s = build.sigmoid(xf)
    return build.multiply(g, build.multiply(s, build.add(1.0, build.multiply(xf, build.subtract(1.0, s)))))


@register_gradient("Gelu")
def _gelu_gradient(build, node, g):
    x, y = node.inputs[0], node.outputs[0]
    xf = _x_float(build, x, y)
    if node.attrs["approximate"]:
        c = math.sqrt(2 / math.pi)
        t = build.apply1(
            "Tanh", [build.multiply(c, build.add(xf, build.multiply(0.044715, build.multiply(xf, build.square(xf)))))]
        )
        inner = build.multiply(c, build.add(1.0, build.multiply(3 * 0.044715, build.square(xf))))
        d = build.add(
            build.multiply(0.5, build.add(1.0, t)),
            build.multiply(build.multiply(0.5, xf), build.multiply(build.subtract(1.0, build.square(t)), inner)),
        )
    else:
        cdf = build.multiply(0.5, build.add(1.0, build.erf(build.multiply(xf, 1 / math.sqrt(2)))))
        pdf = build.multiply(1 / math.sqrt(2 * math.pi), build.exp(build.multiply(-0.5, build.square(xf))))
        d = build.add(cdf, build.multiply(xf, pdf))
    return [build.unbroadcast(build.multiply(g, d), x)]


@register_gradient("SigmoidCrossEntropyWithLogits")
def _sigmoid_cross_entropy_with_logits_gradient(build, node, g):
    z, x = node.inputs
    y = node.outputs[0]
    zf, xf = _x_float(build, z, y), _x_float(build, x, y)
    return [
        build.unbroadcast(build.multiply(g, build.negative(xf)), z),
        build.unbroadcast(build.multiply(g, build.subtract(build.sigmoid(xf), zf)), x),
    ]

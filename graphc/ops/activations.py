"""Neural-network activations and the elementwise cross-entropy, as scalar expressions.

Each body is written in its numerically stable form (softplus never computes exp(x) for large
x; the sigmoid cross-entropy never takes log(sigmoid)), so the reference and every generated
kernel are stable by construction.
"""
from __future__ import annotations

import math

from ..ir.dtypes import float_result, promote
from . import scalar as S
from .base import elementwise

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

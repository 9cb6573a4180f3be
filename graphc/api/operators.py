"""Python operators on tensors and variables, installed here so the IR stays op-agnostic.

`+ - * / // % ** @`, unary `-`, `abs()`, `< <= > >=`, `& | ^ ~` (logical, for bool tensors),
`x[...]` and `.T`. `==` and `!=` are left as identity comparisons so tensors stay hashable
(use gc.equal / gc.not_equal), as in TF1.
"""
from __future__ import annotations

from typing import Any, Callable

from ..ir.tensor import Tensor
from . import array, math
from .variables import Variable


def _binary(fn: Callable[..., Any]) -> tuple[Callable, Callable]:
    return (lambda self, other: fn(self, other)), (lambda self, other: fn(other, self))


_OPERATORS: dict[str, Callable[..., Any]] = {
    "__neg__": lambda self: math.negative(self),
    "__abs__": lambda self: math.abs(self),
    "__invert__": lambda self: math.logical_not(self),
    "__getitem__": lambda self, key: array.getitem(self, key),
    "__lt__": lambda self, other: math.less(self, other),
    "__le__": lambda self, other: math.less_equal(self, other),
    "__gt__": lambda self, other: math.greater(self, other),
    "__ge__": lambda self, other: math.greater_equal(self, other),
}
for _name, _fn in [("add", math.add), ("sub", math.subtract), ("mul", math.multiply),
                   ("truediv", math.divide), ("floordiv", math.floordiv), ("mod", math.mod),
                   ("pow", math.pow), ("matmul", math.matmul), ("and", math.logical_and),
                   ("or", math.logical_or), ("xor", math.logical_xor)]:
    _OPERATORS[f"__{_name}__"], _OPERATORS[f"__r{_name}__"] = _binary(_fn)


def install(cls: type) -> None:
    for name, fn in _OPERATORS.items():
        setattr(cls, name, fn)
    cls.T = property(lambda self: array.transpose(self))  # type: ignore[attr-defined]
    cls.__array_priority__ = 100  # type: ignore[attr-defined]
    cls.__array_ufunc__ = None  # type: ignore[attr-defined]


install(Tensor)
install(Variable)

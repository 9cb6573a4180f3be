"""graphc's element types and how they combine.

graphc has five dtypes: bool, int32, int64, float32 (the default float) and float64. Two tensors
combine exactly as NumPy 2 combines arrays of those dtypes, and a Python scalar is weak (NEP 50:
`x_f32 * 2.0` stays float32). Where NumPy would pick a type graphc lacks (int8 for some bool
arithmetic, float16 for `exp(bool)`), graphc picks the nearest wider one it has (int32, float32).
This set is closed under NumPy's promotion, so every result stays inside it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DTypeError


class DType:
    """An element type. Compares equal to its NumPy dtype and to its name."""

    __slots__ = ("name", "np", "kind", "itemsize")

    def __init__(self, name: str) -> None:
        self.name = name
        self.np = np.dtype(name)
        self.kind = {"b": "bool", "i": "int", "f": "float"}[self.np.kind]
        self.itemsize = self.np.itemsize

    @property
    def is_floating(self) -> bool:
        return self.kind == "float"

    @property
    def is_integer(self) -> bool:
        return self.kind == "int"

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def as_numpy_dtype(self) -> type:
        """The NumPy scalar type, as TensorFlow's DType offers it."""
        return self.np.type

    @property
    def min(self) -> Any:
        return _limits(self)[0]

    @property
    def max(self) -> Any:
        return _limits(self)[1]

    def __repr__(self) -> str:
        return f"gc.{self.name}"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return other is self
        try:
            return as_dtype(other) is self
        except (DTypeError, TypeError):
            return False

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (as_dtype, (self.name,))


def _limits(dtype: DType) -> tuple[Any, Any]:
    if dtype.is_floating:
        info = np.finfo(dtype.np)
        return info.min, info.max
    if dtype.is_integer:
        iinfo = np.iinfo(dtype.np)
        return iinfo.min, iinfo.max
    return False, True


bool_ = DType("bool")
int32 = DType("int32")
int64 = DType("int64")
float32 = DType("float32")
float64 = DType("float64")

ALL_DTYPES: tuple[DType, ...] = (bool_, int32, int64, float32, float64)
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({"bool_": bool_, "float": float32, "double": float64, "int": int32, "long": int64})
_BY_NP = {d.np: d for d in ALL_DTYPES}
# NumPy types graphc lacks, mapped to the nearest wider graphc type holding every value.
_WIDENED = {
    np.dtype("int8"): int32, np.dtype("int16"): int32, np.dtype("uint8"): int32,
    np.dtype("uint16"): int32, np.dtype("uint32"): int64, np.dtype("float16"): float32,
}

DEFAULT_FLOAT = float32
DEFAULT_INT = int32


def as_dtype(value: Any) -> DType:
    """Accept a graphc DType, a NumPy dtype or scalar type, a Python type or a name."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    if value is float:
        return float32
    if value is int:
        return int32
    if value is bool:
        return bool_
    try:
        np_dtype = np.dtype(value)
    except TypeError:
        np_dtype = None
    if np_dtype is not None and np_dtype in _BY_NP:
        return _BY_NP[np_dtype]
    names = ", ".join(d.name for d in ALL_DTYPES)
    raise DTypeError(f"graphc has no dtype {value!r}; the dtypes are {names}")


def from_numpy(np_dtype: np.dtype, what: str = "value") -> DType:
    """The graphc dtype that holds every value of a NumPy dtype, or DTypeError."""
    np_dtype = np.dtype(np_dtype)
    if np_dtype in _BY_NP:
        return _BY_NP[np_dtype]
    if np_dtype in _WIDENED:
        return _WIDENED[np_dtype]
    names = ", ".join(d.name for d in ALL_DTYPES)
    raise DTypeError(f"{what} has NumPy dtype {np_dtype}, which graphc cannot hold; the dtypes are {names}")


def widen(np_dtype: np.dtype) -> DType:
    """Map a dtype NumPy chose for a result into graphc's set (int8 -> int32, float16 -> float32)."""
    return from_numpy(np_dtype, "result")


def promote(*dtypes: DType) -> DType:
    """The dtype NumPy 2 gives to arithmetic between arrays of these dtypes."""
    if len(dtypes) == 1:
        return dtypes[0]
    return widen(np.result_type(*(d.np for d in dtypes)))


def float_result(dtype: DType) -> DType:
    """The dtype of a floating function (exp, sigmoid, mean) of a `dtype` input, like NumPy's exp."""
    if dtype.is_floating:
        return dtype
    return widen(np.exp.resolve_dtypes((dtype.np, None))[-1])

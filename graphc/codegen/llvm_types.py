"""LLVM types for graphc dtypes, and small IR helpers shared by the LLVM renderer."""
from __future__ import annotations

from typing import Any

from llvmlite import ir

from ..ir.dtypes import DType

VOID = ir.VoidType()
I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
I8P = I8.as_pointer()
I8PP = I8P.as_pointer()
I64P = I64.as_pointer()

_VALUE = {"bool": I1, "int32": I32, "int64": I64, "float32": F32, "float64": F64}
_MEMORY = {"bool": I8, "int32": I32, "int64": I64, "float32": F32, "float64": F64}


def value_type(dtype: DType) -> ir.Type:
    """How a value of dtype is held in registers (bool as i1)."""
    return _VALUE[dtype.name]


def memory_type(dtype: DType) -> ir.Type:
    """How an element of dtype is stored (bool as one byte, as NumPy does)."""
    return _MEMORY[dtype.name]


def constant(dtype: DType, value: Any) -> ir.Constant:
    t = value_type(dtype)
    if dtype.is_floating:
        return ir.Constant(t, float(value))
    if dtype.is_bool:
        return ir.Constant(t, int(bool(value)))
    return ir.Constant(t, int(value))


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """Declare an LLVM intrinsic (once per module) by its full name, e.g. llvm.maximum.f32."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name=name)


def suffix(t: ir.Type) -> str:
    return {id(F32): "f32", id(F64): "f64", id(I32): "i32", id(I64): "i64", id(I8): "i8", id(I1): "i1"}.get(
        id(t), str(t))

"""Calls to the vectorizable math library (graphc.codegen.llvm_math) from rendered kernels.

The library's functions are module-local IR marked alwaysinline, so after inlining the loop
vectorizer sees plain arithmetic: no libm call ever sits inside a hot loop.
"""
from __future__ import annotations

from llvmlite import ir

from ..ir.dtypes import DType
from .llvm_math import math_function


def math_call(b: ir.IRBuilder, name: str, dtype: DType, args: list[ir.Value]) -> ir.Value:
    """Call the library's ``name`` for ``dtype`` (added to the builder's module once)."""
    return b.call(math_function(b.module, name, dtype.name), args)

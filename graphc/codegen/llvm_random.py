"""Philox4x32-10 in IR: the random stream of graphc.ops.random, element by element.

Each element's value is a pure function of (key, run counter, element index), so the loop over
a random tensor has no loop-carried state and vectorizes; the keys are compile-time constants.
Uniform draws are bit-identical to the NumPy reference; normal draws use Box-Muller with the
vectorizable log1p / sin / cos of graphc.codegen.llvm_math (within a few ulp of NumPy's).
"""
from __future__ import annotations

import math

from llvmlite import ir

from ..ir.dtypes import float32, float64
from ..ops.random import PHILOX_M, PHILOX_W
from ..ops.scalar import SExpr
from . import llvm_types
from .llvm_math_adapter import math_call


def philox(b: ir.IRBuilder, counter: list[ir.Value], key: tuple[int, int]) -> list[ir.Value]:
    c0, c1, c2, c3 = counter
    k0, k1 = key
    m0, m1 = ir.Constant(llvm_types.I64, PHILOX_M[0]), ir.Constant(llvm_types.I64, PHILOX_M[1])
    shift = ir.Constant(llvm_types.I64, 32)
    for _ in range(10):
        p0 = b.mul(b.zext(c0, llvm_types.I64), m0)
        p1 = b.mul(b.zext(c2, llvm_types.I64), m1)
        hi0, lo0 = b.trunc(b.lshr(p0, shift), llvm_types.I32), b.trunc(p0, llvm_types.I32)
        hi1, lo1 = b.trunc(b.lshr(p1, shift), llvm_types.I32), b.trunc(p1, llvm_types.I32)
        c0, c1, c2, c3 = (b.xor(b.xor(hi1, c1), ir.Constant(llvm_types.I32, k0)), lo1,
                          b.xor(b.xor(hi0, c3), ir.Constant(llvm_types.I32, k1)), lo0)
        k0 = (k0 + PHILOX_W[0]) & 0xFFFFFFFF
        k1 = (k1 + PHILOX_W[1]) & 0xFFFFFFFF
    return [c0, c1, c2, c3]


def _block_words(b: ir.IRBuilder, block: ir.Value, run: ir.Value, key: tuple[int, int]) -> list[ir.Value]:
    shift = ir.Constant(llvm_types.I64, 32)
    counter = [b.trunc(block, llvm_types.I32), b.trunc(b.lshr(block, shift), llvm_types.I32),
               b.trunc(run, llvm_types.I32), b.trunc(b.lshr(run, shift), llvm_types.I32)]
    return philox(b, counter, key)


def _unit53(b: ir.IRBuilder, hi: ir.Value, lo: ir.Value) -> ir.Value:
    """((hi >> 5) * 2^26 + (lo >> 6)) * 2^-53: a float64 uniform in [0, 1) from two words."""
    a = b.uitofp(b.lshr(hi, ir.Constant(llvm_types.I32, 5)), llvm_types.F64)
    c = b.uitofp(b.lshr(lo, ir.Constant(llvm_types.I32, 6)), llvm_types.F64)
    return b.fmul(b.fadd(b.fmul(a, ir.Constant(llvm_types.F64, 67108864.0)), c), ir.Constant(llvm_types.F64, 2.0**-53))


def philox_value(e: SExpr, scalar) -> ir.Value:
    b = scalar.b
    k0, k1, flat_expr = e.value
    run = scalar.emit(e.args[0])
    flat = scalar.index.emit(flat_expr)
    one, two, three = (ir.Constant(llvm_types.I64, v) for v in (1, 2, 3))
    if e.prim == "philox_uniform" and e.dtype is float32:
        w = _block_words(b, b.lshr(flat, two), run, (k0, k1))
        lane = b.and_(flat, three)
        word = b.select(
            b.icmp_signed("==", lane, ir.Constant(llvm_types.I64, 0)),
            w[0],
            b.select(b.icmp_signed("==", lane, one), w[1], b.select(b.icmp_signed("==", lane, two), w[2], w[3])),
        )
        top = b.uitofp(b.lshr(word, ir.Constant(llvm_types.I32, 8)), llvm_types.F32)
        return b.fmul(top, ir.Constant(llvm_types.F32, 2.0**-24))
    w = _block_words(b, b.lshr(flat, one), run, (k0, k1))
    even = b.icmp_signed("==", b.and_(flat, one), ir.Constant(llvm_types.I64, 0))
    if e.prim == "philox_uniform":
        return _unit53(b, b.select(even, w[0], w[2]), b.select(even, w[1], w[3]))
    u1, u2 = _unit53(b, w[0], w[1]), _unit53(b, w[2], w[3])
    radius = b.call(
        llvm_types.intrinsic(b.module, "llvm.sqrt.f64", llvm_types.F64, [llvm_types.F64]),
        [b.fmul(ir.Constant(llvm_types.F64, -2.0), math_call(b, "log1p", float64, [b.fneg(u1)]))],
    )
    angle = b.fmul(ir.Constant(llvm_types.F64, 2.0 * math.pi), u2)
    z = b.fmul(radius, b.select(even, math_call(b, "cos", float64, [angle]), math_call(b, "sin", float64, [angle])))
    return z if e.dtype is float64 else b.fptrunc(z, llvm_types.F32)

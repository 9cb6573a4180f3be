"""Rendering a GemmCall: one call per batch element to a CBLAS-style sgemm / dgemm.

In the JIT the symbols graphc_cblas_sgemm / graphc_cblas_dgemm are bound to the OpenBLAS that
NumPy ships (ILP64: 64-bit integer arguments); the batch loop runs over [start, end), so the
thread pool could split it, though BLAS already uses every core for one product.
"""
from __future__ import annotations

from llvmlite import ir

from ..lower.kernel import GemmCall
from . import llvm_types
from .llvm_loops import counted_loop, define_entry

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def gemm_symbol(module: ir.Module, dtype_name: str) -> ir.Function:
    name = "graphc_cblas_sgemm" if dtype_name == "float32" else "graphc_cblas_dgemm"
    fn = module.globals.get(name)
    if fn is None:
        t = llvm_types.F32 if dtype_name == "float32" else llvm_types.F64
        p = t.as_pointer()
        args = [
            llvm_types.I32,
            llvm_types.I32,
            llvm_types.I32,
            llvm_types.I64,
            llvm_types.I64,
            llvm_types.I64,
            t,
            p,
            llvm_types.I64,
            p,
            llvm_types.I64,
            t,
            p,
            llvm_types.I64,
        ]
        fn = ir.Function(module, ir.FunctionType(llvm_types.VOID, args), name=name)
    return fn


def render_gemm(module: ir.Module, name: str, g: GemmCall) -> ir.Function:
    def body(b, fn, pointers, error, start, end):
        t = llvm_types.value_type(g.c.dtype)
        blas = gemm_symbol(module, g.c.dtype.name)
        lda = g.m if g.transpose_a else g.k
        ldb = g.k if g.transpose_b else g.n

        def one_product(i: ir.Value) -> None:
            a_off, b_off, rest = ir.Constant(llvm_types.I64, 0), ir.Constant(llvm_types.I64, 0), i
            for extent, sa, sb in reversed(list(zip(g.batch, g.a_batch_strides, g.b_batch_strides))):
                e = ir.Constant(llvm_types.I64, extent)
                digit = b.srem(rest, e)
                rest = b.sdiv(rest, e)
                a_off = b.add(a_off, b.mul(digit, ir.Constant(llvm_types.I64, sa)))
                b_off = b.add(b_off, b.mul(digit, ir.Constant(llvm_types.I64, sb)))
            c_off = b.mul(i, ir.Constant(llvm_types.I64, g.m * g.n))
            args = [
                ir.Constant(llvm_types.I32, ROW_MAJOR),
                ir.Constant(llvm_types.I32, TRANS if g.transpose_a else NO_TRANS),
                ir.Constant(llvm_types.I32, TRANS if g.transpose_b else NO_TRANS),
                ir.Constant(llvm_types.I64, g.m),
                ir.Constant(llvm_types.I64, g.n),
                ir.Constant(llvm_types.I64, g.k),
                ir.Constant(t, 1.0),
                b.gep(pointers[g.a.id], [a_off]),
                ir.Constant(llvm_types.I64, max(lda, 1)),
                b.gep(pointers[g.b.id], [b_off]),
                ir.Constant(llvm_types.I64, max(ldb, 1)),
                ir.Constant(t, 0.0),
                b.gep(pointers[g.c.id], [c_off]),
                ir.Constant(llvm_types.I64, max(g.n, 1)),
            ]
            if g.m and g.n:
                b.call(blas, args)

        counted_loop(b, fn, start, end, ir.Constant(llvm_types.I64, 1), one_product, name="batch")

    return define_entry(module, name, [g.a, g.b, g.c], body)

"""Rendering a GemmCall: CBLAS-style sgemm / dgemm calls on blocks of rows.

In the JIT the symbols graphc_cblas_sgemm / graphc_cblas_dgemm are bound to the OpenBLAS that
NumPy ships (ILP64: 64-bit integer arguments). BLAS runs single-threaded inside graphc's pool
(graphc.runtime.cpu): the kernel's iterations are (batch element, block of rows of C), each one
BLAS call on rows [r0, r0 + rows) of op(A) and C, so the pool splits a product across threads
like any other kernel.
"""
from __future__ import annotations

from llvmlite import ir

from ..lower.kernel import GemmCall
from . import llvm_types
from .llvm_loops import counted_loop, define_entry

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
MIN_BLOCK_ROWS = 32   # fewer rows per BLAS call would repack op(B) for too little work
ROW_BLOCKS = 8        # a product is cut into at most this many blocks of rows


def row_block(g: GemmCall) -> int:
    """Rows of C per iteration of the GEMM kernel."""
    return max(MIN_BLOCK_ROWS, -(-g.m // ROW_BLOCKS)) if g.m else 1


def iterations(g: GemmCall) -> int:
    """The GEMM kernel's extent: batch elements x blocks of rows."""
    batch = 1
    for extent in g.batch:
        batch *= extent
    return batch * max(1, -(-g.m // row_block(g)))


def gemm_symbol(module: ir.Module, dtype_name: str) -> ir.Function:
    name = "graphc_cblas_sgemm" if dtype_name == "float32" else "graphc_cblas_dgemm"
    fn = module.globals.get(name)
    if fn is None:
        t = llvm_types.F32 if dtype_name == "float32" else llvm_types.F64
        p = t.as_pointer()
        i32, i64 = llvm_types.I32, llvm_types.I64
        # order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc
        args = [i32, i32, i32, i64, i64, i64, t, p, i64, p, i64, t, p, i64]
        fn = ir.Function(module, ir.FunctionType(llvm_types.VOID, args), name=name)
    return fn


def render_gemm(module: ir.Module, name: str, g: GemmCall) -> ir.Function:
    def body(b, fn, pointers, error, start, end):
        t = llvm_types.value_type(g.c.dtype)
        blas = gemm_symbol(module, g.c.dtype.name)
        lda = g.m if g.transpose_a else g.k
        ldb = g.k if g.transpose_b else g.n

        rows_per_block = row_block(g)
        blocks = max(1, -(-g.m // rows_per_block))
        const = lambda v: ir.Constant(llvm_types.I64, v)   # noqa: E731

        def one_block(i: ir.Value) -> None:
            block, rest = b.srem(i, const(blocks)), b.sdiv(i, const(blocks))
            product = rest
            a_off, b_off = const(0), const(0)
            for extent, sa, sb in reversed(list(zip(g.batch, g.a_batch_strides, g.b_batch_strides))):
                digit = b.srem(rest, const(extent))
                rest = b.sdiv(rest, const(extent))
                a_off = b.add(a_off, b.mul(digit, const(sa)))
                b_off = b.add(b_off, b.mul(digit, const(sb)))
            first = b.mul(block, const(rows_per_block))
            last = b.add(first, const(rows_per_block))
            rows = b.sub(b.select(b.icmp_signed("<", last, const(g.m)), last, const(g.m)), first)
            # rows r0.. of op(A): row-major A[m, k] starts at r0 * k; a transposed A[k, m] at column r0
            a_off = b.add(a_off, first if g.transpose_a else b.mul(first, const(g.k)))
            c_off = b.add(b.mul(product, const(g.m * g.n)), b.mul(first, const(g.n)))
            flag = lambda value: ir.Constant(llvm_types.I32, value)   # noqa: E731
            args = [flag(ROW_MAJOR), flag(TRANS if g.transpose_a else NO_TRANS),
                    flag(TRANS if g.transpose_b else NO_TRANS), rows, const(g.n), const(g.k),
                    ir.Constant(t, 1.0), b.gep(pointers[g.a.id], [a_off]), const(max(lda, 1)),
                    b.gep(pointers[g.b.id], [b_off]), const(max(ldb, 1)), ir.Constant(t, 0.0),
                    b.gep(pointers[g.c.id], [c_off]), const(max(g.n, 1))]
            if g.m and g.n:
                b.call(blas, args)

        counted_loop(b, fn, start, end, const(1), one_block, name="block")

    return define_entry(module, name, [g.a, g.b, g.c], body)

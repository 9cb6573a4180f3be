"""Rendering a GemmCall: CBLAS-style sgemm / dgemm calls on blocks of C, or calls of graphc's
own GEMM on them (GemmCall.generated: graphc.codegen.llvm_gemm_own; AOT libraries, GRAPHC_GEMM).

In the JIT the symbols graphc_cblas_sgemm / graphc_cblas_dgemm are bound to the OpenBLAS that
NumPy ships (ILP64: 64-bit integer arguments). BLAS runs single-threaded inside graphc's pool
(graphc.runtime.cpu): the kernel's iterations are (batch element, block of C), each one BLAS
call on rows [r0, r1) of op(A) and columns [c0, c1) of op(B), so the pool splits a product
across threads like any other kernel.

How C is cut (gemm_blocks): each call packs its rows of op(A) and its columns of op(B), so
cutting C into R row blocks and S column blocks packs op(B) R times and op(A) S times. A
product with few rows and a long k (a weight gradient, [160, 1600] @ [1600, 512]) is cut into
column blocks, not into blocks of 32 rows that would each repack all of op(B).

A GemmCall with ConvWindows is a direct convolution (graphc.codegen.llvm_conv_direct): the same
blocks of C, rows cut at whole panels of output channels, each one call of the conv function.
A pointwise GemmCall (graphc.codegen.llvm_pointwise) packs nothing per call, so its blocks are
small (graphc.lower.conv_pointwise.pointwise_blocks).

A depthwise GemmCall (graphc.codegen.llvm_depthwise) has blocks of whole planes, a range of
channels each (graphc.lower.conv_depthwise.depthwise_blocks).

A GemmCall with an epilogue (bias, activation: graphc.lower.gemm_epilogue) runs it on each block
right after the block's call, while the block is in cache (graphc.codegen.llvm_gemm_epilogue).
"""
from __future__ import annotations

from llvmlite import ir

from ..lower.conv_depthwise import depthwise_blocks
from ..lower.conv_direct import panel_channels
from ..lower.conv_pointwise import PANEL_ROWS, pointwise_blocks
from ..lower.gemm_epilogue import column_unit
from ..lower.kernel import GemmCall
from . import llvm_types
from .llvm_conv_direct import declare_conv
from .llvm_depthwise import declare_depthwise, depthwise_symbol
from .llvm_gemm_epilogue import epilogue_renderer, render_block_epilogue
from .llvm_gemm_own import declare_block
from .llvm_loops import counted_loop, define_entry
from .llvm_pointwise import declare_pointwise

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
MIN_BLOCK_ROWS = 32       # fewer rows per BLAS call would repack op(B) for too little work
MIN_BLOCK_COLUMNS = 64    # fewer columns per call would repack op(A) for too little work
BLOCKS = 8                # a product is cut into about this many blocks (more than threads: dynamic balance)
MIN_SPLIT_WORK = 1 << 20  # multiply-adds below which a product is cut into rows only
WHOLE_CALL_EPILOGUE_BYTES = 1 << 20   # a C at most this big is still in L2 when an epilogue runs on all of it


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def gemm_blocks(g: GemmCall) -> tuple[int, int]:
    """(rows, columns) of C per iteration of the GEMM kernel: the cut into at most BLOCKS
    blocks (of at least MIN_BLOCK_ROWS x MIN_BLOCK_COLUMNS) that packs the fewest operand
    elements, sum of R * n + S * m over R row blocks and S column blocks."""
    if not g.m or not g.n:
        return max(g.m, 1), max(g.n, 1)
    if g.depthwise is not None:   # whole planes, a range of channels each
        return depthwise_blocks(g.m, g.n), g.n
    if g.pointwise:   # no operand is packed per call: small blocks, so that the epilogue hits L1
        rows, cols = pointwise_blocks(g.m, g.n, g.k)
        return rows, min(g.n, _ceil(cols, column_unit(g)) * column_unit(g))
    max_r = max(1, _ceil(g.m, MIN_BLOCK_ROWS))
    max_s = max(1, _ceil(g.n, MIN_BLOCK_COLUMNS)) if g.m * g.n * g.k >= MIN_SPLIT_WORK else 1
    want = min(BLOCKS, max_r * max_s)
    best: tuple[int, int, int] | None = None
    for r in range(1, min(max_r, BLOCKS) + 1):
        for s in range(1, min(max_s, BLOCKS) + 1):
            if r * s < want or r * s > max(BLOCKS, want):
                continue
            cost = r * g.n + s * g.m
            if best is None or cost < best[0]:
                best = (cost, r, s)
    _, r, s = best if best is not None else (0, min(max_r, BLOCKS), 1)
    unit = column_unit(g)
    rows = _ceil(g.m, r)
    if g.window is not None:   # a direct convolution's blocks are whole panels of output channels
        panel = panel_channels(g.c.dtype.itemsize, g.window.panel_bytes)
        rows = _ceil(rows, panel) * panel
    return rows, _ceil(_ceil(g.n, s), unit) * unit


def whole_call(g: GemmCall, blocks: int) -> bool:
    """Whether a run of every block at once (the kernel not split over the pool) makes one
    BLAS or own-GEMM call per batch element instead of one per block: each call packs its
    operands again, which cost 10-20% on one thread ([128, 256] @ [256, 1024]: 98 against 118
    GFLOP/s). Not for the convolution kernels (their blocks are sized for their epilogues), nor
    with an epilogue over a C too big to stay in cache until it runs."""
    return (blocks > 1 and not g.convolution_kernel
            and (g.epilogue is None or g.m * g.n * g.c.dtype.itemsize <= WHOLE_CALL_EPILOGUE_BYTES))


def iterations(g: GemmCall) -> int:
    """The GEMM kernel's extent: batch elements x blocks of C."""
    batch = 1
    for extent in g.batch:
        batch *= extent
    rows, columns = gemm_blocks(g)
    return batch * max(1, _ceil(g.m, rows)) * max(1, _ceil(g.n, columns))


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
        if g.depthwise is not None:
            d = g.depthwise
            depthwise = declare_depthwise(module, depthwise_symbol(g.c.dtype.name, d.taps, d.strides, d.dilations, d.combiner))
        elif g.window is not None:
            conv = declare_conv(module, g.c.dtype.name, g.window.panel_bytes)
        elif g.pointwise:
            pointwise = declare_pointwise(module, g.c.dtype.name)
        elif g.generated:
            own = declare_block(module, g.c.dtype.name, g.transpose_a, g.transpose_b)
        else:
            blas = gemm_symbol(module, g.c.dtype.name)
        lda = g.lda or (g.m if g.transpose_a else g.k)
        ldb = g.ldb or (g.k if g.transpose_b else g.n)

        const = lambda v: ir.Constant(llvm_types.I64, v)
        rows_per_block, cols_per_block = gemm_blocks(g)
        row_blocks = max(1, _ceil(g.m, rows_per_block))
        blocks = row_blocks * max(1, _ceil(g.n, cols_per_block))
        # block geometry as values: a call over the whole range runs one block per batch element
        block_rows, block_cols, row_blocks_v, blocks_v = (const(v) for v in (rows_per_block, cols_per_block,
                                                                                row_blocks, blocks))
        if whole_call(g, blocks):
            batches = iterations(g) // blocks
            whole = b.and_(b.icmp_signed("==", start, const(0)), b.icmp_signed("==", end, const(batches * blocks)))
            block_rows, block_cols = b.select(whole, const(g.m), block_rows), b.select(whole, const(g.n), block_cols)
            row_blocks_v, blocks_v = b.select(whole, const(1), row_blocks_v), b.select(whole, const(1), blocks_v)
            end = b.select(whole, const(batches), end)

        def clipped(first: ir.Value, size: ir.Value, limit: int) -> ir.Value:
            last = b.add(first, size)
            return b.sub(b.select(b.icmp_signed("<", last, const(limit)), last, const(limit)), first)

        epilogue = epilogue_renderer(g, fn, pointers, error) if g.epilogue is not None else None

        def one_block(i: ir.Value) -> None:
            block, rest = b.srem(i, blocks_v), b.sdiv(i, blocks_v)
            product = rest
            a_off, b_off = const(g.offsets[0]), const(g.offsets[1])
            digits: list[ir.Value] = []
            for extent, sa, sb in reversed(list(zip(g.batch, g.a_batch_strides, g.b_batch_strides))):
                digit = b.srem(rest, const(extent))
                digits.insert(0, digit)
                rest = b.sdiv(rest, const(extent))
                a_off = b.add(a_off, b.mul(digit, const(sa)))
                b_off = b.add(b_off, b.mul(digit, const(sb)))
            first = b.mul(b.srem(block, row_blocks_v), block_rows)
            col = b.mul(b.sdiv(block, row_blocks_v), block_cols)
            rows = clipped(first, block_rows, g.m)
            cols = clipped(col, block_cols, g.n)
            # rows r0.. of op(A): row-major A[m, k] starts at r0 * k; a transposed A[k, m] at column r0
            a_off = b.add(a_off, first if g.transpose_a else b.mul(first, const(lda)))
            image = b_off   # a direct convolution's B: the batch element's padded image
            # columns c0.. of op(B): B[k, n] starts at column c0; a transposed B[n, k] at row c0
            b_off = b.add(b_off, b.mul(col, const(ldb)) if g.transpose_b else col)
            row_start = b.add(b.add(b.mul(product, const(g.m * g.n)), b.mul(first, const(g.n))), const(g.offsets[2]))
            c_off = b.add(row_start, col)
            flag = lambda value: ir.Constant(llvm_types.I32, value)
            args = [flag(ROW_MAJOR), flag(TRANS if g.transpose_a else NO_TRANS),
                    flag(TRANS if g.transpose_b else NO_TRANS), rows, cols, const(g.k),
                    ir.Constant(t, 1.0), b.gep(pointers[g.a.id], [a_off]), const(max(lda, 1)),
                    b.gep(pointers[g.b.id], [b_off]), const(max(ldb, 1)), ir.Constant(t, 0.0),
                    b.gep(pointers[g.c.id], [c_off]), const(max(g.n, 1))]
            if not (g.m and g.n):
                return
            if g.depthwise is not None:   # depthwise(w, x, c, channels, h, wd, oh, ow, pt, pl, ldw, flat, flat_stride)
                d = g.depthwise
                b.call(depthwise, [b.gep(pointers[g.a.id], [first]),
                                   b.gep(pointers[g.b.id], [b.add(image, b.mul(first, const(d.h * d.w)))]),
                                   b.gep(pointers[g.c.id], [row_start]), rows, const(d.h), const(d.w), const(d.oh),
                                   const(d.ow), const(d.pads[0]), const(d.pads[1]), const(g.m),
                                   ir.Constant(llvm_types.I8P, None) if d.flat_masks is None else
                                   b.bitcast(pointers[d.flat_masks.id], llvm_types.I8P), const(d.flat_stride)])
            elif g.window is not None:   # conv(w, x, koff, c, ldc, ldp, k, rows, p0, cols, ow, row_step, col_step)
                w = g.window
                if w.channels_last:   # C[p, r]: the block's first channel in the image's output
                    c_start, ldc, ldp = b.add(b.add(b.mul(product, const(g.m * g.n)), first), const(g.offsets[2])), 1, g.m
                else:
                    c_start, ldc, ldp = row_start, g.n, 1
                b.call(conv, [args[7], b.gep(pointers[g.b.id], [image]), pointers[w.koff.id],
                              b.gep(pointers[g.c.id], [c_start]), const(ldc), const(ldp), const(g.k), rows, col, cols,
                              const(w.ow), const(w.row_step), const(w.col_step)])
            elif g.pointwise:   # pointwise(w, x, c, k, rows, cols, ldx, ldc); rows from a whole panel
                panel = b.mul(b.sdiv(first, const(PANEL_ROWS)), const(PANEL_ROWS * g.k))
                b.call(pointwise, [b.gep(pointers[g.a.id], [panel]), args[9], args[12], const(g.k), rows, cols,
                                   const(g.n), const(g.n)])
            elif g.generated:   # block(a, b, c, m, n, k, lda, ldb, ldc)
                b.call(own, [args[7], args[9], args[12], rows, cols, const(g.k), args[8], args[10], args[13]])
            else:
                b.call(blas, args)
            if epilogue is not None:
                render_block_epilogue(b, epilogue, g, digits, first, rows, col, cols)

        counted_loop(b, fn, start, end, const(1), one_block, name="block")

    # a tail updating a variable in place does nothing once a check failed (graphc.lower.memory)
    return define_entry(module, name, g.reads() + g.writes(), body, skip_on_error=g.epilogue is not None and g.epilogue.skip_on_error)

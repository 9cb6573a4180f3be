"""A GEMM's epilogue on one block of C (GemmCall.epilogue; graphc.lower.gemm_epilogue says why).

The epilogue is an elementwise LoopKernel over the tensor C holds; GemmCall.layout says which of
its axes the block's batch index, rows and columns are. The block's box is walked row by row,
the columns as one counted loop, unit stride in both NCHW and NHWC, so it vectorizes like the
kernel it replaces. Where the row or column axes merge (graphc.lower.gemm_epilogue.merges),
their last axis takes the flat position and the others stay 0; otherwise a row's index is
unraveled over its axes once per row, and columns come in whole rows of their last axis (the
blocks are cut that way: column_unit).
"""
from __future__ import annotations

from typing import Any

from llvmlite import ir

from ..lower.gemm_epilogue import merges
from ..lower.kernel import GemmCall
from . import llvm_types
from .llvm_loops import LoopRenderer, counted_loop

I64 = llvm_types.I64


def _const(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _no_checks(check: Any) -> int:
    raise AssertionError("a GEMM epilogue has no checks (graphc.lower.gemm_epilogue.attach_epilogue)")


def _opaque(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """`value`, which LLVM can no longer see is a constant (an empty inline asm that "changes"
    it; no instruction). A product cut into equal blocks has a constant block size, and LLVM then
    fully unrolled the epilogue's loops of known trip count into one basic block (a bias add over
    24 x 392 elements: 3,700 vector instructions, 2 s in code generation); with runtime trip
    counts they stay loops, vectorized as in the kernel the epilogue replaces."""
    asm = ir.InlineAsm(ir.FunctionType(I64, [I64]), "", "=r,0", side_effect=False)
    return b.call(asm, [value])


def epilogue_renderer(g: GemmCall, fn: ir.Function, pointers: dict[int, ir.Value], error: ir.Value) -> LoopRenderer:
    renderer = LoopRenderer(g.epilogue, _no_checks)
    renderer.bind(fn, pointers, error)
    return renderer


def render_block_epilogue(b: ir.IRBuilder, renderer: LoopRenderer, g: GemmCall, digits: list[ir.Value],
                          first_row: ir.Value, rows: ir.Value, first_col: ir.Value, cols: ir.Value) -> None:
    """The epilogue on the block of C at batch index `digits` (one per batch dimension), rows
    [first_row, first_row + rows) and columns [first_col, first_col + cols)."""
    layout, space, fn = g.layout, g.epilogue.space, renderer.fn
    rows, cols = _opaque(b, rows), _opaque(b, cols)
    loop_vars: dict[int, ir.Value] = {}
    for axis, digit, start in zip(layout.batch_axes, digits, layout.batch_start):
        loop_vars[axis] = b.add(digit, _const(start)) if start else digit

    merged_rows, merged_cols = merges(g.epilogue, layout.row_axes), merges(g.epilogue, layout.col_axes)
    for axis in (layout.row_axes[:-1] if merged_rows else ()) + (layout.col_axes[:-1] if merged_cols else ()):
        loop_vars[axis] = _const(0)

    def unravel(flat: ir.Value, axes: tuple[int, ...], merged: bool = False) -> None:
        if merged:
            loop_vars[axes[-1]] = flat
            return
        for axis in reversed(axes[1:]):
            loop_vars[axis] = b.urem(flat, _const(space[axis]))
            flat = b.udiv(flat, _const(space[axis]))
        loop_vars[axes[0]] = flat

    def element(axis: int) -> Any:
        def run(v: ir.Value) -> None:
            loop_vars[axis] = v
            renderer.inner(b, loop_vars)
        return run

    last = layout.col_axes[-1]

    def one_row(r: ir.Value) -> None:
        unravel(b.add(r, _const(layout.row_start)) if layout.row_start else r, layout.row_axes, merged_rows)
        if merged_cols:
            counted_loop(b, fn, first_col, b.add(first_col, cols), _const(1), element(last), name="ep.col")
            return
        unit = _const(space[last])

        def outer_columns(q: ir.Value) -> None:
            unravel(q, layout.col_axes[:-1])
            counted_loop(b, fn, _const(0), unit, _const(1), element(last), name="ep.col")

        counted_loop(b, fn, b.udiv(first_col, unit), b.udiv(b.add(first_col, cols), unit), _const(1), outer_columns,
                     name="ep.cols")

    counted_loop(b, fn, first_row, b.add(first_row, rows), _const(1), one_row, name="ep.row")

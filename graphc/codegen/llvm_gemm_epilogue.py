"""A GEMM's epilogue on one block of C (GemmCall.epilogue; graphc.lower.gemm_epilogue says why).

The epilogue is an elementwise LoopKernel over the tensor C holds; GemmCall.layout says which of
its axes the block's batch index, rows and columns are. The block's box is walked row by row,
the columns as one counted loop, unit stride in both NCHW and NHWC, so it vectorizes like the
kernel it replaces. Where the row or column axes merge (graphc.lower.loop_merge.merge_target),
one of them takes the flat position and the others stay 0; otherwise a row's index is
unraveled over its axes once per row, and columns come in whole rows of their last axis (the
blocks are cut that way: column_unit).
"""
from __future__ import annotations

from typing import Any

from llvmlite import ir

from ..lower.loop_merge import merge_target
from ..lower.kernel import GemmCall
from . import llvm_types
from .llvm_loops import LoopRenderer, counted_loop, opaque

I64 = llvm_types.I64


def _const(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _no_checks(check: Any) -> int:
    raise AssertionError("a GEMM epilogue has no checks (graphc.lower.gemm_epilogue.attach_epilogue)")


def epilogue_renderer(g: GemmCall, fn: ir.Function, pointers: dict[int, ir.Value], error: ir.Value) -> LoopRenderer:
    renderer = LoopRenderer(g.epilogue, _no_checks)
    renderer.bind(fn, pointers, error)
    return renderer


def render_block_epilogue(b: ir.IRBuilder, renderer: LoopRenderer, g: GemmCall, digits: list[ir.Value],
                          first_row: ir.Value, rows: ir.Value, first_col: ir.Value, cols: ir.Value) -> None:
    """The epilogue on the block of C at batch index `digits` (one per batch dimension), rows
    [first_row, first_row + rows) and columns [first_col, first_col + cols)."""
    layout, space, fn = g.layout, g.epilogue.space, renderer.fn
    # equal blocks have a constant size; LLVM then fully unrolled these loops into one basic
    # block (a bias add over 24 x 392 elements: 3,700 vector instructions, 2 s to compile)
    rows, cols = opaque(b, rows), opaque(b, cols)
    loop_vars: dict[int, ir.Value] = {}
    for axis, digit, start in zip(layout.batch_axes, digits, layout.batch_start):
        loop_vars[axis] = b.add(digit, _const(start)) if start else digit

    row_target, col_target = merge_target(g.epilogue, layout.row_axes), merge_target(g.epilogue, layout.col_axes)
    for axes, target in ((layout.row_axes, row_target), (layout.col_axes, col_target)):
        for axis in axes if target is not None else ():
            if axis != target:
                loop_vars[axis] = _const(0)

    def unravel(flat: ir.Value, axes: tuple[int, ...], target: int | None = None) -> None:
        if target is not None:   # the axes run as one counter on `target`
            loop_vars[target] = flat
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
    if row_target is not None and layout.row_axes[-1] == len(space) - 1:
        # rows are the tensor's last axis (a channels-last direct convolution: rows are output
        # channels): each column's rows are adjacent, so they are the inner loop
        def one_column(q: ir.Value) -> None:
            unravel(q, layout.col_axes, col_target)
            lo = b.add(first_row, _const(layout.row_start)) if layout.row_start else first_row
            counted_loop(b, fn, lo, b.add(lo, rows), _const(1), element(row_target), name="ep.row")

        counted_loop(b, fn, first_col, b.add(first_col, cols), _const(1), one_column, name="ep.col")
        return

    def one_row(r: ir.Value) -> None:
        unravel(b.add(r, _const(layout.row_start)) if layout.row_start else r, layout.row_axes, row_target)
        if col_target is not None:
            counted_loop(b, fn, first_col, b.add(first_col, cols), _const(1), element(col_target), name="ep.col")
            return
        unit = _const(space[last])

        def outer_columns(q: ir.Value) -> None:
            unravel(q, layout.col_axes[:-1])
            counted_loop(b, fn, _const(0), unit, _const(1), element(last), name="ep.col")

        counted_loop(b, fn, b.udiv(first_col, unit), b.udiv(b.add(first_col, cols), unit), _const(1), outer_columns,
                     name="ep.cols")

    counted_loop(b, fn, first_row, b.add(first_row, rows), _const(1), one_row, name="ep.row")

"""Merged loops: consecutive loop axes of a kernel that can run as one counter.

Why: a kernel over an NCHW tensor loops h and w separately; at 14 x 14 or 7 x 7 the vectorized
inner loop is two or one vector long plus a scalar remainder, and with constant trip counts
LLVM unrolls the nest completely (a global average pool over 56 x 56: 0.4 s of LLVM time for
one kernel). Where every read and store is affine and moves along the axes only through their
flat position, one counter over the product does the same work: the last axis longer than 1
takes the flat position, the others stay 0. Code generators use it (graphc.codegen.llvm_loops,
graphc.codegen.llvm_gemm_epilogue); the kernel IR itself is unchanged.
"""
from __future__ import annotations

import math

from . import index as iexpr
from .kernel import LoopKernel, columnar_axis
from .loop_builder import uses_loop_index
from .reads import flatten


def merge_target(k: LoopKernel, axes: tuple[int, ...]) -> int | None:
    """The axis that takes the flat position when loop axes `axes` (consecutive in the nest,
    outermost first) run as one counter; None where they cannot: a read or store is not affine,
    or moves along an axis other than through the flat position (the coefficient of each axis
    longer than 1 is the target's times the extents after it), a read is masked, a value uses
    a loop index itself (an "index" leaf, a random draw), or the axes longer than 1 are not in
    axis order."""
    moving = [a for a in axes if k.space[a] > 1]
    target = moving[-1] if moving else axes[-1]
    if len(moving) < 2:
        return target
    if moving != sorted(moving):   # in axis order, so that a failed check reports the right index
        return None
    if any(s.valid is not None for s in k.slots):
        return None
    for buffer, index in [(s.buffer, s.index) for s in k.slots] + [(s.buffer, s.index) for s in k.stores]:
        form = iexpr.affine(flatten(index, buffer.shape) if isinstance(index, tuple) else index)
        if form is None:
            return None
        unit = form[0].get(target, 0)
        for i, axis in enumerate(moving[:-1]):
            if form[0].get(axis, 0) != unit * math.prod(k.space[a] for a in moving[i + 1:]):
                return None
    values = [s.value for s in k.stores] + [a.operand for a in k.accumulators] + \
        [c.condition for c in k.checks] + [c.detail for c in k.checks if c.detail is not None]
    return None if uses_loop_index(values) else target


def merged_runs(k: LoopKernel) -> dict[int, int]:
    """Positions in the loop order where a merged run starts -> the position after it: maximal
    runs of two or more kept axes (not the outermost, which the pool splits) or of reduced axes.
    None for a column reduction, which blocks its last kept axis (columnar_axis)."""
    if k.serial or columnar_axis(k) is not None:
        return {}
    n_outer = len(k.order) - len(k.reduced)
    runs: dict[int, int] = {}
    for first, stop in ((1, n_outer), (n_outer, len(k.order))):
        p = first
        while p < stop:
            q = p + 1
            while q < stop and merge_target(k, tuple(k.order[p:q + 1])) is not None:
                q += 1
            if q - p >= 2:
                runs[p] = q
            p = q
    return runs

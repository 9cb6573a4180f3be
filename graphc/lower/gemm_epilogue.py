"""GEMM epilogues: a fusion group's elementwise tail (bias, batch norm, activation, residual
add) run on each block of a GEMM's C right after the block is computed, instead of as a
kernel of its own.

Why: the tail as a separate kernel streams the whole product once more (read C, write the
result) and costs a pool dispatch; the profiler put those passes at 15-16% of mobilenet_v2's
kernel time. A block of C (at most a few hundred KB, graphc.codegen.llvm_gemm) is still in the
core's L2 when its tail runs, and C itself lives in the result's memory. At batch 1 the
separate passes mostly hit L3, so the gain is smaller than their share: 1-11% per convolution,
0-10% per model (benchmarks/README.md).

The rule that emits a product says how C lies over the axes of the tensor it holds
(GemmCall.layout); without a layout, or where the tail is not a plain elementwise kernel that
reads C only at the element it computes, the tail stays a kernel of its own. Code generators
render GemmCall.epilogue (the LLVM ones do; the CUDA backend does not ask for it).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.tensor import Tensor
from . import index as iexpr
from .kernel import Buffer, GemmCall, KernelProgram, LoopKernel
from .loop_merge import merge_target


@dataclass(frozen=True)
class GemmLayout:
    """Where element (batch index d, row r, column c) of a GemmCall's C lies in the tensor whose
    buffer C is: batch digit j is axis batch_axes[j] at d_j + batch_start[j]; r + row_start,
    unraveled over the extents of row_axes (row-major), gives those axes; c, unraveled over
    col_axes, gives theirs. A convolution's rule knows this (NCHW: batch n, rows co, columns
    oh x ow; NHWC: rows n x oh x ow, columns co); an epilogue kernel over the tensor's space
    can then run on exactly the box of elements a block of C covers."""

    batch_axes: tuple[int, ...]
    row_axes: tuple[int, ...]
    col_axes: tuple[int, ...]
    batch_start: tuple[int, ...] = ()
    row_start: int = 0


def attach_epilogue(kernels: list, c: Buffer, tail: LoopKernel) -> bool:
    """Give `tail` (a kernel over c's space) to every GemmCall among `kernels` (what one
    library rule emitted) that writes c; False, and nothing changed, where that is not sound:
    some kernel other than a laid-out GemmCall writes c, a kernel reads c after the first
    product, or the tail reduces, checks, scatters, or reads c anywhere but at its own index."""
    if tail.accumulators or tail.checks or tail.reduced or tail.serial or tuple(tail.space) != c.shape:
        return False
    writers = [k for k in kernels if c in k.writes()]
    if not writers or any(not isinstance(k, GemmCall) or k.layout is None or k.epilogue is not None
                          or k.c is not c for k in writers):
        return False
    first = kernels.index(writers[0])
    if any(c in k.reads() for k in kernels[first:]):
        return False
    if any(s.buffer is c and (s.valid is not None or not at_own_index(s.index, c.shape)) for s in tail.slots):
        return False
    for g in writers:
        g.epilogue = tail
    return True


def at_own_index(index: object, shape: tuple[int, ...]) -> bool:
    """Whether `index` (a slot's or store's) is the kernel's own element: loop variable a on
    axis a (or 0 on an axis of extent 1, which the lowering writes as a constant)."""
    if not isinstance(index, tuple) or len(index) != len(shape):
        return False
    zero = repr(iexpr.const(0))
    return all(repr(e) == repr(iexpr.var(a)) or (d == 1 and repr(e) == zero) for a, (e, d) in enumerate(zip(index, shape)))


def column_unit(g: GemmCall) -> int:
    """Columns of C per block are a multiple of this: an epilogue over columns that span two
    or more axes, where they do not merge into one counter, runs whole rows of the last one."""
    if g.epilogue is None or g.layout is None or merge_target(g.epilogue, g.layout.col_axes) is not None:
        return 1
    return g.epilogue.space[g.layout.col_axes[-1]]


def matmul_layout(batch: tuple[int, ...], out: Tensor) -> GemmLayout | None:
    """The layout of a (batched) matrix product's C over its output [*batch, m, n]; None for a
    matrix-vector product, whose output lacks the m or n axis."""
    if len(out.shape) != len(batch) + 2:
        return None
    return GemmLayout(tuple(range(len(batch))), (len(batch),), (len(batch) + 1,), (0,) * len(batch))


def results_in_epilogue_outputs(kp: KernelProgram) -> None:
    """Write a product straight into the memory of what its epilogue stores (memory plan): where
    C is a temporary that nothing but its product and epilogue touches, and the epilogue stores
    one buffer of C's shape and dtype at C's own index, C shares that buffer. The epilogue then
    rewrites each element in place, in cache, and the result's cache lines are fetched once
    (by the product) instead of once for C and once more for the result."""
    touching: dict[int, list] = {}
    for k in kp.kernels:
        for b in {id(x): x for x in k.reads() + k.writes()}.values():
            touching.setdefault(id(b), []).append(k)
    results = {id(b) for b in kp.results}
    for k in kp.kernels:
        if not isinstance(k, GemmCall) or k.epilogue is None:
            continue
        c, tail = k.c, k.epilogue
        if c.kind != "temp" or c.alias_of is not None or id(c) in results:
            continue
        # only the products of C (one per batch chunk, sharing the epilogue) touch it
        if any(not isinstance(u, GemmCall) or u.c is not c or u.epilogue is not tail for u in touching[id(c)]):
            continue
        stores = [s for s in tail.stores if s.buffer is not c]
        target = stores[0].buffer if len(stores) == 1 else None
        if (target is None or stores[0].mode != "set" or not at_own_index(stores[0].index, c.shape) or target.alias_of is not None
                or target.shape != c.shape or target.dtype is not c.dtype or target in (k.a, k.b)
                or any(s.buffer is target for s in tail.slots)):
            continue
        c.alias_of = target

"""Row chains: consecutive loop kernels run block of rows by block of rows.

A row softmax is three kernels over the same 4096 rows (max, sum of exponentials, division).
Run one after the other, each streams the whole matrix through memory; run as a chain, the
code does rows [r, r + B) of the first kernel, then of the second, then of the third, so a row
read from memory by the first is still in cache for the others, and one parallel region covers
all three. A chain is legal when every buffer one member writes and another touches is accessed
only at the row being computed (its first index is the kernel's outer loop variable), and no
two distinct buffers of the chain share memory (the memory plan reuses workspace). Code
generators render a chain as a function looping over row blocks and calling the members.
Temporaries that only the chain touches (softmax's exponentials) need no memory at all beyond
the block being computed: the code generator gives each thread a scratch area for them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .kernel import Buffer, KernelProgram, LoopKernel

# Rows per block: about this many bytes of the widest member's rows (measured best for row
# softmax 4096x1024 among 8K..256K on a 32 KiB-L1, 1 MiB-L2 core).
BLOCK_BYTES = 1 << 15
# Members per chain at most: the cache reuse is won within a few kernels, while a chain's code
# is one function whose optimization time grows faster than its length (a 1,000-member chain of
# a deep gradient graph spent seconds in LLVM), and checking a chain rescans all its members.
MAX_CHAIN_MEMBERS = 32


@dataclass(frozen=True)
class Chain:
    first: int      # kernel index range [first, last)
    last: int
    extent: int     # rows (the members' common outer extent)
    block: int      # rows per block
    # Temporaries only this chain touches, as (buffer id, bytes per row): a block's rows of them
    # live in a per-thread scratch area (in cache) instead of the workspace (in memory).
    private: tuple[tuple[int, int], ...] = ()


def row_chains(kp: KernelProgram) -> list[Chain]:
    """Maximal runs of two or more consecutive kernels that may run as a row chain."""
    chains: list[Chain] = []
    span: dict[int, tuple[int, int]] | None = None
    i = 0
    while i < len(kp.kernels):
        j = i + 1
        while j < len(kp.kernels) and j - i < MAX_CHAIN_MEMBERS and _chainable(kp.kernels[i:j + 1]):
            j += 1
        if j - i >= 2:
            span = span if span is not None else _touch_spans(kp)
            chains.append(_chain(kp, i, j, span))
        i = j
    return chains


def _touch_spans(kp: KernelProgram) -> dict[int, tuple[int, int]]:
    """For each buffer (by id()), the first and last index of a kernel that reads or writes it:
    one pass, so that finding a chain's private temporaries does not rescan every kernel."""
    span: dict[int, tuple[int, int]] = {}
    for index, k in enumerate(kp.kernels):
        for b in k.reads() + k.writes():
            first, _ = span.get(id(b), (index, index))
            span[id(b)] = (first, index)
    return span


def _chain(kp: KernelProgram, first: int, last: int, span: dict[int, tuple[int, int]]) -> Chain:
    members = kp.kernels[first:last]
    extent = members[0].parallel_extent
    row_bytes = max(k.work // max(extent, 1) * 8 for k in members)
    block = max(1, min(extent, BLOCK_BYTES // max(row_bytes, 1)))
    results = {id(b) for b in kp.results}

    def only_inside(b: Buffer) -> bool:
        lo, hi = span[id(b)]
        return first <= lo and hi < last

    private = {b.id: b.nbytes // extent for k in members for b in k.writes()
               if b.kind == "temp" and b.alias_of is None and only_inside(b) and id(b) not in results}
    return Chain(first, last, extent, block, tuple(sorted(private.items())))


def _row_kernel(k: object) -> bool:
    return isinstance(k, LoopKernel) and not k.serial and len(k.order) > len(k.reduced) and k.parallel_extent >= 2


def _chainable(members: list) -> bool:
    if not all(_row_kernel(k) for k in members):
        return False
    extent = members[0].parallel_extent
    if any(k.parallel_extent != extent for k in members):
        return False
    written = {id(b): b for k in members for b in k.writes()}
    touched = {id(b): b for k in members for b in k.reads() + k.writes()}
    if _overlap(list(touched.values())):
        return False
    for k in members:
        axis = k.order[0]
        accesses = [(s.buffer, s.index) for s in k.slots] + [(s.buffer, s.index) for s in k.stores]
        for buffer, index in accesses:
            if id(buffer) in written and not _at_row(buffer, index, axis, extent):
                return False
    return True


def _at_row(buffer: Buffer, index: object, axis: int, extent: int) -> bool:
    """Whether the access touches only row `loop variable axis` of the buffer."""
    if not isinstance(index, tuple) or not index or not buffer.shape or buffer.shape[0] != extent:
        return False
    first = index[0]
    return first.op == "var" and first.value == axis


def _overlap(buffers: list[Buffer]) -> bool:
    """Whether two distinct buffers may share memory (workspace reuse or in-place aliases).
    A temporary placed in an output (memory.plan_temps_in_outputs) is no obstacle: both are
    accessed at the row being computed only, which _chainable checks of every written buffer."""
    spans = []
    for b in buffers:
        if b.alias_of is not None and not (b.kind == "temp" and b.alias_of.kind == "output"):
            return True
        if b.kind == "temp" and b.offset is not None and b.nbytes:
            spans.append((b.offset, b.offset + b.nbytes))
    spans.sort()
    return any(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1))

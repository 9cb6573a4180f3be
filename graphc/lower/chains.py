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

from collections.abc import Callable
from dataclasses import dataclass

from . import index as iexpr
from .kernel import Buffer, KernelProgram, LoopKernel

# Rows per block: about this many bytes of the widest member's rows (measured best for row
# softmax 4096x1024 among 8K..256K on a 32 KiB-L1, 1 MiB-L2 core).
BLOCK_BYTES = 1 << 15
# Members per chain at most: the cache reuse is won within a few kernels, while a chain's code
# is one function whose optimization time grows faster than its length (a 1,000-member chain of
# a deep gradient graph spent seconds in LLVM), and checking a chain rescans all its members.
MAX_CHAIN_MEMBERS = 32
# A temporary's rows go to the per-thread scratch area only up to this size (a block of such
# rows is then at most this big too, as blocks of several rows hold at most BLOCK_BYTES of a
# member's work): the scratch lives on the stack of whichever thread runs the block.
PRIVATE_ROW_BYTES = 1 << 17
# Kernels past one that cannot join a chain that are tried with it: joined, its temporary may be
# private (read only inside the chain), where alone it overlapped memory another member reads.
LOOKAHEAD = 2
# Whether chains may run over the first axis after leading axes of size 1 (False: the rule before
# them, to measure the difference: graphc.lower.chains.UNIT_LEAD with benchmarks/ab.py)
UNIT_LEAD = True


@dataclass(frozen=True)
class Chain:
    first: int      # kernel index range [first, last)
    last: int
    extent: int     # rows (the members' common outer extent)
    block: int      # rows per block
    # Temporaries only this chain touches, as (buffer id, bytes per row): a block's rows of them
    # live in a per-thread scratch area (in cache) instead of the workspace (in memory).
    private: tuple[tuple[int, int], ...] = ()


def row_chains(kp: KernelProgram, unit_lead: bool = True) -> list[Chain]:
    """Maximal runs of two or more consecutive kernels that may run as a row chain; with
    unit_lead False, only those whose rows are the first axis of every buffer they write."""
    unit_lead = unit_lead and UNIT_LEAD
    chains: list[Chain] = []
    span: dict[int, tuple[int, int]] = {}
    results = {id(b) for b in kp.results}

    def spans() -> dict[int, tuple[int, int]]:   # made on first use: most programs never need it
        if not span:
            span.update(_touch_spans(kp))
        return span

    def chainable(first: int, last: int) -> bool:
        return last <= len(kp.kernels) and last - first <= MAX_CHAIN_MEMBERS and _chainable(kp, first, last, spans,
                                                                                              results, unit_lead)

    i = 0
    while i < len(kp.kernels):
        j = i + 1
        while True:
            # a member that cannot join may still join with the next few: its output then
            # becomes private (a depthwise convolution's planes, read by its epilogue kernel)
            longer = next((last for last in range(j + 1, j + 2 + LOOKAHEAD) if chainable(i, last)), None)
            if longer is None:
                break
            j = longer
        if j - i >= 2:
            chains.append(_chain(kp, i, j, spans(), results))
        i = j
    return chains


def plan_steps(count: int, segments: list[tuple[int, int]], chains: list[Chain]) -> list[tuple[str, int]]:
    """The run order of a program of `count` kernels whose kernels outside `segments` (ranges
    run serially) are split over the pool: ("segment", j) for segments[j], ("chain", j) for a
    split row chain chains[j], ("kernel", i) for a split kernel. The compiled plan
    (graphc.codegen.llvm) and the runtime's step-by-step path (graphc.runtime.cpu) both follow it."""
    segment_at = {first: j for j, (first, _) in enumerate(segments)}
    chain_at = {c.first: j for j, c in enumerate(chains)}
    steps: list[tuple[str, int]] = []
    i = 0
    while i < count:
        if i in segment_at:
            steps.append(("segment", segment_at[i]))
            i = segments[segment_at[i]][1]
        elif i in chain_at:
            steps.append(("chain", chain_at[i]))
            i = chains[chain_at[i]].last
        else:
            steps.append(("kernel", i))
            i += 1
    return steps


def _touch_spans(kp: KernelProgram) -> dict[int, tuple[int, int]]:
    """For each buffer (by id()), the first and last index of a kernel that reads or writes it:
    one pass, so that finding a chain's private temporaries does not rescan every kernel."""
    span: dict[int, tuple[int, int]] = {}
    for index, k in enumerate(kp.kernels):
        for b in k.reads() + k.writes():
            first, _ = span.get(id(b), (index, index))
            span[id(b)] = (first, index)
    return span


def _chain(kp: KernelProgram, first: int, last: int, span: dict[int, tuple[int, int]], results: set[int]) -> Chain:
    members = kp.kernels[first:last]
    extent = members[0].parallel_extent
    row_bytes = max(k.work // max(extent, 1) * 8 for k in members)
    block = max(1, min(extent, BLOCK_BYTES // max(row_bytes, 1)))
    private = {b.id: b.nbytes // extent for k in members for b in k.writes()
               if _private(b, first, last, extent, span, results)}
    return Chain(first, last, extent, block, tuple(sorted(private.items())))


def _private(b: Buffer, first: int, last: int, extent: int, span: dict[int, tuple[int, int]],
             results: set[int]) -> bool:
    """Whether temporary b lives in scratch while chain [first, last) runs: only the chain
    touches it (so its workspace memory is not needed at all) and its rows are small enough."""
    if b.kind != "temp" or b.alias_of is not None or id(b) in results or b.nbytes // max(extent, 1) > PRIVATE_ROW_BYTES:
        return False
    lo, hi = span.get(id(b), (first, first))
    return first <= lo and hi < last


def _row_kernel(k: object) -> bool:
    return isinstance(k, LoopKernel) and not k.serial and len(k.order) > len(k.reduced) and k.parallel_extent >= 2


def _chainable(kp: KernelProgram, first: int, last: int, spans: Callable[[], dict[int, tuple[int, int]]],
               results: set[int], unit_lead: bool) -> bool:
    members = kp.kernels[first:last]
    if not all(_row_kernel(k) for k in members):
        return False
    extent = members[0].parallel_extent
    if any(k.parallel_extent != extent for k in members):
        return False
    written = {id(b): b for k in members for b in k.writes()}
    touched = {id(b): b for k in members for b in k.reads() + k.writes()}
    off_row: set[int] = set()   # buffers some member touches away from the row it computes
    for k in members:
        axis = k.order[0]
        for s in list(k.slots) + list(k.stores):
            if not _at_row(s.buffer, s.index, axis, extent, unit_lead):
                if id(s.buffer) in written:
                    return False
                off_row.add(id(s.buffer))
    # a private temporary is never in the workspace while the chain runs: whatever the memory
    # plan placed at its offset (the product its depthwise planes reuse the memory of) is safe
    in_memory = [b for b in touched.values() if not _private(b, first, last, extent, spans(), results)]
    return not _overlap(in_memory, off_row)


def _at_row(buffer: Buffer, index: object, axis: int, extent: int, unit_lead: bool = True) -> bool:
    """Whether the access touches only row `loop variable axis` of the buffer. Leading axes of
    size 1 come first (a batch of one image: [1, channels, h, w] is a chain over channels, so a
    depthwise convolution's padded copy, its planes and its epilogue run channel by channel in
    cache); the access may not move along them with the row."""
    if not isinstance(index, tuple) or not index or len(index) != len(buffer.shape):
        return False
    lead = 0
    while unit_lead and lead < len(index) - 1 and buffer.shape[lead] == 1 and extent != 1:
        lead += 1
    if buffer.shape[lead] != extent or any(axis in iexpr.variables(e) for e in index[:lead]):
        return False
    first = index[lead]
    return first.op == "var" and first.value == axis


def _overlap(buffers: list[Buffer], off_row: set[int]) -> bool:
    """Whether two distinct buffers may share memory (workspace reuse or in-place aliases).
    No obstacle: a temporary placed in an output (memory.plan_temps_in_outputs), and buffers
    the memory plan put at the same place with the same size (a depthwise convolution's result
    over its input), where the chain touches each only at the row being computed: row r of one
    is row r of the other, and a block's members use them in program order, in which the plan
    let one's life end before the other's began."""
    spans: dict[tuple[int, int], bool] = {}   # each span: whether a buffer there is touched off its row
    for b in buffers:
        if b.alias_of is not None and not (b.kind == "temp" and b.alias_of.kind == "output"):
            return True
        if b.kind == "temp" and b.offset is not None and b.nbytes:
            span = (b.offset, b.offset + b.nbytes)
            if span in spans and (spans[span] or id(b) in off_row):
                return True
            spans[span] = id(b) in off_row
    ordered = sorted(spans)
    return any(ordered[i][1] > ordered[i + 1][0] for i in range(len(ordered) - 1))

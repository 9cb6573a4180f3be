"""The memory plan: where each temporary buffer lives in one preallocated workspace.

A temporary is live from the first kernel that writes it to the last kernel that reads it;
buffers whose live ranges do not overlap share bytes (greedy first fit over offsets, 64-byte
aligned so that vector loads never straddle cache lines needlessly). Inputs, outputs and
constants are not placed: the caller passes them.

In-place updates: a variable's new value is written over its old value (the output buffer
becomes an alias of the input) when that is unobservable: one loop kernel computes it
elementwise from the old value at the same index, nothing reads the old value after that
kernel, neither value is fetched, and every runtime check runs in an earlier kernel (the
writer then does nothing once one failed: a failed run leaves every variable as it was). A
training step then updates weights and optimizer slots in the arrays the session already holds.

Temporaries in an output's memory (CPU backends, ``temps_in_outputs``): a temporary that only
the kernel writing an output reads, element for element at the output's own index (softmax's
exponentials, read once to be scaled into the result), is written straight into the output's
memory, and that kernel then rescales it in place. On a CPU this moves the first touch of the
output's cache lines (their read-for-ownership from memory) into the compute-heavy kernel,
where it overlaps with arithmetic, instead of a pass that only streams: row softmax 4096x1024
went from 2.3-2.6 to 1.7-1.8 ms. A GPU keeps such temporaries in on-chip memory, where this
would add traffic, so the CUDA backend does not ask for it. A reader that reads the temporary
at the element it stores under another shape counts too (a result that reshapes a product's C);
when it only copied, it is dropped and the product writes the result.

A GEMM's C that only its epilogue reads lives in the memory of what the epilogue stores
(graphc.lower.gemm_epilogue.results_in_epilogue_outputs).
"""
from __future__ import annotations

import bisect
import heapq
import math

from . import index as iexpr
from .gemm_epilogue import results_in_epilogue_outputs
from .kernel import Buffer, GemmCall, KernelProgram, LoopKernel
from .reads import flatten

ALIGN = 64


def plan_memory(kp: KernelProgram, temps_in_outputs: bool = False) -> KernelProgram:
    plan_in_place(kp)
    if temps_in_outputs:
        plan_temps_in_outputs(kp)
    results_in_epilogue_outputs(kp)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, k in enumerate(kp.kernels):
        for b in k.writes() + k.reads():
            if b.kind == "temp":
                first.setdefault(b.id, i)
                last[b.id] = i
    temps = sorted((b for b in kp.buffers if b.kind == "temp" and b.id in first and b.alias_of is None),
                   key=lambda b: first[b.id])
    gaps = _FreeGaps()
    ends: list[tuple[int, int, int]] = []   # heap of (last use, start, end) of placed temporaries
    size = 0
    for b in temps:
        while ends and ends[0][0] < first[b.id]:   # dead before b is first written: free it
            _, start, end = heapq.heappop(ends)
            gaps.release(start, end)
        need = -(-max(b.nbytes, 1) // ALIGN) * ALIGN
        b.offset = gaps.take(need)
        heapq.heappush(ends, (last[b.id], b.offset, b.offset + need))
        size = max(size, b.offset + need)
    kp.workspace_bytes = place_subprograms(kp.kernels, -(-size // ALIGN) * ALIGN)
    return kp


class _FreeGaps:
    """The workspace's free byte ranges, in order of offset (the last one open-ended): first
    fit in time linear in the number of gaps, which stays small, rather than in the number of
    live temporaries, which a deep graph's gradient makes thousands (its forward values)."""

    def __init__(self) -> None:
        self.starts: list[int] = [0]
        self.ends: list[float] = [math.inf]

    def take(self, need: int) -> int:
        for i, (start, end) in enumerate(zip(self.starts, self.ends)):
            if end - start >= need:
                if end - start == need:
                    del self.starts[i], self.ends[i]
                else:
                    self.starts[i] = start + need
                return start
        raise AssertionError("the last gap is open-ended")

    def release(self, start: int, end: int) -> None:
        i = bisect.bisect_left(self.starts, start)
        if i < len(self.starts) and self.starts[i] == end:      # joins the gap after it
            self.starts[i] = start
        else:
            self.starts.insert(i, start)
            self.ends.insert(i, end)
        if i > 0 and self.ends[i - 1] == start:                   # joins the gap before it
            self.ends[i - 1] = self.ends[i]
            del self.starts[i], self.ends[i]


def place_subprograms(kernels: list, base: int) -> int:
    """Give each loop body, condition and branch (graphc.lower.library_loops planned each one's
    region, relative to its start) its region from `base` on; returns the end. Regions are not
    shared: a body's values live across the whole loop."""
    for k in kernels:
        for sub in getattr(k, "subprograms", lambda: [])():
            for b in sub.buffers:
                if b.kind == "temp" and b.offset is not None:
                    b.offset += base
            base += sub.region_bytes
    return base


def plan_in_place(kp: KernelProgram) -> None:
    """Mark the updates that can be computed in place (see the module docstring)."""
    checked = [i for i, k in enumerate(kp.kernels) if getattr(k, "checks", None)]
    uses = [id(b) for b in kp.results]
    for input_index, result_index in kp.updates:
        old, new = kp.inputs[input_index], kp.results[result_index]
        if (new.kind != "output" or old.kind != "input" or uses.count(id(new)) != 1 or id(old) in uses
                or new.dtype is not old.dtype or new.shape != old.shape or new.alias_of is not None):
            continue
        writers = [i for i, k in enumerate(kp.kernels) if new in k.writes()]
        # the old value is read through its own buffer or a view sharing its memory (a reshape
        # of a variable that a product reads, graphc.lower.library_table.stored)
        readers = [i for i, k in enumerate(kp.kernels) if any(r is old or r.alias_of is old for r in k.reads())]
        if len(writers) != 1 or any(i > writers[0] for i in readers) or any(i >= writers[0] for i in checked):
            continue
        kernel = kp.kernels[writers[0]]
        if isinstance(kernel, GemmCall) and kernel.epilogue is not None and old not in (kernel.a, kernel.b):
            kernel = kernel.epilogue   # the product's tail computes the new value, block by block
        if not isinstance(kernel, LoopKernel) or kernel.reduced:
            continue
        stores = [st for st in kernel.stores if st.buffer is new]
        reads = [sl for sl in kernel.slots if sl.buffer is old]
        # one index for every store of the new value and every read of the old (repr: IExprs
        # compare by structure), and no masked read
        indexes = {repr(st.index) for st in stores} | {repr(sl.index) for sl in reads}
        if all(st.mode == "set" for st in stores) and len(indexes) == 1 and all(sl.valid is None for sl in reads):
            new.alias_of = old
            kernel.skip_on_error = bool(checked)   # a failed check earlier leaves the old value


def plan_temps_in_outputs(kp: KernelProgram) -> None:
    """Place temporaries in the memory of the output their only reader writes (module docstring):
    same size and dtype, written only before that kernel, read there only at the position the
    output is stored at (unmasked; the same element of a reshaped shape counts), and the output
    written by no other kernel nor in place of an input. The reader, when it only copies (a
    result that reshapes a product's C), then has nothing left to do and is dropped."""
    results = {id(b) for b in kp.results}
    for kernel in list(kp.kernels):
        if not isinstance(kernel, LoopKernel) or kernel.reduced or len(kernel.stores) != 1:
            continue
        store = kernel.stores[0]
        out = store.buffer
        # one iteration per output element (so each element is read, then written, once)
        if out.kind != "output" or out.alias_of is not None or store.mode != "set" or kernel.work != out.size:
            continue
        if any(out in k.writes() for k in kp.kernels if k is not kernel):
            continue
        at = _position(store.index, out)
        for slot in kernel.slots:
            temp = slot.buffer
            if (temp.kind != "temp" or temp.alias_of is not None or id(temp) in results or temp.dtype is not out.dtype
                    or temp.size != out.size):
                continue
            reads = [sl for sl in kernel.slots if sl.buffer is temp]
            if at is None or any(sl.valid is not None or _position(sl.index, temp) != at for sl in reads):
                continue
            w = kp.kernels.index(kernel)
            if any(i != w and (temp in k.reads() or (i > w and temp in k.writes())) for i, k in enumerate(kp.kernels)):
                continue
            temp.alias_of = out
            value = store.value
            if len(kernel.slots) == 1 and value.prim == "arg" and value.dtype is out.dtype and not kernel.checks:
                kp.kernels.remove(kernel)   # it would copy each element onto itself
            break


def _position(index: object, buffer: Buffer) -> tuple | None:
    """The element offset an index names, as an affine form over the loop variables (None
    where it is not affine)."""
    flat = index if not isinstance(index, tuple) else flatten(index, buffer.shape)
    form = iexpr.affine(flat)
    return None if form is None else (tuple(sorted(form[0].items())), form[1])

"""The memory plan: where each temporary buffer lives in one preallocated workspace.

A temporary is live from the first kernel that writes it to the last kernel that reads it;
buffers whose live ranges do not overlap share bytes (greedy first fit over offsets, 64-byte
aligned so that vector loads never straddle cache lines needlessly). Inputs, outputs and
constants are not placed: the caller passes them.

In-place updates: a variable's new value is written over its old value (the output buffer
becomes an alias of the input) when that is unobservable: one loop kernel computes it
elementwise from the old value at the same index, nothing reads the old value after that
kernel, neither value is fetched, and every runtime check runs in an earlier kernel (the
writer then does nothing once one failed: a failed run leaves every variable as it was). A training step then updates weights and optimizer slots in
the arrays the session already holds.
"""
from __future__ import annotations

from .kernel import KernelProgram, LoopKernel

ALIGN = 64


def plan_memory(kp: KernelProgram) -> KernelProgram:
    plan_in_place(kp)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, k in enumerate(kp.kernels):
        for b in k.writes() + k.reads():
            if b.kind == "temp":
                first.setdefault(b.id, i)
                last[b.id] = i
    temps = sorted((b for b in kp.buffers if b.kind == "temp" and b.id in first), key=lambda b: first[b.id])
    placed: list[tuple[int, int, int]] = []  # (start, end, last use)
    size = 0
    for b in temps:
        need = -(-max(b.nbytes, 1) // ALIGN) * ALIGN
        live = [(s, e) for s, e, until in placed if until >= first[b.id]]
        offset = 0
        for s, e in sorted(live):
            if offset + need <= s:
                break
            offset = max(offset, e)
        b.offset = offset
        placed.append((offset, offset + need, last[b.id]))
        size = max(size, offset + need)
    kp.workspace_bytes = size
    return kp


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
        readers = [i for i, k in enumerate(kp.kernels) if old in k.reads()]
        if len(writers) != 1 or any(i > writers[0] for i in readers) or any(i >= writers[0] for i in checked):
            continue
        kernel = kp.kernels[writers[0]]
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


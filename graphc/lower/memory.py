"""The memory plan: where each temporary buffer lives in one preallocated workspace.

A temporary is live from the first kernel that writes it to the last kernel that reads it;
buffers whose live ranges do not overlap share bytes (greedy first fit over offsets, 64-byte
aligned so that vector loads never straddle cache lines needlessly). Inputs, outputs and
constants are not placed: the caller passes them.
"""
from __future__ import annotations

from .kernel import KernelProgram

ALIGN = 64


def plan_memory(kp: KernelProgram) -> KernelProgram:
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

"""`--busy N` for the benchmarks: N processes that spin on the CPU while a figure is measured,
so that a shared machine's effect on each implementation is measured rather than guessed."""
from __future__ import annotations

import contextlib
import multiprocessing
from typing import Iterator


def _spin() -> None:
    x = 0
    while True:   # pure Python: one core's worth of work, no memory traffic to speak of
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """Run `count` spinning processes for the duration of the block (none for 0)."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spin, daemon=True) for _ in range(count)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()

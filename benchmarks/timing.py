"""Timing helpers shared by the benchmarks: warm up first, then the median of repeats."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def calls_per_round(fn: Callable[[], object], min_time: float, warmup: int) -> int:
    """After `warmup` calls, the number of calls (a power of two) that takes >= min_time."""
    for _ in range(warmup):
        fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time or n >= 1 << 20:
            return n
        n *= 2


def median_seconds(fn: Callable[[], object], repeats: int = 7, min_time: float = 0.05, warmup: int = 3) -> float:
    """Median over `repeats` rounds of the mean time per call; each round runs >= min_time."""
    n = calls_per_round(fn, min_time, warmup)
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n)
    return statistics.median(rounds)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def compare(fns: dict[str, Callable[[], object]], rounds: int = 9, min_time: float = 0.03,
            warmup: int = 3) -> dict[str, float]:
    """Seconds per call of each implementation: the median over `rounds` in which every
    implementation runs one batch (>= min_time) in turn, so a slow spell of a shared machine
    hits all of them alike instead of whichever happened to be running."""
    batch = {name: calls_per_round(fn, min_time, warmup) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn, n = fns[name], batch[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(samples[name]) for name in names}

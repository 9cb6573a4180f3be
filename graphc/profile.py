"""Profiles: where a session's time goes, per compiled program and per kernel.

`Session(..., profile=True)` (and `gc.function(..., profile=True)`) keep a Profile: for every
program the session compiled, how long compiling took (graph to program and passes, lowering,
code generation, and whether the machine code came from memory, the disk cache or a fresh
compile) and, for every run, the time of each kernel (LLVM backend) or node (NumPy backend).
Profiled runs call kernels one by one with a timer around each, so they cost a few
microseconds more per kernel than plain runs; results are identical.

    sess = gc.Session(profile=True)
    ...
    print(sess.profile)            # the table; sess.profile.kernels() gives the rows
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class KernelStat:
    """One kernel (or reference-backend node) of one program."""

    program: int       # index into Profile.programs
    name: str          # the kernel's name in the compiled module (or the node's name)
    op: str            # the op type of the node it mainly implements
    node: str          # that node's name in the program
    calls: int = 0
    seconds: float = 0.0

    @property
    def mean_us(self) -> float:
        return self.seconds / self.calls * 1e6 if self.calls else 0.0


@dataclass
class ProgramProfile:
    """One compiled program: its compile timings and its kernels."""

    label: str
    compile_ms: float                              # build + passes + backend compile, in all
    timings: dict[str, Any]                        # the backend's own breakdown
    kernels: list[KernelStat] = field(default_factory=list)
    runs: int = 0
    run_seconds: float = 0.0                       # whole runs, Python included

    def record(self, index: int, seconds: float) -> None:
        stat = self.kernels[index]
        stat.calls += 1
        stat.seconds += seconds


class Profile:
    def __init__(self) -> None:
        self.programs: list[ProgramProfile] = []

    def add_program(self, label: str, compile_ms: float, timings: dict[str, Any],
                    kernels: list[tuple[str, str, str]]) -> ProgramProfile:
        index = len(self.programs)
        program = ProgramProfile(label, compile_ms, dict(timings),
                                 [KernelStat(index, name, op, node) for name, op, node in kernels])
        self.programs.append(program)
        return program

    def kernels(self) -> list[KernelStat]:
        """Every kernel of every program, the most time first."""
        rows = [k for p in self.programs for k in p.kernels]
        return sorted(rows, key=lambda k: -k.seconds)

    def reset(self) -> None:
        """Forget run times (compile timings stay)."""
        for p in self.programs:
            p.runs, p.run_seconds = 0, 0.0
            for k in p.kernels:
                k.calls, k.seconds = 0, 0.0

    def summary(self, top: int = 25) -> str:
        lines = ["compiled programs:"]
        for i, p in enumerate(self.programs):
            detail = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in p.timings.items())
            mean = p.run_seconds / p.runs * 1e6 if p.runs else 0.0
            lines.append(f"  [{i}] {p.label}: compile {p.compile_ms:.1f} ms ({detail}); "
                         f"{p.runs} runs, {mean:.1f} us per run")
        rows = [k for k in self.kernels() if k.calls][:top]
        total = sum(k.seconds for k in self.kernels()) or 1.0
        lines.append(f"kernels (top {len(rows)} by time):")
        lines.append(f"  {'share':>6} {'total ms':>9} {'calls':>6} {'mean us':>9}  program kernel (op: node)")
        for k in rows:
            lines.append(f"  {k.seconds / total:6.1%} {k.seconds * 1e3:9.3f} {k.calls:6d} {k.mean_us:9.1f}  "
                         f"[{k.program}] {k.name} ({k.op}: {k.node})")
        return "\n".join(lines)

    __str__ = summary

"""The pass pipeline, named as data.

DEFAULT_PIPELINE is the order compiled backends use: canonicalize (fold, merge, simplify),
stabilize the numerics, canonicalize again, decompose composite ops into primitives, merge
what decomposition duplicated, drop dead code, and group what remains into kernels.
The NumPy reference backend runs no passes by default: it is the oracle that the optimized
programs are checked against. A session or function can name its own list, or None.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from ..errors import CompileError
from ..program import Program
from .cse import common_subexpressions
from .dce import dead_code_elimination
from .decompose import decompose
from .fold import constant_folding
from .fuse import fuse
from .simplify import simplify
from .stabilize import stabilize

PASSES: dict[str, Callable[[Program], Program]] = {
    "dce": dead_code_elimination,
    "cse": common_subexpressions,
    "fold": constant_folding,
    "simplify": simplify,
    "simplify_fast": lambda p: simplify(p, strict=False),
    "stabilize": stabilize,
    "decompose": decompose,
    "fuse": fuse,
}

DEFAULT_PIPELINE: tuple[str, ...] = (
    "fold", "cse", "simplify", "stabilize", "fold", "cse", "simplify",
    "decompose", "cse", "simplify", "dce", "fuse",
)


def resolve(pipeline: Any, backend_default: Sequence[str]) -> tuple[str, ...]:
    """A pipeline given as "default", None (no passes) or a list of pass names."""
    if pipeline == "default":
        return tuple(backend_default)
    if pipeline is None:
        return ()
    if isinstance(pipeline, str):
        pipeline = [pipeline]
    names = tuple(pipeline)
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise CompileError(f"unknown pass(es) {unknown}; the passes are {sorted(PASSES)}")
    return names


def run_pipeline(program: Program, passes: Sequence[str], trace: list[tuple[str, Program, float]] | None = None) -> Program:
    """Apply the passes in order; with `trace`, record (pass, program after it, seconds)."""
    for name in passes:
        t0 = time.perf_counter()
        program = PASSES[name](program)
        if trace is not None:
            trace.append((name, program, time.perf_counter() - t0))
    return program

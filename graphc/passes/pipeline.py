"""The pass pipeline, named as data.

DEFAULT_PIPELINE is the order compiled backends use: canonicalize (fold, merge, simplify),
restructure loops (graphc.passes.loops), stabilize the numerics, canonicalize again, decompose composite ops into primitives, merge
what decomposition duplicated, drop dead code, and group what remains into kernels.
The NumPy reference backend runs no passes by default: it is the oracle that the optimized
programs are checked against. A session or function can name its own list, or None.

What a pipeline means (plan_passes): the passes a user names run exactly as given, in their
order; a target then appends the passes it cannot do without that the list lacks (a compiled
target lowers fused primitive ops only: it requires "decompose" and "fuse"), in its own order,
and debugprint shows them as added. Some orders cannot work, and say which pass is missing or
misplaced instead of failing later: "fuse" needs "decompose" before it (fusion groups primitive
ops), and "fuse" must come last (a pass after it would drop the kernel grouping).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import CompileError
from ..program import Program
from .cse import common_subexpressions
from .dce import dead_code_elimination
from .decompose import decompose
from .fold import constant_folding
from .functions import optimize_functions
from .fuse import fuse
from .layout import channels_last
from .loops import restructure_loops
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
    "loops": restructure_loops,
    "layout": channels_last,
}

DEFAULT_PIPELINE: tuple[str, ...] = (
    "fold", "cse", "loops", "simplify", "stabilize", "fold", "cse", "simplify",
    "decompose", "cse", "simplify", "dce", "fuse",
)
# Targets whose convolutions run graphc's direct kernel (channels last) run their convolution
# regions in NHWC (graphc.passes.layout), before composite ops are decomposed
CHANNELS_LAST_PIPELINE: tuple[str, ...] = DEFAULT_PIPELINE[:DEFAULT_PIPELINE.index("decompose")] + ("layout",) \
    + DEFAULT_PIPELINE[DEFAULT_PIPELINE.index("decompose"):]


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


# pass -> (passes that must run before it, why)
PREREQUISITES: dict[str, tuple[tuple[str, ...], str]] = {
    "fuse": (("decompose",), "fusion groups primitive ops, so composite ops (softmax, mean, ...) must be decomposed "
                             "first"),
}
# passes after which no other pass may run, and why
LAST_PASSES: dict[str, str] = {
    "fuse": "it groups the finished program into kernels, and a pass after it would drop that grouping",
}


@dataclass(frozen=True)
class PlannedPass:
    """One pass of a planned pipeline: its name and, when the user did not ask for it, the
    target that added it."""

    name: str
    added_by: str | None = None

    def __str__(self) -> str:
        return self.name if self.added_by is None else f"{self.name} (added: {self.added_by} requires it)"


def plan_passes(pipeline: Any, target_name: str, default: Sequence[str], required: Sequence[str]) -> list[PlannedPass]:
    """The passes that compiling for a target runs: `pipeline` ("default", None or pass names)
    exactly as given, then each pass in `required` that it lacks. A CompileError says which pass
    is missing or misplaced when the order cannot work."""
    given = resolve(pipeline, default)
    planned = [PlannedPass(n) for n in given] + [PlannedPass(n, target_name) for n in required if n not in given]
    names = [p.name for p in planned]
    shown = list(given) if pipeline != "default" else "the default pipeline"
    for i, name in enumerate(names):
        before, why = PREREQUISITES.get(name, ((), ""))
        for need in before:
            if need in names[:i]:
                continue
            if need in given:
                problem, hint = f"'{need}' comes after it", f"move '{need}' before '{name}'"
            else:
                problem = f"'{need}' is missing"
                hint = (f"put '{need}' before '{name}', or leave '{name}' out: the {target_name} target then adds "
                        f"{', '.join(repr(r) for r in required)} at the end")
            raise CompileError(f"pipeline {shown} for the {target_name} target: pass '{name}' needs '{need}' before "
                               f"it, and {problem} ({why})", hint=hint)
        if name in LAST_PASSES and i + 1 < len(names):
            later = names[i + 1]
            raise CompileError(
                f"pipeline {shown} for the {target_name} target: pass '{later}' comes after '{name}', which must be "
                f"the last pass ({LAST_PASSES[name]})", hint=f"move '{later}' before '{name}'")
    return planned


def run_pipeline(program: Program, passes: Sequence[str], trace: list[tuple[str, Program, float]] | None = None) -> Program:
    """Apply the passes in order; with `trace`, record (pass, program after it, seconds).
    Loop bodies and branches go through the same passes (graphc.passes.functions) just before
    "fuse", or after the last pass: the passes before see the loops as built ("loops" restructures
    them), and fusion needs the bodies in their final form."""
    bodies_done = False
    for name in passes:
        if name == "fuse" and not bodies_done:
            program = optimize_functions(program, lambda body: run_pipeline(body, passes))
            bodies_done = True
        t0 = time.perf_counter()
        program = PASSES[name](program)
        if trace is not None:
            trace.append((name, program, time.perf_counter() - t0))
    if not bodies_done:
        program = optimize_functions(program, lambda body: run_pipeline(body, passes))
    return program

"""Targets and the one compile path.

A Target is what compiling for one backend means: the passes it cannot do without, its default
pipeline, how it lowers a program (its lowering options), how it turns the kernel program into
code (its renderer), how that code becomes something callable (its loader), and what it
decides from the kernels' costs (its cost model). `compile(program, target, pipeline)` is the
only compile driver: Session, gc.function, gc.aot and gc.debugprint all call it, so a pipeline
means the same thing everywhere (graphc.passes.pipeline.plan_passes says what).

    program --passes--> program --target.kernel_program--> kernel program --target.emit--> executable
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from ..lower import KernelProgram, lower_program, plan_memory
from ..passes import DEFAULT_PIPELINE, PlannedPass, plan_passes, run_pipeline
from ..program import Program


class Target:
    """A backend as the compile driver sees it. Subclasses set `name` and override build()."""

    name: str = "?"
    required_passes: tuple[str, ...] = ()
    default_pipeline: tuple[str, ...] = ()

    def plan(self, pipeline: Any = "default") -> list[PlannedPass]:
        """The passes compiling with `pipeline` runs: the user's as given, then what this target
        requires (a CompileError when the order cannot work)."""
        return plan_passes(pipeline, self.name, self.default_pipeline, self.required_passes)

    def build(self, program: Program) -> Any:
        """An executable for a program that went through plan()'s passes."""
        raise NotImplementedError


class KernelTarget(Target):
    """A target that generates code: lowering to a kernel program, then emit() renders and loads it.

    Lowering options: `blas` (matmuls are GEMM calls rather than generated loops),
    `generated_gemm` (those GEMMs are graphc's own generated code, not a BLAS), `vector_loops`
    (matrix-vector products stay loops even so), `gemm_epilogues` (a library group's elementwise
    tail runs inside the GEMM before it, on each block of C), `direct_conv` (a convolution
    runs a generated direct kernel, graphc.lower.conv_direct), `strided_operands` (a product
    reads an operand that is a strided view, a transposed head of an attention block, where it
    lies instead of a copy) and `temps_in_outputs` (a
    temporary read only at an output's own index lives in that output's memory; see
    graphc.lower.memory)."""

    required_passes = ("decompose", "fuse")
    default_pipeline = DEFAULT_PIPELINE
    blas = True
    generated_gemm = False
    vector_loops = False   # matrix-vector products as reduction loops although GEMMs are calls
    gemm_epilogues = False
    direct_conv = False    # convolutions as direct kernels (LLVM code only)
    strided_operands = False   # GEMM operands with a leading dimension of their own (LLVM code only)
    temps_in_outputs = False

    def kernel_program(self, program: Program) -> KernelProgram:
        """The lowered, memory-planned kernel program emit() renders."""
        return plan_memory(lower_program(program, blas=self.blas, vector_loops=self.vector_loops,
                                         generated_gemm=self.generated_gemm, gemm_epilogues=self.gemm_epilogues,
                                         direct_conv=self.direct_conv, strided_operands=self.strided_operands),
                           temps_in_outputs=self.temps_in_outputs)

    def build(self, program: Program) -> Any:
        started = time.perf_counter()
        kp = self.kernel_program(program)
        lowered = time.perf_counter()
        executable, timings = self.emit(kp, program)
        executable.timings = {"lower_ms": (lowered - started) * 1e3,
                              "codegen_ms": (time.perf_counter() - lowered) * 1e3, **timings,
                              "kernels": len(kp.kernels)}
        return executable

    def emit(self, kp: KernelProgram, program: Program) -> tuple[Any, dict[str, Any]]:
        """(the executable for `kp`, what to add to its timings): render, build and load."""
        raise NotImplementedError


def compile(program: Program, target: Target, pipeline: Any = "default",
            trace: list[tuple[str, Program, float]] | None = None,
            planned: Sequence[PlannedPass] | None = None) -> Any:
    """Run the planned passes over `program` and build it for `target`: the one compile path.
    `trace` (a list) receives (pass, program after it, seconds) per pass; `planned` is
    target.plan(pipeline) when the caller already has it."""
    passes = target.plan(pipeline) if planned is None else planned
    program = run_pipeline(program, [p.name for p in passes], trace)
    return target.build(program)

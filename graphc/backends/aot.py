"""The ahead-of-time target: the LLVM target's lowering and renderer, with C entry points added
and the module compiled to position-independent object code for a chosen triple and CPU instead
of being loaded (graphc.aot writes it out with a header and links a library).

Its GEMMs are graphc's own generated GEMM (graphc.codegen.llvm_gemm_own) instead of BLAS calls,
so a library depends on libc alone, and its code is serial (a library call never starts threads).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..codegen.llvm import render_module
from ..codegen.llvm_aot import add_aot_entries
from ..codegen.llvm_conv_direct import define_declared_conv
from ..codegen.llvm_depthwise import define_declared_depthwise
from ..codegen.llvm_pointwise import define_declared_pointwise
from ..codegen.llvm_gemm_own import define_declared_blocks
from ..errors import CompileError
from ..lower import KernelProgram
from ..passes import CHANNELS_LAST_PIPELINE
from ..program import Program
from ..runtime import jit
from .target import KernelTarget


@dataclass
class ObjectCode:
    """What the AOT target builds: object code for `program`, lowered as `kp`."""

    code: bytes
    kp: KernelProgram
    program: Program
    timings: dict[str, Any] = field(default_factory=dict)


# vector register bytes of the x86-64 micro-architecture levels (v3: AVX2, v4: AVX-512)
LEVEL_VECTOR_BYTES = {"x86-64": 16, "x86-64-v2": 16, "x86-64-v3": 32, "x86-64-v4": 64}


class AotTarget(KernelTarget):
    name = "aot"
    generated_gemm = True
    gemm_epilogues = True
    direct_conv = True
    default_pipeline = CHANNELS_LAST_PIPELINE   # convolution regions channels last (graphc.passes.layout)
    strided_operands = True
    temps_in_outputs = True

    def __init__(self, library: str, input_sources: Sequence[int | np.ndarray], triple: str | None = None,
                 cpu: str | None = None) -> None:
        """`input_sources`: per program input, the index of the C `inputs` argument it comes
        from, or the array to embed (a frozen variable, a random op's run counter)."""
        self.library, self.input_sources, self.triple, self.cpu = library, list(input_sources), triple, cpu

    def gemm_vector_bytes(self) -> int | None:
        """The vector width the library's GEMM is blocked for: the host's (None) when it is built
        for this machine, an x86-64 level's for a level name, else 16 bytes (SSE2 / NEON), which
        every target has. Blocking for wider vectors than the target's would keep twice or four
        times the accumulators its registers hold (x86-64-v3 code built on an AVX-512 host)."""
        if self.triple is None and self.cpu is None:
            return None
        if self.cpu in LEVEL_VECTOR_BYTES and (self.triple is None or self.triple.startswith("x86_64")):
            return LEVEL_VECTOR_BYTES[self.cpu]
        return 16

    def emit(self, kp: KernelProgram, program: Program) -> tuple[ObjectCode, dict[str, Any]]:
        module, info = render_module(kp, f"{self.library}__graphc")
        add_aot_entries(module, info, kp, self.library, self.input_sources)
        define_declared_blocks(module, self.gemm_vector_bytes())   # the library carries its own GEMM
        define_declared_conv(module, self.gemm_vector_bytes())     # and its direct convolutions
        define_declared_pointwise(module, self.gemm_vector_bytes())   # and its 1x1 convolutions
        define_declared_depthwise(module, self.gemm_vector_bytes())   # and its depthwise ones
        try:
            code = jit.compile_object_for_target(str(module), self.triple, self.cpu)
        except jit.TargetError as err:
            raise CompileError(str(err), hint="LLVM triples look like x86_64-unknown-linux-gnu or "
                               "aarch64-unknown-linux-gnu; CPUs like x86-64-v3, skylake-avx512, znver4, "
                               "generic") from None
        return ObjectCode(code, kp, program), {"code_from": "compiled", "triple": self.triple or "host"}

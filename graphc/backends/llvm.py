"""backend="llvm": programs compiled to native code for this CPU.

The LLVM target: lowering with GEMM calls (OpenBLAS, or graphc's own GEMM with
GRAPHC_GEMM=generated: graphc.backends.gemm_library) and temporaries written into outputs; its
cost model picks the code tier (a program doing little work is compiled quickly rather than well)
and which kernels the thread pool splits; its renderer is graphc.codegen.llvm (one module per
program); its loader takes the object code from the process, the disk cache or a fresh compile
and makes a CpuExecutable.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..codegen.llvm import SMALL_KERNEL_WORK, add_segments, module_info, render_module, renamed
from ..codegen.llvm_split import split_module
from ..lower import KernelProgram
from ..lower.kernel import GemmCall, LoopKernel
from ..lower.fingerprint import fingerprint
from ..passes import CHANNELS_LAST_PIPELINE, DEFAULT_PIPELINE
from ..program import Program
from ..runtime import cache, compile_workers, jit
from ..runtime.cpu import CpuExecutable, parallel_kernels, plan_segments
from . import gemm_library
from .target import KernelTarget

# Programs doing less work than this (loop iterations, or GEMM multiply-adds, in all) run in a
# few microseconds whatever the code quality: they are compiled quickly rather than well.
QUICK_WORK = 1 << 14
# A program of this many kernels or more, none of which does SMALL_KERNEL_WORK iterations, is
# compiled quickly too: its kernels are optnone in the O3 tier anyway, and full code generation
# of thousands of them (a deep graph's gradient) took tens of seconds instead of a few.
MANY_KERNELS = 256
FORMAT = "graphc-llvm-3"


class LLVMTarget(KernelTarget):
    name = "llvm"
    temps_in_outputs = True
    vector_loops = True
    strided_operands = True

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads   # at most this many pool threads per run (None: all of them)

    @property
    def gemm_epilogues(self) -> bool:   # type: ignore[override]
        """A conv's or matmul's bias / activation tail runs inside its GEMM, block by block
        (graphc.lower.gemm_epilogue); GRAPHC_GEMM_EPILOGUES=0 keeps separate kernels, to
        measure the difference."""
        return os.environ.get("GRAPHC_GEMM_EPILOGUES", "1").strip() != "0"

    @property
    def direct_conv(self) -> bool:   # type: ignore[override]
        """NCHW convolutions with a constant filter run graphc's direct kernel instead of patches
        + BLAS (graphc.lower.conv_direct); GRAPHC_DIRECT_CONV=0 keeps patches + BLAS, to measure
        the difference."""
        return os.environ.get("GRAPHC_DIRECT_CONV", "1").strip() != "0"

    @property
    def default_pipeline(self) -> tuple[str, ...]:   # type: ignore[override]
        """With the direct kernel, convolution regions run channels last (graphc.passes.layout)."""
        return CHANNELS_LAST_PIPELINE if self.direct_conv else DEFAULT_PIPELINE

    @property
    def generated_gemm(self) -> bool:   # type: ignore[override]
        """Whether products run graphc's own GEMM rather than OpenBLAS: with GRAPHC_GEMM=generated,
        or where no BLAS was found. Not by default: it ran 1.0-1.4x OpenBLAS's speed on products
        up to 256^3 on one thread (benchmarks/own_gemm.py), but giving it those products inside
        the CNN step, the attention block and the MLP step changed nothing measurable (attention
        1.03-1.13 of jax.jit's time against 0.97-1.02 with OpenBLAS, alternating processes)."""
        return os.environ.get("GRAPHC_GEMM", "").strip().lower() == "generated" or not jit.gemm_available()

    def emit(self, kp: KernelProgram, program: Program) -> tuple[CpuExecutable, dict[str, Any]]:
        quick = sum(k.work for k in kp.kernels) < QUICK_WORK or _many_small_kernels(kp)
        draft = module_info(kp, "_")
        parallel = parallel_kernels(draft, self.threads)   # which kernels the pool splits
        about = f"{FORMAT}; code generator {code_digest()}; {'quick' if quick else 'O3'}; {jit.host_description()}"
        key = cache.key_of(about, repr(parallel), fingerprint(kp))
        prefix = f"g{key[:20]}"   # symbols unique per program in the shared engine
        info = renamed(draft, prefix)
        info.segments = plan_segments(parallel)
        source = "memory" if jit.is_loaded(key) else "disk"
        if source == "disk":
            code = cache.load(key, about=about)
            if code is None:
                source = "compiled"
                module, info = render_module(kp, prefix, info=info)
                add_segments(module, info, plan_segments(parallel))
                # two parts per process, taken as each one finishes: compile costs are hard to
                # predict, and one process left with the slow half made the others wait
                extra = compile_workers.extra_processes()
                parts = 1 if quick or extra == 0 else 2 * (1 + extra)
                code = jit.compile_objects(split_module(module, [k.name for k in info.kernels], parts), quick)
                cache.store(key, code, about=about)
            gemm_library.load_blocks(kp, code_digest())   # before the code that calls them
            jit.load_object(key, code)
        executable = CpuExecutable(kp, info, jit.load_object(key, b""), program, self.threads)
        return executable, {"code_from": source, "cache_hit": source != "compiled", "tier": "quick" if quick else "O3"}


def _many_small_kernels(kp: KernelProgram) -> bool:
    """Whether the program is hundreds of kernels that each run in microseconds (GEMMs call BLAS
    whatever the tier; loops and branches keep the O3 tier)."""
    return len(kp.kernels) >= MANY_KERNELS and all(
        isinstance(k, GemmCall) or (isinstance(k, LoopKernel) and k.work < SMALL_KERNEL_WORK) for k in kp.kernels)


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A hash of the source of everything that turns a kernel program into machine code: part of
    every cache key, so code cached by another graphc version is never loaded."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = [*sorted((root / "codegen").glob("*.py")), *sorted((root / "runtime").glob("*.py")),
             *sorted((root / "lower").glob("*.py")), root / "backends" / "llvm.py", root / "backends" / "target.py",
             root / "ops" / "scalar.py",
             root / "ir" / "dtypes.py"]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()

"""backend="llvm": programs compiled to native code for this CPU.

compile(): the fused program is lowered to kernels (graphc.lower), rendered as one LLVM module
(graphc.codegen.llvm), compiled at O3 for the host CPU (or taken from the disk cache) and loaded
into a CpuExecutable. A program that skipped the pass pipeline still gets the passes the
lowering needs (decomposition of composite ops, dead code elimination, fusion).
"""
from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from pathlib import Path

from ..codegen.llvm import add_segments, module_info, render_module
from ..lower import lower_program, plan_memory
from ..lower.fingerprint import fingerprint
from ..passes import DEFAULT_PIPELINE, run_pipeline
from ..program import Program
from ..runtime import cache, jit
from ..runtime.cpu import CpuExecutable, parallel_kernels, plan_segments

REQUIRED_PASSES = ("decompose", "cse", "dce", "fuse")
# Programs doing less work than this (loop iterations, or GEMM multiply-adds, in all) run in a
# few microseconds whatever the code quality: they are compiled quickly rather than well.
QUICK_WORK = 1 << 14
FORMAT = "graphc-llvm-2"


class LLVMBackend:
    name = "llvm"
    default_pipeline = DEFAULT_PIPELINE

    def compile(self, program: Program) -> CpuExecutable:
        t0 = time.perf_counter()
        if program.groups is None:
            program = run_pipeline(program, REQUIRED_PASSES)
        kp = plan_memory(lower_program(program, blas=jit.gemm_available()), temps_in_outputs=True)
        quick = sum(k.work for k in kp.kernels) < QUICK_WORK
        parallel = parallel_kernels(module_info(kp, "_"))   # which kernels the pool splits
        about = f"{FORMAT}; code generator {code_digest()}; {'quick' if quick else 'O3'}; {jit.host_description()}"
        key = cache.key_of(about, repr(parallel), fingerprint(kp))
        prefix = f"g{key[:20]}"   # symbols unique per program in the shared engine
        info = module_info(kp, prefix)
        info.segments = plan_segments(parallel)
        t1 = time.perf_counter()
        source = "memory" if jit.is_loaded(key) else "disk"
        if source == "disk":
            code = cache.load(key, about=about)
            if code is None:
                source = "compiled"
                module, info = render_module(kp, prefix)
                add_segments(module, info, plan_segments(parallel))
                code = jit.compile_object(str(module), quick)
                cache.store(key, code, about=about)
            jit.load_object(key, code)
        t2 = time.perf_counter()
        executable = CpuExecutable(kp, info, jit.load_object(key, b""), program)
        executable.timings = {"lower_ms": (t1 - t0) * 1e3, "codegen_ms": (t2 - t1) * 1e3, "code_from": source,
                              "cache_hit": source != "compiled", "tier": "quick" if quick else "O3",
                              "kernels": len(kp.kernels)}
        return executable


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A hash of the source of everything that turns a kernel program into machine code: part of
    every cache key, so code cached by another graphc version is never loaded."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = [*sorted((root / "codegen").glob("*.py")), *sorted((root / "runtime").glob("*.py")),
             *sorted((root / "lower").glob("*.py")), root / "backends" / "llvm.py", root / "ops" / "scalar.py",
             root / "ir" / "dtypes.py"]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()

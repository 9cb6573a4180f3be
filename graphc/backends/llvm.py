"""backend="llvm": programs compiled to native code for this CPU.

compile(): the fused program is lowered to kernels (graphc.lower), rendered as one LLVM module
(graphc.codegen.llvm), compiled at O3 for the host CPU (or taken from the disk cache) and loaded
into a CpuExecutable. A program that skipped the pass pipeline still gets the passes the
lowering needs (decomposition of composite ops, dead code elimination, fusion).
"""
from __future__ import annotations

import time

from ..codegen.llvm import add_segments, render_module
from ..lower import lower_program, plan_memory
from ..passes import DEFAULT_PIPELINE, run_pipeline
from ..program import Program
from ..runtime import cache, jit
from ..runtime.cpu import CpuExecutable, parallel_kernels, plan_segments

REQUIRED_PASSES = ("decompose", "cse", "dce", "fuse")
PREFIX = "GRAPHC_PROGRAM"   # replaced by a key-derived prefix in the compiled symbols
# Programs doing less work than this (loop iterations, or GEMM multiply-adds, in all) run in a
# few microseconds whatever the code quality: they are compiled quickly rather than well.
QUICK_WORK = 1 << 14
FORMAT = "graphc-llvm-1"


class LLVMBackend:
    name = "llvm"
    default_pipeline = DEFAULT_PIPELINE

    def compile(self, program: Program) -> CpuExecutable:
        t0 = time.perf_counter()
        if program.groups is None:
            program = run_pipeline(program, REQUIRED_PASSES)
        kp = plan_memory(lower_program(program, blas=jit.gemm_available()))
        module, info = render_module(kp, PREFIX)
        add_segments(module, info, plan_segments(parallel_kernels(info)))
        generic = str(module)
        t1 = time.perf_counter()
        quick = sum(k.work for k in kp.kernels) < QUICK_WORK
        key = cache.key_of(FORMAT, jit.host_description(), "quick" if quick else "O3", generic)
        prefix = f"g{key[:20]}"   # symbols unique per program in the shared engine
        info.name = prefix
        for k in info.kernels:
            k.name = k.name.replace(PREFIX, prefix, 1)
        hit = jit.is_loaded(key)
        code = None if hit else cache.load(key)
        hit = hit or code is not None
        if not jit.is_loaded(key):
            if code is None:
                code = jit.compile_object(generic.replace(f'@"{PREFIX}_', f'@"{prefix}_'), quick)
                cache.store(key, code)
            jit.load_object(key, code)
        t2 = time.perf_counter()
        executable = CpuExecutable(kp, info, jit.load_object(key, b""), program)
        executable.timings = {"lower_and_render_ms": (t1 - t0) * 1e3, "llvm_ms": (t2 - t1) * 1e3,
                              "cache_hit": hit, "tier": "quick" if quick else "O3", "kernels": len(kp.kernels), "ir_bytes": len(generic)}
        return executable

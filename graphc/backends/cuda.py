"""backend="cuda" (an NVIDIA GPU through PyCUDA) and backend="cuda-emulator" (the same generated
CUDA C run on the CPU by graphc's emulator, which is how CI checks the CUDA backend).

compile(): the fused program is lowered to the same kernel program as for the LLVM backend
(matmuls as GEMM calls), rendered as one CUDA C module (graphc.codegen.cuda), built by nvcc
(or g++ for the emulator; both cached on disk) and loaded into a CudaExecutable.
"""
from __future__ import annotations

import time
from typing import Any

from ..codegen.cuda import render_cuda
from ..lower import lower_program, plan_memory
from ..lower.fingerprint import fingerprint
from ..passes import DEFAULT_PIPELINE, run_pipeline
from ..program import Program
from ..runtime import cache
from ..runtime.cuda import CudaExecutable

REQUIRED_PASSES = ("decompose", "cse", "dce", "fuse")


class CudaBackend:
    default_pipeline = DEFAULT_PIPELINE

    def __init__(self, kind: str) -> None:
        from ..runtime.cuda_devices import device

        self.name = "cuda" if kind == "gpu" else "cuda-emulator"
        self.device = device(kind)   # fails here, clearly, when PyCUDA, a GPU or g++ is missing

    def compile(self, program: Program) -> CudaExecutable:
        t0 = time.perf_counter()
        if program.groups is None:
            program = run_pipeline(program, REQUIRED_PASSES)
        kp = plan_memory(lower_program(program, blas=True))
        prefix = f"g{cache.key_of(fingerprint(kp))[:16]}"
        module = render_cuda(kp, prefix)
        t1 = time.perf_counter()
        with self.device.active():
            code, origin = self.device.build(module.source)
            t2 = time.perf_counter()
            executable = CudaExecutable(kp, module, self.device, code, program)
        executable.timings = {"lower_ms": (t1 - t0) * 1e3, "codegen_ms": (t2 - t1) * 1e3, "code_from": origin,
                              "cache_hit": origin != "compiled", "device": self.device.name,
                              "kernels": len(kp.kernels)}
        return executable


def gpu_backend() -> Any:
    return CudaBackend("gpu")


def emulator_backend() -> Any:
    return CudaBackend("emulator")

"""backend="cuda" (an NVIDIA GPU through PyCUDA) and backend="cuda-emulator" (the same generated
CUDA C run on the CPU by graphc's emulator, which is how CI checks the CUDA backend).

The CUDA target: lowering with GEMM calls (rendered from kernels/cuda templates); its renderer is
graphc.codegen.cuda (one CUDA C module per program); its loader builds the module with NVRTC or
nvcc (g++ for the emulator; both cached on disk) and makes a CudaExecutable. Launch shapes are
chosen by the renderer from each kernel's iteration space.
"""
from __future__ import annotations

from typing import Any

from ..codegen.cuda import render_cuda
from ..lower import KernelProgram
from ..lower.fingerprint import fingerprint
from ..program import Program
from ..runtime import cache
from ..runtime.cuda import CudaExecutable
from .target import KernelTarget


class CudaTarget(KernelTarget):
    def __init__(self, kind: str) -> None:
        from ..runtime.cuda_devices import device

        self.name = "cuda" if kind == "gpu" else "cuda-emulator"
        self.device = device(kind)   # fails here, clearly, when PyCUDA, a GPU or g++ is missing

    def emit(self, kp: KernelProgram, program: Program) -> tuple[CudaExecutable, dict[str, Any]]:
        prefix = f"g{cache.key_of(fingerprint(kp))[:16]}"
        module = render_cuda(kp, prefix)
        with self.device.active():
            code, origin = self.device.build(module.source)
            executable = CudaExecutable(kp, module, self.device, code, program)
        return executable, {"code_from": origin, "cache_hit": origin != "compiled", "device": self.device.name}


def gpu_backend() -> Any:
    return CudaTarget("gpu")


def emulator_backend() -> Any:
    return CudaTarget("emulator")

"""Backends, each a Target (graphc.backends.target): `compile(program, target, pipeline)` runs the
passes and returns an executable taking the program's input arrays and returning its results.

"llvm" (compiled for this CPU, the default), "numpy" (the reference interpreter, the oracle
every compiled backend is tested against), "cuda" (an NVIDIA GPU through PyCUDA) and
"cuda-emulator" (the CUDA backend's kernels run on the CPU, for checking without a GPU).
"""
from __future__ import annotations

from typing import Callable

from ..errors import CompileError
from .reference import ReferenceTarget
from .target import KernelTarget, Target, compile


def _numpy(threads: int | None) -> Target:
    return ReferenceTarget()   # interprets on the calling thread


def _llvm(threads: int | None) -> Target:
    from .llvm import LLVMTarget  # llvmlite loads on first use, not on `import graphc`

    return LLVMTarget(threads)


def _cuda(threads: int | None) -> Target:
    from .cuda import gpu_backend  # PyCUDA loads on first use

    return gpu_backend()


def _cuda_emulator(threads: int | None) -> Target:
    from .cuda import emulator_backend

    return emulator_backend()


# name -> factory(thread limit of a run, None for all); the CUDA targets run no CPU threads
_FACTORIES: dict[str, Callable[[int | None], Target]] = {"numpy": _numpy, "llvm": _llvm, "cuda": _cuda,
                                                         "cuda-emulator": _cuda_emulator}
_INSTANCES: dict[tuple[str, int | None], Target] = {}

# The backend a Session or function uses when none is named.
DEFAULT_BACKEND = "llvm"


def register_backend(name: str, factory: Callable[[int | None], Target]) -> None:
    _FACTORIES[name] = factory
    for key in [k for k in _INSTANCES if k[0] == name]:
        del _INSTANCES[key]


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


def get_backend(name: str | None, threads: int | None = None) -> Target:
    """The target of the backend called `name` (None: the default), made once per thread limit
    (`threads`: the most CPU threads a run may use; None: all); CompileError names the choices."""
    name = name or DEFAULT_BACKEND
    key = (name, threads)
    if key not in _INSTANCES:
        factory = _FACTORIES.get(name)
        if factory is None:
            choices = ", ".join(repr(b) for b in available_backends())
            raise CompileError(f"unknown backend {name!r}; available: {choices}")
        _INSTANCES[key] = factory(threads)
    return _INSTANCES[key]


__all__ = ["DEFAULT_BACKEND", "KernelTarget", "Target", "available_backends", "compile", "get_backend",
           "register_backend"]

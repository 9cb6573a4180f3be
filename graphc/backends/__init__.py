"""Backends, each a Target (graphc.backends.target): `compile(program, target, pipeline)` runs the
passes and returns an executable taking the program's input arrays and returning its results.

"llvm" (compiled for this CPU, the default), "numpy" (the reference interpreter, the oracle
every compiled backend is tested against), "cuda" (an NVIDIA GPU through PyCUDA) and
"cuda-emulator" (the CUDA backend's kernels run on the CPU, for checking without a GPU).
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import CompileError
from .reference import ReferenceTarget
from .target import KernelTarget, Target, compile


def _llvm() -> Any:
    from .llvm import LLVMTarget  # llvmlite loads on first use, not on `import graphc`

    return LLVMTarget()


def _cuda() -> Any:
    from .cuda import gpu_backend  # PyCUDA loads on first use

    return gpu_backend()


def _cuda_emulator() -> Any:
    from .cuda import emulator_backend

    return emulator_backend()


_FACTORIES: dict[str, Callable[[], Any]] = {"numpy": ReferenceTarget, "llvm": _llvm, "cuda": _cuda,
                                            "cuda-emulator": _cuda_emulator}
_INSTANCES: dict[str, Any] = {}

# The backend a Session or function uses when none is named.
DEFAULT_BACKEND = "llvm"


def register_backend(name: str, factory: Callable[[], Any]) -> None:
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


def get_backend(name: str | None, threads: int | None = None) -> Target:
    """The target of the backend called `name` (None: the default); CompileError names the
    choices. `threads` limits the CPU threads a run of the llvm target uses (a new target)."""
    name = name or DEFAULT_BACKEND
    if threads is not None and name == "llvm":
        from .llvm import LLVMTarget

        return LLVMTarget(threads)
    if name not in _INSTANCES:
        factory = _FACTORIES.get(name)
        if factory is None:
            choices = ", ".join(repr(b) for b in available_backends())
            raise CompileError(f"unknown backend {name!r}; available: {choices}")
        _INSTANCES[name] = factory()
    return _INSTANCES[name]


__all__ = ["DEFAULT_BACKEND", "KernelTarget", "Target", "available_backends", "compile", "get_backend",
           "register_backend"]

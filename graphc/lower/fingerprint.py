"""A canonical digest of a KernelProgram: the compile cache's key before any code is rendered.

Rendering a module and printing its IR costs milliseconds; hashing the kernel program costs
a fraction of that, so a process whose code is already cached (in memory or on disk) skips
rendering entirely. The digest covers everything a code generator reads (buffers with their
layout and memory plan, loop spaces and orders, index maps, scalar expressions with exact
constants, GEMM shapes and strides); it leaves out only what never reaches the code (the
user-graph nodes, error message texts). An object of a type it does not know is an error, so
a new kernel field can never silently drop out of the key.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from ..ir.dtypes import DType
from ..ops.scalar import SExpr
from .index import IExpr
from .kernel import Buffer, KernelProgram

# Attributes that never reach generated code (they only explain errors to the user).
_SKIPPED = frozenset({"node", "message", "where"})


def fingerprint(kp: KernelProgram) -> str:
    """The SHA-256 (hex) of the kernel program's canonical text."""
    h = hashlib.sha256()
    for b in kp.buffers:
        h.update(_buffer(b).encode())
    for k in kp.kernels:
        h.update(_encode(k).encode())
    h.update(repr(([b.id for b in kp.inputs], [b.id for b in kp.results], kp.workspace_bytes)).encode())
    return h.hexdigest()


def _buffer(b: Buffer) -> str:
    value = "" if b.value is None else _encode(np.asarray(b.value))
    alias = b.alias_of.id if b.alias_of is not None else None
    return f"B{b.id}:{b.dtype.name}:{b.shape}:{b.kind}:{b.offset}:{alias}:{value};"


def _encode(x: Any) -> str:
    if x is None or isinstance(x, (bool, int, str)):
        return repr(x)
    if isinstance(x, float):
        return x.hex()
    if isinstance(x, Buffer):
        return f"B{x.id}"
    if isinstance(x, DType):
        return x.name
    if isinstance(x, SExpr):
        return repr(x.key)
    if isinstance(x, IExpr):
        return f"I({x.op},{x.value},{_encode(x.args)})"
    if isinstance(x, np.generic):
        return f"{x.dtype.str}:{_encode(x.item())}"
    if isinstance(x, np.ndarray):
        data = np.ascontiguousarray(x)
        return f"A{data.dtype.str}{data.shape}:{hashlib.sha256(data.tobytes()).hexdigest()}"
    if isinstance(x, (list, tuple)):
        return "(" + ",".join(_encode(v) for v in x) + ")"
    if dataclasses.is_dataclass(x):
        fields = [f"{k}={_encode(v)}" for k, v in sorted(vars(x).items()) if k not in _SKIPPED]
        return f"{type(x).__name__}{{{','.join(fields)}}}"
    raise TypeError(f"fingerprint: cannot encode {type(x).__name__}")

"""The runtime's host-call entry (graphc.lower.kernel.HOST_CALL_SYMBOL): compiled programs call
it between kernels to exchange a buffer with the other processes (a HostCall kernel, rendered by
graphc/codegen/llvm_host.py). It wraps the two buffers as NumPy arrays (no copy) and runs the
collective (graphc.ops.collective.run_collective, which uses the handler graphc.distributed
installed). An exception cannot cross native code: it is kept here, the call returns 1, the
kernel sets the error code HOST_CALL_FAILED, and the executable raises the kept exception."""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from ..lower.kernel import HOST_DTYPES, HOST_KINDS, host_attrs
from ..ops.collective import run_collective

_C_TYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double, "int32": ctypes.c_int32, "int64": ctypes.c_int64}
_failed: list[BaseException] = []   # the error of a failed call, until the executable takes it
_lock = threading.Lock()

HOST_CALL = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                             ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)


def _array(address: int, dtype: str, count: int) -> np.ndarray:
    if count == 0:
        return np.empty(0, dtype)
    return np.ctypeslib.as_array((_C_TYPES[dtype] * count).from_address(address))


def _host_call(kind: int, argument: int, dtype: int, count: int, src: int, dst: int, key: bytes) -> int:
    try:
        kind_name, dtype_name = HOST_KINDS[kind], HOST_DTYPES[dtype]
        x = _array(src, dtype_name, count) if src else None      # an allreduce_wait sends nothing
        out_count = count * argument if kind_name == "allgather" else count   # an allgather's argument: the size
        out = _array(dst, dtype_name, out_count) if dst else None   # an allreduce_start receives nothing
        if kind_name == "allgather":
            out = out.reshape(argument, count)
        run_collective(kind_name, x, out, host_attrs(kind_name, argument, key.decode("utf-8", "replace")))
        return 0
    except BaseException as err:   # noqa: BLE001 - kept and raised by the executable, never lost
        with _lock:
            _failed[:] = [err]
        return 1


ENTRY = HOST_CALL(_host_call)   # kept alive for the life of the process: compiled code calls it


def entry_address() -> int:
    return ctypes.cast(ENTRY, ctypes.c_void_p).value


def take_error() -> BaseException | None:
    """The exception the last failed host call left (once), or None."""
    with _lock:
        return _failed.pop() if _failed else None

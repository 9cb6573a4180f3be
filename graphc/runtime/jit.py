"""The LLVM JIT: one target machine for the host CPU (its name and features, so AVX2 / AVX-512
are used where present), LLVM's default O3 pipeline with loop and SLP vectorization, and one
process-wide MCJIT engine into which compiled object code (fresh or cached) is loaded.

BLAS: matrix products call the OpenBLAS that NumPy ships (symbols scipy_cblas_[sd]gemm64_,
ILP64), registered under graphc_cblas_[sd]gemm; if no such library is found, GEMMs are
generated as loop kernels instead (see gemm_available()).
"""
from __future__ import annotations

import ctypes
import glob
import os
import struct
import threading
from typing import Any

import llvmlite
import llvmlite.binding as llvm

from ..lower.kernel import HOST_CALL_SYMBOL, LOOP_POOL_SYMBOL
from . import compile_workers, host_calls
from .llvm_compile import compile_ir, initialize, optimize, resolve_loop_ids, target_machine

_lock = threading.RLock()
_ready = False


def _init() -> None:
    global _ready
    with _lock:
        if not _ready:
            initialize()
            _register_blas()
            _ready = True


def host_description() -> str:
    """What compiled code depends on: part of every cache key."""
    _init()
    return f"llvmlite {llvmlite.__version__}; llvm {llvm.llvm_version_info}; {llvm.get_process_triple()}; " \
           f"{llvm.get_host_cpu_name()}; {llvm.get_host_cpu_features().flatten()}; blas {gemm_available()}"


def compile_object(ir_text: str, quick: bool = False) -> bytes:
    """Relocatable object code for the host (graphc.runtime.llvm_compile.compile_ir: O3, or
    the quick tier for programs whose whole run is a few microseconds)."""
    _init()
    return compile_ir(ir_text, quick)


def compile_objects(ir_texts: list[str], quick: bool = False) -> bytes:
    """The object code of several modules that together make one program, as one blob for the
    cache and load_object: compiled side by side in worker processes where this process may
    use more than one CPU (graphc.runtime.compile_workers)."""
    if len(ir_texts) == 1:
        return compile_object(ir_texts[0], quick)
    _init()
    return pack_objects(compile_workers.compile_all(ir_texts, quick))


OBJECTS_MAGIC = b"GCOBJS1\0"


def pack_objects(codes: list[bytes]) -> bytes:
    """Several object files as one blob: magic, count, lengths, then the files."""
    head = OBJECTS_MAGIC + struct.pack(f"<{len(codes) + 1}Q", len(codes), *(len(c) for c in codes))
    return head + b"".join(codes)


def unpack_objects(blob: bytes) -> list[bytes]:
    """The object files of a blob that pack_objects wrote (a plain object file is itself)."""
    if not blob.startswith(OBJECTS_MAGIC):
        return [blob]
    at = len(OBJECTS_MAGIC)
    try:
        (count,) = struct.unpack_from("<Q", blob, at)
        if 8 * (count + 1) > len(blob) - at:
            raise ValueError("a truncated object blob")
        sizes = struct.unpack_from(f"<{count}Q", blob, at + 8)
    except struct.error:
        raise ValueError("a truncated object blob") from None
    at += 8 * (count + 1)
    codes = []
    for size in sizes:
        codes.append(blob[at:at + size])
        at += size
    if at != len(blob) or any(len(c) != n for c, n in zip(codes, sizes)):
        raise ValueError("a truncated object blob")
    return codes


class TargetError(ValueError):
    """An unknown target triple or CPU name (callers turn it into a CompileError)."""


def compile_object_for_target(ir_text: str, triple: str | None = None, cpu: str | None = None,
                              features: str | None = None) -> bytes:
    """Position-independent object code for a library (ahead-of-time compilation): for this
    host by default, or for another triple / CPU (features default to the CPU's own)."""
    _init()
    if triple is not None:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
    triple = triple or llvm.get_process_triple()
    if cpu is None and triple == llvm.get_process_triple():
        cpu, features = llvm.get_host_cpu_name(), features if features is not None else \
            llvm.get_host_cpu_features().flatten()
    try:
        target = llvm.Target.from_triple(triple)
    except RuntimeError as err:
        raise TargetError(f"unknown target triple {triple!r}: {err}") from None
    # LLVM only warns about an unknown CPU on stderr, then aborts the process when it emits
    # code: read the warning and refuse the CPU first.
    complaint = _stderr_of(lambda: target.create_target_machine(cpu=cpu or "", features=features or ""))
    if "not a recognized processor" in complaint:
        raise TargetError(f"unknown CPU {cpu!r} for {triple} (LLVM: {complaint.strip().splitlines()[0]})")
    tm = target.create_target_machine(cpu=cpu or "", features=features or "", opt=3, reloc="pic",
                                      codemodel="default")
    module = llvm.parse_assembly(resolve_loop_ids(ir_text))
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    module.verify()
    optimize(module, tm)
    return tm.emit_object(module)


def _stderr_of(action) -> str:
    """What native code wrote to file descriptor 2 while `action` ran."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            action()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        return capture.read().decode(errors="replace")


# The pool words loop bodies read (graphc.lower.kernel.LOOP_POOL_SYMBOL); zero unless a program
# that holds the native pool is running (graphc.runtime.native_pool.NativePool.lent_to_loops).
LOOP_POOL = (ctypes.c_int64 * 3)()


class _Loader:
    """One MCJIT engine for the whole process, never disposed (llvmlite cannot safely dispose
    an engine holding object files). Each program's object code is added once, under symbols
    prefixed by its cache key, so a program compiled again in the same process reuses it."""

    def __init__(self) -> None:
        tm = target_machine()
        empty = llvm.parse_assembly("")
        empty.triple = tm.triple
        empty.data_layout = str(tm.target_data)
        self.engine = llvm.create_mcjit_compiler(empty, tm)
        llvm.add_symbol(LOOP_POOL_SYMBOL, ctypes.addressof(LOOP_POOL))
        llvm.add_symbol(HOST_CALL_SYMBOL, host_calls.entry_address())
        self.objects: list[llvm.ObjectFileRef] = []   # the engine refers to them: keep them alive
        self.loaded: set[str] = set()

    def load(self, key: str, code: bytes) -> None:
        if key not in self.loaded:
            for part in unpack_objects(code):
                obj = llvm.ObjectFileRef.from_data(part)
                self.engine.add_object_file(obj)
                self.objects.append(obj)
            self.engine.finalize_object()
            self.loaded.add(key)

    def address(self, symbol: str) -> int:
        address = self.engine.get_function_address(symbol)
        if not address:
            raise RuntimeError(f"compiled code has no symbol {symbol}")
        return address


_loader: _Loader | None = None


def is_loaded(key: str) -> bool:
    return _loader is not None and key in _loader.loaded


def load_object(key: str, code: bytes) -> _Loader:
    """Make the object code's functions callable (once per key per process)."""
    global _loader
    with _lock:
        if _loader is None:
            _loader = _Loader()
        _loader.load(key, code)
        return _loader


# --------------------------------------------------------------------------- BLAS
_blas_found: bool | None = None


def _openblas_library() -> str | None:
    import numpy

    base = os.path.dirname(os.path.dirname(numpy.__file__))
    for pattern in ("numpy.libs/libscipy_openblas64_*.so*", "numpy/.dylibs/libscipy_openblas64_*.dylib",
                    "numpy.libs/libscipy_openblas64_*.dll"):
        hits = sorted(glob.glob(os.path.join(base, pattern)))
        if hits:
            return hits[0]
    return None


_blas_get_threads: Any = None
_blas_set_threads: Any = None


def blas_threads(count: int | None = None) -> int | None:
    """NumPy's OpenBLAS thread count (None without one); with `count`, set it first and return
    the count it had. graphc runs BLAS single-threaded inside its own pool's chunks, and puts
    the user's setting back after each run, so NumPy code outside graphc keeps its threads."""
    if _blas_get_threads is None:
        return None
    before = int(_blas_get_threads())
    if count is not None and count != before:
        _blas_set_threads(count)
    return before


def _register_blas() -> None:
    global _blas_found, _blas_get_threads, _blas_set_threads
    path = _openblas_library()
    if path is None:
        _blas_found = False
        return
    try:
        lib = ctypes.CDLL(path)
        for ours, theirs in (("graphc_cblas_sgemm", "scipy_cblas_sgemm64_"), ("graphc_cblas_dgemm", "scipy_cblas_dgemm64_")):
            llvm.add_symbol(ours, ctypes.cast(getattr(lib, theirs), ctypes.c_void_p).value)
        _blas_found = True
        if hasattr(lib, "scipy_openblas_get_num_threads64_") and hasattr(lib, "scipy_openblas_set_num_threads64_"):
            _blas_get_threads = lib.scipy_openblas_get_num_threads64_
            _blas_get_threads.restype = ctypes.c_int
            _blas_set_threads = lib.scipy_openblas_set_num_threads64_
            _blas_set_threads.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        _blas_found = False


def gemm_available() -> bool:
    """Whether JIT code can call a BLAS sgemm / dgemm."""
    if _blas_found is None:
        _init()
    return bool(_blas_found)

"""The two places graphc's generated CUDA runs: a real GPU through PyCUDA, and the CPU emulator.

Both offer the same small interface to graphc.runtime.cuda: build a module from CUDA C source
(cached on disk by a hash of the source, the options, the compiler's version and the target),
allocate memory, copy arrays in and out, launch a kernel, time launches. The GPU builds with
nvcc for the device's own architecture (sm_XY) and loads the cubin with PyCUDA; the emulator
builds the same source with g++ against kernels/cuda/emulate.h and calls it through ctypes, so
CI checks every generated kernel's results without a GPU.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import BackendUnavailableError, CompileError, DeviceError, ResourceExhaustedError
from . import cache

def kernels_dir() -> Path:
    """kernels/cuda: the templates and the emulation header (shipped with the package)."""
    here = Path(__file__).resolve()   # a checkout: <root>/kernels; an installed wheel: graphc/kernels
    for candidate in (here.parents[2] / "kernels" / "cuda", here.parents[1] / "kernels" / "cuda"):
        if (candidate / "graphc_cuda.cuh").is_file():
            return candidate
    raise FileNotFoundError("graphc's CUDA kernel templates (kernels/cuda) are missing from this installation")


@functools.lru_cache(maxsize=1)
def _headers() -> tuple[tuple[bytes, bytes], ...]:
    """(name, text) of each template header, for NVRTC (read once per process)."""
    return tuple((p.name.encode(), p.read_bytes()) for p in sorted(kernels_dir().glob("*.cuh")))


NVCC_OPTIONS = ("-O3", "-std=c++17")
GXX_OPTIONS = ("-std=c++17", "-O1", "-fPIC", "-fno-strict-aliasing", "-w")


@functools.lru_cache(maxsize=1)
def _template_digest() -> str:
    """A hash of kernels/cuda, part of every build's cache key (read once per process)."""
    folder = kernels_dir()
    return cache.key_of(*(p.name + p.read_text() for p in sorted(folder.iterdir()) if p.is_file()))


def _tool_version(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


# --------------------------------------------------------------------------- emulator
_EMULATOR_RUNTIME: Any = None   # one scheduler per process: modules bind to the first one loaded
_LAUNCH_LOCK = threading.Lock()   # and its state is global
_BUILD_LOCK = threading.Lock()


class EmulatedDevice:
    """The CPU emulator: 'device memory' is host memory; a launch runs blocks one by one."""

    name = "emulator"

    def __init__(self) -> None:
        self.compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
        if not self.compiler:
            raise BackendUnavailableError("the CUDA emulator needs a C++ compiler (g++), and none was found",
                                          hint="install g++ or set $CXX")
        self.version = _tool_version(self.compiler)
        self.workdir = Path(tempfile.mkdtemp(prefix="graphc-cuda-emu-"))
        weakref.finalize(self, shutil.rmtree, self.workdir, True)   # loaded libraries stay mapped
        self.max_blocks = int(os.environ.get("GRAPHC_CUDA_EMULATOR_BLOCKS", "3"))

    # ---------------------------------------------------------------- building
    def _compile(self, args: list[str], what: str, source: str | None = None) -> None:
        proc = subprocess.run([self.compiler, *args], input=source, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"the CUDA emulator could not compile {what}:\n{proc.stderr[-4000:]}")

    def _shared_library(self, key: str, target: Path, compile_args: list[str], what: str,
                        source: str | None = None) -> str:
        """Put the library for `key` at `target`: from the disk cache, else compiled (and cached;
        `source`, if given, is the compiler's standard input). Returns where it came from:
        "disk" or "compiled"."""
        code = cache.load(key, "cuda-emulator")
        if code is not None:
            target.write_bytes(code)
            return "disk"
        self._compile([*compile_args, "-o", str(target)], what, source)
        cache.store(key, target.read_bytes(), "cuda-emulator")
        return "compiled"

    def runtime(self) -> Any:
        """The emulator's scheduler as a shared library, loaded once per process with its
        symbols global, so that modules (linked without any library: a link then costs nothing)
        resolve against it."""
        global _EMULATOR_RUNTIME
        if _EMULATOR_RUNTIME is None:
            folder = kernels_dir()
            target = self.workdir / "libgraphc_emulator.so"
            self._shared_library(cache.key_of("emu-runtime", self.version, _template_digest(), *GXX_OPTIONS), target,
                                 [*GXX_OPTIONS, "-I", str(folder), "-shared", str(folder / "emulate_runtime.cpp")],
                                 "its scheduler")
            lib = ctypes.CDLL(str(target), mode=ctypes.RTLD_GLOBAL)
            lib.gc_emu_last_error.restype = ctypes.c_char_p
            _EMULATOR_RUNTIME = lib
        return _EMULATOR_RUNTIME

    def build(self, source: str) -> tuple[Any, str]:
        """(the loaded module, where its code came from: "memory", "disk" or "compiled")."""
        with _BUILD_LOCK:   # threads compiling the same program must not rewrite a loaded library
            folder = kernels_dir()
            self.runtime()
            key = cache.key_of("emu-module", source, self.version, _template_digest(), *GXX_OPTIONS)
            target = self.workdir / f"m{key[:24]}.so"
            if target.exists():
                return ctypes.CDLL(str(target)), "memory"
            origin = self._shared_library(key, target, [
                *GXX_OPTIONS, "-DGRAPHC_EMULATE", "-include", str(folder / "emulate.h"), "-I", str(folder),
                "-x", "c++", "-", "-shared", "-nostdlib"], "a generated module", source)
            return ctypes.CDLL(str(target)), origin

    def function(self, module: Any, name: str, n_args: int) -> Any:
        fn = getattr(module, f"{name}_emulate")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
        return fn

    # ---------------------------------------------------------------- memory
    def alloc(self, nbytes: int) -> tuple[Any, int]:
        raw = np.empty(max(nbytes, 1) + 256, np.uint8)
        ptr = raw.ctypes.data
        return raw, ptr + (-ptr) % 256

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        ctypes.memmove(ptr, array.ctypes.data, array.nbytes)

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        ctypes.memmove(array.ctypes.data, ptr, array.nbytes)

    def zero(self, ptr: int, nbytes: int) -> None:
        ctypes.memset(ptr, 0, nbytes)

    def copy(self, dst: int, src: int, nbytes: int) -> None:
        """Device to device."""
        if nbytes:
            ctypes.memmove(dst, src, nbytes)

    # ---------------------------------------------------------------- running
    def launch(self, fn: Any, pointers: list[int], grid: tuple[int, int, int], block: int) -> None:
        args = (ctypes.c_void_p * len(pointers))(*pointers)
        with _LAUNCH_LOCK:
            if fn(args, grid[0], grid[1], grid[2], block) != 0:
                message = self.runtime().gc_emu_last_error().decode()
                raise DeviceError(f"the CUDA emulator stopped a kernel: {message}")

    def synchronize(self) -> None:
        pass

    def active(self) -> Any:
        return contextlib.nullcontext()

    def timer(self) -> "_WallTimer":
        return _WallTimer()


class _WallTimer:
    def __init__(self) -> None:
        self.t0 = self.t1 = 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        self.t1 = time.perf_counter()

    def seconds(self) -> float:
        return self.t1 - self.t0


# --------------------------------------------------------------------------- PyCUDA
class PyCudaDevice:
    """A real GPU: PyCUDA's driver API, the device's primary context, nvcc-built cubins."""

    def __init__(self) -> None:
        try:
            import pycuda.driver as drv
        except ImportError as err:
            raise BackendUnavailableError(
                f"backend 'cuda' needs PyCUDA, which is not installed ({err})",
                hint='pip install "graphc[cuda]" on a machine with an NVIDIA GPU and the CUDA toolkit; '
                     'backend="cuda-emulator" runs the same kernels on the CPU') from None
        try:
            drv.init()
            if drv.Device.count() == 0:
                raise BackendUnavailableError("backend 'cuda' found no NVIDIA GPU")
            self.device = drv.Device(int(os.environ.get("GRAPHC_CUDA_DEVICE", "0")))
        except drv.Error as err:
            raise BackendUnavailableError(f"backend 'cuda' could not open a GPU: {err}") from None
        self.nvcc = shutil.which("nvcc")
        if self.nvcc is None:
            raise BackendUnavailableError("backend 'cuda' needs nvcc (the CUDA toolkit) on the PATH")
        self.drv = drv
        self.context = self.device.retain_primary_context()
        self.context.push()
        atexit.register(self._release)   # as pycuda.autoinit does: PyCUDA aborts at exit otherwise
        major, minor = self.device.compute_capability()
        self.arch = f"sm_{major}{minor}"
        self.name = self.device.name()
        self.multiprocessors = self.device.get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT)
        # grid-stride loops cover any grid; a grid covering all the work measured faster
        # (H200: 372 vs 400 µs for a 1e8 elementwise chain) than one of a few blocks per SM
        self.max_blocks = 1 << 30
        self.version = _tool_version(self.nvcc)
        self.nvrtc_problem = ""
        try:
            self.nvrtc: Nvrtc | None = Nvrtc(self.nvcc)
        except OSError as err:
            self.nvrtc, self.nvrtc_problem = None, str(err)
        from pycuda.tools import DeviceMemoryPool

        self.pool = DeviceMemoryPool()

    def _release(self) -> None:
        try:
            self.drv.Context.pop()
        except Exception:   # already popped
            pass

    def build(self, source: str) -> tuple[Any, str]:
        """Compile with NVRTC where its library is found (in-process, tens of milliseconds),
        else with nvcc; the cubin is cached either way."""
        key = cache.key_of("cubin", source, self.arch, self.version, self.compiler, _template_digest(),
                           *NVCC_OPTIONS)
        cubin = cache.load(key, "cuda")
        origin = "disk"
        if cubin is None:
            origin = "compiled"
            if self.nvrtc is not None:
                try:
                    cubin = self.nvrtc.compile(source, self.arch)
                except CompileError:
                    raise
                except Exception as err:   # a broken NVRTC install: nvcc still works
                    self.nvrtc_problem = f"{type(err).__name__}: {err}"
                    self.nvrtc = None
            if self.nvrtc is None:
                cubin = compile_cubin(source, self.arch, self.nvcc)
            cache.store(key, cubin, "cuda")
        return self.drv.module_from_buffer(cubin), origin

    @property
    def compiler(self) -> str:
        return f"nvrtc {self.nvrtc.version}" if self.nvrtc is not None else "nvcc"

    def function(self, module: Any, name: str, n_args: int) -> Any:
        fn = module.get_function(name)
        fn.prepare("P" * n_args)   # prepared calls pack arguments without per-call inspection
        return fn

    def alloc(self, nbytes: int) -> tuple[Any, int]:
        try:
            allocation = self.pool.allocate(max(nbytes, 1))
        except self.drv.MemoryError:
            self.pool.free_held()   # blocks the pool keeps for reuse, then once more
            try:
                allocation = self.pool.allocate(max(nbytes, 1))
            except self.drv.MemoryError:
                free, total = self.drv.mem_get_info()
                raise ResourceExhaustedError(
                    f"the GPU ({self.name}) is out of memory: {nbytes / 2**20:.1f} MiB asked for, "
                    f"{free / 2**20:.1f} of {total / 2**20:.0f} MiB free") from None
        return allocation, int(allocation)

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        self.drv.memcpy_htod(ptr, array)

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        self.drv.memcpy_dtoh(array, ptr)

    def zero(self, ptr: int, nbytes: int) -> None:
        self.drv.memset_d8(ptr, 0, nbytes)

    def copy(self, dst: int, src: int, nbytes: int) -> None:
        """Device to device (ordered with the launches on the default stream)."""
        if nbytes:
            self.drv.memcpy_dtod(dst, src, nbytes)

    def launch(self, fn: Any, pointers: list[int], grid: tuple[int, int, int], block: int) -> None:
        try:
            fn.prepared_call(grid, (block, 1, 1), *pointers)
        except self.drv.Error as err:
            raise DeviceError(f"the GPU could not launch a kernel (grid {grid}, block {block}): {err}") from None

    def synchronize(self) -> None:
        self.context.synchronize()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The device's context made current for a block of work: a CUDA context is current per
        thread, and a session may be run from threads other than the one that opened the GPU."""
        current = self.drv.Context.get_current()
        if current is not None and current.handle == self.context.handle:
            yield
            return
        self.context.push()
        try:
            yield
        finally:
            self.drv.Context.pop()

    def timer(self) -> "_EventTimer":
        return _EventTimer(self.drv)


class _EventTimer:
    def __init__(self, drv: Any) -> None:
        self.begin, self.end = drv.Event(), drv.Event()

    def start(self) -> None:
        self.begin.record()

    def stop(self) -> None:
        self.end.record()

    def seconds(self) -> float:
        self.end.synchronize()
        return self.end.time_since(self.begin) / 1e3


class Nvrtc:
    """NVRTC (the CUDA runtime compiler library) through ctypes: source to cubin in-process."""

    def __init__(self, nvcc: str) -> None:
        root = Path(nvcc).resolve().parents[1]
        candidates = [os.environ.get("GRAPHC_NVRTC", "")]
        for folder in (root / "lib64", root / "lib", root / "targets" / "x86_64-linux" / "lib"):
            candidates += sorted(str(p) for p in folder.glob("libnvrtc.so*"))
        candidates += ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]
        lib = None
        for c in candidates:
            if not c or "builtins" in c or "alt" in c:
                continue
            try:
                lib = ctypes.CDLL(c)
                break
            except OSError:
                continue
        if lib is None:
            raise OSError("libnvrtc not found")
        self.lib = lib
        major, minor = ctypes.c_int(), ctypes.c_int()
        lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
        self.version = f"{major.value}.{minor.value}"
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.nvrtcGetErrorString(status).decode()}")

    def compile(self, source: str, arch: str) -> bytes:
        lib = self.lib
        prog = ctypes.c_void_p()
        headers = _headers()
        names = (ctypes.c_char_p * len(headers))(*[name for name, _ in headers])
        texts = (ctypes.c_char_p * len(headers))(*[text for _, text in headers])
        self._check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"module.cu", len(headers), texts,
                                           names), "nvrtcCreateProgram")
        try:
            options = [f"--gpu-architecture={arch}".encode(), b"-std=c++17", b"-default-device"]
            opts = (ctypes.c_char_p * len(options))(*options)
            status = lib.nvrtcCompileProgram(prog, len(options), opts)
            if status != 0:
                size = ctypes.c_size_t()
                lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
                log = ctypes.create_string_buffer(size.value)
                lib.nvrtcGetProgramLog(prog, log)
                if status == 6:   # NVRTC_ERROR_COMPILATION: the source is at fault
                    raise CompileError(f"NVRTC could not compile a generated module for {arch}:\n"
                                       f"{log.value.decode(errors='replace')[-4000:]}")
                self._check(status, "nvrtcCompileProgram")
            size = ctypes.c_size_t()
            self._check(lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "nvrtcGetCUBINSize")
            cubin = ctypes.create_string_buffer(size.value)
            self._check(lib.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN")
            return cubin.raw
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(prog))


def compile_cubin(source: str, arch: str, nvcc: str = "nvcc") -> bytes:
    """nvcc -cubin of a generated module for `arch` (e.g. sm_90); CompileError with nvcc's
    message when it fails."""
    with tempfile.TemporaryDirectory(prefix="graphc-nvcc-") as tmp:
        src, out = Path(tmp) / "module.cu", Path(tmp) / "module.cubin"
        src.write_text(source)
        proc = subprocess.run([nvcc, "-cubin", f"-arch={arch}", *NVCC_OPTIONS, "-I", str(kernels_dir()),
                               str(src), "-o", str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"nvcc could not compile a generated module for {arch}:\n{proc.stderr[-4000:]}")
        return out.read_bytes()


@functools.lru_cache(maxsize=None)
def device(kind: str) -> Any:
    """The process-wide device of a kind: "gpu" or "emulator"."""
    return PyCudaDevice() if kind == "gpu" else EmulatedDevice()

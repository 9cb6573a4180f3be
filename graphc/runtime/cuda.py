"""The CUDA executable: a compiled program's device memory and launch plan, run per call.

Per executable, one device workspace holds every temporary at the memory plan's offsets,
constants are uploaded once, and each fed input and fetched output has a device buffer of its
own that is reused call after call. Variables stay on the device: a variable's new value is
returned as a DeviceValue (device memory, no copy back), which the session keeps as the
variable's state and passes back in on the next run, so a training loop moves only its feeds
and fetches across the bus. Reading a DeviceValue as an array (np.asarray, a fetch, a
checkpoint) copies it to the host. A failed check (an index out of range) is reported with the
node and source line of the op, and leaves every variable as it was.

Loops and branches run on the host (graphc.runtime.cuda_control): each iteration launches the
body's kernels, compiled once, and moves loop values with device-to-device copies.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from ..lower.kernel import KernelProgram
from .checks import check_failure
from .cuda_control import HostRunner


class DeviceValue:
    """An array that lives in device memory (a variable's value between runs)."""

    __array_priority__ = 0

    def __init__(self, device: Any, allocation: Any, ptr: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.device, self.allocation, self.ptr = device, allocation, ptr
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def get(self) -> np.ndarray:
        """A host copy."""
        out = np.empty(self.shape, self.dtype)
        if out.nbytes:
            with self.device.active():
                self.device.synchronize()
                self.device.to_host(out, self.ptr)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.get()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"DeviceValue(shape={self.shape}, dtype={self.dtype.name}, on {getattr(self.device, 'name', '?')})"


def host(value: Any) -> np.ndarray:
    """value as a NumPy array (a DeviceValue is copied to the host)."""
    return value.get() if isinstance(value, DeviceValue) else value


class CudaExecutable:
    def __init__(self, kp: KernelProgram, module: Any, device: Any, code: Any, program: Any) -> None:
        """module: the rendered CUDA module (graphc.codegen.cuda.CudaModule: its launches and the
        kernels each implements); code: that module built for `device`."""
        self.kp, self.module, self.device, self.program = kp, module, device, program
        self.functions = [device.function(code, launch.name, launch.n_args) for launch in module.launches]
        self.grids = [launch.grid_for(device.max_blocks) for launch in module.launches]
        self.active = [launch.units > 0 and all(g > 0 for g in grid) for launch, grid in zip(module.launches, self.grids)]
        self._keep: list[Any] = []
        ws, base = device.alloc(kp.workspace_bytes + 256)
        self._keep.append(ws)
        self.error_alloc, self.error_ptr = device.alloc(32)
        # grid-stage reductions keep partial results here; launches run in order on one
        # stream, so one area serves them all
        scratch = max((launch.scratch for launch in module.launches), default=0)
        self.scratch_alloc, scratch_ptr = device.alloc(scratch) if scratch else (None, 0)
        self.extra = [[scratch_ptr] if launch.scratch else [] for launch in module.launches]
        device.zero(self.error_ptr, 32)
        self.pointer: dict[int, int] = {}
        for b in kp.buffers:
            if b.kind == "temp":
                self.pointer[b.id] = base + (b.offset or 0)
            elif b.kind == "const":
                arr = np.ascontiguousarray(b.value, dtype=b.dtype.np)
                alloc, ptr = device.alloc(arr.nbytes)
                if arr.nbytes:
                    device.to_device(ptr, arr)
                self._keep.append(alloc)
                self.pointer[b.id] = ptr
        n_outputs = len(program.outputs) if program is not None else len(kp.results)
        self.n_outputs = n_outputs
        # outputs that become a variable's new value get fresh device memory per call (the
        # session keeps it); the others reuse one buffer per executable
        update_buffers = {id(b) for b in kp.results[n_outputs:]}
        self.inputs = kp.inputs
        self.outputs = [b for b in kp.buffers if b.kind == "output"]
        self.staging: dict[int, int] = {}
        for b in kp.inputs + self.outputs:
            if b.kind == "input" or (id(b) not in update_buffers and b.alias_of is None):
                alloc, ptr = device.alloc(b.nbytes)
                self._keep.append(alloc)
                self.staging[b.id] = ptr
        self.updated_in_place = {b.alias_of.id for b in self.outputs if b.alias_of is not None}
        self.fresh_outputs = {b.id for b in self.outputs if id(b) in update_buffers and b.alias_of is None}
        uses = [id(b) for b in kp.results]
        self.fresh_results = [i < n_outputs or (b.kind == "output" and uses.count(id(b)) == 1)
                              for i, b in enumerate(kp.results)]
        self._lock = threading.Lock()
        self.timings: dict[str, Any] = {}

    def kernel_labels(self) -> list[tuple[str, str, str]]:
        """(launch name, op type, node name) per launch (a row chain names its members)."""
        labels = []
        for launch, (first, last) in zip(self.module.launches, self.module.kernels_of_launch):
            nodes = [getattr(k, "node", None) for k in self.kp.kernels[first:last]]
            labels.append((launch.name, "+".join(getattr(n, "type", "?") for n in nodes),
                           getattr(nodes[-1], "name", "?")))
        return labels

    def _bind(self, args: Sequence[Any]) -> tuple[dict[int, int], dict[int, Any]]:
        """Device pointers of every buffer for one call, copying host inputs in; plus the
        DeviceValue behind each buffer that outlives the call."""
        device = self.device
        pointer = dict(self.pointer)
        values: dict[int, Any] = {}   # buffer id -> the DeviceValue holding it this call
        for b, a in zip(self.inputs, args):
            if isinstance(a, DeviceValue) and a.device is device:
                pointer[b.id] = a.ptr
                values[b.id] = a
                continue
            arr = np.ascontiguousarray(host(a), dtype=b.dtype.np)
            if b.id in self.updated_in_place:
                # a variable fed from the host and updated in place: its new value outlives the call
                alloc, ptr = device.alloc(b.nbytes)
                values[b.id] = DeviceValue(device, alloc, ptr, b.shape, b.dtype.np)
            else:
                ptr = self.staging[b.id]
            if arr.nbytes:
                device.to_device(ptr, arr)
            pointer[b.id] = ptr
        for b in self.outputs:
            if b.alias_of is not None:
                pointer[b.id] = pointer[b.alias_of.id]
                values[b.id] = values[b.alias_of.id]
            elif b.id in self.fresh_outputs:
                alloc, ptr = device.alloc(b.nbytes)
                pointer[b.id] = ptr
                values[b.id] = DeviceValue(device, alloc, ptr, b.shape, b.dtype.np)
            else:
                pointer[b.id] = self.staging[b.id]
        return pointer, values

    def device_seconds(self, args: Sequence[Any], repeats: int = 20, warmup: int = 3) -> float:
        """The median device time of one run's kernels alone (CUDA events on a GPU), with the
        inputs already in device memory: what benchmarks compare with other GPU libraries."""
        with self._lock, self.device.active():
            pointer, _ = self._bind(args)
            for _ in range(warmup):
                self._launch_all(pointer, None)
            times = []
            for _ in range(repeats):
                timer = self.device.timer()
                timer.start()
                self._launch_all(pointer, None)
                timer.stop()
                times.append(timer.seconds())
        return float(np.median(times))

    def __call__(self, args: Sequence[Any], profile: Any = None) -> list[Any]:
        device = self.device
        with self._lock, device.active():
            pointer, values = self._bind(args)
            checked = bool(self.kp.errors)
            if checked:
                device.zero(self.error_ptr, 32)
            self._launch_all(pointer, profile)
            if checked:
                record = np.zeros(4, np.int64)
                device.to_host(record, self.error_ptr)
                if record[0]:
                    self._raise(int(record[0]), int(record[1]), int(record[2]))
            results: list[Any] = []
            for i, b in enumerate(self.kp.results):
                fetched = i < self.n_outputs
                if b.kind == "const":
                    results.append(np.array(b.value, dtype=b.dtype.np))
                elif b.kind == "input":
                    a = args[self.inputs.index(b)]
                    results.append(np.array(host(a), dtype=b.dtype.np, copy=True) if fetched else a)
                elif fetched or b.id not in values:
                    out = np.empty(b.shape, b.dtype.np)
                    if out.nbytes:
                        device.to_host(out, pointer[b.id])
                    results.append(out)
                else:
                    results.append(values[b.id])
            return results

    def _launch_all(self, pointer: dict[int, int], profile: Any) -> None:
        timers: list[tuple[int, Any]] = []
        if self.module.steps is None:
            for j in range(len(self.module.launches)):
                self._launch(j, pointer, profile, timers)
        else:
            HostRunner(self, pointer, profile, timers).run(self.module.steps)
        for i, timer in timers:
            profile.record(i, timer.seconds())

    def _launch(self, j: int, pointer: dict[int, int], profile: Any, timers: list[tuple[int, Any]]) -> None:
        """Launch j of the module with this run's buffer pointers."""
        if not self.active[j]:
            return
        launch, fn, grid, device = self.module.launches[j], self.functions[j], self.grids[j], self.device
        ptrs = [pointer[i] for i in launch.buffers] + self.extra[j] + [self.error_ptr]
        if profile is not None:
            timer = device.timer()
            timer.start()
            device.launch(fn, ptrs, grid, launch.block)
            timer.stop()
            timers.append((j, timer))
        else:
            device.launch(fn, ptrs, grid, launch.block)

    def _raise(self, code: int, value: int, where: int) -> None:
        raise check_failure(self.kp, code, value, where)

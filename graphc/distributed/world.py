"""The processes training together: MPI through mpi4py, started by `mpirun -n N python ...`.

`start()` joins the MPI world when the process was launched by mpirun (its environment says
so), else the process is a world of one and MPI is not touched (mpi4py need not be installed).
It installs the handler that compiled programs call for a collective (graphc.ops.collective):

- Every exchange runs on one exchange thread, in the order the program issues them (so the
  ranks agree on the order). A compiled program starts each allreduce as soon as its input is
  computed and waits for it only where its result is needed, so gradients travel while the
  backward pass goes on (Horovod's background thread, in the same spirit).
- Every exchange is waited for with a deadline (`timeout`, 30 s by default, GRAPHC_MPI_TIMEOUT): a rank that stopped, failed or
  runs something else makes the others raise DistributedError within that time, never hang.
- The first time a collective of a given key runs, the ranks first compare what they are about
  to exchange (kind, key, shape, dtype): a rank with a different graph is named at the first
  step, with what each rank has, instead of exchanging mismatched buffers.
- An exception nobody catches on one rank aborts the whole job (MPI_Abort) after printing it,
  so the other ranks do not wait for the timeout.
"""
from __future__ import annotations

import hashlib
import os
import queue
import sys
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from ..errors import DistributedError, GraphcError
from ..ops.collective import run_alone, set_collective_handler

DEFAULT_TIMEOUT = 30.0
_LAUNCHED = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


class World:
    """This process's place among the processes: rank, size, local rank, and the exchanges."""

    def __init__(self, comm: Any = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.comm, self.timeout = comm, float(timeout)
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self.local_rank = _local_rank(comm)
        self.checked: set[tuple[str, str]] = set()
        self.pending: dict[str, tuple[Any, np.ndarray]] = {}   # allreduces started, by key
        self.queue: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the handler
    def __call__(self, kind: str, x: np.ndarray | None, out: np.ndarray | None, attrs: dict[str, Any]) -> None:
        key = attrs.get("key", "")
        if self.comm is None:
            run_alone(kind, x, out, attrs)
            return
        if kind == "allreduce_start":   # hand a copy to the exchange thread and go on computing
            sent = np.array(x, copy=True)
            result = np.empty_like(sent)
            self.pending[key] = (self.submit(lambda: self.exchange("allreduce", sent, result, attrs)), result)
            return
        if kind == "allreduce_wait":
            future, result = self.pending.pop(key)
            self.finish(future, f"allreduce '{key}'")
            out[...] = result
            return
        self.finish(self.submit(lambda: self.exchange(kind, x, out, attrs)), f"{kind} '{key}'")

    def submit(self, work: Any) -> Future:
        """Run `work` on the exchange thread: every collective goes through it, one at a time in
        the order the program issued them, so every rank exchanges in the same order."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._serve, name="graphc-mpi", daemon=True)
            self.thread.start()
        future: Future = Future()
        self.queue.put((future, work))
        return future

    def _serve(self) -> None:
        while True:
            future, work = self.queue.get()
            try:
                future.set_result(work())
            except BaseException as err:   # noqa: BLE001 - handed to whoever waits for it
                future.set_exception(err)

    def finish(self, future: Future, what: str) -> None:
        """Wait for an exchange, at most `timeout` seconds."""
        try:
            future.result(timeout=self.timeout)
        except FutureTimeout:
            raise DistributedError(
                f"rank {self.rank} of {self.size}: {what} did not complete within {self.timeout:g} s; "
                "another rank stopped, failed, or runs a different program",
                hint="look for the first error among the ranks' outputs; GRAPHC_MPI_TIMEOUT sets the limit") from None

    def exchange(self, kind: str, x: np.ndarray, out: np.ndarray, attrs: dict[str, Any]) -> None:
        """One collective, on the exchange thread (blocking MPI calls: mpi4py releases the GIL;
        the deadline is the waiting thread's, finish())."""
        from mpi4py import MPI

        key = attrs.get("key", "")
        if (kind, key) not in self.checked:
            self.agree(kind, key, x)
            self.checked.add((kind, key))
        if kind == "allreduce":
            self.comm.Allreduce(x, out, op=MPI.SUM)
            if attrs.get("reduce") == "average":
                if out.dtype.kind == "f":
                    out /= self.size
                else:
                    out //= self.size
        elif kind == "broadcast":
            root = int(attrs.get("root", 0))
            if self.rank == root:
                out[...] = x
            self.comm.Bcast(out, root=root)
        else:
            self.comm.Allgather(x, out)

    def agree(self, kind: str, key: str, x: np.ndarray) -> None:
        """Check that every rank is about to run the same collective on the same shape."""
        mine = f"{kind} '{key}' of {x.dtype.name}{list(x.shape)}"
        digest = np.array([int.from_bytes(hashlib.blake2b(mine.encode(), digest_size=8).digest(), "little",
                                          signed=True)], np.int64)
        everyone = np.empty(self.size, np.int64)
        self.comm.Allgather(digest, everyone)
        if np.all(everyone == everyone[0]):
            return
        described = self.comm.allgather(mine)   # every rank got here: this completes
        lines = "; ".join(f"rank {r}: {d}" for r, d in enumerate(described))
        raise DistributedError(f"the ranks run different graphs: at the same step they call {lines}",
                               hint="every rank must build the same graph (same layers, shapes and names)")

    # ------------------------------------------------------------------ NumPy arrays
    def allreduce_array(self, x: np.ndarray, average: bool) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        self(x=x, out=out, kind="allreduce", attrs={"key": "<numpy>", "reduce": "average" if average else "sum"})
        return out

    def allgather_array(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty((self.size, *x.shape), x.dtype)
        self(x=x, out=out, kind="allgather", attrs={"key": "<numpy>"})
        return out

    def broadcast_array(self, x: np.ndarray, root: int) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        self(x=x, out=out, kind="broadcast", attrs={"key": "<numpy>", "root": root})
        return out


def _local_rank(comm: Any) -> int:
    for name in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    if comm is None:
        return 0
    from mpi4py import MPI

    return comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


def launched_by_mpirun() -> bool:
    return any(name in os.environ for name in _LAUNCHED)


_world: World | None = None


def start(timeout: float | None = None) -> World:
    """Join the MPI world (or be a world of one when not launched by mpirun); idempotent."""
    global _world
    if timeout is None:
        timeout = float(os.environ.get("GRAPHC_MPI_TIMEOUT", DEFAULT_TIMEOUT))
    if _world is not None:
        _world.timeout = float(timeout)
        return _world
    comm = None
    if launched_by_mpirun():
        # the CUDA backend: each process of a machine on a GPU of its own (unless told otherwise)
        os.environ.setdefault("GRAPHC_CUDA_DEVICE", str(_local_rank(None)))
        try:
            from mpi4py import MPI
        except ImportError:
            raise GraphcError("this process was started by mpirun, but graphc.distributed needs mpi4py",
                              hint='pip install "graphc[mpi]"') from None
        comm = MPI.COMM_WORLD
    _world = World(comm, timeout)
    set_collective_handler(_world)
    if _world.size > 1:
        _abort_on_uncaught_errors(comm)
    return _world


def current() -> World:
    """The world, started on first use."""
    return _world if _world is not None else start()


def started() -> bool:
    return _world is not None


def _abort_on_uncaught_errors(comm: Any) -> None:
    previous = sys.excepthook

    def hook(kind: type, value: BaseException, tb: Any) -> None:
        previous(kind, value, tb)
        sys.stderr.flush()
        comm.Abort(1)   # take the whole job down now, rather than let the others time out

    sys.excepthook = hook

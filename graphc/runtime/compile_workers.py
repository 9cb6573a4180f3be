"""Compiling the parts of a big program side by side: this process and worker processes
(graphc/runtime/llvm_compile.py run as a script) each take the next part left until none is.

Why processes: llvmlite serializes every LLVM call in a process behind one lock, so threads
would take turns. A model's first call is mostly LLVM's O3 pipeline and instruction selection
over a hundred kernel bodies; on 2 cores two processes halve it. Workers start on the first
big compile (a fraction of a second, far less than they save) and stay for the next one; each
exits when its input closes, that is when this process exits. A worker that fails or dies is
dropped and its part compiled here, so a broken worker costs time, never a wrong answer; so is
one that has not answered long after this process finished its own parts (a stopped or hung
worker: STALL_SECONDS, or STALL_FACTOR times this process's slowest part), which is killed.
Workers never outnumber the CPUs this process may use (affinity and cgroup quota) minus one; a
forked child never talks to its parent's workers.
"""
from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Iterator

from .llvm_compile import ERROR_BIT, compile_ir
from .cpus import available_cpus

_SCRIPT = Path(__file__).with_name("llvm_compile.py")
STALL_SECONDS = 60.0   # a worker's parts may take this long after this process finished its own,
STALL_FACTOR = 20.0    # or this many times this process's slowest part, before it counts as hung
_lock = threading.Lock()          # one multi-part compile at a time uses the workers
_workers: list[subprocess.Popen] = []
_owner = os.getpid()              # the process whose workers these are (a fork inherits the list)


def extra_processes() -> int:
    """How many worker processes a compile may use besides this one (0: compile here alone).
    GRAPHC_COMPILE_WORKERS sets it (0 turns workers off)."""
    if not os.path.basename(sys.executable or "").lower().startswith("python"):
        return 0   # embedded (a server binary as sys.executable): no interpreter to start workers with
    setting = os.environ.get("GRAPHC_COMPILE_WORKERS")
    if setting is not None:
        try:
            return max(0, int(setting))
        except ValueError:
            return 0
    return max(0, min(available_cpus(), 8) - 1)


def _start() -> subprocess.Popen:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    # run_path, not `python llvm_compile.py`: the script's folder (graphc/runtime) must not come
    # first on the worker's module path, where its files would shadow the standard library's
    launch = f"import runpy; runpy.run_path({str(_SCRIPT)!r}, run_name='__main__')"
    return subprocess.Popen([sys.executable, "-c", launch], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, close_fds=True)


def _ask(worker: subprocess.Popen, text: str, quick: bool) -> bytes:
    data = text.encode("utf-8")
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(struct.pack("<Q", len(data)) + (b"q" if quick else b"o") + data)
    worker.stdin.flush()
    head = worker.stdout.read(8)
    if len(head) < 8:
        raise OSError("the compile worker exited")
    (size,) = struct.unpack("<Q", head)
    body = worker.stdout.read(size & ~ERROR_BIT)
    if size & ERROR_BIT:
        raise RuntimeError(body.decode("utf-8", "replace"))
    if len(body) != size:
        raise OSError("the compile worker's answer was cut short")
    return body


def _compile_on(worker: subprocess.Popen | None, text: str, quick: bool) -> tuple[bytes, bool]:
    """(object code, whether the worker is still good)."""
    if worker is not None:
        try:
            return _ask(worker, text, quick), True
        except (OSError, ValueError):
            pass
    return compile_ir(text, quick), False


def compile_all(texts: list[str], quick: bool = False) -> list[bytes]:
    """The object code of each IR text, in order. This process and the workers each take the
    next part left until none is (else this process compiles them one after another)."""
    extra = extra_processes()
    if len(texts) == 1 or extra == 0 or not _lock.acquire(blocking=False):
        return [compile_ir(t, quick) for t in texts]
    try:
        _forget_inherited_workers()
        while len(_workers) < min(extra, len(texts) - 1):
            try:
                _workers.append(_start())
            except OSError:
                break
        codes: list[bytes] = [b""] * len(texts)
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()   # parts go to whoever is free next:
        for i in range(len(texts)):                           # compile costs are hard to predict
            todo.put(i)
        with ThreadPoolExecutor(max_workers=max(1, len(_workers))) as talk:
            futures = {slot: talk.submit(_serve_parts, worker, todo, texts, quick)
                       for slot, worker in enumerate(_workers)}
            slowest = 0.0
            for i in _take_all(todo):
                started = time.monotonic()
                codes[i] = compile_ir(texts[i], quick)
                slowest = max(slowest, time.monotonic() - started)
            deadline = time.monotonic() + max(STALL_SECONDS, STALL_FACTOR * slowest)
            for slot, future in futures.items():
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    # killing it ends the read its thread waits in; the thread compiles the part here
                    _drop(_workers[slot])
                results, healthy = future.result()
                for i, code in results:
                    codes[i] = code
                if not healthy:
                    _drop(_workers[slot])
        _workers[:] = [w for w in _workers if w.poll() is None and getattr(w, "graphc_good", True)]
        return codes   # every part was taken from the queue and compiled by someone
    finally:
        _lock.release()


def _forget_inherited_workers() -> None:
    """In a forked child, the parent's workers: their pipes are shared with the parent, and two
    processes writing requests into one worker would garble both. The child starts its own."""
    global _owner
    if _owner != os.getpid():
        _workers.clear()
        _owner = os.getpid()


def _take_all(todo: queue.SimpleQueue) -> Iterator[int]:
    """The parts left in `todo`, one at a time, until none is."""
    while True:
        try:
            yield todo.get_nowait()
        except queue.Empty:
            return


def _serve_parts(worker: subprocess.Popen, todo: queue.SimpleQueue, texts: list[str],
                 quick: bool) -> tuple[list, bool]:
    """Have `worker` compile parts from `todo` until none is left: ([(part, code)], still good)."""
    done, healthy = [], True
    for i in _take_all(todo):
        code, ok = _compile_on(worker if healthy else None, texts[i], quick)
        healthy = healthy and ok
        done.append((i, code))
    return done, healthy


def _drop(worker: subprocess.Popen) -> None:
    worker.graphc_good = False   # type: ignore[attr-defined]
    try:
        worker.kill()
    except OSError:
        pass

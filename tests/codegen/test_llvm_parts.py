"""A big program's module compiled in parts by worker processes (graphc.codegen.llvm_split,
graphc.runtime.compile_workers), and kernels of equal bodies sharing one (llvm_shared): the
answers stay the NumPy reference's, each symbol is defined once, and a broken or hung worker
costs time, not the answer."""
from __future__ import annotations

import re
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np
import pytest

import graphc as gc
import graphc.backends.llvm as llvm_backend
from graphc.runtime import compile_workers, jit

# a different elementwise function per step, so that each step's kernels have bodies of their own
STEP_FUNCTIONS = [gc.sin, gc.tanh, gc.exp, gc.cos, gc.sigmoid, gc.abs, gc.square, gc.nn.relu, gc.sqrt, gc.log1p,
                  gc.erf, gc.nn.softplus]


def _many_kernels(seed: float, steps: int = 12):
    """A chain whose steps each end in a row reduction (a kernel boundary), with a different
    function per step; returns (fetch, placeholder, feed)."""
    x = gc.placeholder(gc.float32, [64, 256])
    h = x
    for i in range(steps):
        f = STEP_FUNCTIONS[i % len(STEP_FUNCTIONS)]
        inner = f(gc.abs(h) * (0.5 + 0.01 * i) + seed) if f in (gc.sqrt, gc.log1p) else f(h * (0.5 + 0.01 * i) + seed)
        h = inner - gc.reduce_mean(inner, axis=1, keepdims=True)
    feed = np.random.default_rng(int(seed * 1000)).normal(size=(64, 256)).astype(np.float32)
    return h, x, feed


def _run(fetch, x, feed, backend):
    with gc.Session(backend=backend) as sess:
        return sess.run(fetch, {x: feed})


@pytest.fixture
def spied(monkeypatch, tmp_path):
    """Fresh compiles (an empty disk cache), one worker process even on a 1-CPU machine, and the
    (module, texts) of every split recorded."""
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_COMPILE_WORKERS", "1")
    seen = []
    real = llvm_backend.split_module

    def spy(module, movable, parts):
        texts = real(module, movable, parts)
        seen.append((module, texts))
        return texts

    monkeypatch.setattr(llvm_backend, "split_module", spy)
    return seen


def _defined(text: str) -> set[str]:
    """Non-internal functions an IR text defines."""
    return set(re.findall(r'^define (?!internal|private)[^@]*@"([^"]+)"', text, re.M))


def test_a_program_of_many_kernels_compiles_in_parts_that_define_each_symbol_once(spied):
    fetch, x, feed = _many_kernels(0.25)
    got = _run(fetch, x, feed, "llvm")
    np.testing.assert_allclose(got, _run(fetch, x, feed, "numpy"), rtol=2e-5, atol=2e-5)
    module, texts = spied[-1]
    assert len(texts) == 4, "12 distinct step kernels: two parts per process (one worker)"
    whole = _defined(str(module))
    per_part = [_defined(t) for t in texts]
    assert set().union(*per_part) == whole
    assert sum(len(p) for p in per_part) == len(whole), "a symbol defined in two parts"
    for text in texts:   # each part stands alone: it parses and verifies
        llvm.parse_assembly(text).verify()


def test_a_worker_that_dies_costs_time_not_the_answer(spied, monkeypatch):
    def dead_worker():
        return subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(compile_workers, "_workers", [])
    monkeypatch.setattr(compile_workers, "_start", dead_worker)
    fetch, x, feed = _many_kernels(0.5)
    got = _run(fetch, x, feed, "llvm")
    assert len(spied[-1][1]) == 4
    np.testing.assert_allclose(got, _run(fetch, x, feed, "numpy"), rtol=2e-5, atol=2e-5)
    assert compile_workers._workers == [], "the dead worker is kept"


def test_a_worker_that_never_answers_is_killed_and_its_parts_compiled_here(spied, monkeypatch):
    """A stopped or hung worker (here: one that reads every request and never answers) cannot
    stall a compile: past the stall deadline it is killed and its parts compiled in this process."""
    def hung_worker():
        return subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.buffer.read(); time.sleep(60)"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(compile_workers, "_workers", [])
    monkeypatch.setattr(compile_workers, "_start", hung_worker)
    monkeypatch.setattr(compile_workers, "STALL_SECONDS", 1.0)
    monkeypatch.setattr(compile_workers, "STALL_FACTOR", 0.0)
    fetch, x, feed = _many_kernels(0.75)
    got = _run(fetch, x, feed, "llvm")
    assert len(spied[-1][1]) == 4
    np.testing.assert_allclose(got, _run(fetch, x, feed, "numpy"), rtol=2e-5, atol=2e-5)
    assert compile_workers._workers == [], "the hung worker is kept"


def test_a_worker_reports_llvm_errors_as_this_process_would(monkeypatch):
    monkeypatch.setenv("GRAPHC_COMPILE_WORKERS", "1")
    good = "define void @f() {\nentry:\n  ret void\n}\n"
    with pytest.raises(RuntimeError, match="parsing error"):
        compile_workers.compile_all([good, "define void @g( {"])
    codes = compile_workers.compile_all([good, good.replace("@f", "@g")])   # the worker still serves
    assert len(codes) == 2 and all(codes)


def test_without_spare_cpus_everything_compiles_here(monkeypatch):
    monkeypatch.setenv("GRAPHC_COMPILE_WORKERS", "0")
    monkeypatch.setattr(compile_workers, "_start", lambda: pytest.fail("no worker may start"))
    good = "define void @f() {\nentry:\n  ret void\n}\n"
    assert len(compile_workers.compile_all([good, good.replace("@f", "@g")])) == 2


def test_an_embedded_interpreter_starts_no_workers(monkeypatch):
    monkeypatch.delenv("GRAPHC_COMPILE_WORKERS", raising=False)
    monkeypatch.setattr(sys, "executable", "/usr/bin/uwsgi")
    assert compile_workers.extra_processes() == 0


def test_object_blobs_round_trip_and_refuse_truncation():
    codes = [b"first object", b"", b"third"]
    blob = jit.pack_objects(codes)
    assert jit.unpack_objects(blob) == codes
    assert jit.unpack_objects(b"\x7fELF plain") == [b"\x7fELF plain"]
    for broken in (blob[:-2], blob[:12], jit.OBJECTS_MAGIC + b"\xff" * 8):   # cut short, or a count past the end
        with pytest.raises(ValueError):
            jit.unpack_objects(broken)


def test_kernels_of_equal_bodies_share_one(spied, rng):
    """Six equal blocks (a dense layer, a tanh, a row normalization) over inputs of one shape:
    their kernels differ only in buffers, so the module keeps one body per distinct kernel."""
    xs = [gc.placeholder(gc.float32, [32, 64]) for _ in range(6)]
    w = gc.constant(rng.normal(size=(64, 64)).astype(np.float32))
    outs = []
    for x in xs:
        h = gc.tanh(gc.matmul(x, w))
        outs.append(h - gc.reduce_max(h, axis=1, keepdims=True))
    feeds = {x: rng.normal(size=(32, 64)).astype(np.float32) for x in xs}
    with gc.Session(backend="llvm") as sess:
        got = sess.run(outs, feeds)
    with gc.Session(backend="numpy") as sess:
        want = sess.run(outs, feeds)
    for g, v in zip(got, want):
        np.testing.assert_allclose(g, v, rtol=1e-5, atol=1e-5)
    text = str(spied[-1][0])
    bodies = re.findall(r'^define internal [^@]*@"([^"]+_body)"', text, re.M)
    callers = re.findall(r'call void @"([^"]+_body)"', text)
    assert len(set(callers)) == len(bodies) and len(callers) >= 2 * len(bodies), \
        f"{len(callers)} calls of {len(bodies)} bodies: equal kernels did not share"


def test_a_forked_child_starts_workers_of_its_own(monkeypatch):
    """After a fork the worker list is the parent's, and so are its pipes: the child must not
    write into them (the parent may be talking to the same worker)."""
    monkeypatch.setenv("GRAPHC_COMPILE_WORKERS", "1")

    class ParentsWorker:
        def __getattr__(self, name):
            raise AssertionError("the child used its parent's worker")

    started = []

    def start():
        started.append(1)
        return subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(compile_workers, "_workers", [ParentsWorker()])
    monkeypatch.setattr(compile_workers, "_owner", -1)   # as if this process were a fork of another
    monkeypatch.setattr(compile_workers, "_start", start)
    good = "define void @f() {\nentry:\n  ret void\n}\n"
    assert len(compile_workers.compile_all([good, good.replace("@f", "@g")])) == 2
    assert started == [1] and not any(isinstance(w, ParentsWorker) for w in compile_workers._workers)

"""Products inside loop bodies run on graphc's native thread pool (graphc.codegen.llvm_control:
the body reads the pool words that the runtime fills while a program with loops runs), give the
reference backend's values, respect a Session's thread limit, and two programs with loops
running at once in two Python threads neither corrupt each other nor hang."""
from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import jit, native_pool, threads

pytestmark = pytest.mark.skipif(not (native_pool.supported() and jit.gemm_available()),
                                reason="needs the native pool (Linux x86-64 / AArch64) and NumPy's OpenBLAS")
TESTED_OPS = {"While", "MatMul"}
T, B, U = 8, 32, 256   # h @ W is 2M multiply-adds: big enough to be cut and run on the pool


@pytest.fixture
def pool3(monkeypatch):
    pool = native_pool.NativePool(3)
    monkeypatch.setattr(threads, "_pool", pool)
    return pool


def _jobs(pool) -> int:
    """How many jobs the pool has published so far (its generation counter moves by 2 a job)."""
    return ctypes.c_int32.from_address(pool._state + native_pool.GEN * native_pool.LINE).value // 2


def _rnn(seed=0):
    rng = np.random.default_rng(seed)
    x = gc.placeholder(gc.float32, [T, B, U], name="x")
    w = gc.placeholder(gc.float32, [U, U], name="w")
    hs = gc.scan(lambda h, x_t: gc.tanh(gc.matmul(h, w) + x_t), x, initializer=gc.ones([B, U]))
    feeds = {x: rng.normal(size=(T, B, U)).astype(np.float32), w: (rng.normal(size=(U, U)) * 0.1).astype(np.float32)}
    return hs, feeds


def test_products_in_a_loop_body_run_on_the_pool_and_agree(pool3):
    hs, feeds = _rnn()
    want = gc.Session(backend="numpy", pipeline=None).run(hs, feeds)
    sess = gc.Session(backend="llvm")
    sess.run(hs, feeds)   # compiled
    before = _jobs(pool3)
    got = sess.run(hs, feeds)
    assert _jobs(pool3) - before >= T            # one pool job per iteration's product at least
    assert list(jit.LOOP_POOL) == [0, 0, 0]      # lent only while the program ran
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_thread_limit_of_one_keeps_the_loop_on_the_calling_thread(pool3):
    hs, feeds = _rnn(1)
    want = gc.Session(backend="numpy", pipeline=None).run(hs, feeds)
    sess = gc.Session(backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=1))
    sess.run(hs, feeds)
    before = _jobs(pool3)
    got = sess.run(hs, feeds)
    assert _jobs(pool3) == before
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_two_programs_with_loops_at_once_in_two_threads(pool3):
    cases = [_rnn(2), _rnn(3)]
    wants = [gc.Session(backend="numpy", pipeline=None).run(hs, feeds) for hs, feeds in cases]
    sessions = [gc.Session(backend="llvm") for _ in cases]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        hs, feeds = cases[k]
        try:
            for _ in range(15):
                np.testing.assert_allclose(sessions[k].run(hs, feeds), wants[k], rtol=1e-4, atol=1e-5)
        except BaseException as e:   # noqa: BLE001 - reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not any(t.is_alive() for t in workers), "a run did not finish within 120 s"
    assert not errors, errors

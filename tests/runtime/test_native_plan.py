"""A program that splits kernels over the native pool runs as one native call (P_plan,
graphc.codegen.llvm): every split step is a pool job published from machine code, the results
are bitwise those of the per-step Python path, a failed check is reported as anywhere else, and
the pool is lent only while the program runs."""
import ctypes

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphcError
from graphc.runtime import cpu, jit, native_pool, threads

pytestmark = pytest.mark.skipif(not native_pool.supported(), reason="the native pool needs Linux on x86-64/AArch64")
TESTED_OPS = {"MatMul", "Softmax", "Gather"}


@pytest.fixture
def pool2(monkeypatch):
    pool = native_pool.NativePool(2)
    monkeypatch.setattr(threads, "_pool", pool)
    monkeypatch.setattr(cpu, "PARALLEL_NS", 0)   # split every kernel that can be split
    return pool


def _jobs(pool) -> int:
    """How many jobs the pool has published so far (its generation counter moves by 2 a job)."""
    return ctypes.c_int32.from_address(pool._state + native_pool.GEN * native_pool.LINE).value // 2


def _model():
    x = gc.placeholder(gc.float32, [96, 64], name="x")
    w = gc.constant(np.random.default_rng(1).normal(size=(64, 48)).astype(np.float32))
    h = gc.tanh(gc.matmul(x, w) + 0.5)
    return x, gc.nn.softmax(h * 3.0) + gc.reduce_sum(h, axis=1, keepdims=True)


def test_split_steps_run_as_one_native_plan_with_the_python_steps_results(pool2, monkeypatch):
    x, y = _model()
    a = np.random.default_rng(0).normal(size=(96, 64)).astype(np.float32)
    want = gc.Session(backend="numpy", pipeline=None).run(y, {x: a})
    sess = gc.Session(backend="llvm")
    sess.run(y, {x: a})   # compiled
    executable = sess.compile([y], {x: a}).executable
    assert executable._plan is not None
    split = sum(extent is not None for _, extent in executable._steps)
    assert split >= 2
    before = _jobs(pool2)
    got = sess.run(y, {x: a})
    assert _jobs(pool2) - before == split        # each split step published once, from the plan
    assert list(jit.LOOP_POOL) == [0, 0, 0]      # lent only while the program ran
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    monkeypatch.setattr(cpu, "NATIVE_PLAN", False)
    stepwise = gc.Session(backend="llvm")
    assert np.array_equal(stepwise.run(y, {x: a}), got)
    assert stepwise.compile([y], {x: a}).executable._plan is None


def test_one_thread_runs_the_plan_serially(pool2):
    x, y = _model()
    a = np.random.default_rng(2).normal(size=(96, 64)).astype(np.float32)
    want = gc.Session(backend="llvm").run(y, {x: a})
    sess = gc.Session(backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=1))
    before = _jobs(pool2)
    assert np.array_equal(sess.run(y, {x: a}), want)
    assert _jobs(pool2) == before


def test_a_failed_check_inside_a_plan_names_the_gather(pool2):
    params = gc.placeholder(gc.float32, [4096, 32], name="params")
    ids = gc.placeholder(gc.int32, [512], name="ids")
    y = gc.tanh(gc.gather(params, ids)) * 2.0 + 1.0
    sess = gc.Session(backend="llvm")
    p = np.ones((4096, 32), np.float32)
    good = np.arange(512, dtype=np.int32)
    sess.run(y, {params: p, ids: good})
    assert sess.compile([y], {params: p, ids: good}).executable._plan is not None
    bad = good.copy()
    bad[300] = 5000
    with pytest.raises(GraphcError, match="(?i)gather"):
        sess.run(y, {params: p, ids: bad})
    np.testing.assert_allclose(sess.run(y, {params: p, ids: good}), np.tanh(1.0) * 2 + 1, rtol=1e-6)

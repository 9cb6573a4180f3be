"""Threaded kernels give bitwise the results of serial ones.

The LLVM backend splits the outermost loop of a costly kernel (estimated time >= PARALLEL_NS) into
one chunk per pool thread. Every chunk computes whole output elements, so the split must not
change a single bit. Each case is compiled twice in this process: once with the split turned off
(graphc.runtime.cpu.PARALLEL_NS patched to a huge value: the module has no segments and the
executable makes one native call) and once with every splittable kernel split (PARALLEL_NS = 0),
over a dedicated pool of 3 threads (chunk
bounds that are not multiples of the vector width, and more chunks than this machine may have
cores). The threaded executable must really have split a kernel, so a test cannot pass
vacuously. Results are also checked against the NumPy reference backend within a tolerance.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import cpu, threads

REPO = Path(__file__).resolve().parents[2]
SERIAL = 1 << 62
_POOL: threads.ThreadPool | None = None


@pytest.fixture
def pool3(monkeypatch):
    """A 3-thread pool in place of the process pool (restored after the test)."""
    global _POOL
    if _POOL is None:
        _POOL = threads.ThreadPool(3)
    monkeypatch.setattr(threads, "_pool", _POOL)
    return _POOL


def compile_and_run(monkeypatch, build: Callable[..., Any], arrays: list[np.ndarray], mode: str):
    """Results of `build(*placeholders)` on `arrays` and the executable that computed them."""
    gc.reset_default_graph()
    phs = [gc.placeholder(gc.as_dtype(a.dtype), list(a.shape)) for a in arrays]
    outs = build(*phs)
    if mode == "numpy":
        return gc.function(phs, outs, backend="numpy")(*arrays), None
    monkeypatch.setattr(cpu, "PARALLEL_NS", SERIAL if mode == "serial" else 0)
    f = gc.function(phs, outs, backend="llvm")
    results = f(*arrays)
    return results, f._last.executable


def split_kernels(executable) -> int:
    """How many kernels run split across the pool (a row chain's members each count)."""
    if executable._steps is None:
        return 0
    serial = {i for first, last in executable.info.segments for i in range(first, last)}
    return len(executable.info.kernels) - len(serial)


def check_threaded_equals_serial(monkeypatch, build, arrays, rtol, atol, min_split=1):
    serial, ex_serial = compile_and_run(monkeypatch, build, arrays, "serial")
    threaded, ex_threaded = compile_and_run(monkeypatch, build, arrays, "threaded")
    reference, _ = compile_and_run(monkeypatch, build, arrays, "numpy")
    assert ex_serial._steps is None, "the serial build split a kernel"
    assert split_kernels(ex_threaded) >= min_split, (
        f"nothing (or too little) was split across threads: {ex_threaded.kp.describe()}")
    assert len(serial) == len(threaded) == len(reference)
    for i, (s, t, r) in enumerate(zip(serial, threaded, reference)):
        assert s.dtype == t.dtype and s.shape == t.shape
        assert np.array_equal(s, t), (
            f"output {i}: threaded differs from serial at {np.argwhere(s != t)[:5].tolist()} "
            f"(max |diff| {np.max(np.abs(s.astype(np.float64) - t.astype(np.float64)))})")
        np.testing.assert_allclose(t, r, rtol=rtol, atol=atol, err_msg=f"output {i} against the numpy backend")


def chain(x):
    return gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x)


@pytest.mark.parametrize("n,dtype", [((1 << 20) + 3, np.float32), (1 << 19, np.float64)])
def test_elementwise_chain(monkeypatch, pool3, n, dtype):
    x = np.random.default_rng(0).normal(size=n).astype(dtype)
    tol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-13)
    check_threaded_equals_serial(monkeypatch, lambda v: [chain(v)], [x], *tol)


@pytest.mark.parametrize("shape", [(2048, 512), (2049, 513)])
def test_row_reductions(monkeypatch, pool3, shape):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    check_threaded_equals_serial(
        monkeypatch,
        lambda v: [gc.reduce_sum(v, axis=1), gc.reduce_max(v, axis=1), gc.nn.softmax(v),
                   gc.reduce_logsumexp(v, axis=1), gc.argmax(v, 1)],
        [x], 1e-5, 2e-4, min_split=3)


@pytest.mark.parametrize("shape", [(2048, 512), (2049, 513), (1 << 18, 3)])
def test_column_reductions(monkeypatch, pool3, shape):
    x = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    atol = 1e-6 * shape[0] * 8   # float32 sums of shape[0] terms of size ~3
    check_threaded_equals_serial(
        monkeypatch,
        lambda v: [gc.reduce_sum(v, axis=0), gc.reduce_mean(v, axis=0), gc.reduce_max(v, axis=0), gc.argmin(v, 0)],
        [x], 1e-5, atol)


def test_column_softmax(monkeypatch, pool3):
    x = np.random.default_rng(3).normal(size=(2048, 512)).astype(np.float32)
    check_threaded_equals_serial(monkeypatch, lambda v: [gc.nn.softmax(v, axis=0)], [x], 1e-5, 1e-7, min_split=2)


def test_matmul_bias_relu(monkeypatch, pool3):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2048, 512)).astype(np.float32)
    w = (rng.normal(size=(512, 256)) / 16).astype(np.float32)
    b = rng.normal(size=256).astype(np.float32)
    check_threaded_equals_serial(monkeypatch, lambda a, m, c: [gc.nn.relu(gc.matmul(a, m) + c)], [x, w, b], 1e-4, 1e-4)


def test_middle_axes_reduction(monkeypatch, pool3):
    x = np.random.default_rng(5).normal(size=(64, 128, 64)).astype(np.float64)
    check_threaded_equals_serial(monkeypatch, lambda v: [gc.reduce_mean(v, axis=[0, 2]), gc.reduce_sum(v, axis=1)],
                                 [x], 1e-12, 1e-12)


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc
    from graphc.runtime import threads
    x = gc.placeholder(gc.float32, [(1 << 20) + 3])
    f = gc.function([x], gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x))
    out = f(np.random.default_rng(0).normal(size=(1 << 20) + 3).astype(np.float32))
    np.save(sys.argv[1], out)
    print(json.dumps({"pool": threads.pool().size, "split": f._last.executable._steps is not None}))
""")


def test_graphc_num_threads_env(tmp_path):
    """GRAPHC_NUM_THREADS sizes the process pool; 1 (nothing split) and 2 agree bitwise."""
    children = {}
    for n in (1, 2):   # run at once: separate caches, so both compile
        env = dict(os.environ, GRAPHC_NUM_THREADS=str(n), GRAPHC_CACHE_DIR=str(tmp_path / f"cache{n}"),
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        children[n] = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / f"out{n}.npy")], env=env, cwd=REPO,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for n, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"pool": n, "split": n > 1}
    assert np.array_equal(np.load(tmp_path / "out1.npy"), np.load(tmp_path / "out2.npy"))


def test_row_chain_covers_softmax_and_blocks_unevenly(monkeypatch):
    """A row softmax runs as one chain (max, exp-sum, divide block by block) with a block size
    that does not divide the rows; threaded and serial agree bit for bit, and with NumPy."""
    from graphc.lower.chains import row_chains

    rows = 1031
    arrays = [np.random.default_rng(5).normal(size=(rows, 700)).astype(np.float32) * 30]

    def build(x):
        return [gc.nn.softmax(x), gc.reduce_logsumexp(x, axis=1)]

    serial, ex = compile_and_run(monkeypatch, build, arrays, "serial")
    chains = row_chains(ex.kp)
    assert chains and chains[0].last - chains[0].first >= 3 and rows % chains[0].block
    assert chains[0].private   # row maxima and sums live in per-thread scratch (the exponentials
    # in the softmax result itself: graphc.lower.memory.plan_temps_in_outputs)
    check_threaded_equals_serial(monkeypatch, build, arrays, rtol=1e-5, atol=1e-6, min_split=3)

"""The pool's size follows the CPUs this process may use (affinity, cgroup quota), not the
host's core count; GRAPHC_NUM_THREADS overrides it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphc.runtime import cpus, threads

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import os, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # pinned to one CPU, like taskset -c
import graphc.runtime.threads as threads
print(threads.available_cpus(), threads.pool().size)
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity (Linux)")
def test_a_process_pinned_to_one_cpu_gets_one_thread():
    env = {k: v for k, v in os.environ.items() if k != "GRAPHC_NUM_THREADS"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]
    env["GRAPHC_NUM_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.stdout.split() == ["1", "3"]


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000"}, None),
    ({"cpu.max": "150000 100000"}, 1.5),
    ({"cpu.max": "50000 100000"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3.0),
    ({}, None),
    ({"cpu.max": "garbage"}, None),
])
def test_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    assert cpus._cgroup_quota(str(tmp_path)) == expected


def test_the_quota_caps_the_affinity(monkeypatch):
    monkeypatch.setattr(cpus, "_cgroup_quota", lambda: 1.5)
    assert cpus.available_cpus() == min(2, len(os.sched_getaffinity(0)))
    monkeypatch.setattr(cpus, "_cgroup_quota", lambda: 0.2)
    assert cpus.available_cpus() == 1


def test_bad_thread_setting(monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "many")
    with pytest.raises(Exception, match="whole number"):
        threads.configured_threads()


def test_config_limits_a_sessions_threads():
    import numpy as np
    import graphc as gc
    n = 1 << 20
    x = gc.placeholder(gc.float32, [n])
    y = gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x)
    a = np.random.default_rng(0).normal(size=n).astype(np.float32)
    one = gc.Session(config=gc.ConfigProto(intra_op_parallelism_threads=1))
    every = gc.Session(config=gc.ConfigProto())
    assert np.array_equal(one.run(y, {x: a}), every.run(y, {x: a}))
    assert one.compile([y], {x: a}).executable._steps is None         # nothing split: one thread
    if threads.pool().size > 1:
        assert every.compile([y], {x: a}).executable._steps is not None
    with pytest.raises(gc.InvalidArgumentError, match="intra_op_parallelism_threads"):
        gc.ConfigProto(intra_op_parallelism_threads=-1)
    with pytest.raises(gc.GraphcError, match="ConfigProto"):
        gc.Session(config={"intra_op_parallelism_threads": 1})


def test_blas_runs_single_threaded_inside_graphc_and_is_restored():
    """NumPy's OpenBLAS threads would spin beside graphc's pool: graphc sets them to one for its
    own GEMM calls (it splits products itself) and gives the user's setting back after."""
    import numpy as np
    import graphc as gc
    from graphc.runtime import jit
    a = gc.placeholder(gc.float32, [64, 64])
    f = gc.function([a], gc.matmul(a, a), backend="llvm")
    value = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    f(value)
    if jit.blas_threads() is None:
        pytest.skip("this NumPy has no OpenBLAS thread control")
    seen = []
    original = jit.blas_threads(3)
    try:
        real = jit._blas_set_threads
        jit._blas_set_threads = lambda n: (seen.append(n), real(n))
        np.testing.assert_allclose(f(value), value @ value, rtol=1e-4, atol=1e-4)
        jit._blas_set_threads = real
        assert seen == [1, 3] and jit.blas_threads() == 3
    finally:
        jit._blas_set_threads = real
        jit.blas_threads(original)

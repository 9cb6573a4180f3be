"""The CUDA backend beyond single ops: launch modes, GEMM tiles, variables resident on the device,
in-place updates, failed checks, profiles and errors. Runs through the emulator everywhere and on
a GPU where PyCUDA finds one (marked gpu)."""
from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.runtime.cuda import DeviceValue
from tests.helpers import assert_close

CUDA = [pytest.param("cuda-emulator", marks=pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")),
        pytest.param("cuda", marks=pytest.mark.gpu)]


def _launch_modes(sess) -> set[str]:
    return {launch.mode for c in sess._cache.values() for launch in c.executable.module.launches}


@pytest.mark.parametrize("backend", CUDA)
@pytest.mark.parametrize("m, n, k, ta, tb, dtype", [
    (130, 260, 17, False, False, "float32"), (128, 256, 64, True, False, "float32"),
    (33, 7, 300, False, True, "float32"), (70, 65, 9, True, True, "float64"), (1, 1, 1, False, False, "float32"),
])
def test_gemm_tiles_edges_and_transposes(backend, m, n, k, ta, tb, dtype):
    rng = np.random.default_rng(0)
    av = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    bv = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    a, b = gc.constant(av), gc.placeholder(dtype, bv.shape)
    with gc.Session(backend=backend) as sess:
        got = sess.run(gc.matmul(a, b, transpose_a=ta, transpose_b=tb), {b: bv})
        assert "gemm" in _launch_modes(sess)
    want = (av.T if ta else av) @ (bv.T if tb else bv)
    assert_close(got, want, rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-4 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("backend", CUDA)
def test_batched_gemm_broadcasts_batches(backend):
    rng = np.random.default_rng(1)
    av, bv = rng.standard_normal((3, 1, 20, 30)).astype(np.float32), rng.standard_normal((4, 30, 9)).astype(np.float32)
    a, b = gc.placeholder(gc.float32, av.shape), gc.placeholder(gc.float32, bv.shape)
    with gc.Session(backend=backend) as sess:
        got = sess.run(gc.matmul(a, b), {a: av, b: bv})
    assert_close(got, av @ bv, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", CUDA)
def test_launch_modes_follow_the_kernel_shape(backend):
    x = gc.placeholder(gc.float32, [64, 512])
    xv = np.random.default_rng(2).standard_normal((64, 512)).astype(np.float32)
    cases = [(gc.exp(x) * 2.0, "vector"), (gc.reduce_sum(x, axis=1), "block"), (gc.reduce_sum(x, axis=0), "thread"),
             (gc.nn.softmax(x), "chain"), (x[:, ::3] + 1.0, "flat")]
    for fetch, mode in cases:
        with gc.Session(backend=backend) as sess:
            got = sess.run(fetch, {x: xv})
            assert mode in _launch_modes(sess), mode
        with gc.Session(backend="numpy") as ref:
            assert_close(got, ref.run(fetch, {x: xv}), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", CUDA)
def test_long_reductions_get_a_grid_stage(backend):
    rng = np.random.default_rng(4)
    xv = rng.standard_normal((3, 200000)).astype(np.float32)
    xv[1, 7777], xv[2, 150001], xv[2, 160000] = 50, np.nan, np.nan
    dv = rng.standard_normal(300001)
    x, d = gc.placeholder(gc.float32, xv.shape), gc.placeholder(gc.float64, dv.shape)
    fetches = [gc.reduce_sum(x), gc.reduce_sum(x, axis=1), gc.argmax(x, axis=1), gc.reduce_max(d),
               gc.argmin(d, axis=0), gc.reduce_any(x > 4), gc.reduce_mean(d)]
    with gc.Session(backend=backend) as sess:
        got = sess.run(fetches, {x: xv, d: dv})
        assert "split" in _launch_modes(sess)
    with gc.Session(backend="numpy") as ref:
        want = ref.run(fetches, {x: xv, d: dv})
    for g, w in zip(got, want):
        assert_close(g, w, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("backend", CUDA)
def test_softmax_rows_run_as_one_launch(backend):
    x = gc.placeholder(gc.float32, [16, 1000])
    with gc.Session(backend=backend, profile=True) as sess:
        sess.run(gc.nn.softmax(x), {x: np.ones((16, 1000), np.float32)})
        labels = list(sess._cache.values())[0].executable.kernel_labels()
    assert len(labels) == 1 and labels[0][1].count("+") >= 2
    assert "Softmax" in str(sess.profile)


@pytest.mark.parametrize("backend", CUDA)
def test_training_keeps_variables_on_the_device_and_matches_the_cpu(backend):
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((32, 20)).astype(np.float32)
    yv = rng.integers(0, 5, 32).astype(np.int32)
    results = {}
    for name in ("llvm", backend):
        gc.reset_default_graph()
        x, y = gc.placeholder(gc.float32, [32, 20]), gc.placeholder(gc.int32, [32])
        w = gc.Variable(gc.random_normal([20, 5], seed=1, stddev=0.3), name="w")
        b = gc.Variable(gc.zeros([5]), name="b")
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=gc.matmul(x, w) + b))
        train = gc.train.AdamOptimizer(0.05).minimize(loss)
        with gc.Session(backend=name) as sess:
            sess.run(gc.global_variables_initializer())
            losses = [sess.run([train, loss], {x: xv, y: yv})[1] for _ in range(20)]
            if name == backend:
                state = sess._state.variables
                assert all(isinstance(v, DeviceValue) for v in state.values()), state
                assert isinstance(sess.variable_value("w"), np.ndarray)
            results[name] = (losses, sess.run(w), sess.variable_value("b"))
    assert results[backend][0][-1] < results[backend][0][0] * 0.5
    for got, want in zip(results[backend], results["llvm"]):
        assert_close(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", CUDA)
def test_a_failed_check_names_the_op_and_leaves_variables_unchanged(backend):
    v = gc.Variable(gc.ones([4]), name="v")
    idx = gc.placeholder(gc.int32, [4])
    step = v.assign_add(gc.gather(gc.constant(np.arange(4, dtype=np.float32)), idx))
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(step, {idx: [1, 2, 0, 3]})
        with pytest.raises(gc.InvalidArgumentError, match=r"indices\[1\] = 9 is not in \[0, 4\)") as info:
            sess.run(step, {idx: [0, 9, 1, 1]})
        assert info.value.op_type == "Gather" and "test_cuda_backend.py" in str(info.value)
        np.testing.assert_array_equal(sess.variable_value("v"), [2, 3, 1, 4])


@pytest.mark.parametrize("backend", CUDA)
def test_loaded_variables_and_fetched_variables_are_host_arrays(backend):
    v = gc.Variable(gc.zeros([3]), name="v")
    inc = v.assign_add(gc.ones([3]))
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        v.load(np.array([5, 6, 7], np.float32), sess)
        sess.run(inc)
        got = sess.run(v)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, [6, 7, 8])
        got[:] = 0   # the caller's copy: the session's value is untouched
        np.testing.assert_array_equal(sess.run(v), [6, 7, 8])


def test_missing_pycuda_is_a_clear_error(monkeypatch):
    from graphc.runtime import cuda_devices

    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(gc.BackendUnavailableError, match="needs PyCUDA") as info:
        cuda_devices.PyCudaDevice()
    assert "cuda-emulator" in str(info.value)


@pytest.mark.gpu
def test_running_out_of_gpu_memory_is_a_clear_error():
    huge = gc.random_uniform([1 << 38])   # 1 TiB of float32: no GPU has it
    with gc.Session(backend="cuda") as sess:
        with pytest.raises(gc.ResourceExhaustedError, match="out of memory"):
            sess.run(huge)
        assert sess.run(gc.constant(2.0) * 3.0) == 6.0   # the session goes on working


@pytest.mark.parametrize("backend", CUDA)
def test_sessions_can_be_run_from_other_threads(backend):
    import threading

    x = gc.placeholder(gc.float32, [1000])
    v = gc.Variable(gc.zeros([1000]), name="v")
    step = v.assign_add(x)
    results, errors = [], []
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())

        def work(k: int) -> None:
            try:
                for _ in range(5):
                    results.append(sess.run(gc.reduce_sum(x * 2.0), {x: np.full(1000, k, np.float32)}))
            except Exception as err:   # collected: a thread's exception would otherwise vanish
                errors.append(err)

        def train() -> None:   # one thread updates the variable (concurrent updates may race, as in TF1)
            try:
                for _ in range(5):
                    sess.run(step, {x: np.ones(1000, np.float32)})
            except Exception as err:
                errors.append(err)

        threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2, 3)] + [threading.Thread(target=train)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sorted(set(float(r) for r in results)) == [2000.0, 4000.0, 6000.0] and len(results) == 15
        np.testing.assert_array_equal(sess.run(v), np.full(1000, 5.0, np.float32))

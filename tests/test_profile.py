"""Session(profile=True) and gc.function(profile=True): compile timings and per-kernel times."""
import numpy as np
import pytest

import graphc as gc


def _model():
    x = gc.placeholder(gc.float32, [None, 8], name="x")
    w = gc.Variable(np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3), name="w")
    y = gc.nn.softmax(gc.tanh(x @ w), name="probs")
    return x, w, y


def test_session_profile_counts_every_kernel_of_every_run(backend):
    x, w, y = _model()
    sess = gc.Session(backend=backend, profile=True)
    sess.run(w.initializer)
    feed = {x: np.ones((4, 8), np.float32)}
    expected = gc.Session(backend="numpy")
    expected.run(w.initializer)
    for _ in range(3):
        np.testing.assert_allclose(sess.run(y, feed), expected.run(y, feed), rtol=1e-6)
    profile = sess.profile
    assert len(profile.programs) == 2           # the initializer and the softmax run
    run = profile.programs[1]
    assert run.runs == 3 and run.compile_ms > 0
    assert run.kernels and all(k.calls == 3 and k.seconds > 0 for k in run.kernels)
    assert "probs" in run.label
    ops = {k.op for k in run.kernels}
    assert ops & {"MatMul", "Softmax", "Tanh", "Exp", "Max", "Sum", "RealDiv"}
    text = str(profile)
    assert "compile" in text and "kernels (top" in text and run.kernels[0].name in text
    if backend == "llvm":
        assert run.timings["tier"] in ("quick", "O3") and "codegen_ms" in run.timings
    profile.reset()
    assert all(k.calls == 0 for k in profile.kernels()) and run.compile_ms > 0


def test_function_profile_and_no_profile_by_default(backend):
    x, w, y = _model()
    f = gc.function([x], y, backend=backend, profile=True)
    f(np.ones((2, 8), np.float32))
    f(np.ones((2, 8), np.float32))
    assert f.profile is not None
    (main,) = [p for p in f.profile.programs if "probs" in p.label]
    assert main.runs == 2 and all(k.calls == 2 for k in main.kernels)
    g = gc.function([x], y, backend=backend)
    g(np.ones((2, 8), np.float32))
    assert g.profile is None and gc.Session(backend=backend).profile is None


def test_profiled_runs_report_failed_checks_like_plain_runs():
    idx = gc.placeholder(gc.int32, [3])
    table = gc.constant(np.arange(10, dtype=np.float32))
    out = gc.gather(table, idx)
    sess = gc.Session(backend="llvm", profile=True)
    assert list(sess.run(out, {idx: np.array([1, 2, 3], np.int32)})) == [1, 2, 3]
    with pytest.raises(gc.errors.InvalidArgumentError, match=r"indices\[1\] = 20 is not in \[0, 10\)"):
        sess.run(out, {idx: np.array([1, 20, 3], np.int32)})

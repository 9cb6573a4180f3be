"""The call hot paths of gc.function and Session.run stay correct whenever they are skipped:
new shapes, other dtypes, lists, non-contiguous arrays, closed sessions, updates."""
import numpy as np
import pytest

import graphc as gc


def test_function_hot_path_follows_shapes_dtypes_and_conversions(backend):
    x = gc.placeholder(gc.float32, [None], name="x")
    f = gc.function([x], x * 2.0 + 1.0, backend=backend)
    a = np.arange(4, dtype=np.float32)
    for _ in range(3):
        assert np.array_equal(f(a), a * 2 + 1)
    b = np.arange(6, dtype=np.float32)
    assert np.array_equal(f(b), b * 2 + 1)                       # new shape
    assert np.array_equal(f([1.0, 2.0]), np.array([3.0, 5.0], np.float32))   # a list
    c = np.arange(12, dtype=np.float32)[::3]
    assert np.array_equal(f(c), c * 2 + 1)                       # a strided view
    assert np.array_equal(f(x=a), a * 2 + 1)                     # by keyword
    wide = f(np.arange(4, dtype=np.float64))                     # float64 values are converted
    assert wide.dtype == np.float32 and np.array_equal(wide, a * 2 + 1)
    with pytest.raises(gc.errors.FeedError):
        f(np.arange(4, dtype=np.complex64))                      # not convertible
    with pytest.raises(gc.errors.FeedError):
        f(np.ones((2, 2), np.float32))                           # wrong rank
    out = f(a)
    out[0] = 99.0                                                # results belong to the caller
    assert f(a)[0] == 1.0


def test_session_hot_path_with_updates_and_close(backend):
    x = gc.placeholder(gc.float32, [3], name="x")
    v = gc.Variable(np.zeros(3, np.float32), name="acc")
    step = v.assign_add(x)
    sess = gc.Session(backend=backend)
    sess.run(v.initializer)
    feed = {x: np.ones(3, np.float32)}
    for _ in range(4):
        sess.run(step, feed)
    assert np.array_equal(sess.run(v), np.full(3, 4.0, np.float32))
    assert np.array_equal(sess.run([step], {x: np.full(3, 2.0, np.float32)})[0], np.full(3, 6.0, np.float32))
    assert np.array_equal(sess.run(step, {"x:0": np.ones(3, np.float32)}), np.full(3, 7.0, np.float32))
    with pytest.raises(gc.errors.FeedError):
        sess.run(step, {x: np.ones(4, np.float32)})
    sess.close()
    with pytest.raises(gc.GraphcError, match="closed"):
        sess.run(step, feed)


def test_function_hot_path_reinitializes_a_reset_variable():
    x = gc.placeholder(gc.float32, [2])
    v = gc.Variable(np.full(2, 5.0, np.float32), name="v")
    f = gc.function([x], x + v)
    a = np.ones(2, np.float32)
    assert np.array_equal(f(a), [6.0, 6.0])
    f.session._state.variables.clear()
    assert np.array_equal(f(a), [6.0, 6.0])


def test_big_results_are_reused_only_when_nobody_holds_them():
    n = 1 << 16   # above RECYCLE_BYTES
    x = gc.placeholder(gc.float32, [n])
    f = gc.function([x], x * 2.0, backend="llvm")
    ones = np.ones(n, np.float32)
    held = f(ones)
    view = f(ones)[::2]                      # only a view of this result survives
    buffers = [f(ones * k) for k in range(3, 6)]
    assert np.array_equal(held, np.full(n, 2.0, np.float32))
    assert np.array_equal(view, np.full(n // 2, 2.0, np.float32))
    for k, b in zip(range(3, 6), buffers):
        assert np.array_equal(b, np.full(n, 2.0 * k, np.float32))
    for _ in range(3):
        f(ones * 7)                          # dropped at once: the same array may serve again
    assert np.array_equal(held, np.full(n, 2.0, np.float32)) and view[0] == 2.0


def test_concurrent_calls_from_threads_are_each_correct():
    from concurrent.futures import ThreadPoolExecutor

    n = 1 << 15
    x = gc.placeholder(gc.float32, [n])
    f = gc.function([x], gc.tanh(x) * 3.0, backend="llvm")
    inputs = [np.full(n, k / 10, np.float32) for k in range(16)]
    expected = [np.tanh(a) * 3.0 for a in inputs]
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda a: f(a), inputs * 4))
    for r, e in zip(results, expected * 4):
        np.testing.assert_allclose(r, e, rtol=1e-6)

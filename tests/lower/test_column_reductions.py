"""Reductions across rows (axis 0 of a row-major matrix, middle axes) run with a block of
columns innermost (graphc.lower.kernel.columnar_axis); results equal NumPy's."""
import numpy as np
import pytest

import graphc as gc
from graphc.lower.kernel import columnar_axis


def _run(build, a):
    x = gc.placeholder(gc.as_dtype(a.dtype), list(a.shape))
    f = gc.function([x], build(x), backend="llvm")
    return f(a), f._last.executable.kp


@pytest.mark.parametrize("reduce, reference", [
    (lambda x: gc.reduce_sum(x, axis=0), lambda a: a.sum(axis=0)),
    (lambda x: gc.reduce_mean(x, axis=0), lambda a: a.mean(axis=0)),
    (lambda x: gc.reduce_max(x, axis=0), lambda a: a.max(axis=0)),
    (lambda x: gc.reduce_min(x, axis=0), lambda a: a.min(axis=0)),
    (lambda x: gc.reduce_prod(x * 0.01 + 1.0, axis=0), lambda a: (a * 0.01 + 1.0).prod(axis=0)),
    (lambda x: gc.argmax(x, axis=0), lambda a: a.argmax(axis=0)),
    (lambda x: gc.argmin(x, axis=0), lambda a: a.argmin(axis=0)),
])
def test_column_reductions_match_numpy(reduce, reference):
    a = np.random.default_rng(3).normal(size=(301, 1500)).astype(np.float32)   # 2 blocks, ragged
    a[17, 5] = np.nan
    got, kp = _run(reduce, a)
    assert any(columnar_axis(k) is not None for k in kp.kernels if hasattr(k, "accumulators"))
    np.testing.assert_allclose(got, reference(a.astype(np.float64)).astype(got.dtype), rtol=2e-5, atol=1e-5)


def test_middle_axis_and_bool_reductions():
    a = np.random.default_rng(4).normal(size=(6, 200, 40)).astype(np.float64)
    got, kp = _run(lambda x: gc.reduce_sum(x, axis=1), a)
    assert any(columnar_axis(k) is not None for k in kp.kernels if hasattr(k, "accumulators"))
    np.testing.assert_allclose(got, a.sum(axis=1), rtol=1e-12)
    got, _ = _run(lambda x: gc.reduce_any(x > 2.5, axis=0), a[0])
    assert np.array_equal(got, (a[0] > 2.5).any(axis=0))
    got, _ = _run(lambda x: gc.reduce_all(x > -2.5, axis=0), a[0])
    assert np.array_equal(got, (a[0] > -2.5).all(axis=0))


def test_row_reductions_keep_their_order():
    a = np.ones((64, 256), np.float32)
    got, kp = _run(lambda x: gc.reduce_sum(x, axis=1), a)
    assert all(columnar_axis(k) is None for k in kp.kernels if hasattr(k, "accumulators"))
    assert np.array_equal(got, np.full(64, 256, np.float32))

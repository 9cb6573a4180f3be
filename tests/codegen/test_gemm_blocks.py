"""GEMM kernels run as (batch element, block of C) iterations, each one single-threaded BLAS
call (blocks of rows, and of columns when a product has few rows and much work), so graphc's pool splits a product like any other kernel: every layout gives NumPy's
result whether the iterations run on one thread or several."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm_gemm import gemm_blocks, iterations
from graphc.lower.kernel import GemmCall
from graphc.runtime import jit, native_pool, threads

pytestmark = pytest.mark.skipif(not jit.gemm_available(), reason="needs NumPy's OpenBLAS")


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("m, k, n", [(1, 65, 40), (37, 65, 40), (300, 65, 40), (40, 400, 300)])
def test_blocks_give_numpy_results(m, k, n, batch, transpose_a, transpose_b, monkeypatch):
    if native_pool.supported():
        monkeypatch.setattr(threads, "_pool", native_pool.NativePool(3))
    rng = np.random.default_rng(m)
    a_shape = batch + ((k, m) if transpose_a else (m, k))
    b_shape = batch + ((n, k) if transpose_b else (k, n))
    a = rng.normal(size=a_shape).astype(np.float32)
    b_value = rng.normal(size=b_shape).astype(np.float32)
    x, y = gc.placeholder(gc.float32, a_shape), gc.placeholder(gc.float32, b_shape)
    f = gc.function([x, y], gc.matmul(x, y, transpose_a=transpose_a, transpose_b=transpose_b), backend="llvm")
    want = np.matmul(np.swapaxes(a, -1, -2) if transpose_a else a, np.swapaxes(b_value, -1, -2) if transpose_b
                     else b_value)
    np.testing.assert_allclose(f(a, b_value), want, rtol=1e-4, atol=1e-4)
    gemms = [kernel for kernel in f._last.executable.kp.kernels if isinstance(kernel, GemmCall)]
    if m == 1:   # a row vector times a matrix is a reduction loop, not a BLAS call (see the test below)
        assert gemms == []
        return
    [gemm] = gemms
    rows, columns = gemm_blocks(gemm)
    row_blocks, column_blocks = -(-m // rows), -(-n // columns)
    assert iterations(gemm) == int(np.prod(batch or (1,))) * row_blocks * column_blocks
    if m == 300:
        assert row_blocks > 1 and column_blocks == 1   # a product with many rows is cut into blocks of rows
    if m == 40:
        assert column_blocks > 1                        # few rows and much work: blocks of columns too


@pytest.mark.parametrize("m, k, n, transpose_a, transpose_b, as_loop", [
    (1, 1280, 1000, False, True, True), (1, 300, 70, False, False, True), (1, 300, 70, True, True, True),
    (700, 300, 1, False, False, True), (700, 300, 1, False, True, True),
    (700, 300, 1, True, False, False),   # A^T @ column reads across the reduction: BLAS is faster
    (2, 300, 70, False, False, False),
])
def test_matrix_vector_products_are_loops_on_the_cpu(m, k, n, transpose_a, transpose_b, as_loop):
    """A BLAS GEMM call packs the matrix before it streams it; a reduction loop reads it once
    (2-3x sooner for a classifier's 1x1280 @ 1280x1000). The answer is NumPy's either way."""
    rng = np.random.default_rng(k + n)
    a = rng.normal(size=(k, m) if transpose_a else (m, k)).astype(np.float32)
    b_value = rng.normal(size=(n, k) if transpose_b else (k, n)).astype(np.float32)
    x, y = gc.placeholder(gc.float32, a.shape), gc.placeholder(gc.float32, b_value.shape)
    f = gc.function([x, y], gc.matmul(x, y, transpose_a=transpose_a, transpose_b=transpose_b), backend="llvm")
    want = (a.T if transpose_a else a) @ (b_value.T if transpose_b else b_value)
    np.testing.assert_allclose(f(a, b_value), want, rtol=1e-4, atol=1e-4 * np.sqrt(k))
    gemms = [kernel for kernel in f._last.executable.kp.kernels if isinstance(kernel, GemmCall)]
    assert (gemms == []) == as_loop

"""a[*batch, m, k] @ w[k, n] with one w for every batch element runs as one GEMM over all of a's
rows (graphc.lower.library._rows_fold), with its epilogue, where a's matrices follow each other
in memory; elsewhere it stays a batched product. Against the NumPy reference backend."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.lower.kernel import GemmCall, LoopKernel
from graphc.runtime import jit

pytestmark = pytest.mark.skipif(not jit.gemm_available(), reason="needs NumPy's OpenBLAS")
TESTED_OPS = {"MatMul", "Transpose", "StridedSlice"}


def _kernels(y, feed):
    sess = gc.Session(backend="llvm")
    got = sess.run(y, feed)
    want = gc.Session(backend="numpy", pipeline=None).run(y, feed)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    return sess.compile([y], feed).executable.kp.kernels


def test_a_sequence_first_projection_is_one_gemm():
    """A transformer's [tokens, 1, d] (a transpose of [1, tokens, d]) times its weights: was
    one matrix-vector reduction per token."""
    rng = np.random.default_rng(0)
    x = gc.placeholder(gc.float32, (1, 64, 48))
    w = gc.constant(rng.normal(size=(48, 96)).astype(np.float32))
    y = gc.matmul(gc.transpose(x, [1, 0, 2]), w) + gc.constant(rng.normal(size=96).astype(np.float32))
    kernels = _kernels(y, {x: rng.normal(size=(1, 64, 48)).astype(np.float32)})
    gemms = [k for k in kernels if isinstance(k, GemmCall)]
    assert len(gemms) == 1 and (gemms[0].m, gemms[0].n, gemms[0].batch) == (64, 96, ())
    assert not any(isinstance(k, LoopKernel) and k.reduced for k in kernels)
    assert gemms[0].epilogue is not None   # the bias runs on the GEMM's blocks


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batched_rows_fold_with_their_epilogue(dtype):
    rng = np.random.default_rng(1)
    x = gc.placeholder(dtype, (3, 5, 37, 20))
    y = gc.nn.relu(gc.matmul(x, gc.constant(rng.normal(size=(20, 33)).astype(dtype))))
    kernels = _kernels(y, {x: rng.normal(size=(3, 5, 37, 20)).astype(dtype)})
    [g] = [k for k in kernels if isinstance(k, GemmCall)]
    assert (g.m, g.batch) == (3 * 5 * 37, ()) and g.epilogue is not None


def test_rows_that_do_not_follow_each_other_stay_batched():
    """A slice of each batch element's rows (their matrices 30 rows apart, 10 rows each) and a
    transposed a keep the batched product."""
    rng = np.random.default_rng(2)
    x = gc.placeholder(gc.float32, (4, 30, 20))
    w = gc.constant(rng.normal(size=(20, 7)).astype(np.float32))
    feed = {x: rng.normal(size=(4, 30, 20)).astype(np.float32)}
    for y in (gc.matmul(x[:, 5:15, :], w), gc.matmul(x, gc.constant(rng.normal(size=(30, 7)).astype(np.float32)),
                                                   transpose_a=True)):
        gemms = [k for k in _kernels(y, feed) if isinstance(k, GemmCall)]
        assert gemms and all(g.batch == (4,) for g in gemms)


@pytest.mark.parametrize("n, rows", [(1000, 8), (36, 4), (30, 2), (31, 0)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_row_times_a_matrix_runs_several_rows_at_once(n, rows, dtype):
    """x[1, k] @ W[n, k]^T (a classifier): one reduction loop over k with one accumulator per row
    of a group of 8, 4 or 2 rows (the most that divides n; an odd n keeps one row at a time)."""
    rng = np.random.default_rng(n)
    k = 300
    x = gc.placeholder(dtype, (1, k))
    w = gc.constant(rng.normal(size=(n, k)).astype(dtype))
    y = gc.matmul(x, w, transpose_b=True) + gc.constant(rng.normal(size=n).astype(dtype))
    kernels = _kernels(y, {x: rng.normal(size=(1, k)).astype(dtype)})
    product = [kern for kern in kernels if isinstance(kern, LoopKernel) and kern.reduced]
    assert len(product) == 1 and not any(isinstance(kern, GemmCall) for kern in kernels)
    assert len(product[0].accumulators) == max(rows, 1)
    assert product[0].space == ((n // rows, k) if rows else (1, n, k))

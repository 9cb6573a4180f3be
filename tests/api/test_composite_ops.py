"""The ops TF1 users reached for and did not find (graphc/api/composite.py), against NumPy on
the reference and LLVM backends, with their gradients checked by finite differences; Theano's
advanced indexing x[gc.range(n), labels]; InteractiveSession with Tensor.eval()."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"MatMul", "Gather", "OneHot", "Sum", "While", "Conv2DBackpropInput", "Greater", "Less"}
RNG = np.random.default_rng(8)
BACKENDS = ["numpy", "llvm"]


def _run(backend, fetches, feeds=None):
    with gc.Session(backend=backend) as sess:
        return sess.run(fetches, feeds or {})


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_match_numpy(backend):
    a = RNG.normal(size=(3, 5))
    b = RNG.normal(size=(5, 4))
    c = RNG.normal(size=(2, 3, 4))
    d = RNG.normal(size=(4, 3))
    x = gc.constant(a)
    got = _run(backend, {
        "eye": gc.eye(3, 4, batch_shape=[2]),
        "l2": gc.l2_normalize(x, axis=1),
        "tensordot": gc.tensordot(gc.constant(c), gc.constant(d), [[2, 1], [0, 1]]),
        "einsum": gc.einsum("ij,jk->ik", x, gc.constant(b)),
        "einsum_batch": gc.einsum("bij,bkj->bik", gc.constant(c), gc.constant(c)),
        "einsum_implicit": gc.einsum("ij,ij", x, x),
        "gather_nd": gc.gather_nd(gc.constant(c), [[1, 2], [0, 0]]),
        "advanced": x[gc.range(3), gc.constant([4, 0, 2])],
        "cumsum": gc.cumsum(x, axis=1),
        "cumsum_ex_rev": gc.cumsum(x, axis=0, exclusive=True, reverse=True),
        "cumprod": gc.cumprod(x, axis=1),
        "cumprod_ex_rev": gc.cumprod(x, axis=1, exclusive=True, reverse=True),
        "sort": gc.sort(x),
        "argsort_desc": gc.argsort(x, direction="DESCENDING"),
        "top_k": gc.nn.top_k(x, 2)[0],
        "embedding": gc.nn.embedding_lookup([gc.constant(b[:2]), gc.constant(b[2:])], gc.constant([[4, 0], [1, 3]])),
    })
    want = {
        "eye": np.broadcast_to(np.eye(3, 4), (2, 3, 4)),
        "l2": a / np.linalg.norm(a, axis=1, keepdims=True),
        "einsum": a @ b,
        "einsum_implicit": np.einsum("ij,ij", a, a),
        "gather_nd": np.stack([c[1, 2], c[0, 0]]),
        "advanced": a[np.arange(3), [4, 0, 2]],
        "cumsum": np.cumsum(a, axis=1),
        "cumsum_ex_rev": np.flip(np.cumsum(np.flip(a, 0), 0), 0) - a,
        "cumprod": np.cumprod(a, axis=1),
        "cumprod_ex_rev": np.flip(np.cumprod(np.flip(a, 1), 1), 1) / a,
        "sort": np.sort(a, axis=1),
        "argsort_desc": np.argsort(-a, axis=1, kind="stable"),
        "top_k": -np.sort(-a, axis=1)[:, :2],
        "embedding": b[[[4, 0], [1, 3]]],
        "einsum_batch": np.einsum("bij,bkj->bik", c, c),
        "tensordot": np.tensordot(c, d, [[2, 1], [0, 1]]),
    }
    for k, w in want.items():
        np.testing.assert_allclose(got[k], w, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_top_k_indices_and_in_top_k(backend):
    x = gc.constant(np.array([[3.0, 1.0, 3.0, 0.0], [0.0, 5.0, 5.0, -1.0]]))
    values, indices = gc.nn.top_k(x, 3)
    hit = gc.nn.in_top_k(x, gc.constant([1, 2]), 1)
    v, i, h = _run(backend, [values, indices, hit])
    np.testing.assert_array_equal(v, [[3, 3, 1], [5, 5, 0]])
    np.testing.assert_array_equal(i, [[0, 2, 1], [1, 2, 0]])   # ties: the lower index first
    np.testing.assert_array_equal(h, [False, True])            # a tie at the boundary counts in


@pytest.mark.parametrize("fn, shapes", [
    (lambda a: gc.l2_normalize(a, axis=0), [(4, 3)]),
    (lambda a, b: gc.tensordot(a, b, 1), [(3, 4), (4, 2)]),
    (lambda a, b: gc.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 2)]),
    (lambda a: gc.gather_nd(a, [[1, 0], [2, 1]]), [(3, 2, 2)]),
    (lambda a: gc.cumsum(a, axis=1, exclusive=True), [(2, 5)]),
    (lambda a: gc.cumprod(a, axis=0, reverse=True), [(4, 3)]),
    (lambda a: gc.sort(a), [(3, 5)]),
    (lambda a: gc.nn.top_k(a, 2)[0], [(3, 5)]),
    (lambda a: a[gc.range(3), gc.constant([1, 0, 1])], [(3, 2)]),
], ids=["l2_normalize", "tensordot", "einsum", "gather_nd", "cumsum", "cumprod", "sort", "top_k", "advanced"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients(fn, shapes, backend):
    inputs = [RNG.normal(size=s) for s in shapes]
    assert gc.testing.check_gradients(fn, inputs, backend=backend) <= 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_transpose_is_conv2ds_input_gradient(backend):
    x = gc.placeholder(gc.float64, [2, 6, 6, 3])
    f = gc.constant(RNG.normal(size=(3, 3, 3, 4)))
    y = gc.nn.conv2d(x, f, strides=2, padding="SAME")
    g = gc.constant(RNG.normal(size=(2, 3, 3, 4)))
    (want,) = gc.gradients(y, [x], grad_ys=[g])
    got = gc.nn.conv2d_transpose(g, f, [2, 6, 6, 3], strides=2, padding="SAME")
    a, b = _run(backend, [got, want], {x: np.zeros((2, 6, 6, 3))})
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_truncated_normal_stays_within_two_deviations():
    z = _run("llvm", gc.truncated_normal([20000], mean=1.0, stddev=0.5, dtype=gc.float64, seed=3))
    assert np.all(np.abs(z - 1.0) <= 1.0 + 1e-12)
    assert abs(z.mean() - 1.0) < 0.02 and abs(z.std() - 0.5 * 0.8796) < 0.02   # the truncated normal's spread


def test_interactive_session_makes_eval_work_without_a_block():
    x = gc.constant([1.0, 2.0]) * 3.0
    sess = gc.InteractiveSession()
    try:
        np.testing.assert_array_equal(x.eval(), [3.0, 6.0])
        assert gc.get_default_session() is sess
    finally:
        sess.close()
    assert gc.get_default_session() is not sess
    with pytest.raises(gc.GraphcError, match="eval\\(\\) needs a session"):
        x.eval()


def test_bad_arguments_are_clear():
    with pytest.raises(gc.GraphcError, match="distinct letters"):
        gc.einsum("ii->i", gc.zeros([2, 2]))
    with pytest.raises(gc.ShapeError, match="1 <= k"):
        gc.nn.top_k(gc.zeros([2, 3]), 4)
    with pytest.raises(gc.ShapeError, match="do not match"):
        gc.tensordot(gc.zeros([2, 3]), gc.zeros([4, 2]), 1)

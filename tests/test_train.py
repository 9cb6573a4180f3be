"""gc.train optimizers against NumPy implementations of the same TF1 update rules."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"AssignSub", "AssignAdd", "Assign"}


def quadratic(seed: int = 0):
    """loss(w) = 0.5 * ||A w - y||^2 in float64, with its NumPy gradient."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(5, 3))
    y = rng.normal(size=5)
    w0 = rng.normal(size=3)
    w = gc.Variable(w0, name="w")
    residual = gc.matmul(gc.constant(A), gc.expand_dims(w, 1))[:, 0] - y
    loss = 0.5 * gc.reduce_sum(gc.square(residual))
    return w, loss, w0, (lambda v: A.T @ (A @ v - y))


def test_gradient_descent_one_step(backend):
    w, loss, w0, grad = quadratic()
    step = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(step)
        np.testing.assert_allclose(sess.run(w), w0 - 0.1 * grad(w0), rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_two_steps(backend, nesterov):
    w, loss, w0, grad = quadratic(1)
    opt = gc.train.MomentumOptimizer(0.05, momentum=0.9, use_nesterov=nesterov)
    step = opt.minimize(loss)
    expected, accum = w0.copy(), np.zeros(3)
    for _ in range(2):
        g = grad(expected)
        accum = 0.9 * accum + g
        expected = expected - 0.05 * ((g + 0.9 * accum) if nesterov else accum)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(step)
        sess.run(step)
        np.testing.assert_allclose(sess.run(w), expected, rtol=1e-12)
        np.testing.assert_allclose(sess.run(opt.get_slot(w, "momentum")), accum, rtol=1e-12)
    assert opt.get_slot_names() == ["momentum"]


def numpy_adam(w0, grad, steps, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    w, m, v, b1p, b2p = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), b1, b2
    for _ in range(steps):
        g = grad(w)
        lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr_t * m / (np.sqrt(v) + eps)
        b1p, b2p = b1p * b1, b2p * b2
    return w


def test_adam_one_step_and_hundred_steps_match_numpy(backend):
    w, loss, w0, grad = quadratic(2)
    opt = gc.train.AdamOptimizer(0.01)
    step = opt.minimize(loss)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(step)
        np.testing.assert_allclose(sess.run(w), numpy_adam(w0, grad, 1), rtol=1e-12)
        for _ in range(99):
            sess.run(step)
        np.testing.assert_allclose(sess.run(w), numpy_adam(w0, grad, 100), atol=1e-6, rtol=0)
    assert opt.get_slot_names() == ["m", "v"]
    assert {v.op.name for v in opt.variables()} == {"w/Adam", "w/Adam_1"}


def test_adam_float32_model_trains(backend):
    x = gc.placeholder(gc.float32, [None, 2])
    y = gc.placeholder(gc.float32, [None])
    w = gc.Variable(gc.zeros([2]))
    b = gc.Variable(0.0)
    pred = gc.reduce_sum(x * w, axis=1) + b
    loss = gc.reduce_mean(gc.square(pred - y))
    step = gc.train.AdamOptimizer(lr=0.1).minimize(loss)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)).astype(np.float32)
    Y = X @ np.array([2.0, -1.0], np.float32) + 0.5
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        first = sess.run(loss, {x: X, y: Y})
        for _ in range(300):
            sess.run(step, {x: X, y: Y})
        assert sess.run(loss, {x: X, y: Y}) < 1e-3 * first
        np.testing.assert_allclose(sess.run(w), [2.0, -1.0], atol=1e-2)
        assert sess.run(w).dtype == np.float32


def test_fetched_loss_is_before_the_step_and_global_step_counts(backend):
    w, loss, w0, grad = quadratic(3)
    global_step = gc.Variable(0, name="global_step", trainable=False)
    step = gc.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=global_step)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        before = sess.run(loss)
        _, reported = sess.run([step, loss])
        assert reported == pytest.approx(before, rel=1e-12)
        assert sess.run(loss) < before
        sess.run(step)
        assert sess.run(global_step) == 2


def test_compute_and_apply_gradients_with_var_list_and_tensor_learning_rate(backend):
    a = gc.Variable(1.0, name="a")
    b = gc.Variable(1.0, name="b")
    unused = gc.Variable(5.0, name="unused")
    loss = a * a + 3.0 * b
    lr = gc.placeholder(gc.float32, [], name="lr")
    opt = gc.train.GradientDescentOptimizer(lr)
    pairs = opt.compute_gradients(loss)
    assert [v.op.name for _, v in pairs] == ["a", "b", "unused"]
    assert pairs[2][0] is None
    step = opt.apply_gradients(pairs)
    only_a = opt.minimize(loss, var_list=[a])
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(step, {lr: 0.5})
        assert sess.run([a, b, unused]) == [0.0, -0.5, 5.0]
        sess.run(only_a, {lr: 0.5})
        assert sess.run([a, b]) == [0.0, -0.5]
    with pytest.raises(gc.GraphcError, match="no gradients were provided for any variable"):
        opt.minimize(loss, var_list=[unused])


def test_optimizer_errors():
    with pytest.raises(gc.GraphcError, match="no variables to optimize"):
        gc.train.GradientDescentOptimizer(0.1).minimize(gc.constant(1.0) * 2.0)
    v = gc.Variable(1)
    with pytest.raises(gc.GraphcError, match="must be a float tensor"):
        gc.train.GradientDescentOptimizer(0.1).minimize(v * 2, var_list=[v])

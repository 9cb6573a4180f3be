"""RMSProp (plain, momentum, centered), Adagrad, Adadelta and AdamW against NumPy simulations
of TF1's update rules; learning-rate schedules against their formulas at several steps (the
rate computed inside the training step: no recompilation as it changes); clip_by_norm and
clip_by_global_norm against NumPy; get_or_create_global_step counting minimize calls."""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"Assign", "AssignSub", "AssignAdd", "Sqrt", "Pow", "Cos", "Select"}
RNG = np.random.default_rng(2)
A = RNG.normal(size=(6, 3)).astype(np.float64)
B = RNG.normal(size=6).astype(np.float64)
W0 = np.array([0.5, -1.0, 2.0])


def _grad(w):
    """The gradient of mean((A w - b)^2)."""
    return 2.0 * A.T @ (A @ w - B) / len(B)


def _simulate(kind, steps, **h):
    w = W0.copy()
    s = {k: np.zeros_like(w) for k in ("a", "b", "c")}
    if kind == "rmsprop":
        s["a"] = np.ones_like(w)
    if kind == "adagrad":
        s["a"] = np.full_like(w, h.get("initial", 0.1))
    for t in range(1, steps + 1):
        g, lr = _grad(w), h["lr"]
        if kind == "rmsprop":
            s["a"] = h["decay"] * s["a"] + (1 - h["decay"]) * g * g
            denominator = s["a"]
            if h.get("centered"):
                s["c"] = h["decay"] * s["c"] + (1 - h["decay"]) * g
                denominator = s["a"] - s["c"] ** 2
            s["b"] = h["momentum"] * s["b"] + lr * g / np.sqrt(denominator + h["eps"])
            w = w - s["b"]
        elif kind == "adagrad":
            s["a"] = s["a"] + g * g
            w = w - lr * g / np.sqrt(s["a"])
        elif kind == "adadelta":
            s["a"] = h["rho"] * s["a"] + (1 - h["rho"]) * g * g
            update = np.sqrt(s["b"] + h["eps"]) / np.sqrt(s["a"] + h["eps"]) * g
            s["b"] = h["rho"] * s["b"] + (1 - h["rho"]) * update * update
            w = w - lr * update
        else:   # adamw
            s["a"] = 0.9 * s["a"] + 0.1 * g
            s["b"] = 0.999 * s["b"] + 0.001 * g * g
            lr_t = lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            w = w - lr_t * s["a"] / (np.sqrt(s["b"]) + 1e-8) - h["wd"] * w
    return w


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("kind, make, h", [
    ("rmsprop", lambda h: gc.train.RMSPropOptimizer(h["lr"], decay=h["decay"], momentum=h["momentum"],
                                                    epsilon=h["eps"]), {"lr": 0.05, "decay": 0.9, "momentum": 0.0,
                                                                        "eps": 1e-10}),
    ("rmsprop", lambda h: gc.train.RMSPropOptimizer(h["lr"], decay=h["decay"], momentum=h["momentum"],
                                                    epsilon=h["eps"], centered=True),
     {"lr": 0.02, "decay": 0.8, "momentum": 0.5, "eps": 1e-6, "centered": True}),
    ("adagrad", lambda h: gc.train.AdagradOptimizer(h["lr"], initial_accumulator_value=h["initial"]),
     {"lr": 0.3, "initial": 0.2}),
    ("adadelta", lambda h: gc.train.AdadeltaOptimizer(h["lr"], rho=h["rho"], epsilon=h["eps"]),
     {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    ("adamw", lambda h: gc.train.AdamWOptimizer(h["wd"], learning_rate=h["lr"]), {"lr": 0.05, "wd": 0.01}),
], ids=["rmsprop", "rmsprop-centered-momentum", "adagrad", "adadelta", "adamw"])
def test_optimizer_matches_its_update_rule(backend, kind, make, h):
    w = gc.Variable(W0, name="w")
    loss = gc.reduce_mean(gc.square(gc.matmul(gc.constant(A), gc.expand_dims(w, 1))[:, 0] - gc.constant(B)))
    step = make(h).minimize(loss)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        for _ in range(7):
            sess.run(step)
        np.testing.assert_allclose(sess.run(w), _simulate(kind, 7, **h), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_schedules_follow_the_global_step(backend):
    step = gc.train.get_or_create_global_step()
    assert gc.train.get_or_create_global_step() is step
    decayed = gc.train.exponential_decay(0.1, step, 10, 0.5)
    stairs = gc.train.exponential_decay(0.1, step, 10, 0.5, staircase=True)
    pieces = gc.train.piecewise_constant(step, [3, 7], [1.0, 0.5, 0.1])
    cosine = gc.train.cosine_decay(0.2, step, 8, alpha=0.1)
    w = gc.Variable(1.0)
    train = gc.train.GradientDescentOptimizer(decayed).minimize(gc.square(w), global_step=step)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        for t in range(12):
            got = sess.run([step, decayed, stairs, pieces, cosine])
            assert got[0] == t
            done = min(t, 8) / 8
            want = [0.1 * 0.5 ** (t / 10), 0.1 * 0.5 ** (t // 10), 1.0 if t <= 3 else 0.5 if t <= 7 else 0.1,
                    0.2 * (0.9 * 0.5 * (1 + math.cos(math.pi * done)) + 0.1)]
            np.testing.assert_allclose(got[1:], want, rtol=1e-6)
            sess.run(train)
        assert len(sess._cache) <= 3   # the changing rate is computed in the step, not compiled in


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_clipping(backend):
    a = RNG.normal(size=(3, 4)) * 3
    b = RNG.normal(size=5)
    clipped, norm = gc.clip_by_global_norm([gc.constant(a), None, gc.constant(b)], 2.0)
    by_norm = gc.clip_by_norm(gc.constant(a), 1.5)
    by_rows = gc.clip_by_norm(gc.constant(a), 1.0, axes=[1])
    small = gc.clip_by_norm(gc.constant(a * 1e-3), 1.0)
    with gc.Session(backend=backend) as sess:
        ca, cb, n, bn, br, sm = sess.run([clipped[0], clipped[2], norm, by_norm, by_rows, small])
    total = math.sqrt((a ** 2).sum() + (b ** 2).sum())
    assert clipped[1] is None
    np.testing.assert_allclose(n, total)
    np.testing.assert_allclose(ca, a * 2.0 / max(total, 2.0))
    np.testing.assert_allclose(cb, b * 2.0 / max(total, 2.0))
    np.testing.assert_allclose(bn, a * 1.5 / max(np.linalg.norm(a), 1.5))
    np.testing.assert_allclose(br, a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1.0))
    np.testing.assert_allclose(sm, a * 1e-3)   # under the bound: unchanged


def test_bad_schedule_arguments_are_clear():
    with pytest.raises(gc.GraphcError, match="one more value than boundaries"):
        gc.train.piecewise_constant(gc.train.get_or_create_global_step(), [1, 2], [1.0, 2.0])
    with pytest.raises(gc.GraphcError, match="initial_accumulator_value must be positive"):
        gc.train.AdagradOptimizer(0.1, initial_accumulator_value=0.0)

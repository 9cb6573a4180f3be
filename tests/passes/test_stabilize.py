"""Numerical stabilization: naive formulas become forms that stay finite where the naive ones
overflow (checked at x = -800 and 800), and agree with the naive ones where both are fine."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.passes import DEFAULT_PIPELINE

TESTED_OPS = {"Log", "Log1p", "Exp", "Expm1", "Sigmoid", "Softplus", "Softmax", "LogSoftmax", "LogSumExp",
              "SoftmaxCrossEntropyWithLogits", "RealDiv"}

EXTREME = np.array([[-800.0, -30.0, -1e-9, 0.0, 1e-9, 30.0, 800.0]], np.float32)
MODERATE = np.array([[-3.0, -0.5, 0.1, 0.7, 2.0, 2.5, 3.0]], np.float32)


def naive_cases():
    x = gc.placeholder(gc.float32, [1, 7], name="x")
    y = gc.placeholder(gc.float32, [1, 7], name="labels")
    ex = gc.exp(x)
    return x, y, [
        ("log(1+x)", gc.log(1.0 + x * 1e-6), "Log1p"),
        ("exp(x)-1", gc.exp(x * 1e-6) - 1.0, "Expm1"),
        ("log(sigmoid)", gc.log(gc.sigmoid(x)), "Softplus"),
        ("log(1-sigmoid)", gc.log(1.0 - gc.sigmoid(x)), "Softplus"),
        ("log(softmax)", gc.log(gc.nn.softmax(x)), "LogSoftmax"),
        ("log(sum(exp))", gc.log(gc.reduce_sum(gc.exp(x), axis=1)), "LogSumExp"),
        ("exp/sum(exp)", ex / gc.reduce_sum(ex, axis=1, keepdims=True), "Softmax"),
        ("cross-entropy", -gc.reduce_sum(y * gc.log(gc.nn.softmax(x)), axis=1), "SoftmaxCrossEntropyWithLogits"),
        ("binary cross-entropy", -(y * gc.log(gc.sigmoid(x)) + (1.0 - y) * gc.log(1.0 - gc.sigmoid(x))), "Softplus"),
    ]


CASE_NAMES = [c[0] for c in naive_cases()[2]]


@pytest.mark.parametrize("index", range(len(CASE_NAMES)), ids=CASE_NAMES)
def test_stabilized_form_is_finite_at_extremes_and_agrees_elsewhere(index):
    x, y, cases = naive_cases()
    name, out, stable_op = cases[index]
    labels = np.full((1, 7), 1 / 7, np.float32) if "entropy" in name else np.zeros((1, 7), np.float32)
    if name == "binary cross-entropy":
        labels = np.array([[0, 1, 0, 1, 0, 1, 1]], np.float32)
    feeds = {x: EXTREME, y: labels}
    plain = gc.Session(backend="numpy", pipeline=None)
    stable = gc.Session(backend="numpy", pipeline=list(DEFAULT_PIPELINE))
    only_stabilize = gc.Session(backend="numpy", pipeline=["fold", "cse", "simplify", "stabilize", "dce"])
    program = only_stabilize.compile([out], feeds).program
    assert stable_op in program.op_counts(), program.listing()
    got = stable.run(out, feeds)
    assert np.all(np.isfinite(got)), (name, got)
    if name not in ("log(1+x)", "exp(x)-1"):
        with np.errstate(all="ignore"):
            assert not np.all(np.isfinite(plain.run(out, feeds))), "the naive form should overflow here"
    calm = {x: MODERATE, y: labels}
    np.testing.assert_allclose(stable.run(out, calm), plain.run(out, calm), rtol=2e-5, atol=1e-6)


def test_log1p_and_expm1_are_more_accurate_near_zero():
    x = gc.placeholder(gc.float64, [3])
    tiny = np.array([1e-12, -3e-13, 2e-15])
    got = gc.Session(backend="numpy", pipeline=list(DEFAULT_PIPELINE)).run([gc.log(1.0 + x), gc.exp(x) - 1.0], {x: tiny})
    np.testing.assert_allclose(got[0], np.log1p(tiny), rtol=1e-12)
    np.testing.assert_allclose(got[1], np.expm1(tiny), rtol=1e-12)


def test_stabilize_does_not_fire_when_shapes_differ():
    x = gc.placeholder(gc.float32, [3])
    y = gc.log(gc.ones([2, 3]) + x)    # the 1 broadcasts x: log1p(x) would have the wrong shape
    program = gc.Session(backend="numpy", pipeline=["stabilize", "dce"]).compile([y], {x: np.zeros(3, np.float32)}).program
    assert "Log1p" not in program.op_counts()

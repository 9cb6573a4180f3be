"""Numerical stabilization: each naive formula a Theano user writes becomes a form that stays
finite where the naive one overflows (x = -800 .. 800) and is accurate where it cancels, on every
backend, and the rule that did it is named in the pass log (which gc.debugprint shows)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.passes import DEFAULT_PIPELINE

TESTED_OPS = {"Log", "Log1p", "Exp", "Expm1", "Sigmoid", "Softplus", "Softmax", "LogSoftmax", "LogSumExp",
              "SoftmaxCrossEntropyWithLogits", "RealDiv"}

EXTREME = np.array([[-800.0, -30.0, -1e-9, 0.0, 1e-9, 30.0, 800.0]], np.float32)
NEGATIVE = np.array([[-800.0, -30.0, -1.0, -1e-3, -1e-6, -1e-9, -1e-30]], np.float32)
MODERATE = np.array([[-3.0, -0.5, 0.1, 0.7, 2.0, 2.5, 3.0]], np.float32)
LABELS = np.array([[0.1, 0.2, 0.05, 0.15, 0.2, 0.2, 0.1]], np.float32)
BINARY = np.array([[0, 1, 0, 1, 0, 1, 1]], np.float32)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _logsumexp(x):
    m = x.max(axis=1, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))


# name, naive graph (x, labels), rule that must fire, float64 truth, inputs, labels
CASES = [
    ("log(1+exp(x))", lambda x, y: gc.log(1.0 + gc.exp(x)), "log(1+exp(x)) -> softplus(x)", _softplus, EXTREME, None),
    ("log(exp(x)+1)", lambda x, y: gc.log(gc.exp(x) + 1.0), "log(1+exp(x)) -> softplus(x)", _softplus, EXTREME, None),
    ("log1p(exp(x))", lambda x, y: gc.log1p(gc.exp(x)), "log1p(exp(x)) -> softplus(x)", _softplus, EXTREME, None),
    ("log(sigmoid(x))", lambda x, y: gc.log(gc.sigmoid(x)), "log(sigmoid(x)) -> -softplus(-x)",
     lambda x: -_softplus(-x), EXTREME, None),
    ("log(1-sigmoid(x))", lambda x, y: gc.log(1.0 - gc.sigmoid(x)), "1-sigmoid(x) -> sigmoid(-x)",
     lambda x: -_softplus(x), EXTREME, None),
    ("1-sigmoid(x)", lambda x, y: 1.0 - gc.sigmoid(x), "1-sigmoid(x) -> sigmoid(-x)",
     lambda x: np.exp(-_softplus(x)), EXTREME, None),
    ("log(softmax(x))", lambda x, y: gc.log(gc.nn.softmax(x)), "log(softmax(x)) -> log_softmax(x)",
     lambda x: x - _logsumexp(x), EXTREME, None),
    ("log(sum(exp(x)))", lambda x, y: gc.log(gc.reduce_sum(gc.exp(x), axis=1)), "log(sum(exp(x))) -> logsumexp(x)",
     lambda x: _logsumexp(x)[:, 0], EXTREME, None),
    ("log(exp(x))", lambda x, y: gc.log(gc.exp(x)), "log(exp(x)) -> x", lambda x: x, EXTREME, None),
    ("exp(x)-1", lambda x, y: gc.exp(x) - 1.0, "exp(x)-1 -> expm1(x)", np.expm1, NEGATIVE, None),
    ("log(1-exp(x))", lambda x, y: gc.log(1.0 - gc.exp(x)), "log(1-exp(x)) -> log(-expm1(x))",
     lambda x: np.log(-np.expm1(x)), NEGATIVE, None),
    ("log(1+x)", lambda x, y: gc.log(1.0 + x), "log(1+x) -> log1p(x)", np.log1p, NEGATIVE / 1000, None),
    ("log(1-x)", lambda x, y: gc.log(1.0 - x), "log(1-x) -> log1p(-x)", lambda x: np.log1p(-x), NEGATIVE / 1000,
     None),
    ("exp(x)/sum(exp(x))", lambda x, y: gc.exp(x) / gc.reduce_sum(gc.exp(x), axis=1, keepdims=True),
     "exp(x)/sum(exp(x)) -> softmax(x)", lambda x: np.exp(x - _logsumexp(x)), EXTREME, None),
    ("cross-entropy", lambda x, y: -gc.reduce_sum(y * gc.log(gc.nn.softmax(x)), axis=1),
     "-sum(y*log_softmax(x)) -> softmax_cross_entropy(y, x)",
     lambda x, y: -(y * (x - _logsumexp(x))).sum(axis=1), EXTREME, LABELS),
    ("binary cross-entropy", lambda x, y: -(y * gc.log(gc.sigmoid(x)) + (1.0 - y) * gc.log(1.0 - gc.sigmoid(x))),
     "log(sigmoid(x)) -> -softplus(-x)", lambda x, y: y * _softplus(-x) + (1 - y) * _softplus(x), EXTREME, BINARY),
]
NAMES = [c[0] for c in CASES]


def _run(backend: str, index: int, value: np.ndarray, pipeline=tuple(DEFAULT_PIPELINE)):
    name, naive, rule, truth, _, labels = CASES[index]
    x = gc.placeholder(gc.float32, [1, 7], name="x")
    y = gc.placeholder(gc.float32, [1, 7], name="labels")
    out = naive(x, y)
    sess = gc.Session(backend=backend, pipeline=list(pipeline))
    feeds = {x: value} if labels is None else {x: value, y: labels}
    args = (value.astype(np.float64),) if labels is None else (value.astype(np.float64), labels.astype(np.float64))
    return sess, sess.run(out, feeds), truth(*args), sess.compile([out], feeds).program


@pytest.mark.parametrize("index", range(len(CASES)), ids=NAMES)
def test_stabilized_forms_are_finite_and_accurate_on_every_backend(backend, index):
    name, _, rule, _, extreme, _ = CASES[index]
    for value in (extreme, MODERATE if extreme is EXTREME else extreme / 7):
        _, got, want, program = _run(backend, index, value)
        assert np.all(np.isfinite(got)), (name, got)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=name)
    assert any(line.startswith("stabilize:") and rule in line for line in program.log), program.log


@pytest.mark.parametrize("index", range(len(CASES)), ids=NAMES)
def test_the_naive_forms_do_fail_without_the_pass(index):
    """The cases are worth having: without stabilization each overflows or loses its digits."""
    _, got, want, _ = _run("numpy", index, CASES[index][4], pipeline=())
    with np.errstate(all="ignore"):
        wrong = ~np.isfinite(got) | ~np.isclose(got, want, rtol=1e-3, atol=0)
    assert wrong.any(), (CASES[index][0], got, want)


def test_log_one_plus_exp_at_800_on_llvm():
    """The issue's example: log(1.0 + gc.exp(x)) at x = 800 gave inf on the llvm backend."""
    x = gc.placeholder(gc.float32, [2])
    out = gc.Session(backend="llvm").run(gc.log(1.0 + gc.exp(x)), {x: np.array([800.0, -800.0], np.float32)})
    np.testing.assert_allclose(out, [800.0, 0.0], atol=1e-30)


def test_stabilize_does_not_fire_when_shapes_differ():
    x = gc.placeholder(gc.float32, [3])
    y = gc.log(gc.ones([2, 3]) + x)    # the 1 broadcasts x: log1p(x) would have the wrong shape
    program = gc.Session(backend="numpy", pipeline=["stabilize", "dce"]).compile([y], {x: np.zeros(3, np.float32)}).program
    assert "Log1p" not in program.op_counts()


def test_rules_are_named_in_debugprint():
    import io
    x = gc.placeholder(gc.float32, [4], name="x")
    text = gc.debugprint(gc.log(1.0 - gc.sigmoid(x)), file=io.StringIO())
    assert "-- stabilize: 1-sigmoid(x) -> sigmoid(-x) x1, log(sigmoid(x)) -> -softplus(-x) x1" in text

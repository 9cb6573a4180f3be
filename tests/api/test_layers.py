"""gc.variable_scope / gc.get_variable (TF1's reuse rules), the initializers, and gc.layers
(dense, conv2d, pooling, flatten, dropout, batch_normalization) against NumPy on the reference
and LLVM backends."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"MatMul", "Conv2D", "MaxPool", "AvgPool", "Reshape", "Assign"}
RNG = np.random.default_rng(6)
BACKENDS = ["numpy", "llvm"]


def _session(backend):
    sess = gc.Session(backend=backend)
    sess.run(gc.global_variables_initializer())
    return sess


def test_variable_scope_reuse_rules():
    with gc.variable_scope("net"):
        w = gc.get_variable("w", [2, 3])
        with gc.variable_scope("inner"):
            u = gc.get_variable("u", [1])
    assert w.op.name == "net/w" and u.op.name == "net/inner/u"
    with gc.variable_scope("net", reuse=True):
        assert gc.get_variable("w") is w
        with gc.variable_scope("inner"):          # reuse is inherited
            assert gc.get_variable("u") is u
        with pytest.raises(gc.GraphcError, match="does not exist"):
            gc.get_variable("missing", [1])
    with gc.variable_scope("net", reuse=gc.AUTO_REUSE):
        assert gc.get_variable("w", [2, 3]) is w and gc.get_variable("new", [4]).op.name == "net/new"
    with pytest.raises(gc.GraphcError, match="already exists"), gc.variable_scope("net"):
        gc.get_variable("w", [2, 3])
    with pytest.raises(gc.GraphcError, match="asked for"), gc.variable_scope("net", reuse=True):
        gc.get_variable("w", [3, 3])


def test_initializers():
    made = {
        "zeros": gc.get_variable("zeros", [3], initializer=gc.zeros_initializer()),
        "ones": gc.get_variable("ones", [2, 2], initializer=gc.ones_initializer()),
        "const": gc.get_variable("const", [2, 2], initializer=gc.constant_initializer([1, 2, 3, 4])),
        "glorot": gc.get_variable("glorot", [200, 300], initializer=gc.glorot_uniform_initializer(seed=1)),
        "glorot_n": gc.get_variable("glorot_n", [200, 300], initializer=gc.glorot_normal_initializer(seed=2)),
        "he": gc.get_variable("he", [3, 3, 40, 60], initializer=gc.he_normal(seed=3)),
        "trunc": gc.get_variable("trunc", [5000], initializer=gc.truncated_normal_initializer(0.0, 0.1, seed=4)),
        "orth": gc.get_variable("orth", [30, 20], initializer=gc.orthogonal_initializer(gain=2.0, seed=5)),
    }
    values = _session("llvm").run(made)
    np.testing.assert_array_equal(values["zeros"], 0)
    np.testing.assert_array_equal(values["ones"], 1)
    np.testing.assert_array_equal(values["const"], [[1, 2], [3, 4]])
    limit = np.sqrt(6 / 500)
    assert np.abs(values["glorot"]).max() <= limit and values["glorot"].std() == pytest.approx(limit / np.sqrt(3), 0.05)
    assert values["glorot_n"].std() == pytest.approx(np.sqrt(2 / 500), rel=0.05)
    assert values["he"].std() == pytest.approx(np.sqrt(2 / (9 * 40)), rel=0.05)
    assert np.abs(values["trunc"]).max() <= 0.2 + 1e-7
    np.testing.assert_allclose(values["orth"].T @ values["orth"], 4 * np.eye(20), atol=1e-5)
    again = _session("numpy").run(made["glorot"])   # seeded: the same values on another backend
    np.testing.assert_array_equal(again, values["glorot"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_and_reuse(backend):
    x = gc.placeholder(gc.float64, [None, 4])
    y = gc.layers.dense(x, 3, activation="relu", kernel_initializer=gc.random_normal_initializer(seed=1),
                        bias_initializer=gc.constant_initializer(0.5))
    y2 = gc.layers.dense(x, 3, name="dense", reuse=True)        # the same variables
    other = gc.layers.dense(x, 2)                                # dense_1
    names = [v.op.name for v in gc.global_variables()]
    assert names == ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    xv = RNG.normal(size=(5, 4))
    sess = _session(backend)
    kernel, bias = sess.run(["dense/kernel:0", "dense/bias:0"])
    a, b, c = sess.run([y, y2, other], {x: xv})
    np.testing.assert_allclose(a, np.maximum(xv @ kernel + bias, 0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, xv @ kernel + bias, rtol=1e-10, atol=1e-12)
    assert c.shape == (5, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_pool_flatten(backend):
    x = gc.placeholder(gc.float64, [2, 6, 6, 3])
    h = gc.layers.conv2d(x, 4, 3, padding="same", activation=gc.nn.relu)
    p = gc.layers.max_pooling2d(h, 2, 2)
    q = gc.layers.average_pooling2d(h, 3, 3)
    f = gc.layers.flatten(p)
    xv = RNG.normal(size=(2, 6, 6, 3))
    sess = _session(backend)
    kernel, bias = sess.run(["conv2d/kernel:0", "conv2d/bias:0"])
    hv, pv, qv, fv = sess.run([h, p, q, f], {x: xv})
    padded = np.pad(xv, [(0, 0), (1, 1), (1, 1), (0, 0)])
    want = np.zeros((2, 6, 6, 4))
    for i in range(6):
        for j in range(6):
            want[:, i, j] = np.tensordot(padded[:, i:i + 3, j:j + 3], kernel, axes=3)
    want = np.maximum(want + bias, 0)
    np.testing.assert_allclose(hv, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pv, want.reshape(2, 3, 2, 3, 2, 4).max(axis=(2, 4)), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(qv, want.reshape(2, 2, 3, 2, 3, 4).mean(axis=(2, 4)), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(fv, pv.reshape(2, -1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_training_and_inference(backend):
    x = gc.ones([1000])
    flag = gc.placeholder(gc.bool, [])
    train, infer = gc.layers.dropout(x, 0.25, training=True, seed=1), gc.layers.dropout(x, 0.25)
    switched = gc.layers.dropout(x, 0.25, training=flag, seed=2)
    sess = _session(backend)
    t, i = sess.run([train, infer])
    assert np.allclose(np.unique(t), [0.0, 1 / 0.75]) and 0.15 < (t == 0).mean() < 0.35
    np.testing.assert_array_equal(i, 1.0)
    np.testing.assert_array_equal(sess.run(switched, {flag: False}), 1.0)
    assert (sess.run(switched, {flag: True}) == 0).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_normalization_moves_its_averages_in_training(backend):
    x = gc.placeholder(gc.float64, [8, 3])
    flag = gc.placeholder(gc.bool, [])
    train = gc.layers.batch_normalization(x, momentum=0.9, epsilon=1e-3, training=True)
    infer = gc.layers.batch_normalization(x, epsilon=1e-3, training=False, name="batch_normalization", reuse=True)
    either = gc.layers.batch_normalization(x, momentum=0.9, epsilon=1e-3, training=flag, name="batch_normalization",
                                           reuse=True)
    assert len(gc.get_collection(gc.GraphKeys.UPDATE_OPS)) == 4
    sess = _session(backend)
    mean, var = np.zeros(3), np.ones(3)
    for k in range(3):
        xv = RNG.normal(loc=k, size=(8, 3))
        out = sess.run(train, {x: xv})
        np.testing.assert_allclose(out, (xv - xv.mean(0)) / np.sqrt(xv.var(0) + 1e-3), rtol=1e-10, atol=1e-12)
        mean, var = 0.9 * mean + 0.1 * xv.mean(0), 0.9 * var + 0.1 * xv.var(0)
        np.testing.assert_allclose(sess.run("batch_normalization/moving_mean:0"), mean, rtol=1e-10, atol=1e-12)
    xv = RNG.normal(size=(8, 3))
    np.testing.assert_allclose(sess.run(infer, {x: xv}), (xv - mean) / np.sqrt(var + 1e-3), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sess.run(either, {x: xv, flag: False}), (xv - mean) / np.sqrt(var + 1e-3), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sess.run("batch_normalization/moving_mean:0"), mean, rtol=1e-10, atol=1e-12)   # not moved


def test_bad_layer_arguments_are_clear():
    with pytest.raises(gc.GraphcError, match="unknown activation"):
        gc.layers.dense(gc.zeros([2, 3]), 4, activation="relu7")
    with pytest.raises(gc.ShapeError, match="last dimension"):
        gc.layers.dense(gc.placeholder(gc.float32, [2, None]), 4)
    with pytest.raises(gc.GraphcError, match="data_format"):
        gc.layers.conv2d(gc.zeros([1, 4, 4, 1]), 2, 3, data_format="NHWC")

"""A trained model saved with its session's values reloads into a graph that computes the same
outputs and keeps training the same way; gc.save_graph without a session saves initial values."""
from __future__ import annotations

import numpy as np

import graphc as gc

TESTED_OPS = {"Conv2D", "MaxPool", "MatMul", "Relu", "SparseSoftmaxCrossEntropyWithLogits", "Assign", "AssignSub",
              "VariableV2", "RandomStandardNormal"}


def _cnn():
    x = gc.placeholder(gc.float32, [None, 6, 6, 1], name="x")
    labels = gc.placeholder(gc.int32, [None], name="labels")
    f = gc.Variable(gc.random_normal([3, 3, 1, 4], stddev=0.5, seed=1), name="conv/filters")
    w = gc.Variable(gc.random_normal([36, 2], stddev=0.2, seed=2), name="dense/w")
    b = gc.Variable(np.zeros(2, np.float32), name="dense/b")
    h = gc.nn.max_pool2d(gc.nn.relu(gc.nn.conv2d(x, f, padding="SAME")), 2, 2, "VALID")
    logits = gc.matmul(gc.reshape(h, [-1, 36]), w) + b
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss")
    train = gc.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    return x, labels, logits, loss, train


def test_trained_model_reloads_with_identical_outputs(tmp_path):
    x, labels, logits, loss, train = _cnn()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 6, 6, 1)).astype(np.float32)
    Y = rng.integers(0, 2, size=8).astype(np.int32)
    sess = gc.Session()
    sess.run(gc.global_variables_initializer())
    for _ in range(3):
        sess.run(train, {x: X, labels: Y})
    path = tmp_path / "cnn.gcx"
    gc.save_graph(path, session=sess)

    g2 = gc.load_graph(path)
    names = {"x": x.name, "labels": labels.name, "logits": logits.name, "loss": loss.name}
    t = {k: g2.get_tensor_by_name(v) for k, v in names.items()}
    with g2.as_default():
        init = gc.global_variables_initializer()
        assert [v.name for v in gc.trainable_variables()] == ["conv/filters:0", "dense/w:0", "dense/b:0"]
    sess2 = gc.Session(g2)
    sess2.run(init)
    for v in gc.global_variables():
        np.testing.assert_array_equal(sess2.variable_value(v._info.name), sess.variable_value(v._info.name))
    feed1, feed2 = {x: X, labels: Y}, {t["x"]: X, t["labels"]: Y}
    np.testing.assert_array_equal(sess2.run(t["logits"], feed2), sess.run(logits, feed1))
    # the optimizer's update ops were saved too: one more step agrees exactly
    train2 = g2.get_operation_by_name(train.name)
    sess.run(train, feed1)
    sess2.run(train2, feed2)
    np.testing.assert_array_equal(sess2.run(t["loss"], feed2), sess.run(loss, feed1))


def test_without_session_the_file_holds_initial_values(tmp_path):
    _cnn()
    path = tmp_path / "init.gcx"
    gc.save_graph(path)
    g2 = gc.load_graph(path)
    init = gc.global_variables_initializer()
    with gc.Session() as s1, gc.Session(g2) as s2:
        s1.run(init)
        s2.run([info.initializer for info in g2.variables.values()])
        for name in g2.variables:
            np.testing.assert_array_equal(s2.variable_value(name), s1.variable_value(name))


def test_names_sources_and_collections_survive(tmp_path):
    x, labels, logits, loss, train = _cnn()
    gc.get_default_graph().add_to_collection("train_op", train)
    gc.get_default_graph().add_to_collection("logits", logits)
    gc.save_graph(tmp_path / "m.gcx")
    g2 = gc.load_graph(tmp_path / "m.gcx")
    assert g2.get_collection("train_op")[0].name == train.name
    assert g2.get_collection("logits")[0].name == logits.name
    node = g2.get_tensor_by_name(loss.name).node
    assert node.source == loss.node.source and node.source.filename.endswith("test_gcx_model.py")
    assert g2.get_operation_by_name("conv/filters").type == "VariableV2"

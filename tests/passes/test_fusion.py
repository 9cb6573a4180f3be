"""Fusion grouping and the whole pipeline: group structure, store rule, order, equality."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.passes import CHANNELS_LAST_PIPELINE, DEFAULT_PIPELINE
from graphc.passes.fuse import kind_of

TESTED_OPS = {"Tanh", "Sigmoid", "Exp", "Softmax", "Max", "Sum", "MatMul", "Relu", "Mean", "LogSumExp",
              "SoftmaxCrossEntropyWithLogits", "SumToShape"}


def program_of(fetches, feeds, pipeline=DEFAULT_PIPELINE):
    feeds = {t: np.asarray(v, dtype=t.dtype.np) for t, v in feeds.items()}
    return gc.Session(backend="numpy", pipeline=list(pipeline)).compile(list(fetches), feeds).program


def check_partition(program):
    """Every non-source, non-view node is in exactly one group; groups come in an order in
    which each group's inputs are already produced; stored values include every result."""
    members = [n.id for g in program.groups for n in g.nodes]
    assert len(members) == len(set(members))
    expected = {n.id for n in program.nodes() if kind_of(n) not in ("source", "view")}
    materialized = {n.id for g in program.groups if g.kind == "copy" for n in g.nodes}
    assert set(members) - materialized == expected
    produced = {t for i in program.inputs for t in [i.tensor]}
    produced |= {n.outputs[0] for n in program.nodes() if n.type == "Const"}
    for g in program.groups:
        for t in g.inputs:
            assert t in produced, f"group {g.id} reads {t.name} before it is stored"
        produced |= set(g.stores)
    for t in program.results:
        assert t in produced


def test_elementwise_chain_is_one_group():
    x = gc.placeholder(gc.float32, [1000])
    y = gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x)
    program = program_of([y], {x: np.zeros(1000)})
    check_partition(program)
    assert len(program.groups) == 1
    (g,) = program.groups
    assert g.kind == "elementwise" and g.stores == [program.outputs[0]]


def test_row_softmax_is_at_most_three_groups_and_stores_the_broadcast_reduction():
    x = gc.placeholder(gc.float32, [64, 100])
    program = program_of([gc.nn.softmax(x)], {x: np.zeros((64, 100))})
    check_partition(program)
    assert len(program.groups) <= 3
    reductions = [g for g in program.groups if g.kind == "reduction"]
    assert reductions and all(g.anchor.type in ("Max", "Sum") for g in reductions)
    for g in reductions:  # a reduction broadcast back over its axis must be stored first
        assert g.anchor.outputs[0] in g.stores or any(t.shape == g.out_space for t in g.stores)


def test_library_ops_get_elementwise_epilogues():
    x = gc.placeholder(gc.float32, [8, 16])
    w = gc.constant(np.ones((16, 4), np.float32))
    b = gc.constant(np.ones(4, np.float32))
    y = gc.nn.relu(x @ w + b) * 2.0
    program = program_of([y], {x: np.zeros((8, 16))})
    check_partition(program)
    (lib,) = [g for g in program.groups if g.kind == "library"]
    assert lib.anchor.type == "MatMul"
    assert [n.type for n in lib.epilogue] == ["Add", "Relu", "Mul"]
    assert lib.stores == [program.outputs[0]]   # the raw product is never stored


def mlp_training_program():
    x = gc.placeholder(gc.float32, [None, 784])
    y = gc.placeholder(gc.int32, [None])
    w1 = gc.Variable(gc.random_normal([784, 256], stddev=0.05, seed=1), name="w1")
    b1 = gc.Variable(gc.zeros([256]), name="b1")
    w2 = gc.Variable(gc.random_normal([256, 10], stddev=0.05, seed=2), name="w2")
    b2 = gc.Variable(gc.zeros([10]), name="b2")
    logits = gc.nn.relu(x @ w1 + b1) @ w2 + b2
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train = gc.train.AdamOptimizer(0.001).minimize(loss)
    feeds = {x: np.zeros((128, 784)), y: np.zeros(128)}
    return program_of([train, loss], feeds), (x, y, train, loss)


def test_mlp_training_step_adam_updates_fuse_with_the_fewest_stores():
    program, _ = mlp_training_program()
    check_partition(program)
    updates = dict(program.updates)
    for var in ("w1", "b1", "w2", "b2"):
        stored = [updates[var], updates[f"{var}/Adam"], updates[f"{var}/Adam_1"]]
        (group,) = {id(g): g for g in program.groups for t in stored if t in g.stores}.values()
        assert group.kind in ("library", "reduction")   # the update is the gradient's epilogue
        extra = [t for t in group.stores if t not in stored]
        assert len(extra) <= 1, (var, [t.name for t in extra])  # at most the gradient signal passed on


def test_optimized_training_matches_unoptimized():
    rng = np.random.default_rng(0)
    _, (x, y, train, loss) = mlp_training_program()
    feeds = {x: rng.normal(size=(16, 784)).astype(np.float32), y: rng.integers(0, 10, 16)}
    losses = []
    for pipeline in (None, list(DEFAULT_PIPELINE)):
        sess = gc.Session(backend="numpy", pipeline=pipeline)
        sess.run(gc.global_variables_initializer())
        run = [float(sess.run([train, loss], feeds)[1]) for _ in range(5)]
        losses.append((run, sess.run(gc.trainable_variables())))
    np.testing.assert_allclose(losses[0][0], losses[1][0], rtol=1e-5)
    for a, b in zip(losses[0][1], losses[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("build", [
    lambda x: gc.reduce_mean(x, axis=0),
    lambda x: gc.reduce_logsumexp(x, axis=1, keepdims=True),
    lambda x: gc.nn.log_softmax(x, axis=0),
    lambda x: gc.nn.softmax_cross_entropy_with_logits(labels=gc.nn.softmax(x * 0.5), logits=x),
    lambda x: gc.gradients(gc.reduce_sum(gc.nn.softmax(x) * gc.nn.relu(x)), [x])[0],
], ids=["mean", "logsumexp", "log_softmax", "xent", "softmax_grad"])
def test_decomposed_programs_match_the_reference(build):
    x = gc.placeholder(gc.float32, [6, 5])
    out = build(x)
    value = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32) * 3
    plain = gc.Session(backend="numpy", pipeline=None).run(out, {x: value})
    opt_program = program_of([out], {x: value})
    assert not {"Mean", "LogSumExp", "LogSoftmax", "Softmax", "SoftmaxCrossEntropyWithLogits",
                "SumToShape"} & set(opt_program.op_counts())
    check_partition(opt_program)
    np.testing.assert_allclose(gc.Session(backend="numpy", pipeline=list(DEFAULT_PIPELINE)).run(out, {x: value}), plain,
                               rtol=1e-5, atol=1e-6)


def test_pipeline_choices():
    x = gc.placeholder(gc.float32, [3])
    y = x * 1.0
    assert gc.Session(backend="numpy").pipeline == ()          # the reference runs programs as written
    assert gc.Session(backend="numpy", pipeline="default").pipeline == ()
    # the compiled default backend: every pass, NCHW convolution regions channels last (its direct kernel)
    assert gc.Session().pipeline == tuple(CHANNELS_LAST_PIPELINE)
    assert gc.Session(backend="numpy", pipeline=["cse", "dce"]).pipeline == ("cse", "dce")
    with pytest.raises(gc.CompileError, match="unknown pass"):
        gc.Session(backend="numpy", pipeline=["cse", "magic"])
    f = gc.function([x], y, backend="numpy", pipeline=["simplify", "dce"])
    f([1.0, 2.0, 3.0])
    assert f.program.op_counts() == {"Placeholder": 1}
    assert "simplify: x*1 -> x x1" in f.program.log


def test_debugprint_shows_each_pass_and_the_groups():
    x = gc.placeholder(gc.float32, [None, 4], name="x")
    y = gc.log(gc.reduce_sum(gc.exp(x), axis=1))
    import io

    out = io.StringIO()
    text = gc.debugprint(y, shapes={x: (8, 4)}, file=out)
    assert text == out.getvalue().rstrip("\n")
    assert "program as built:" in text and "-- stabilize: log(sum(exp(x))) -> logsumexp(x) x1" in text
    assert "LogSumExp(%x)" in text and "fusion groups:" in text and "test_fusion.py" in text
    partial = gc.debugprint(y, file=io.StringIO())
    assert "not compiled" in partial and "shapes=" in partial

"""Graphs built with gc.while_loop / scan / map_fn / foldl / foldr / cond (and their gradients)
export to ONNX Loop and If (checked by onnx.checker), run in onnxruntime with the results of
graphc, and import back.

The graphc side runs on the NumPy reference backend and on the LLVM backend (the `_backend`
fixture).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")
pytest.importorskip("onnxruntime", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
import onnxruntime as ort

import graphc as gc
from graphc.api.control_flow import _functions, _trace
from graphc.api.convert import apply_op

TESTED_OPS = {"While", "If"}
RNG = np.random.default_rng(7)
BACKEND = "numpy"   # set for each test by the _backend fixture


@pytest.fixture(autouse=True, params=["numpy", "llvm"])
def _backend(request, monkeypatch):
    """Every test runs on the reference interpreter and on the compiled LLVM backend."""
    monkeypatch.setattr(sys.modules[__name__], "BACKEND", request.param)


def _check(tmp_path, inputs, outputs, feeds_list, rtol=2e-5, atol=2e-6):
    """Export, then for each feed list compare onnxruntime with graphc; returns the model."""
    path = tmp_path / "model.onnx"
    model = gc.onnx.export(path, inputs, outputs)
    onnx.checker.check_model(onnx.load(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with gc.Session(inputs[0].graph, backend=BACKEND) as gsess:
        for feeds in feeds_list:
            got = sess.run(None, {i.name: f for i, f in zip(model.graph.input, feeds)})
            want = gsess.run(list(outputs), dict(zip(inputs, feeds)))
            for t, w, g in zip(outputs, want, got):
                assert g.dtype == w.dtype and g.shape == w.shape, (t.name, g.dtype, w.dtype, g.shape, w.shape)
                np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=t.name)
    return model


def _ops(model):
    out, stack = set(), [model.graph]
    while stack:
        g = stack.pop()
        for n in g.node:
            out.add(n.op_type)
            stack.extend(a.g for a in n.attribute if a.type == onnx.AttributeProto.GRAPH)
    return out


def test_while_loop_and_cond(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (4, 3), name="x")
        n = gc.placeholder(gc.int32, (), name="n")
        w = gc.placeholder(gc.float32, (3,), name="w")
        i, acc = gc.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 1.5 + w), [gc.constant(0), gc.zeros((3,))],
                               maximum_iterations=5)
        c = gc.cond(n > 2, lambda: x * 2.0 + w, lambda: x - w)
        d = gc.cond(gc.reduce_sum(acc) > 3.0, lambda: [acc, i], lambda: [acc * 0.0, i * 2], strict=True)
    feeds = [[RNG.normal(size=(4, 3)).astype(np.float32), np.array(k, np.int32), RNG.normal(size=3).astype(np.float32)]
             for k in (0, 3, 9)]
    model = _check(tmp_path, [x, n, w], [i, acc, c, *d], feeds)
    assert {"Loop", "If"} <= _ops(model)


def test_scan_family(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (5, 3), name="x")
        w = gc.placeholder(gc.float32, (3,), name="w")
        outs = [gc.scan(lambda a, e: a + e * w, x, initializer=gc.zeros((3,))),
                gc.scan(lambda a, e: a * 0.5 + e, x, initializer=gc.ones((3,)), reverse=True),
                gc.scan(lambda a, e: a + e, x),
                gc.map_fn(lambda e: gc.reduce_sum(e * w), x),
                gc.foldl(lambda a, e: a * 2.0 + e, x, initializer=gc.zeros((3,))),
                gc.foldr(lambda a, e: a * 2.0 + e, x, initializer=gc.zeros((3,)))]
        pair = gc.scan(lambda a, e: (a[0] + e, a[1] * e), x, initializer=(gc.zeros((3,)), gc.ones((3,))))
    feeds = [[RNG.normal(size=(5, 3)).astype(np.float32), RNG.normal(size=3).astype(np.float32)]]
    _check(tmp_path, [x, w], outs + list(pair), feeds)


def test_sequences_of_unknown_length_including_empty(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        s = gc.scan(lambda a, e: a * e + 1.0, x, initializer=gc.ones((3,)))
        nested = gc.scan(lambda a, row: gc.foldl(lambda b, e: b + e, row, initializer=gc.constant(0.0)) + a, x,
                         initializer=gc.constant(0.0))
        branchy = gc.scan(lambda a, e: gc.cond(gc.reduce_sum(e) > 1.5, lambda: a + e, lambda: a - e), x,
                          initializer=gc.zeros((3,)))
    feeds = [[RNG.uniform(size=(rows, 3)).astype(np.float32)] for rows in (4, 1, 0)]
    _check(tmp_path, [x], [s, nested, branchy], feeds)


def test_gradients_through_loops(tmp_path):
    """The gradient of a while_loop runs its twin with history and cond (stacked rows padded to
    the capacity), then a backward loop whose trip count is only known at run time."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (5, 3), name="x")
        n = gc.placeholder(gc.int32, (), name="n")
        _, acc = gc.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 1.5 + gc.reduce_sum(x * x)),
                               [gc.constant(0), gc.constant(1.0)], maximum_iterations=4)
        s = gc.scan(lambda a, e: a * e + 1.0, x, initializer=gc.ones((3,)))
        (gx,) = gc.gradients(acc + gc.reduce_sum(s), [x])
    feeds = [[RNG.uniform(size=(5, 3)).astype(np.float32), np.array(k, np.int32)] for k in (0, 2, 7)]
    _check(tmp_path, [x, n], [acc, gx], feeds, rtol=1e-4, atol=1e-5)


def test_while_with_a_condition_and_stacked_values_pads_to_the_capacity(tmp_path):
    """A While that stacks values and may stop early (graphc's rows past the count are zeros)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (6,), name="x")
        limit = gc.placeholder(gc.float32, (), name="limit")
        specs = [(gc.int64, (), "i"), (gc.float32, (), "acc"), (gc.float32, (), "elem")]
        cond_tr = _trace(g, "c", specs, lambda a: [a[1] < limit])
        body_tr = _trace(g, "b", specs, lambda a: [a[1] + a[2], a[1] * a[2]])
        (cond_fn, body_fn), captures = _functions([cond_tr, body_tr])
        node = apply_op("While", [gc.constant(4, gc.int64), gc.constant(0.0), x, *captures],
                        {"cond": cond_fn, "body": body_fn, "n_carries": 1, "n_sequences": 1}, "While", graph=g)
    feeds = [[np.arange(1, 7, dtype=np.float32), np.array(v, np.float32)] for v in (-1, 2.5, 100)]
    _check(tmp_path, [x, limit], list(node.outputs), feeds)


def test_exported_loops_import_back(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (4, 3), name="x")
        n = gc.placeholder(gc.int32, (), name="n")
        i, acc = gc.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 1.5 + x[0]), [gc.constant(0), gc.zeros((3,))])
        outs = [i, acc, gc.scan(lambda a, e: a + e * 2.0, x, initializer=gc.zeros((3,))),
                gc.scan(lambda a, e: a + e, x, initializer=gc.zeros((3,)), reverse=True),
                gc.cond(n > 2, lambda: x * 2.0, lambda: x - 1.0)]
    gc.onnx.export(tmp_path / "m.onnx", [x, n], outs)
    g2, ins2, outs2 = gc.onnx.load(tmp_path / "m.onnx")
    assert {"While", "If"} <= {op.type for op in g2.get_operations()}
    for k in (0, 3):
        feeds = [RNG.normal(size=(4, 3)).astype(np.float32), np.array(k, np.int32)]
        with gc.Session(g, backend=BACKEND) as s1, gc.Session(g2, backend=BACKEND) as s2:
            for a, b in zip(s1.run(outs, dict(zip([x, n], feeds))), s2.run(outs2, dict(zip(ins2, feeds)))):
                np.testing.assert_allclose(a, b, rtol=1e-6)

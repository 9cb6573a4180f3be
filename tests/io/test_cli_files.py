"""`graphc show` and `graphc run` on .gcx files."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.cli import main

TESTED_OPS = {"Placeholder", "MatMul", "Softmax", "VariableV2", "Add"}


@pytest.fixture
def model(tmp_path):
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    w = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 10, name="w")
    b = gc.Variable(np.ones(2, np.float32), name="b", trainable=False)
    gc.nn.softmax(x @ w + b, name="probs")
    path = tmp_path / "model.gcx"
    gc.save_graph(path)
    return path


def test_show_lists_inputs_outputs_ops_and_parameters(model, capsys):
    assert main(["show", str(model)]) == 0
    out = capsys.readouterr().out
    assert "x:0" in out and "float32" in out and "(?, 3)" in out
    assert "probs:0" in out.split("outputs")[1].split("ops by type")[0]
    assert "MatMul" in out and "variables: 2 (8 parameters, 6 trainable)" in out


def test_show_dot(model, tmp_path, capsys):
    assert main(["show", str(model), "--dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "model.gcx" {') and '"x" -> "MatMul"' in dot and dot.rstrip().endswith("}")
    target = tmp_path / "g.dot"
    assert main(["show", str(model), "--dot", "-o", str(target)]) == 0
    assert target.read_text() == dot


def test_show_svg_without_graphviz_says_so(model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` program here
    assert main(["show", str(model), "--svg", str(tmp_path / "g.svg")]) == 1
    assert "Graphviz" in capsys.readouterr().err


def test_run_prints_or_writes(model, tmp_path, capsys):
    x = np.array([[1, 2, 3], [0, 0, 0]], np.float32)
    np.save(tmp_path / "x.npy", x)
    w = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
    logits = x @ w + 1
    want = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert main(["run", str(model), "--feed", f"x={tmp_path / 'x.npy'}", "--fetch", "probs"]) == 0
    assert "probs: float32 (2, 2)" in capsys.readouterr().out
    out = tmp_path / "out.npy"
    assert main(["run", str(model), "--feed", f"x:0={tmp_path / 'x.npy'}", "--fetch", "probs:0", "-o", str(out)]) == 0
    np.testing.assert_allclose(np.load(out), want, rtol=1e-6)
    npz = tmp_path / "out.npz"
    assert main(["run", str(model), "--feed", f"x={tmp_path / 'x.npy'}", "--fetch", "probs", "--fetch", "w",
                 "-o", str(npz)]) == 0
    with np.load(npz) as data:
        np.testing.assert_allclose(data["probs"], want, rtol=1e-6)
        np.testing.assert_array_equal(data["w"], w)


def test_run_errors_are_one_line(model, tmp_path, capsys):
    assert main(["run", str(model), "--fetch", "probs"]) == 1
    assert "you must feed a value for placeholder 'x'" in capsys.readouterr().err
    bad = tmp_path / "bad.gcx"
    bad.write_bytes(b"not a graph")
    assert main(["show", str(bad)]) == 1
    assert "not a valid .gcx file" in capsys.readouterr().err

"""The `graphc` command: demo, --version, ops, bench."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
import graphc.cli as cli
from graphc.cli import main
from graphc.demo import run_demo
from graphc.ops import all_ops


def test_demo_trains_and_reports_accuracy():
    out = io.StringIO()
    accuracy = run_demo(out)   # the default 20 epochs
    text = out.getvalue()
    assert accuracy >= 0.95
    assert f"test accuracy: {accuracy:.4f}" in text
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", text)]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    assert "from symbolic differentiation" in text and "epoch 20/20" in text


def test_cli_demo_exit_code(capsys):
    assert main(["demo", "--epochs", "6"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_cli_demo_lstm_learns(capsys):
    """`graphc demo --model lstm`: the digits read as 8 rows by an LSTM in one loop node."""
    assert main(["demo", "--model", "lstm"]) == 0
    text = capsys.readouterr().out
    assert "LSTM on" in text and "epoch 20/20" in text
    accuracy = float(re.search(r"test accuracy: (\d\.\d+)", text).group(1))
    assert accuracy >= 0.93
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", text)]
    assert len(losses) >= 3 and losses[-1] < 0.5 * losses[0]


def test_cli_ops_lists_every_op(capsys):
    assert main(["ops"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert listed == set(all_ops())


def test_cli_version_and_usage():
    done = subprocess.run([sys.executable, "-m", "graphc.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and gc.__version__ in done.stdout
    bad = subprocess.run([sys.executable, "-m", "graphc.cli"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage: graphc" in bad.stderr


def test_demo_rejects_unknown_backend():
    with pytest.raises(gc.CompileError, match="unknown backend"):
        run_demo(io.StringIO(), epochs=1, backend="abacus")


def test_cli_bench_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: graphc bench" in out and "--quick" in out


def test_cli_bench_finds_the_suite_of_this_checkout():
    # graphc/benchmarks links to the checkout's benchmarks/ (installs copy it): the same file
    assert cli._suite_path().resolve() == Path(__file__).resolve().parents[1] / "benchmarks" / "suite.py"
    assert cli._suite_path().is_file()


def test_cli_bench_with_the_suite_missing_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_suite_path", lambda: tmp_path / "site-packages" / "benchmarks" / "suite.py")
    assert main(["bench"]) == 2
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1 and "missing from this installation" in lines[0] and "graphc bench" in lines[0]


def test_cli_bench_runs_the_suite_main_with_quick(monkeypatch, tmp_path, capsys):
    fake = tmp_path / "benchmarks" / "suite.py"
    fake.parent.mkdir()
    fake.write_text("def main(argv=None):\n    print('suite main called with', argv)\n")
    monkeypatch.setattr(cli, "_suite_path", lambda: fake)
    assert main(["bench", "--quick"]) == 0
    assert main(["bench"]) == 0
    assert capsys.readouterr().out.splitlines() == ["suite main called with ['--quick']", "suite main called with []"]


def test_cli_bench_passes_the_benchmarks_own_options_through(monkeypatch, tmp_path, capsys):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    for name in ("suite", "cnn"):
        (folder / f"{name}.py").write_text(f"def main(argv=None):\n    print('{name}', argv)\n")
    monkeypatch.setattr(cli, "_suite_path", lambda: folder / "suite.py")
    assert main(["bench", "cnn", "--busy", "2"]) == 0
    assert main(["bench", "--quick", "cnn", "--rounds", "3"]) == 0
    assert main(["bench", "suite", "--busy", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["cnn ['--busy', '2']", "cnn ['--quick', '--rounds', '3']",
                                                    "suite ['--busy', '1']"]
    with pytest.raises(SystemExit):   # outside bench an unknown option is still an error
        main(["ops", "--busy", "1"])


@pytest.mark.parametrize("name", cli.BENCHMARKS)
def test_every_benchmark_graphc_bench_names_imports_and_takes_quick_and_busy(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", name, "--", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--busy" in out


def test_onnx_check_lists_every_missing_operator_and_compares_with_onnxruntime(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    def save(nodes, inits, name):
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = tmp_path / f"{name}.onnx"
        onnx.save(model, str(path))
        return str(path)

    good = save([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "k"], ["y"])],
                [numpy_helper.from_array(np.full((4,), 0.5, np.float32), "k")], "good")
    assert main(["onnx", "check", good, "--input-shape", "x=2,3,4,4"]) == 0
    text = capsys.readouterr().out
    assert "every operator imports" in text and "float32[2, 3, 4, 4], random" in text
    assert "largest difference from onnxruntime 0" in text and "onnxruntime: first call" in text
    value = np.ones((1, 3, 4, 4), np.float32)
    np.save(tmp_path / "x.npy", value)
    assert main(["onnx", "check", good, "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    out = capsys.readouterr().out
    assert "x float32[1, 3, 4, 4]\n" in out and "largest difference from onnxruntime 0" in out   # given, not random
    bad = save([helper.make_node("Einsum", ["x", "x"], ["a"], equation="nchw,nchw->nchw"),
                helper.make_node("Det", ["a"], ["b"]), helper.make_node("Relu", ["b"], ["y"])], [], "bad")
    assert main(["onnx", "check", bad]) == 1
    assert "operators graphc cannot import (2): Det, Einsum" in capsys.readouterr().out
    assert main(["onnx", "check", good, "--input-shape", "x"]) != 0
    assert "write NAME=8,128" in capsys.readouterr().err


def test_cli_errors_are_one_clean_line(capsys):
    assert main(["demo", "--backend", "cdua"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphc: error: unknown backend 'cdua'") and "Traceback" not in err


def test_cli_demo_says_why_a_short_run_is_not_judged(capsys, monkeypatch):
    assert main(["demo", "--epochs", "1"]) == 0                       # asked for one epoch: no failure
    assert "too few to reach" in capsys.readouterr().out
    import graphc.demo

    monkeypatch.setattr(graphc.demo, "run_demo", lambda out, **kw: 0.42)   # a broken graphc, simulated
    assert main(["demo"]) == 1
    assert "below 90% after 20 epochs" in capsys.readouterr().err


def test_cli_aot_names_the_missing_input_flag(tmp_path, capsys):
    with gc.Graph().as_default() as graph:
        x = gc.placeholder(gc.float32, [None, 4], name="x")
        gc.identity(x * 2.0, name="y")
        gc.save_graph(str(tmp_path / "g.gcx"), graph)
    assert main(["aot", str(tmp_path / "g.gcx"), "--output", "y", "--name", "net", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "placeholder 'x'" in err and "--input x:1x4:float32" in err

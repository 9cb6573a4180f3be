"""Ahead-of-time libraries (gc.aot.compile, graphc aot): built with the system C compiler, run
from C (4 threads at once, different inputs), compared with Session.run; only the documented
symbols and libraries appear; the .o links on its own; errors come back as codes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.aot import c_compiler
from graphc.cli import main

THREADS = 4
CC = c_compiler()


def _driver(lib) -> str:
    """A C program: reads THREADS sets of inputs, runs NAME_run from THREADS threads at once,
    writes the outputs; exits 10 + code if a call fails."""
    n_in, n_out, name = len(lib.inputs), len(lib.outputs), lib.name
    in_bytes = ", ".join(str(s.nbytes) for s in lib.inputs) or "0"
    out_bytes = ", ".join(str(s.nbytes) for s in lib.outputs)
    return f"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "{name}.h"
#define T {THREADS}
#define NI {max(n_in, 1)}
#define NO {n_out}
static const long in_bytes[NI] = {{{in_bytes}}};
static const long out_bytes[NO] = {{{out_bytes}}};
static void *ins[T][NI];
static void *outs[T][NO];
static int codes[T];
static void *work(void *arg) {{
    long t = (long)arg;
    for (int rep = 0; rep < 20; rep++)
        codes[t] |= {name}_run((const void *const *)ins[t], outs[t]);
    return 0;
}}
static int io(const char *dir, const char *kind, long t, long j, void *buf, long n, int reading) {{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%ld_%ld.bin", dir, kind, t, j);
    FILE *f = fopen(path, reading ? "rb" : "wb");
    if (!f) return 1;
    long done = reading ? (long)fread(buf, 1, n, f) : (long)fwrite(buf, 1, n, f);
    fclose(f);
    return done != n;
}}
int main(int argc, char **argv) {{
    pthread_t th[T];
    for (long t = 0; t < T; t++) {{
        for (long j = 0; j < {n_in}; j++) {{
            ins[t][j] = malloc(in_bytes[j] + 1);
            if (io(argv[1], "in", t, j, ins[t][j], in_bytes[j], 1)) return 2;
        }}
        for (long j = 0; j < NO; j++) outs[t][j] = malloc(out_bytes[j] + 1);
    }}
    for (long t = 0; t < T; t++) pthread_create(&th[t], 0, work, (void *)t);
    for (long t = 0; t < T; t++) pthread_join(th[t], 0);
    for (long t = 0; t < T; t++) {{
        if (codes[t]) return 10 + codes[t];
        for (long j = 0; j < NO; j++)
            if (io(argv[1], "out", t, j, outs[t][j], out_bytes[j], 0)) return 3;
    }}
    printf("{name}: %d inputs, %d outputs, %d threads ok\\n", {n_in}, NO, T);
    return 0;
}}
"""


def _build_and_run(lib, tmp: Path, input_sets: list[list[np.ndarray]], link: str = "shared") -> list[list[np.ndarray]]:
    assert CC is not None, "the AOT tests need a C compiler (cc, gcc or clang) on the PATH"
    folder = lib.header.parent
    (tmp / "main.c").write_text(_driver(lib))
    exe = tmp / f"prog_{link}"
    if link == "shared":
        cmd = [CC, "-O1", "-o", str(exe), str(tmp / "main.c"), f"-I{folder}", f"-L{folder}", f"-l{lib.name}",
               f"-Wl,-rpath,{folder}", "-lpthread"]
    else:
        cmd = [CC, "-O1", "-o", str(exe), str(tmp / "main.c"), f"-I{folder}", str(lib.object), "-lm", "-lpthread"]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    for t, arrays in enumerate(input_sets):
        for j, a in enumerate(arrays):
            np.ascontiguousarray(a, lib.inputs[j].dtype).tofile(tmp / f"in_{t}_{j}.bin")
    ran = subprocess.run([str(exe), str(tmp)], capture_output=True, text=True)
    assert ran.returncode == 0, (ran.returncode, ran.stdout, ran.stderr)
    return [[np.fromfile(tmp / f"out_{t}_{j}.bin", s.dtype).reshape(s.shape) for j, s in enumerate(lib.outputs)]
            for t in range(len(input_sets))]


def _check_symbols(lib) -> None:
    nm = subprocess.run(["nm", "-D", "--defined-only", str(lib.shared)], capture_output=True, text=True, check=True)
    exported = sorted(line.split()[-1] for line in nm.stdout.splitlines() if line.split()[1:2] == ["T"])
    assert exported == sorted([f"{lib.name}_run", f"{lib.name}_run_with_workspace"]), nm.stdout
    ldd = subprocess.run(["ldd", str(lib.shared)], capture_output=True, text=True, check=True)
    for line in ldd.stdout.splitlines():
        dep = line.strip().split()[0]
        assert dep.startswith(("linux-vdso", "libc.so", "libm.so", "/lib", "ld-linux")), ldd.stdout
    assert "python" not in ldd.stdout and "llvm" not in ldd.stdout.lower() and "blas" not in ldd.stdout.lower()


def _mlp():
    rng = np.random.default_rng(0)
    x = gc.placeholder(gc.float32, [None, 64], name="x")
    w1 = gc.Variable(rng.normal(size=(64, 32)).astype(np.float32) * 0.2, name="w1")
    b1 = gc.Variable(np.full(32, 0.05, np.float32), name="b1")
    w2 = gc.Variable(rng.normal(size=(32, 10)).astype(np.float32) * 0.2, name="w2")
    logits = gc.identity(gc.nn.relu(x @ w1 + b1) @ w2, name="logits")
    return x, logits, gc.nn.softmax(logits, name="probs"), [w1, b1, w2]


def test_mlp_library_from_c_matches_session_in_4_threads(tmp_path):
    x, logits, probs, params = _mlp()
    sess = gc.Session()
    sess.run(gc.global_variables_initializer())
    sess.run(params[1].assign(np.linspace(-0.1, 0.1, 32, dtype=np.float32)))   # frozen: the session's value
    lib = gc.aot.compile([logits, probs], {x: (5, 64)}, tmp_path / "lib", "mlp", session=sess)
    assert lib.header.exists() and lib.object.exists() and lib.shared.exists()
    header = lib.header.read_text()
    for text in ("int mlp_run(const void *const *inputs, void *const *outputs);", "#define MLP_INPUT0_SHAPE {5, 64}",
                 "#define MLP_OUTPUT1_BYTES 200", "MLP_WORKSPACE_BYTES", "typedef float MLP_OUTPUT0_T;"):
        assert text in header
    sets = [[np.random.default_rng(t).normal(size=(5, 64)).astype(np.float32)] for t in range(THREADS)]
    for got, (a,) in zip(_build_and_run(lib, tmp_path, sets), sets):
        expected = sess.run([logits, probs], {x: a})
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    _check_symbols(lib)
    static = _build_and_run(lib, tmp_path, sets[:2], link="object")        # the .o on its own
    np.testing.assert_allclose(static[1][0], sess.run(logits, {x: sets[1][0]}), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lib.load()(sets[0][0])[1], sess.run(probs, {x: sets[0][0]}), rtol=1e-5, atol=1e-6)


def test_conv_net_library_matches_reference(tmp_path):
    rng = np.random.default_rng(1)
    images = gc.placeholder(gc.float32, [2, 12, 12, 3], name="images")
    kernel = gc.Variable(rng.normal(size=(3, 3, 3, 4)).astype(np.float32) * 0.3, name="kernel")
    dense = gc.Variable(rng.normal(size=(6 * 6 * 4, 5)).astype(np.float32) * 0.1, name="dense")
    h = gc.nn.relu(gc.nn.conv2d(images, kernel, strides=[1, 1, 1, 1], padding="SAME"))
    h = gc.nn.max_pool(h, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    out = gc.reshape(h, [2, -1]) @ dense
    lib = gc.aot.compile(out, [images], tmp_path / "lib", "convnet")
    sets = [[rng.normal(size=(2, 12, 12, 3)).astype(np.float32)] for _ in range(THREADS)]
    ref = gc.Session(backend="numpy")
    ref.run(gc.global_variables_initializer())
    for got, (a,) in zip(_build_and_run(lib, tmp_path, sets), sets):
        np.testing.assert_allclose(got[0], ref.run(out, {images: a}), rtol=1e-4, atol=1e-5)
    _check_symbols(lib)


def test_elementwise_chain_and_a_fetched_input(tmp_path):
    x = gc.placeholder(gc.float32, [1000], name="x")
    chain = gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x)
    lib = gc.aot.compile([chain, x], [x], tmp_path / "lib", "chain")     # the input itself is copied out
    sets = [[np.linspace(-6, 6, 1000, dtype=np.float32) * (t + 1)] for t in range(THREADS)]
    for got, (a,) in zip(_build_and_run(lib, tmp_path, sets), sets):
        a64 = a.astype(np.float64)
        np.testing.assert_allclose(got[0], np.tanh(0.5 * a64 + 0.1) / (1 + np.exp(-a64)) - np.exp(-a64 * a64),
                                   rtol=1e-5, atol=1e-6)
        assert np.array_equal(got[1], a)


def test_failed_check_returns_its_documented_code(tmp_path):
    idx = gc.placeholder(gc.int32, [3], name="idx")
    table = gc.constant(np.arange(10, dtype=np.float32))
    out = gc.gather(table, idx)
    lib = gc.aot.compile(out, [idx], tmp_path, "lookup")
    assert "error 1: Gather" in lib.header.read_text()
    run = lib.load()
    assert list(run(np.array([1, 2, 3], np.int32))[0]) == [1, 2, 3]
    with pytest.raises(gc.GraphcError, match="lookup_run failed with code 1: Gather"):
        run(np.array([1, 20, 3], np.int32))


def test_bad_requests_are_clear_errors(tmp_path):
    x = gc.placeholder(gc.float32, [None, 4], name="x")
    with pytest.raises(gc.CompileError, match="fully known shape"):
        gc.aot.compile(x * 2.0, [x], tmp_path, "f")
    with pytest.raises(gc.CompileError, match="C identifier"):
        gc.aot.compile(x * 2.0, {x: (1, 4)}, tmp_path, "not-a-name")
    with pytest.raises(gc.CompileError, match="unknown target triple"):
        gc.aot.compile(x * 2.0, {x: (1, 4)}, tmp_path, "f", target="no-such-triple")
    with pytest.raises(gc.CompileError, match="unknown CPU 'no-such-cpu'"):   # LLVM would abort the process
        gc.aot.compile(x * 2.0, {x: (1, 4)}, tmp_path, "f", cpu="no-such-cpu")
    lib = gc.aot.compile(x * 2.0, {x: (1, 4)}, tmp_path, "f")
    with pytest.raises(gc.GraphcError, match="shape"):
        lib.load()(np.ones((2, 4), np.float32))


def test_cli_and_cross_target(tmp_path):
    x = gc.placeholder(gc.float32, [None, 8], name="x")
    w = gc.Variable(np.arange(24, dtype=np.float32).reshape(8, 3) / 10, name="w")
    gc.nn.softmax(x @ w, name="y")
    gc.save_graph(tmp_path / "m.gcx")
    cli = [sys.executable, "-m", "graphc.cli", "aot", str(tmp_path / "m.gcx"), "--input", "x:2x8:float32",
           "--output", "y", "-o", str(tmp_path / "out"), "--name", "model"]
    done = subprocess.run(cli, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "libmodel.so").exists() and "wrote" in done.stdout
    lib_probs = gc.aot.AotLibrary("model", tmp_path / "out" / "model.h", tmp_path / "out" / "model.o",
                                  tmp_path / "out" / "libmodel.so", [gc.aot.TensorSpec("x", "float32", (2, 8))],
                                  [gc.aot.TensorSpec("y", "float32", (2, 3))], 0).load()(np.ones((2, 8), np.float32))
    expected = np.exp(np.ones(8) @ (np.arange(24).reshape(8, 3) / 10))
    np.testing.assert_allclose(lib_probs[0][0], expected / expected.sum(), rtol=1e-5)
    wrong = subprocess.run(cli[:6] + ["x:2x8:float64"] + cli[7:], capture_output=True, text=True)
    assert wrong.returncode != 0 and "float32 in the graph" in wrong.stderr
    cross = subprocess.run(cli + ["--target", "aarch64-unknown-linux-gnu", "--cpu", "generic", "-o",
                                  str(tmp_path / "arm")], capture_output=True, text=True)
    assert cross.returncode == 0, cross.stderr
    elf = (tmp_path / "arm" / "model.o").read_bytes()
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183     # EM_AARCH64
    assert not (tmp_path / "arm" / "libmodel.so").exists()


def test_the_example_builds_and_classifies(tmp_path):
    example = Path(__file__).resolve().parents[2] / "examples" / "aot"
    done = subprocess.run(["make", "-C", str(example), f"PYTHON={sys.executable}", f"BUILD={tmp_path}", f"CC={CC}"],
                          capture_output=True, text=True, env=dict(os.environ, GRAPHC_NUM_THREADS="1"))
    assert done.returncode == 0, done.stdout + done.stderr
    predictions = [line for line in done.stdout.splitlines() if line.startswith("digit ")]
    assert len(predictions) == 4 and "predicted" in predictions[0]


def test_a_recurrent_loop_runs_in_the_library(tmp_path):
    """A scan compiles into the library with its body once; the products in the body, which a
    Session runs on its thread pool, run on the calling thread there (the pool words are zeros
    in a library) and give the reference backend's values."""
    rng = np.random.default_rng(5)
    x = gc.placeholder(gc.float32, [6, 32, 16], name="x")
    w = gc.constant(rng.normal(size=(16 + 256, 256)).astype(np.float32) * 0.1)
    hs = gc.scan(lambda h, x_t: gc.tanh(gc.matmul(gc.concat([x_t, h], 1), w)), x, initializer=gc.zeros([32, 256]))
    lib = gc.aot.compile([hs], [x], tmp_path / "lib", "rnn")
    _check_symbols(lib)
    sets = [[rng.normal(size=(6, 32, 16)).astype(np.float32)] for _ in range(THREADS)]
    reference = gc.Session(backend="numpy", pipeline=None)
    for got, (a,) in zip(_build_and_run(lib, tmp_path, sets), sets):
        np.testing.assert_allclose(got[0], reference.run(hs, {x: a}), rtol=1e-4, atol=1e-5)


def test_an_onnx_model_compiles_to_a_library_that_gives_onnxruntimes_results(tmp_path):
    """`graphc aot MODEL.onnx` (gc.aot.compile_onnx): a small CNN with a dynamic batch axis,
    sized at compile time, called from C, against onnxruntime."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(9)
    inits = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32) * 0.3, "b": rng.normal(size=4).astype(np.float32),
             "fc": rng.normal(size=(4, 5)).astype(np.float32), "scales": np.array([1, 1, 2, 2], np.float32),
             "roi": np.zeros(0, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Resize", ["r", "roi", "scales"], ["u"], mode="nearest"),
             helper.make_node("GlobalAveragePool", ["u"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["y"])]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "cnn.onnx"
    onnx.save(model, str(path))
    assert main(["aot", str(path), "--input", "x:2x3x6x6:float32", "-o", str(tmp_path / "lib"), "--name", "cnn"]) == 0
    lib = gc.aot.compile_onnx(path, tmp_path / "lib", "cnn", {"x": [2, 3, 6, 6]})
    _check_symbols(lib)
    sets = [[rng.normal(size=(2, 3, 6, 6)).astype(np.float32)] for _ in range(THREADS)]
    runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for got, (a,) in zip(_build_and_run(lib, tmp_path, sets), sets):
        np.testing.assert_allclose(got[0], runtime.run(None, {"x": a})[0], rtol=1e-4, atol=1e-5)
    assert main(["aot", str(path), "-o", str(tmp_path / "lib2"), "--name", "cnn2"]) == 1        # the batch is open
    assert main(["aot", str(path), "--input", "x:2x3x6x6:int32", "-o", str(tmp_path), "--name", "c3"]) == 1


def test_a_scikit_learn_pipeline_compiles_to_a_library(tmp_path):
    """StandardScaler + LogisticRegression exported by skl2onnx, compiled by gc.aot.compile_onnx
    and called from C: the labels and the probability matrix (ZipMap's maps, in label order)
    are onnxruntime's."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("sklearn")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    model = skl2onnx.to_onnx(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y), x[:1])
    path = tmp_path / "iris.onnx"
    path.write_bytes(model.SerializeToString())
    lib = gc.aot.compile_onnx(path, tmp_path / "lib", "iris", {"X": [10, 4]})
    _check_symbols(lib)
    sets = [[x[10 * t:10 * t + 10]] for t in range(THREADS)]
    runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for got, (a,) in zip(_build_and_run(lib, tmp_path, sets), sets):
        labels, maps = runtime.run(None, {"X": a})
        np.testing.assert_array_equal(got[0], labels)
        np.testing.assert_allclose(got[1], [[row[k] for k in sorted(row)] for row in maps], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cpu, vector_bytes", [("x86-64-v3", 32), ("x86-64", 16)])
def test_a_library_for_a_cpu_level_blocks_its_gemm_for_that_level(cpu, vector_bytes, tmp_path):
    """A library built for an x86-64 level (README: cpu="x86-64-v3") gets a GEMM blocked for that
    level's vectors, not the host's, and still computes the product; its only exports are the
    documented two, with the GEMM inside."""
    from graphc.backends.aot import AotTarget
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("x86-64 levels run on an x86-64 host only")
    from llvmlite import binding
    if vector_bytes > 16 and not binding.get_host_cpu_features().get("avx2"):
        pytest.skip(f"this CPU cannot run {cpu} code")
    assert AotTarget("f", [], cpu=cpu).gemm_vector_bytes() == vector_bytes
    assert AotTarget("f", [], triple="aarch64-unknown-linux-gnu").gemm_vector_bytes() == 16
    assert AotTarget("f", []).gemm_vector_bytes() is None   # this machine: its own width
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(70, 50)).astype(np.float32), rng.normal(size=(50, 33)).astype(np.float32)
    x, y = gc.placeholder(gc.float32, a.shape), gc.placeholder(gc.float32, b.shape)
    lib = gc.aot.compile(gc.matmul(x, y), [x, y], tmp_path, "product", cpu=cpu)
    np.testing.assert_allclose(lib.load()(a, b)[0], a @ b, rtol=1e-5, atol=1e-5)
    _check_symbols(lib)

"""One compile path (graphc.backends.target.compile) for Session, gc.function, gc.aot and
gc.debugprint: a pipeline runs as given, the target adds what it requires (and says so), and an
order that cannot work is a CompileError naming the missing or misplaced pass."""
from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.passes import CHANNELS_LAST_PIPELINE

PACKAGE = Path(gc.__file__).resolve().parent


def _softmax_graph():
    x = gc.placeholder(gc.float32, [4, 5], name="x")
    return x, gc.nn.softmax(x * 2.0)


def _expected(value):
    z = value.astype(np.float64) * 2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


VALUE = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)


@pytest.mark.parametrize("backend", ["llvm", "cuda-emulator"])
def test_fuse_without_decompose_names_the_missing_pass(backend):
    """It used to fail deep in the backend with 'the llvm backend cannot compile Softmax yet'."""
    with pytest.raises(gc.CompileError) as info:
        gc.Session(backend=backend, pipeline=["fuse"])
    text = str(info.value)
    assert "'fuse' needs 'decompose' before it" in text and "'decompose' is missing" in text
    assert f"the {backend} target" in text


@pytest.mark.parametrize("pipeline, misplaced", [(["decompose", "fuse", "fold"], "'fold' comes after 'fuse'"),
                                                 (["fuse", "decompose"], "'decompose' comes after it")])
def test_orders_that_cannot_work_are_refused(pipeline, misplaced):
    with pytest.raises(gc.CompileError, match=misplaced):
        gc.Session(backend="llvm", pipeline=pipeline)
    with pytest.raises(gc.CompileError, match=misplaced):
        gc.Session(backend="numpy", pipeline=pipeline)


@pytest.mark.parametrize("backend", ["numpy", "llvm", "cuda-emulator"])
@pytest.mark.parametrize("pipeline", [["decompose", "fuse"], ["fold"], None, ["cse", "decompose", "dce", "fuse"]])
def test_a_pipeline_runs_as_given_plus_what_the_target_requires(backend, pipeline):
    x, y = _softmax_graph()
    sess = gc.Session(backend=backend, pipeline=pipeline)
    given = list(pipeline or [])
    required = [] if backend == "numpy" else [p for p in ("decompose", "fuse") if p not in given]
    assert [p.name for p in sess.passes] == given + required
    assert [p.added_by for p in sess.passes] == [None] * len(given) + [backend] * len(required)
    assert list(sess.pipeline) == given
    np.testing.assert_allclose(sess.run(y, {x: VALUE}), _expected(VALUE), rtol=1e-5, atol=1e-6)
    ran = [line.split(":")[0] for line in sess.compile([y], {x: VALUE}).program.log[1:]]
    assert ran == given + required          # nothing else ran: ["fold"] no longer brings cse and dce


def test_gc_function_compiles_through_the_same_plan():
    x, y = _softmax_graph()
    f = gc.function([x], y, backend="llvm", pipeline=["fold"])
    np.testing.assert_allclose(f(VALUE), _expected(VALUE), rtol=1e-5, atol=1e-6)
    assert [line.split(":")[0] for line in f.program.log[1:]] == ["fold", "decompose", "fuse"]
    with pytest.raises(gc.CompileError, match="'decompose' is missing"):
        gc.function([x], y, backend="llvm", pipeline=["fuse"])


def test_aot_honours_the_pipeline(tmp_path):
    """gc.aot.compile used to ignore any pipeline and hardcode the default."""
    x = gc.placeholder(gc.float32, [3, 4], name="x")
    y = gc.log(1.0 + gc.exp(x)) * 1.0
    plain = gc.aot.compile(y, [x], tmp_path / "plain", "plain", pipeline=None)
    tuned = gc.aot.compile(y, [x], tmp_path / "tuned", "tuned")
    assert [line.split(":")[0] for line in plain.log[1:]] == ["decompose", "fuse"]
    assert [line.split(":")[0] for line in tuned.log[1:]] == list(CHANNELS_LAST_PIPELINE)
    with pytest.raises(gc.CompileError, match="'decompose' is missing"):
        gc.aot.compile(y, [x], tmp_path / "bad", "bad", pipeline=["fuse"])
    value = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    want = np.log1p(np.exp(value.astype(np.float64)))
    if plain.shared is not None:
        np.testing.assert_allclose(plain.load()(value)[0], want, rtol=1e-5)
        np.testing.assert_allclose(tuned.load()(value)[0], want, rtol=1e-5)


def test_debugprint_shows_the_passes_the_target_added():
    x, y = _softmax_graph()
    text = gc.debugprint(y, pipeline=["fold"], file=io.StringIO())
    assert "passes for the llvm target: fold, decompose (added: llvm requires it), fuse (added: llvm requires it)" \
        in text
    numpy_text = gc.debugprint(y, pipeline=["fold"], backend="numpy", file=io.StringIO())
    assert "passes for the numpy target: fold\n" in numpy_text
    with pytest.raises(gc.CompileError, match="'decompose' is missing"):
        gc.debugprint(y, pipeline=["fuse"], file=io.StringIO())


def test_debugprint_kernel_level_shows_spaces_index_maps_bodies_and_memory():
    x = gc.placeholder(gc.float32, [8, 4], name="x")
    w = gc.placeholder(gc.float32, [4, 3], name="w")
    y = gc.nn.softmax(gc.tanh(x) @ w)
    text = gc.debugprint(y, level="kernels", file=io.StringIO())
    kernels = text[text.index("kernel program:"):]
    assert "gemm" in kernels and "@" in kernels                         # the library call
    assert "loop i0<8, i1<3, reduce i1" in kernels                        # an iteration space
    assert "s0 = %" in kernels and "[i0, i1]" in kernels                  # a read through an index map
    assert "acc0 = max(" in kernels and "acc0 = sum(" in kernels          # accumulators
    assert "tanh(" in kernels and "exp(" in kernels                       # scalar bodies
    assert "workspace+" in kernels and "output" in kernels                # the memory plan
    assert "has no kernels" in gc.debugprint(y, level="kernels", backend="numpy", file=io.StringIO())
    with pytest.raises(gc.CompileError, match="level"):
        gc.debugprint(y, level="machine code", file=io.StringIO())


def _calls(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == name
               for n in ast.walk(tree))


def test_there_is_one_compile_driver():
    """Passes are run, and programs lowered, in one place only: graphc/backends/target.py."""
    # passes/pipeline.py defines run_pipeline, which recurses into loop bodies and branches.
    runners = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if _calls(p, "run_pipeline") and p != PACKAGE / "passes" / "pipeline.py")
    lowerers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if _calls(p, "lower_program"))
    assert runners == ["backends/target.py"]
    assert lowerers == ["backends/target.py"]
    for user in ("session.py", "aot.py", "debugprint.py"):
        text = (PACKAGE / user).read_text()
        assert "compile" in text and "REQUIRED_PASSES" not in text

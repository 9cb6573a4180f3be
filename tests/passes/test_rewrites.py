"""The rewrite passes: each fires where it must, stays put where it must not, and the rewritten
program computes what the unoptimized one does (the reference backend runs both)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.passes import DEFAULT_PIPELINE

TESTED_OPS = {"Add", "Mul", "Sub", "Neg", "Transpose", "Reshape", "MatMul", "Pow", "Cast", "Identity", "Sum",
              "BroadcastTo", "ExpandDims", "Squeeze", "Fill", "Select", "StopGradient", "SumToShape"}


def compile_program(fetches, feeds, pipeline):
    sess = gc.Session(backend="numpy", pipeline=pipeline)
    return sess.compile(fetches if isinstance(fetches, list) else [fetches],
                        {t: np.asarray(v, dtype=t.dtype.np) for t, v in feeds.items()}).program


def both(fetches, feeds, pipeline=DEFAULT_PIPELINE):
    """(unoptimized result, optimized result, optimized program)."""
    plain = gc.Session(backend="numpy", pipeline=None).run(fetches, feeds)
    opt_sess = gc.Session(backend="numpy", pipeline=list(pipeline))
    optimized = opt_sess.run(fetches, feeds)
    program = compile_program(fetches, feeds, list(pipeline))
    return plain, optimized, program


def counts(program):
    return program.op_counts()


# --------------------------------------------------------------------------- cse / dce / fold
def test_cse_merges_equal_subexpressions_and_constants():
    x = gc.placeholder(gc.float32, [4])
    a = gc.exp(x * 2.0) + 1.0
    b = gc.exp(x * 2.0) + 1.0
    y = a * b
    feeds = {x: np.linspace(-1, 1, 4)}
    before = counts(compile_program(y, feeds, None))
    after = counts(compile_program(y, feeds, ["cse"]))
    assert before["Exp"] == 2 and after["Exp"] == 1
    assert before["Const"] == 4 and after["Const"] == 2
    plain, opt, _ = both(y, feeds, ["cse"])
    np.testing.assert_array_equal(plain, opt)


def test_cse_never_merges_random_draws():
    r1 = gc.random_uniform([3], seed=1)
    r2 = gc.random_uniform([3], seed=2)
    program = compile_program([r1 + r2], {}, ["cse"])
    assert counts(program)["RandomUniform"] == 2


def test_fold_evaluates_constant_subgraphs_once():
    x = gc.placeholder(gc.float32, [3])
    c = gc.exp(gc.constant([0.0, 1.0, 2.0])) * 2.0 + gc.reduce_sum(gc.constant([1.0, 2.0]))
    y = x + c
    program = compile_program(y, {x: [0, 0, 0]}, ["fold", "dce"])
    assert counts(program) == {"Placeholder": 1, "Const": 1, "Add": 1}
    plain, opt, _ = both(y, {x: [1.0, 2.0, 3.0]}, ["fold", "dce"])
    np.testing.assert_allclose(plain, opt, rtol=1e-6)


def test_fold_does_not_materialize_large_broadcasts():
    x = gc.placeholder(gc.float32, [300, 300])
    y = x + gc.zeros([300, 300]) * 2.0 + gc.ones_like(x)
    program = compile_program(y, {x: np.zeros((300, 300))}, ["fold", "simplify", "dce"])
    biggest = max(n.attrs["value"].size for n in program.nodes() if n.type == "Const")
    assert biggest <= 1024


def test_fold_leaves_errors_to_run_time_with_the_user_line():
    idx = gc.constant([5])
    g = gc.gather(gc.constant([1.0, 2.0]), idx, name="bad_gather")
    with pytest.raises(gc.InvalidArgumentError) as err:
        gc.Session(backend="numpy", pipeline=list(DEFAULT_PIPELINE)).run(g)
    assert err.value.node_name == "bad_gather" and "test_rewrites.py" in str(err.value)


def test_dce_drops_replaced_nodes():
    x = gc.placeholder(gc.float32, [2])
    y = gc.identity(gc.identity(x * 1.0)) + 0.0
    program = compile_program(y, {x: [1, 2]}, ["simplify", "dce"])
    assert counts(program) == {"Placeholder": 1}
    assert len(program.graph.get_operations()) == 1


# --------------------------------------------------------------------------- simplify
SIMPLIFY_FIRES = [
    ("x+0", lambda x: x + 0.0, {"Add"}),
    ("0+x", lambda x: 0.0 + x, {"Add"}),
    ("x-0", lambda x: x - 0.0, {"Sub"}),
    ("x*1", lambda x: x * 1.0, {"Mul"}),
    ("1*x", lambda x: 1.0 * x, {"Mul"}),
    ("x/1", lambda x: x / 1.0, {"RealDiv"}),
    ("x**1", lambda x: x ** 1.0, {"Pow"}),
    ("--x", lambda x: -(-x), {"Neg"}),
    ("identity", lambda x: gc.identity(gc.stop_gradient(x)), {"Identity", "StopGradient"}),
    ("cast to same", lambda x: gc.cast(gc.cast(x, gc.float64), gc.float64), set()),
    ("transpose twice", lambda x: gc.transpose(gc.transpose(x)), {"Transpose"}),
    ("reshape chain", lambda x: gc.reshape(gc.reshape(gc.reshape(x, [-1]), [3, 2]), [2, 3]), {"Reshape"}),
    ("broadcast to own shape", lambda x: gc.broadcast_to(x, [2, 3]), {"BroadcastTo"}),
    ("full slice", lambda x: x[:, :], {"StridedSlice"}),
    ("where all true", lambda x: gc.where(gc.constant(np.ones((2, 3), bool)), x, 2.0 * x), {"Select"}),
]


@pytest.mark.parametrize("name,build,gone", SIMPLIFY_FIRES, ids=[c[0] for c in SIMPLIFY_FIRES])
def test_simplify_removes(name, build, gone):
    x = gc.placeholder(gc.float32, [2, 3])
    y = build(x)
    value = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    plain, opt, program = both(y, {x: value}, ["simplify", "dce"])
    left = counts(program)
    assert not (gone & set(left)), left
    assert program.outputs[0].node.type in ("Placeholder", "Cast")
    np.testing.assert_array_equal(plain, opt)


def test_pow_rules():
    x = gc.placeholder(gc.float32, [3])
    feeds = {x: [1.5, -2.0, 3.0]}
    program = compile_program([x ** 2.0, x ** -1.0], feeds, ["simplify", "dce"])
    c = counts(program)
    assert "Pow" not in c and c["Mul"] == 1 and c["Reciprocal"] == 1
    plain, opt, _ = both([x ** 2.0, x ** -1.0], feeds, ["simplify", "dce"])
    for p, o in zip(plain, opt):
        np.testing.assert_allclose(p, o, rtol=1e-7)


def test_times_zero_only_where_exact():
    x = gc.placeholder(gc.float32, [3])
    i = gc.placeholder(gc.int32, [3])
    feeds = {x: [np.nan, np.inf, 1.0], i: [1, 2, 3]}
    strict = counts(compile_program([x * 0.0, i * 0], feeds, ["simplify", "dce"]))
    assert strict["Mul"] == 1  # the float one stays: NaN * 0 and inf * 0 are NaN
    plain = gc.Session(backend="numpy", pipeline=None).run(x * 0.0, feeds)
    kept = gc.Session(backend="numpy", pipeline=["simplify"]).run(x * 0.0, feeds)
    np.testing.assert_array_equal(plain, kept)
    assert np.isnan(kept[:2]).all()
    fast = counts(compile_program([x * 0.0, i * 0], feeds, ["simplify_fast", "dce"]))
    assert "Mul" not in fast
    assert gc.Session(backend="numpy", pipeline=["simplify"]).run(i * 0, feeds).tolist() == [0, 0, 0]


def test_simplify_keeps_rewrites_that_would_change_shape_or_dtype():
    x = gc.placeholder(gc.float32, [3])
    y = x * gc.ones([2, 3])           # x * 1 broadcasts: not x
    z = x + gc.constant(0.0, gc.float64)  # promotes to float64: not x
    program = compile_program([y, z], {x: [1, 2, 3]}, ["simplify", "dce"])
    assert counts(program)["Mul"] == 1 and counts(program)["Add"] == 1


def test_sum_of_a_broadcast_becomes_a_product():
    x = gc.placeholder(gc.float32, [3, 1])
    y = gc.reduce_sum(gc.broadcast_to(x, [3, 5]), axis=1)
    plain, opt, program = both(y, {x: [[1.0], [2.0], [3.0]]}, ["simplify", "fold", "dce"])
    assert "BroadcastTo" not in counts(program) and "Sum" not in counts(program)
    np.testing.assert_allclose(plain, opt)
    np.testing.assert_allclose(opt, [5.0, 10.0, 15.0])


def test_matmul_absorbs_transposes_into_flags():
    a = gc.placeholder(gc.float32, [4, 3])
    b = gc.placeholder(gc.float32, [5, 4])
    y = gc.matmul(gc.transpose(a), gc.transpose(b))
    rng = np.random.default_rng(0)
    feeds = {a: rng.normal(size=(4, 3)), b: rng.normal(size=(5, 4))}
    plain, opt, program = both(y, feeds, ["simplify", "dce"])
    (mm,) = [n for n in program.nodes() if n.type == "MatMul"]
    assert "Transpose" not in counts(program)
    assert mm.attrs["transpose_a"] and mm.attrs["transpose_b"]
    np.testing.assert_allclose(plain, opt, rtol=1e-5)


def test_canonical_forms():
    x = gc.placeholder(gc.float32, [2, 3])
    y = gc.squeeze(gc.expand_dims(x, 0), [0]) + gc.fill([2, 3], 1.0)
    program = compile_program(y, {x: np.zeros((2, 3))}, ["simplify", "dce"])
    c = counts(program)
    assert "ExpandDims" not in c and "Squeeze" not in c and "Fill" not in c


def test_rewritten_nodes_keep_the_user_source_line():
    x = gc.placeholder(gc.float32, [3])
    y = gc.log(1.0 + x * 1.0)   # the line every rewritten node must point at
    line = y.op.source.lineno
    program = compile_program(y, {x: [0, 1, 2]}, list(DEFAULT_PIPELINE))
    for n in program.nodes():
        if n.type not in ("Placeholder", "Const"):
            assert n.source.filename == __file__ and n.source.lineno == line, (n.type, n.source)

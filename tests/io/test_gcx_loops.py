"""Loops and branches round-trip through .gcx files: each sub-graph is written as a nested graph
and rebuilt as a FuncGraph inside the loaded graph, and the loaded graph computes the same values
on the NumPy reference. (The hostile side is tests/io/test_gcx_loops_hostile.py.)"""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import pytest

import graphc as gc
from graphc.cli import main
from graphc.io.format import LOOPS_VERSION, PLAIN_VERSION
from graphc.ir.function import FuncGraph, Function
from tests.io.gcx_files import document, frozen_attrs

TESTED_OPS = {"While", "If"}
RNG = np.random.default_rng(5)


def _functions(graph: gc.Graph) -> list[tuple[Any, str, Function]]:
    return [(n, key, n.attrs[key]) for n in graph.get_operations() for key in getattr(n.op, "functions", ())
            if n.attrs.get(key) is not None]


def _check_same(g1: gc.Graph, g2: gc.Graph) -> None:
    """Same nodes, and every sub-graph rebuilt with the same structure inside the loaded graph."""
    nodes2 = {n.name: n for n in g2.get_operations()}
    for a in g1.get_operations():
        b = nodes2[a.name]
        assert b.type == a.type and [t.name for t in b.inputs] == [t.name for t in a.inputs], a.name
        assert [(t.dtype, t.shape) for t in b.outputs] == [(t.dtype, t.shape) for t in a.outputs], a.name
        if getattr(a.op, "functions", ()):
            assert frozen_attrs(b.attrs) == frozen_attrs(a.attrs), a.name
    for node, _, fn in _functions(g2):
        assert isinstance(fn.graph, FuncGraph) and fn.graph.outer is g2, node.name
        _check_nested(fn)


def _check_nested(fn: Function) -> None:
    for node, _, inner in _functions(fn.graph):
        assert isinstance(inner.graph, FuncGraph) and inner.graph.outer is fn.graph, node.name
        _check_nested(inner)


def _run(graph: gc.Graph, names: list[str], feeds: dict[str, np.ndarray], session: Any = None) -> list[np.ndarray]:
    fetches = [graph.get_tensor_by_name(n) for n in names]
    feed_dict = {graph.get_tensor_by_name(k): v for k, v in feeds.items()}
    if session is not None:
        return session.run(fetches, feed_dict)
    with gc.Session(graph, backend="numpy") as sess:
        if graph.variables:
            sess.run([info.initializer for info in graph.variables.values()])
        return sess.run(fetches, feed_dict)


def _round_trip(tmp_path, build: Callable[[], tuple[list[gc.Tensor], dict[str, np.ndarray]]],
                session_fn: Callable[[gc.Graph], Any] | None = None) -> tuple[gc.Graph, gc.Graph]:
    g1 = gc.Graph()
    with g1.as_default():
        fetches, feeds = build()
    names = [t.name for t in fetches]
    session = session_fn(g1) if session_fn is not None else None
    path = tmp_path / "loops.gcx"
    gc.save_graph(path, g1, session=session)
    assert document(path.read_bytes())["version"] == LOOPS_VERSION
    g2 = gc.load_graph(path)
    _check_same(g1, g2)
    before = _run(g1, names, feeds, session)
    after = _run(g2, names, feeds)
    for name, a, b in zip(names, before, after):
        assert np.asarray(a).dtype == np.asarray(b).dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    return g1, g2


def _x(shape: tuple[int, ...], name: str = "x") -> tuple[gc.Tensor, np.ndarray]:
    value = RNG.uniform(-2, 2, size=shape).astype(np.float32)
    return gc.placeholder(gc.float32, [None] + list(shape[1:]), name=name), value


def test_while_loop_with_nested_loop_values_and_a_fed_limit(tmp_path):
    def build():
        x, v = _x((3,))
        limit = gc.placeholder(gc.int32, [], name="limit")

        def body(i, state):
            return i + 1, {"sum": state["sum"] + x * gc.cast(i, gc.float32), "prod": (state["prod"][0] * 0.5,)}

        i, state = gc.while_loop(lambda i, s: gc.reduce_sum(s["sum"]) < 100.0, body,
                                 (gc.constant(0), {"sum": gc.zeros([3]), "prod": (gc.ones([3]),)}),
                                 maximum_iterations=limit)
        return [i, state["sum"], state["prod"][0]], {"x:0": v, "limit:0": np.int32(7)}
    _round_trip(tmp_path, build)


def test_scan_reverse_map_fn_foldl_foldr(tmp_path):
    def build():
        x, v = _x((5, 3))
        rev = gc.scan(lambda a, e: a * 0.5 + e, x, initializer=gc.zeros([3]), reverse=True)
        fwd = gc.scan(lambda a, e: a + e, x)             # no initializer: the first row starts
        mapped = gc.map_fn(lambda row: (row * row, gc.reduce_sum(row)), x)
        left = gc.foldl(lambda a, e: a * 2.0 - e, x, initializer=gc.ones([3]))
        right = gc.foldr(lambda a, e: a * 2.0 - e, x)
        return [rev, fwd, mapped[0], mapped[1], left, right], {"x:0": v}
    _round_trip(tmp_path, build)


def test_nested_loops_and_a_cond_inside_a_scan(tmp_path):
    def build():
        x, v = _x((4, 3))

        def row_step(acc, row):
            _, inner = gc.while_loop(lambda j, r: j < 3, lambda j, r: (j + 1, r * 0.5 + acc), [gc.constant(0), row])
            picked = gc.cond(gc.reduce_sum(inner) > 0.0, lambda: inner + 1.0, lambda: inner - gc.scan(
                lambda a, e: a + e, gc.reshape(inner, [3, 1]))[-1])
            return picked
        out = gc.scan(row_step, x, initializer=gc.zeros([3]))
        outer_i, total = gc.while_loop(lambda i, t: i < 2, lambda i, t: (i + 1, t + gc.foldl(
            lambda a, e: a + e, x, initializer=t)), [gc.constant(0), gc.zeros([3])])
        return [out, outer_i, total], {"x:0": v}
    _, g2 = _round_trip(tmp_path, build)
    depth = 0
    fns = [fn for _, _, fn in _functions(g2)]
    while fns:
        depth += 1
        fns = [inner for fn in fns for _, _, inner in _functions(fn.graph)]
    assert depth == 3   # scan body > cond branch > scan body


def test_cond_with_structured_results(tmp_path):
    def build():
        x, v = _x((2, 3))
        flag = gc.placeholder(gc.bool, [], name="flag")
        a, b = gc.cond(flag, lambda: (x * 2.0, gc.reduce_sum(x)), lambda: (x - 1.0, gc.reduce_max(x)))
        return [a, b], {"x:0": v, "flag:0": np.bool_(False)}
    _round_trip(tmp_path, build)


def test_loop_body_capturing_a_trained_variable(tmp_path):
    """The loaded graph restores the variable's value from the session, and its loop body sees
    it through the captured argument."""
    def build():
        x, v = _x((4, 3))
        w = gc.Variable(np.eye(3, dtype=np.float32), name="w")
        b = gc.Variable(np.zeros(3, np.float32), name="b")
        out = gc.scan(lambda h, e: gc.nn.tanh(gc.matmul(gc.expand_dims(h, 0), w)[0] + e + b), x,
                      initializer=gc.zeros([3]))
        gc.get_default_graph().add_to_collection("outputs", out)
        return [out], {"x:0": v}

    def trained(graph: gc.Graph) -> gc.Session:
        sess = gc.Session(graph, backend="numpy")
        sess.run([info.initializer for info in graph.variables.values()])
        w = graph.variable_info("w").python_object
        sess.run(w.assign(np.full((3, 3), 0.25, np.float32)))
        return sess
    _, g2 = _round_trip(tmp_path, build, trained)
    assert g2.get_collection("outputs")[0].name == "scan/While:1"


def _compiled_loops(graph: gc.Graph, names: list[str], feeds: dict[str, np.ndarray]) -> int:
    """The While nodes left once the graph is built into a Program and optimized."""
    from graphc.passes.pipeline import DEFAULT_PIPELINE, run_pipeline
    from graphc.program.from_graph import build_program

    inputs = [(graph.get_tensor_by_name(k), graph.get_tensor_by_name(k).dtype, v.shape) for k, v in feeds.items()]
    program = run_pipeline(build_program(graph, [graph.get_tensor_by_name(n) for n in names], inputs), DEFAULT_PIPELINE)
    return sum(1 for n in program.nodes() if n.type == "While")


def test_gradient_through_a_scan(tmp_path):
    """gc.gradients through gc.scan (graphc.autodiff_control): the forward loop and its
    gradient's twin share one body (or the twin's is the same graph with more results, whose
    origin is the forward body), and still do after loading, so the compiler merges them the
    same way."""
    feeds = {"x:0": RNG.uniform(-2, 2, size=(4, 3)).astype(np.float32), "w:0": np.array([0.5, -1.0, 2.0], np.float32)}
    names: list[str] = []

    def build():
        x = gc.placeholder(gc.float32, [None, 3], name="x")
        w = gc.placeholder(gc.float32, [3], name="w")
        out = gc.scan(lambda a, e: gc.nn.tanh(a * w + e), x, initializer=gc.zeros([3]), reverse=True)
        gx, gw = gc.gradients(gc.reduce_sum(out * out), [x, w])
        names.extend(t.name for t in (out, gx, gw))
        return [out, gx, gw], feeds
    g1, g2 = _round_trip(tmp_path, build)
    bodies1 = [fn for n, key, fn in _functions(g1) if key == "body"]
    bodies2 = [fn for n, key, fn in _functions(g2) if key == "body"]

    def sharing(bodies: list[Function]) -> list[tuple[int, int, int]]:
        """(i, j, kind) for bodies i > j sharing: the function, its graph, or i's origin being j."""
        return [(i, j, kind) for i, a in enumerate(bodies) for j, b in enumerate(bodies[:i])
                for kind, same in ((0, a is b), (1, a.graph is b.graph), (2, getattr(a, "origin", None) is b)) if same]
    assert sharing(bodies2) == sharing(bodies1) and sharing(bodies1)
    assert _compiled_loops(g2, names, feeds) == _compiled_loops(g1, names, feeds)


def test_training_through_a_loop_continues_after_loading(tmp_path):
    """A model whose loop body captures a trained variable, saved mid-training with its Adam
    slots: one more step gives the same loss in the loaded graph as in the original."""
    xv = RNG.normal(size=(4, 3)).astype(np.float32)
    g1 = gc.Graph()
    with g1.as_default():
        x = gc.placeholder(gc.float32, [None, 3], name="x")
        w = gc.Variable(gc.random_normal([3, 3], stddev=0.5, seed=1), name="w")
        h = gc.scan(lambda h, e: gc.nn.tanh(gc.matmul(gc.expand_dims(h, 0), w)[0] + e), x,
                    initializer=gc.zeros([3]))
        loss = gc.reduce_sum(h * h, name="loss")
        train = gc.train.AdamOptimizer(0.05).minimize(loss)
        init = gc.global_variables_initializer()
    with gc.Session(g1, backend="numpy") as sess:
        sess.run(init)
        sess.run(train, {x: xv})
        gc.save_graph(tmp_path / "training.gcx", g1, session=sess)
        sess.run(train, {x: xv})
        expected = sess.run(loss, {x: xv})
    g2 = gc.load_graph(tmp_path / "training.gcx")
    with gc.Session(g2, backend="numpy") as sess:
        sess.run([info.initializer for info in g2.variables.values()])
        feed = {g2.get_tensor_by_name("x:0"): xv}
        sess.run(g2.get_operation_by_name(train.name), feed)
        assert sess.run(g2.get_tensor_by_name("loss:0"), feed) == expected


def test_save_load_save_gives_the_same_document(tmp_path):
    g1 = gc.Graph()
    with g1.as_default():
        x = gc.placeholder(gc.float32, [None, 3], name="x")
        out = gc.scan(lambda a, e: gc.cond(gc.reduce_sum(e) > 0.0, lambda: a * e, lambda: a - e), x,
                      initializer=gc.ones([3]))
        gc.gradients(gc.reduce_sum(out), [x])   # shared bodies, shared graphs, origins
    gc.save_graph(tmp_path / "a.gcx", g1)
    gc.save_graph(tmp_path / "b.gcx", gc.load_graph(tmp_path / "a.gcx"))
    a, b = (document((tmp_path / name).read_bytes()) for name in ("a.gcx", "b.gcx"))
    assert json.dumps(a["nodes"]) == json.dumps(b["nodes"])


def test_a_graph_without_sub_graphs_is_still_written_as_version_2(tmp_path):
    x = gc.placeholder(gc.float32, [None], name="x")
    gc.identity(x * 2.0)
    gc.save_graph(tmp_path / "plain.gcx")
    assert document((tmp_path / "plain.gcx").read_bytes())["version"] == PLAIN_VERSION


def test_nesting_deeper_than_the_reader_allows_is_refused_when_saving(tmp_path):
    def make(depth: int) -> Callable[..., Any]:
        def body(i, a):
            if depth == 0:
                return i + 1, a + 1.0
            return i + 1, gc.while_loop(lambda j, b: j < 1, make(depth - 1), [gc.constant(0), a])[1]
        return body
    x = gc.placeholder(gc.float32, [], name="x")
    gc.while_loop(lambda i, a: i < 1, make(32), [gc.constant(0), x])
    with pytest.raises(gc.GraphcError, match="nest deeper than 32 levels"):
        gc.save_graph(tmp_path / "deep.gcx")


def test_show_lists_sub_graphs_under_their_node(tmp_path, capsys):
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    gc.scan(lambda a, e: gc.cond(gc.reduce_sum(e) > 0.0, lambda: a + e, lambda: a - e), x,
            initializer=gc.zeros([3]))
    gc.save_graph(tmp_path / "loops.gcx")
    assert main(["show", str(tmp_path / "loops.gcx")]) == 0
    out = capsys.readouterr().out
    assert "in sub-graphs)" in out.splitlines()[0]
    listing = out.split("sub-graphs (loop bodies")[1].splitlines()[1:]
    assert listing[0] == "  scan/While (While)"
    assert listing[1].startswith("    body 'scan/body': 3 args -> 2 results")
    inner = listing.index("      cond/If (If)")   # the cond inside the body, indented under it
    assert listing[inner + 1].startswith("        then_branch 'cond/true': ")
    assert any(line.startswith("        else_branch 'cond/false': ") for line in listing[inner:])

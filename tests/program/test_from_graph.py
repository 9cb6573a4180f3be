"""Building a Program from the user's graph (graphc.program.from_graph): only what the fetches
need, cut at fed tensors; every shape concrete; variables become inputs and new values in the
order the user created reads and assignments; random nodes get run counters."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.program import build_program, needed_nodes


def _kinds(program):
    return [(i.kind, i.key if isinstance(i.key, str) else i.key.name) for i in program.inputs]


def test_only_needed_nodes_and_fed_tensors_cut_the_graph():
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    hidden = gc.tanh(x, name="hidden")
    out = gc.reduce_sum(hidden * 2.0, name="out")
    unused = gc.exp(x, name="unused")
    graph = gc.get_default_graph()
    names = {n.name for n in needed_nodes([out.node], set())}
    assert {"x", "hidden", "out"} <= names and "unused" not in names
    assert "x" not in {n.name for n in needed_nodes([out.node], {hidden})}   # fed: the graph stops there
    program = build_program(graph, [out], [(hidden, gc.float32, (4, 3))])
    assert _kinds(program) == [("feed", "hidden:0")]
    assert "Tanh" not in program.op_counts() and unused.node.type not in program.op_counts()


def test_shapes_become_concrete_and_mismatches_are_found_before_running():
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    y = gc.placeholder(gc.float32, [None, 3], name="y")
    z = x + y
    program = build_program(gc.get_default_graph(), [z], [(x, gc.float32, (5, 3)), (y, gc.float32, (5, 3))])
    assert program.outputs[0].shape == (5, 3)
    with pytest.raises(gc.ShapeError) as info:
        build_program(gc.get_default_graph(), [z], [(x, gc.float32, (5, 3)), (y, gc.float32, (4, 3))])
    assert "test_from_graph.py" in str(info.value)        # the user's line that made the add


def test_variables_read_and_assigned_in_creation_order():
    v = gc.Variable(np.float32(1.0), name="v")
    before = v * 10.0                       # the canonical read: the value the run started from
    step = v.assign_add(2.0)
    with gc.control_dependencies([step]):
        after = v.read_value() * 10.0       # a read created after the assignment sees it
    program = build_program(gc.get_default_graph(), [before, after, step])
    assert _kinds(program) == [("variable", "v")]
    assert [name for name, _ in program.updates] == ["v"]
    sess = gc.Session(backend="numpy")
    sess.run(v.initializer)
    got_before, got_after, _ = sess.run([before, after, step])
    assert (got_before, got_after) == (10.0, 30.0)
    assert sess.run(v) == 3.0


def test_random_nodes_get_a_run_counter_input():
    noise = gc.random_uniform([3], seed=7, name="noise")
    program = build_program(gc.get_default_graph(), [noise * 2.0])
    assert [kind for kind, _ in _kinds(program)] == ["rng"]


def test_the_user_graph_is_never_changed():
    x = gc.placeholder(gc.float32, [2], name="x")
    y = gc.log(1.0 + gc.exp(x))
    graph = gc.get_default_graph()
    before = [(n.name, n.type) for n in graph.get_operations()]
    gc.Session(backend="llvm").run(y, {x: np.zeros(2, np.float32)})   # every pass runs on a copy
    assert [(n.name, n.type) for n in graph.get_operations()] == before

"""Graph, Node, Tensor: naming, scopes, source lines, structural keys, lookups, contexts."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ir.shapes import broadcast_shapes, merge, normalize_axes

TESTED_OPS = {"Placeholder", "Const", "Identity", "NoOp"}


def this_line() -> int:
    import inspect

    return inspect.currentframe().f_back.f_lineno


def test_unique_names_and_tensor_names():
    a = gc.constant(1.0)
    b = gc.constant(2.0)
    c = gc.constant(3.0, name="c")
    c2 = gc.constant(4.0, name="c")
    assert (a.name, b.name) == ("Const:0", "Const_1:0")
    assert (c.name, c2.name) == ("c:0", "c_1:0")
    assert a.op.name == "Const" and a.op.type == "Const" and a.op.outputs == (a,)


def test_name_scopes_nest_and_uniquify():
    with gc.name_scope("layer"):
        a = gc.constant(1.0, name="w")
        with gc.name_scope("inner"):
            b = gc.identity(a, name="out")
    with gc.name_scope("layer"):
        c = gc.constant(1.0, name="w")
    assert a.name == "layer/w:0"
    assert b.name == "layer/inner/out:0"
    assert c.name == "layer_1/w:0"


def test_variable_names_and_pieces():
    with gc.name_scope("dense"):
        w = gc.Variable(np.zeros((2, 3), np.float32), name="kernel")
    assert w.name == "dense/kernel:0"
    assert w.op.type == "VariableV2"
    assert w.initializer.name == "dense/kernel/Assign"
    assert w.initial_value.name == "dense/kernel/initial_value:0"
    g = gc.get_default_graph()
    assert g.get_tensor_by_name("dense/kernel:0") is w.value()
    assert gc.global_variables() == [w] and gc.trainable_variables() == [w]
    frozen = gc.Variable(1.0, trainable=False)
    assert frozen not in gc.trainable_variables() and frozen in gc.global_variables()


def test_source_line_recorded_on_each_node():
    line = this_line(); x = gc.placeholder(gc.float32, [2])  # noqa: E702 - same line on purpose
    y = x * 2.0
    y_line = this_line() - 1
    assert x.op.source.lineno == line
    assert y.op.source.lineno == y_line
    assert y.op.source.filename == __file__
    assert "x * 2.0" in y.op.source.code()


def test_lookup_errors_are_clear():
    g = gc.get_default_graph()
    gc.constant(1.0, name="a")
    with pytest.raises(gc.NotFoundError, match="no operation named 'b'"):
        g.get_operation_by_name("b")
    with pytest.raises(gc.NotFoundError, match="1 outputs, not index 3"):
        g.get_tensor_by_name("a:3")
    with pytest.raises(gc.NotFoundError, match="not a tensor name"):
        g.get_tensor_by_name("a")
    assert g.get_operation_by_name("a").type == "Const"


def test_graphs_are_separate_and_as_default_restores():
    g1, g2 = gc.Graph(), gc.Graph()
    with g1.as_default():
        a = gc.constant(1.0)
        with g2.as_default():
            b = gc.constant(2.0)
        c = gc.constant(3.0)
    assert a.graph is g1 and b.graph is g2 and c.graph is g1
    assert gc.get_default_graph() not in (g1, g2)
    with pytest.raises(gc.GraphcError, match="different graph"):
        a + b


def test_reset_default_graph():
    g = gc.get_default_graph()
    gc.constant(1.0)
    gc.reset_default_graph()
    assert gc.get_default_graph() is not g
    assert gc.get_default_graph().get_operations() == []


def test_control_dependencies_context():
    a = gc.constant(1.0)
    b = gc.constant(2.0)
    with gc.control_dependencies([a]):
        c = gc.identity(b)
        with gc.control_dependencies([b.op]):
            d = gc.identity(b)
        with gc.control_dependencies(None):
            e = gc.identity(b)
    assert c.op.control_inputs == (a.op,)
    assert set(d.op.control_inputs) == {a.op, b.op}
    assert e.op.control_inputs == ()
    grouped = gc.group(c, d.op, [e])
    assert grouped.type == "NoOp" and set(grouped.control_inputs) == {c.op, d.op, e.op}


def test_structural_keys_equal_for_equal_expressions():
    # Keys name input nodes, so equal subexpressions are found bottom-up: equal constants
    # first, then nodes applying the same op to the same inputs.
    x = gc.placeholder(gc.float32, [3])
    two_a, two_b, three = gc.constant(2.0), gc.constant(2.0), gc.constant(3.0)
    assert two_a.op.structural_key == two_b.op.structural_key != three.op.structural_key
    a, b, c = x * two_a, x * two_a, x * three
    assert a.op.structural_key == b.op.structural_key
    assert a.op.structural_key != c.op.structural_key
    assert gc.exp(a).op.structural_key != gc.exp(b).op.structural_key  # until a and b are merged
    # stateful nodes are never merged
    p, q = gc.placeholder(gc.float32, [3]), gc.placeholder(gc.float32, [3])
    assert p.op.structural_key is None and q.op.structural_key is None
    # -0.0 and 0.0 are different constants; NaN equals NaN for merging purposes
    assert gc.constant(0.0).op.structural_key != gc.constant(-0.0).op.structural_key
    assert gc.constant(np.nan).op.structural_key == gc.constant(np.nan).op.structural_key


def test_finalize_forbids_new_nodes():
    g = gc.Graph()
    with g.as_default():
        gc.constant(1.0)
        g.finalize()
        with pytest.raises(gc.GraphcError, match="finalized"):
            gc.constant(2.0)


def test_tensor_is_not_a_python_value():
    x = gc.placeholder(gc.float32, [3])
    with pytest.raises(gc.GraphcError, match="truth value"):
        bool(x)
    with pytest.raises(gc.GraphcError, match="not iterable"):
        list(x)
    with pytest.raises(gc.GraphcError, match="no value until it is run"):
        np.asarray(x)
    assert x == x and x != gc.placeholder(gc.float32, [3])  # identity comparison, hashable
    assert {x: 1}[x] == 1


def test_invalid_names_rejected():
    with pytest.raises(gc.GraphcError, match="invalid node name"):
        gc.constant(1.0, name="bad name!")


def test_dtypes_accept_numpy_and_strings():
    assert gc.as_dtype(np.float32) is gc.float32
    assert gc.as_dtype("float64") is gc.float64
    assert gc.as_dtype(np.dtype("int64")) is gc.int64
    assert gc.as_dtype(bool) is gc.bool and gc.bool == np.bool_
    assert gc.float32 == "float32" and gc.float32 == np.float32
    assert gc.placeholder("int32").dtype is gc.int32
    with pytest.raises(gc.DTypeError, match="no dtype"):
        gc.as_dtype("complex64")
    with pytest.raises(gc.DTypeError):
        gc.constant(np.array(["a"]))


def test_static_shape_helpers():
    assert broadcast_shapes((None, 3), (4, 1)) == (4, 3)
    assert broadcast_shapes((None,), (1,)) == (None,)
    assert broadcast_shapes((2, 3), None) is None
    with pytest.raises(gc.ShapeError, match="cannot broadcast"):
        broadcast_shapes((2, 3), (4, 3))
    assert merge((None, 3), (2, None)) == (2, 3)
    with pytest.raises(gc.ShapeError):
        merge((2,), (3,))
    assert normalize_axes(-1, 3) == (2,)
    with pytest.raises(gc.ShapeError, match="duplicate"):
        normalize_axes((0, -3), 3)


def test_placeholder_shapes():
    assert gc.placeholder(gc.float32).shape is None
    assert gc.placeholder(gc.float32, [None, 3]).shape == (None, 3)
    assert gc.placeholder(gc.float32, [-1, 3]).shape == (None, 3)
    assert gc.placeholder(gc.float32, 5).shape == (5,)
    with pytest.raises(gc.ShapeError):
        gc.placeholder(gc.float32, [2, -4])


def test_unknown_rank_flows_through_and_is_resolved_when_fed():
    x = gc.placeholder(gc.float32)  # unknown rank, TF1 style
    y = gc.reduce_sum(gc.exp(x) * 2.0, axis=-1)
    assert y.shape is None
    out = gc.Session().run(y, {x: np.zeros((2, 3), np.float32)})
    np.testing.assert_allclose(out, [6.0, 6.0])


def test_static_values_known_while_building():
    x = gc.placeholder(gc.float32, [4, 6])
    s = gc.shape(x)
    assert s.static_value.tolist() == [4, 6]
    assert (s[0] * 2).static_value == 8
    assert gc.reshape(x, [s[1], -1]).shape == (6, 4)
    y = gc.placeholder(gc.float32, [None, 6])
    assert gc.shape(y).static_value is None
    assert gc.reshape(y, [gc.shape(y)[0], 2, 3]).shape == (None, 2, 3)

"""Every error path names the op, the node and the user's source line, and leaves the session
usable. Lines are located by the marker comments at the end of the lines that create nodes."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"CheckNumerics", "Placeholder", "Reshape", "Gather", "SparseSoftmaxCrossEntropyWithLogits"}

_SOURCE = open(__file__).read().splitlines()


def line_of(marker: str) -> int:
    hits = [i + 1 for i, text in enumerate(_SOURCE) if text.rstrip().endswith(f"# <{marker}>")]
    assert len(hits) == 1, marker
    return hits[0]


def assert_points_at(err: gc.GraphcError, node_name: str, marker: str) -> None:
    text = str(err)
    assert f"'{node_name}'" in text, text
    assert f"test_errors.py:{line_of(marker)}" in text, text
    assert err.node_name == node_name and err.source.lineno == line_of(marker)


# --------------------------------------------------------------------------- build time
def test_broadcast_mismatch_at_build_time():
    x = gc.placeholder(gc.float32, [None, 3])
    with pytest.raises(gc.ShapeError) as e:
        x + gc.ones([4], name="b")  # <broadcast>
    assert_points_at(e.value, "Add", "broadcast")
    assert "(?, 3)" in str(e.value) and "(4,)" in str(e.value) and "Add" in str(e.value)


def test_matmul_mismatch_names_both_shapes():
    a = gc.placeholder(gc.float32, [8, 3])
    with pytest.raises(gc.ShapeError) as e:
        gc.matmul(a, gc.zeros([4, 2]), name="logits")  # <matmul>
    assert_points_at(e.value, "logits", "matmul")
    assert "(8, 3)" in str(e.value) and "(4, 2)" in str(e.value)


def test_dtype_errors_at_build_time():
    x = gc.placeholder(gc.float32, [2])
    with pytest.raises(gc.DTypeError) as e:
        gc.logical_and(x, x, name="both")  # <logical>
    assert_points_at(e.value, "both", "logical")
    i = gc.placeholder(gc.int32, [2])
    with pytest.raises(gc.DTypeError, match="out of bounds for int32|does not fit in int32"):
        i + 2 ** 40
    v = gc.Variable(np.zeros(2, np.float32), name="v")
    with pytest.raises(gc.DTypeError) as e:
        v.assign(gc.constant([1, 2]))  # <assign>
    assert_points_at(e.value, "v/Assign_1", "assign")  # v/Assign is the initializer
    assert "cast" in str(e.value)


def test_errors_raised_before_a_node_exists_point_at_the_user_line():
    with pytest.raises(gc.GraphcError) as e:
        gc.nn.dropout(gc.ones([3]), rate=1.5)  # <dropout>
    assert f"test_errors.py:{line_of('dropout')}" in str(e.value)


# --------------------------------------------------------------------------- feeds
def test_feed_errors_and_session_keeps_working(backend):
    x = gc.placeholder(gc.float32, [None, 3], name="x")  # <x>
    labels = gc.placeholder(gc.int32, [None], name="labels")  # <labels>
    y = gc.reduce_sum(x, axis=1) + gc.cast(labels, gc.float32)
    good = {x: np.ones((2, 3)), labels: [1, 2]}
    with gc.Session(backend=backend) as sess:
        with pytest.raises(gc.FeedError) as e:
            sess.run(y, {x: np.ones((2, 4)), labels: [1, 2]})
        assert_points_at(e.value, "x", "x")
        assert "(2, 4)" in str(e.value) and "(?, 3)" in str(e.value)
        with pytest.raises(gc.FeedError) as e:
            sess.run(y, {x: np.ones((2, 3))})
        assert_points_at(e.value, "labels", "labels")
        assert "must feed" in str(e.value)
        with pytest.raises(gc.FeedError, match="would truncate") as e:
            sess.run(y, {x: np.ones((2, 3)), labels: np.array([1.5, 2.0])})
        assert_points_at(e.value, "labels", "labels")
        with pytest.raises(gc.FeedError, match="overflows float32"):
            sess.run(y, {x: np.full((2, 3), 1e300), labels: [1, 2]})
        with pytest.raises(gc.FeedError, match="does not fit in int32"):
            sess.run(y, {x: np.ones((2, 3)), labels: np.array([2 ** 40, 1])})
        with pytest.raises(gc.FeedError, match="keys must be tensors"):
            sess.run(y, {3: 1.0})
        with pytest.raises(gc.FeedError, match="names an operation"):
            sess.run(y, {"x": np.ones((1, 3))})
        with pytest.raises(gc.FeedError, match="cannot feed operation"):
            sess.run(y, {x.op: np.ones((1, 3))})
        with pytest.raises(gc.FeedError, match="cannot feed 'nope:0'"):
            sess.run(y, {"nope:0": 1.0})
        with pytest.raises(gc.FeedError, match="graph tensor"):
            sess.run(y, {x: gc.ones([2, 3]), labels: [1, 2]})
        with pytest.raises(gc.FeedError, match="dtype <U1|dtype <U"):
            sess.run(y, {x: np.array([["a", "b", "c"]]), labels: [1]})
        np.testing.assert_allclose(sess.run(y, good), [4.0, 5.0])


# --------------------------------------------------------------------------- compile time
def test_shape_mismatch_hidden_by_unknown_dims_found_when_compiling(backend):
    x = gc.placeholder(gc.float32, [None, None], name="x")
    y = gc.reshape(x, [-1, 4], name="rows")  # <rows>
    with gc.Session(backend=backend) as sess:
        with pytest.raises(gc.ShapeError) as e:
            sess.run(y, {x: np.ones((3, 3))})
        assert_points_at(e.value, "rows", "rows")
        assert "9 elements" in str(e.value)
        assert sess.run(y, {x: np.ones((2, 2))}).shape == (1, 4)


def test_data_dependent_shape_is_a_compile_error(backend):
    n = gc.placeholder(gc.int32, [], name="n")
    z = gc.zeros(gc.stack([n, 2]), name="zz")  # <zeros>
    with gc.Session(backend=backend) as sess:
        with pytest.raises(gc.CompileError) as e:
            sess.run(z, {n: 3})
        assert_points_at(e.value, "zz", "zeros")
        assert "static shapes" in str(e.value)


def test_cuda_backend_without_pycuda_says_what_is_missing(monkeypatch):
    from graphc import backends
    from graphc.runtime import cuda_devices

    monkeypatch.setitem(sys.modules, "pycuda", None)   # as on a machine without PyCUDA
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.delitem(backends._INSTANCES, "cuda", raising=False)
    cuda_devices.device.cache_clear()
    with pytest.raises(gc.BackendUnavailableError, match="backend 'cuda' needs PyCUDA") as info:
        gc.Session(backend="cuda")
    assert "cuda-emulator" in str(info.value)
    cuda_devices.device.cache_clear()


# --------------------------------------------------------------------------- run time
def test_gather_out_of_range_names_node(backend):
    params = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    idx = gc.placeholder(gc.int32, [None])
    out = gc.gather(params, idx, name="lookup")  # <gather>
    with gc.Session(backend=backend) as sess:
        with pytest.raises(gc.InvalidArgumentError) as e:
            sess.run(out, {idx: [0, 2]})
        assert_points_at(e.value, "lookup", "gather")
        assert "indices[1] = 2 is not in [0, 2)" in str(e.value)
        assert sess.run(out, {idx: [1]}).tolist() == [[3.0, 4.0]]


def test_sparse_label_out_of_range(backend):
    logits = gc.constant(np.zeros((2, 3), np.float32))
    labels = gc.placeholder(gc.int64, [2])
    loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, name="xent")  # <xent>
    with gc.Session(backend=backend) as sess:
        with pytest.raises(gc.InvalidArgumentError) as e:
            sess.run(loss, {labels: [0, 3]})
        assert_points_at(e.value, "xent", "xent")
        assert "label value 3 is outside the valid range [0, 3)" in str(e.value)


def test_check_numerics_runs_as_a_control_dependency(backend):
    x = gc.placeholder(gc.float32, [2])
    checked = gc.check_numerics(gc.log(x), "log of input", name="check")  # <check>
    with gc.control_dependencies([checked]):
        out = gc.identity(x * 2.0)
    with gc.Session(backend=backend) as sess:
        with pytest.raises(gc.InvalidArgumentError) as e:
            sess.run(out, {x: [1.0, -1.0]})
        assert_points_at(e.value, "check", "check")
        assert "log of input: tensor had NaN values" in str(e.value)
        assert sess.run(out, {x: [1.0, 2.0]}).tolist() == [2.0, 4.0]


def test_failed_run_leaves_variables_unchanged(backend):
    v = gc.Variable(1.0)
    idx = gc.placeholder(gc.int32, [])
    bump = v.assign_add(gc.gather(gc.constant([1.0, 2.0]), idx))
    with gc.Session(backend=backend) as sess:
        sess.run(v.initializer)
        with pytest.raises(gc.InvalidArgumentError):
            sess.run(bump, {idx: 5})
        assert sess.run(v) == 1.0
        assert sess.run(bump, {idx: 1}) == 3.0


def test_errors_are_builtin_exception_subclasses():
    assert issubclass(gc.ShapeError, ValueError) and issubclass(gc.DTypeError, TypeError)
    assert issubclass(gc.FeedError, ValueError) and issubclass(gc.GraphFileError, ValueError)
    for cls in (gc.ShapeError, gc.DTypeError, gc.FeedError, gc.CompileError, gc.GraphFileError,
                gc.InvalidArgumentError, gc.FailedPreconditionError):
        assert issubclass(cls, gc.GraphcError)

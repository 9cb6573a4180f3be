"""gc.function: positional and keyword arguments, updates (Theano semantics), givens."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"Placeholder", "VariableV2", "Assign"}


def test_positional_keyword_and_output_forms(backend):
    x = gc.placeholder(gc.float32, [None], name="x")
    y = gc.placeholder(gc.float32, [None], name="y")
    single = gc.function([x, y], x * y, backend=backend)
    several = gc.function([x, y], [x + y, x - y], backend=backend)
    nothing = gc.function([x], backend=backend)
    assert single([1.0, 2.0], [3.0, 4.0]).tolist() == [3.0, 8.0]
    assert single(y=[1.0], x=[2.0]).tolist() == [2.0]
    assert [v.tolist() for v in several([1.0], [2.0])] == [[3.0], [-1.0]]
    assert nothing([1.0]) == []
    scalar = gc.function([x], gc.reduce_sum(x), backend=backend)([1.0, 2.0])
    assert isinstance(scalar, np.float32) and scalar == 3.0


def test_argument_errors_name_the_inputs():
    x = gc.placeholder(gc.float32, [2], name="x")
    y = gc.placeholder(gc.float32, [2], name="y")
    f = gc.function([x, y], x + y)
    with pytest.raises(gc.FeedError, match=r"missing a value for input\(s\) y \(x, y\)"):
        f([1.0, 2.0])
    with pytest.raises(gc.FeedError, match="takes 2 arguments"):
        f([1.0, 2.0], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(gc.FeedError, match="no input named 'z'"):
        f([1.0, 2.0], z=[1.0, 2.0])
    with pytest.raises(gc.FeedError, match="got input 'x' twice"):
        f([1.0, 2.0], x=[1.0, 2.0])
    with pytest.raises(gc.FeedError, match=r"shape \(3,\)"):
        f([1.0, 2.0], [1.0, 2.0, 3.0])
    assert f([1.0, 2.0], [3.0, 4.0]).tolist() == [4.0, 6.0]  # still works after errors


def test_updates_use_values_from_before_the_call(backend):
    w = gc.Variable(1.0, name="w")
    x = gc.placeholder(gc.float32, [], name="x")
    out = w * x
    f = gc.function([x], out, updates=[(w, w + x)], backend=backend)
    assert f(2.0) == 2.0        # computed with w = 1, then w becomes 3
    assert f(2.0) == 6.0
    assert f.session.run(w) == 5.0


def test_updates_are_simultaneous(backend):
    a = gc.Variable(1.0, name="a")
    b = gc.Variable(2.0, name="b")
    swap = gc.function([], updates={a: b, b: a}, backend=backend)
    swap()
    assert swap.session.run([a, b]) == [2.0, 1.0]
    swap()
    assert swap.session.run([a, b]) == [1.0, 2.0]


def test_sgd_with_function_updates(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    true_w = np.array([1.0, -2.0, 0.5], np.float32)
    Y = X @ true_w
    x = gc.placeholder(gc.float32, [None, 3])
    y = gc.placeholder(gc.float32, [None])
    w = gc.Variable(np.zeros(3, np.float32))
    err = gc.matmul(x, gc.expand_dims(w, 1))[:, 0] - y
    loss = gc.reduce_mean(err * err)
    grad = 2.0 * gc.reduce_mean(x * gc.expand_dims(err, 1), axis=0)  # hand-written gradient
    train = gc.function([x, y], loss, updates=[(w, w - 0.1 * grad)], backend=backend)
    losses = [float(train(X, Y)) for _ in range(200)]
    assert losses[-1] < 1e-6 < losses[0]
    np.testing.assert_allclose(train.session.run(w), true_w, atol=1e-3)


def test_givens_substitute_tensors(backend):
    x = gc.placeholder(gc.float32, [None], name="x")
    scale = gc.placeholder(gc.float32, [], name="scale")
    y = gc.reduce_sum(x * scale)
    data = gc.constant(np.arange(4, dtype=np.float32))
    f = gc.function([scale], y, givens={x: data}, backend=backend)
    assert f(2.0) == 12.0
    g = gc.function([x], y, givens={scale: 3.0}, backend=backend)
    assert g([1.0, 1.0]) == 6.0
    # the user's graph still means what it meant
    with gc.Session(backend=backend) as sess:
        assert sess.run(y, {x: [1.0], scale: 5.0}) == 5.0


def test_givens_dtype_mismatch_is_an_error():
    x = gc.placeholder(gc.float32, [2])
    with pytest.raises(gc.GraphcError, match="float32 but its replacement is int32"):
        gc.function([], x * 2.0, givens={x: gc.constant([1, 2])})


def test_function_initializes_its_variables_and_shares_a_session():
    v = gc.Variable(3.0)
    w = gc.Variable(v * 2.0)
    f = gc.function([], w + 1.0)
    assert f() == 7.0
    sess = gc.Session()
    sess.run(gc.global_variables_initializer())
    sess.run(v.assign(10.0))
    g = gc.function([], v * 1.0, session=sess)
    assert g() == 10.0 and g.session is sess


def test_update_type_errors_are_found_when_building():
    w = gc.Variable(np.zeros(3, np.float32), name="w")
    x = gc.placeholder(gc.float64, [3])
    with pytest.raises(gc.DTypeError, match="update of variable 'w' is float64"):
        gc.function([x], updates=[(w, x)])
    with pytest.raises(gc.ShapeError, match=r"update of variable 'w' has shape \(4,\)"):
        gc.function([], updates=[(w, gc.zeros([4]))])
    with pytest.raises(gc.GraphcError, match="cannot be a function input"):
        gc.function([w], w * 2.0)
    with pytest.raises(gc.GraphcError, match="pairs"):
        gc.function([], updates=[w])


def test_recompiles_per_shape_and_exposes_program(backend):
    x = gc.placeholder(gc.float32, [None])
    f = gc.function([x], gc.exp(x) * 2.0, backend=backend)
    assert f.program is None
    f(np.zeros(2))
    assert f.program.inputs[0].tensor.shape == (2,)
    f(np.zeros(5))
    assert f.program.inputs[0].tensor.shape == (5,)
    assert f.program.op_counts()["Exp"] == 1


def test_functions_on_one_graph_share_their_variables_as_theano_shared_variables_are():
    """A predict function built after training sees the trained weights (it used to get a
    session of its own and the initial ones: a digits model scored 0.09 instead of 0.89)."""
    rng = np.random.default_rng(0)
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    y = gc.placeholder(gc.float32, [None], name="y")
    w = gc.Variable(np.zeros(3, np.float32), name="w")
    pred = gc.reduce_sum(x * w, axis=1)
    loss = gc.reduce_mean((pred - y) ** 2)
    (g,) = gc.gradients(loss, [w])
    train = gc.function([x, y], loss, updates=[(w, w - 0.1 * g)])
    xs = rng.normal(size=(64, 3)).astype(np.float32)
    target = np.array([1.0, -2.0, 0.5], np.float32)
    for _ in range(300):
        train(xs, xs @ target)
    predict = gc.function([x], pred)
    assert predict.session is train.session
    np.testing.assert_allclose(predict(xs), xs @ target, rtol=1e-3, atol=1e-3)
    reference = gc.function([x], pred, backend="numpy")     # another backend: the same variables
    assert reference.session is not train.session and reference.session._state is train.session._state
    np.testing.assert_allclose(reference(xs), xs @ target, rtol=1e-3, atol=1e-3)
    other = gc.Session()                                   # an explicit session keeps its own store
    apart = gc.function([x], pred, session=other)
    np.testing.assert_array_equal(apart(xs), np.zeros(64, np.float32))
    with gc.Graph().as_default():                          # another graph: another store
        v = gc.Variable(1.0)
        assert gc.function([], v * 1.0).session is not train.session

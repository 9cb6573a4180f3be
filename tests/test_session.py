"""Session.run semantics: fetch structures, feeds, variables, control dependencies, caching."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"Placeholder", "PlaceholderWithDefault", "VariableV2", "ReadVariable", "Assign", "AssignAdd",
              "AssignSub", "NoOp", "Identity", "Const"}


def test_fetch_structures(backend):
    x = gc.placeholder(gc.float32, [2], name="x")
    a, b = x * 2.0, x + 1.0
    Pair = collections.namedtuple("Pair", "first second")
    with gc.Session(backend=backend) as sess:
        feed = {x: [1.0, 2.0]}
        single = sess.run(a, feed)
        assert isinstance(single, np.ndarray) and single.tolist() == [2.0, 4.0]
        lst = sess.run([a, b], feed)
        assert isinstance(lst, list) and [v.tolist() for v in lst] == [[2, 4], [2, 3]]
        tup = sess.run((a, (b, [a])), feed)
        assert isinstance(tup, tuple) and isinstance(tup[1], tuple) and isinstance(tup[1][1], list)
        assert tup[1][1][0].tolist() == [2, 4]
        d = sess.run({"a": a, "nested": {"b": b}}, feed)
        assert d["a"].tolist() == [2, 4] and d["nested"]["b"].tolist() == [2, 3]
        nt = sess.run(Pair(a, b), feed)
        assert isinstance(nt, Pair) and nt.second.tolist() == [2, 3]
        by_name = sess.run(["x:0", a.name], {"x:0": [5.0, 6.0]})
        assert by_name[0].tolist() == [5, 6] and by_name[1].tolist() == [10, 12]
        assert sess.run(gc.no_op()) is None
        same_twice = sess.run([a, a], feed)
        assert same_twice[0].tolist() == same_twice[1].tolist() == [2, 4]


def test_scalar_fetch_is_numpy_scalar_and_results_are_owned(backend):
    x = gc.placeholder(gc.float32, [3])
    s = gc.reduce_sum(x)
    with gc.Session(backend=backend) as sess:
        value = np.array([1.0, 2.0, 3.0], np.float32)
        total = sess.run(s, {x: value})
        assert isinstance(total, np.float32) and total == 6.0
        echoed = sess.run(x, {x: value})
        echoed[0] = 100.0  # the fetched array is the caller's own: the feed is unchanged
        assert value[0] == 1.0
        c = gc.constant([1.0, 2.0])
        got = sess.run(c)
        got[0] = 9.0
        assert sess.run(c).tolist() == [1.0, 2.0]


def test_variables_persist_across_runs_and_sessions_are_separate(backend):
    v = gc.Variable(0.0, name="counter")
    inc = v.assign_add(1.0)
    init = gc.global_variables_initializer()
    s1, s2 = gc.Session(backend=backend), gc.Session(backend=backend)
    s1.run(init)
    s2.run(init)
    for _ in range(3):
        s1.run(inc)
    s2.run(inc)
    assert s1.run(v) == 3.0 and s2.run(v) == 1.0
    s1.run(init)
    assert s1.run(v) == 0.0 and s2.run(v) == 1.0


def test_assign_returns_new_value_and_reads_see_creation_order(backend):
    v = gc.Variable(10.0, name="v")
    doubled = v * 2.0                      # canonical read: before any later assignment
    a = v.assign(5.0)
    after = v.read_value()                 # created after the assignment
    with gc.Session(backend=backend) as sess:
        sess.run(v.initializer)
        got_a, got_doubled, got_after = sess.run([a, doubled, after])
        assert (got_a, got_doubled, got_after) == (5.0, 20.0, 5.0)
        assert sess.run(v) == 5.0
        sess.run(v.initializer)
        assert sess.run(after) == 10.0     # without the assignment in the run: the stored value


def test_assign_sub_and_broadcasting_assign_add(backend):
    v = gc.Variable(np.ones((2, 3), np.float32))
    with gc.Session(backend=backend) as sess:
        sess.run(v.initializer)
        sess.run(v.assign_add([1.0, 2.0, 3.0]))
        sess.run(v.assign_sub(0.5))
        np.testing.assert_allclose(sess.run(v), [[1.5, 2.5, 3.5]] * 2)


def test_control_dependencies_order_reads_after_updates(backend):
    v = gc.Variable(1.0)
    update = v.assign_add(1.0)
    with gc.control_dependencies([update]):
        seen_after = gc.identity(v)        # a fresh read inside the block (resource semantics)
        also_after = v * 10.0
    with gc.Session(backend=backend) as sess:
        sess.run(v.initializer)
        assert sess.run([seen_after, also_after]) == [2.0, 20.0]
        assert sess.run(v) == 2.0
        assert sess.run(seen_after) == 3.0  # the control dependency runs the update again


def test_control_dependency_on_op_runs_it(backend):
    v = gc.Variable(0.0)
    step = v.assign_add(1.0)
    with gc.control_dependencies([step.op]):
        marker = gc.no_op()
    train = gc.group(marker)
    with gc.Session(backend=backend) as sess:
        sess.run(v.initializer)
        sess.run(train)
        sess.run(train)
        assert sess.run(v) == 2.0


def test_two_assignments_in_one_run_apply_in_creation_order(backend):
    v = gc.Variable(1.0)
    first = v.assign_add(2.0)
    second = v.assign(v.read_value() * 10.0)   # created after `first`: sees 3
    with gc.Session(backend=backend) as sess:
        sess.run(v.initializer)
        assert sess.run([second, first]) == [30.0, 3.0]
        assert sess.run(v) == 30.0


def test_initializer_order_between_dependent_variables(backend):
    v1 = gc.Variable(3.0, name="v1")
    v2 = gc.Variable(v1 * 2.0, name="v2")
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        assert sess.run([v1, v2]) == [3.0, 6.0]
        sess.run(v1.assign(5.0))
        sess.run(v2.initializer)                 # v1 already initialized: uses its current value
        assert sess.run(v2) == 10.0
    with gc.Session(backend=backend) as fresh:
        with pytest.raises(gc.FailedPreconditionError, match="'v1' is used before it was initialized"):
            fresh.run(v2.initializer)


def test_uninitialized_variable_error_then_session_keeps_working(backend):
    w = gc.Variable([1.0, 2.0], name="weights")
    y = w * 2.0
    with gc.Session(backend=backend) as sess:
        with pytest.raises(gc.FailedPreconditionError) as err:
            sess.run(y)
        assert "weights" in str(err.value) and "global_variables_initializer" in str(err.value)
        sess.run(gc.global_variables_initializer())
        assert sess.run(y).tolist() == [2.0, 4.0]


def test_feeding_intermediate_tensors_and_variables(backend):
    x = gc.placeholder(gc.float32, [], name="x")
    y = x * 2.0
    z = y + 1.0
    v = gc.Variable(4.0)
    w = v * 3.0
    with gc.Session(backend=backend) as sess:
        assert sess.run(z, {y: 10.0}) == 11.0         # x is not needed
        assert sess.run(w, {v: 1.0}) == 3.0           # no initialization needed when fed
        assert sess.run([y, z], {x: 1.0, y: 7.0}) == [7.0, 8.0]  # a fed tensor's value wins


def test_placeholder_with_default(backend):
    flag = gc.placeholder_with_default(False, [], name="training")
    x = gc.constant([1.0, 2.0])
    y = gc.where(flag, x * 0.0, x)
    with gc.Session(backend=backend) as sess:
        assert sess.run(y).tolist() == [1.0, 2.0]
        assert sess.run(y, {flag: True}).tolist() == [0.0, 0.0]


def test_eval_and_run_with_default_session(backend):
    v = gc.Variable(2.0)
    y = v * 3.0
    with pytest.raises(gc.GraphcError, match="needs a session"):
        y.eval()
    with gc.Session(backend=backend) as sess:
        v.initializer.run()
        assert y.eval() == 6.0
        assert v.eval() == 2.0
        assert y.eval(session=sess) == 6.0
    other = gc.Session(backend=backend)
    with other.as_default():
        gc.global_variables_initializer().run()
        assert y.eval() == 6.0


def test_variable_load_and_value(backend):
    v = gc.Variable(np.zeros(3, np.float32), name="v")
    with gc.Session(backend=backend) as sess:
        v.load([1.0, 2.0, 3.0], sess)
        assert sess.run(v * 2.0).tolist() == [2.0, 4.0, 6.0]
        assert sess.variable_value("v").tolist() == [1.0, 2.0, 3.0]
        with pytest.raises(gc.FeedError, match="shape"):
            v.load([1.0, 2.0], sess)


def test_compiled_runs_are_cached_per_feed_shape(backend):
    x = gc.placeholder(gc.float32, [None], name="x")
    y = x * 2.0
    with gc.Session(backend=backend) as sess:
        sess.run(y, {x: np.ones(3)})
        sess.run(y, {x: np.zeros(3)})
        assert len(sess._cache) == 1
        sess.run(y, {x: np.ones(4)})
        assert len(sess._cache) == 2
        first = sess.compile([y], {x: np.ones(3, np.float32)})
        assert first is sess.compile([y], {x: np.ones(3, np.float32)})
        assert [i.tensor.shape for i in first.program.inputs] == [(3,)]


def test_make_callable(backend):
    x = gc.placeholder(gc.float32, [None])
    y = gc.placeholder(gc.float32, [None])
    with gc.Session(backend=backend) as sess:
        f = sess.make_callable([x + y, {"p": x * y}], [x, y])
        s, d = f([1.0, 2.0], [3.0, 4.0])
        assert s.tolist() == [4, 6] and d["p"].tolist() == [3, 8]
        with pytest.raises(gc.GraphcError, match="takes 2 values"):
            f([1.0])


def test_random_draws_advance_per_run_and_per_session(backend):
    r = gc.random_uniform([4], seed=7)
    with gc.Session(backend=backend) as s1, gc.Session(backend=backend) as s2:
        a1, a2 = s1.run(r), s1.run(r)
        b1 = s2.run(r)
        assert not np.array_equal(a1, a2)
        np.testing.assert_array_equal(a1, b1)
        pair = s1.run([r, r])
        np.testing.assert_array_equal(pair[0], pair[1])  # one draw per run


def test_train_step_loss_uses_values_before_the_update(backend):
    w = gc.Variable(1.0)
    loss = w * w
    step = w.assign_sub(0.5)
    with gc.Session(backend=backend) as sess:
        sess.run(w.initializer)
        assert sess.run([step, loss]) == [0.5, 1.0]
        assert sess.run(loss) == 0.25


def test_closed_session_refuses_to_run():
    sess = gc.Session()
    sess.close()
    with pytest.raises(gc.GraphcError, match="closed"):
        sess.run(gc.constant(1.0))


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(gc.CompileError, match="unknown backend 'tpu'; available: 'cuda', 'cuda-emulator', 'llvm', 'numpy'"):
        gc.Session(backend="tpu")


def test_fetch_errors():
    with gc.Session() as sess:
        with pytest.raises(gc.GraphcError, match="cannot fetch 3"):
            sess.run(3)
        with pytest.raises(gc.GraphcError, match="no operation named 'nothing'"):
            sess.run("nothing:0")
        other = gc.Graph()
        with other.as_default():
            foreign = gc.constant(1.0)
        with pytest.raises(gc.GraphcError, match="different graph"):
            sess.run(foreign)

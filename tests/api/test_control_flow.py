"""Loops and branches: gc.while_loop, gc.cond, gc.scan, gc.map_fn, gc.foldl, gc.foldr.

Values are checked against NumPy computed directly, on the reference interpreter and on the
compiled llvm backend; gradients against the same model unrolled in Python and against finite
differences; bad input against the errors it must raise (naming the loop and the user's line).
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"While", "If"}
BACKENDS = ["numpy", "llvm"]


def run(fetches, feed=None, backend="llvm", graph=None):
    with gc.Session(graph=graph, backend=backend) as s:
        s.run(gc.global_variables_initializer())
        return s.run(fetches, feed or {})


# --------------------------------------------------------------------------- while_loop
@pytest.mark.parametrize("backend", BACKENDS)
def test_while_loop_runs_a_fed_number_of_times(backend):
    with gc.Graph().as_default() as g:
        n = gc.placeholder(gc.int32, [])
        x = gc.placeholder(gc.float32, [3])
        i, acc = gc.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 2.0 + x), [0, gc.zeros([3])])
        for count in (0, 1, 5):
            got_i, got = run([i, acc], {n: count, x: [1, 2, 3]}, backend, g)
            expect = np.zeros(3, np.float32)
            for _ in range(count):
                expect = expect * 2 + np.array([1, 2, 3], np.float32)
            assert got_i == count
            np.testing.assert_allclose(got, expect)


@pytest.mark.parametrize("backend", BACKENDS)
def test_while_loop_stops_at_maximum_iterations(backend):
    with gc.Graph().as_default() as g:
        i = gc.while_loop(lambda i: i < 1000, lambda i: i + 1, [0], maximum_iterations=7)
        assert run(i, backend=backend, graph=g) == 7


@pytest.mark.parametrize("backend", BACKENDS)
def test_while_loop_nested_structures_and_swaps(backend):
    Pair = collections.namedtuple("Pair", "a b")
    with gc.Graph().as_default() as g:
        start = {"n": gc.constant(0), "p": Pair(gc.constant([1.0, 2.0]), gc.constant([3.0, 4.0]))}

        def body(v):   # swaps a and b each iteration: the loop must not overwrite one with the other
            return {"n": v["n"] + 1, "p": Pair(v["p"].b, v["p"].a + 1.0)}

        out = gc.while_loop(lambda v: v["n"] < 3, body, start)
        assert isinstance(out["p"], Pair)
        n, a, b = run([out["n"], out["p"].a, out["p"].b], backend=backend, graph=g)
    a_ref, b_ref = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    for _ in range(3):
        a_ref, b_ref = b_ref, a_ref + 1
    assert n == 3
    np.testing.assert_allclose(a, a_ref)
    np.testing.assert_allclose(b, b_ref)


def test_while_loop_single_element_list_unpacks_unless_asked():
    with gc.Graph().as_default():
        assert isinstance(gc.while_loop(lambda i: i < 3, lambda i: i + 1, [0]), gc.Tensor)
        same = gc.while_loop(lambda i: i < 3, lambda i: [i + 1], [0], return_same_structure=True)
        assert isinstance(same, list) and len(same) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_loops(backend):
    with gc.Graph().as_default() as g:
        m = gc.placeholder(gc.int32, [])

        def outer(i, total):
            inner = gc.while_loop(lambda j, s: j < i, lambda j, s: (j + 1, s + gc.cast(j, gc.float32)), [0, 0.0])
            return i + 1, total + inner[1]

        _, total = gc.while_loop(lambda i, t: i < m, outer, [0, 0.0])
        got = run(total, {m: 6}, backend, g)
    assert got == sum(j for i in range(6) for j in range(i))


# --------------------------------------------------------------------------- scan family
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_recurrence(backend, reverse):
    rng = np.random.default_rng(0)
    w = (rng.normal(size=(4, 4)) * 0.5).astype(np.float32)
    xs_v = rng.normal(size=(6, 2, 4)).astype(np.float32)
    h0_v = rng.normal(size=(2, 4)).astype(np.float32)
    with gc.Graph().as_default() as g:
        xs = gc.placeholder(gc.float32, [None, 2, 4])   # the length is known only when fed
        h0 = gc.placeholder(gc.float32, [2, 4])
        hs = gc.scan(lambda h, x: gc.tanh(h @ gc.constant(w) + x), xs, initializer=h0, reverse=reverse)
        got = run(hs, {xs: xs_v, h0: h0_v}, backend, g)
    expect = np.zeros_like(xs_v)
    h = h0_v
    for t in (reversed(range(6)) if reverse else range(6)):
        h = np.tanh(h @ w + xs_v[t])
        expect[t] = h
    np.testing.assert_allclose(got, expect, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_without_initializer_and_nested_elems(backend):
    a = np.arange(5, dtype=np.float32)
    b = np.arange(5, dtype=np.float32) * 10
    with gc.Graph().as_default() as g:
        sums = gc.scan(lambda acc, e: acc + e, gc.constant(a))
        both = gc.scan(lambda acc, e: (acc[0] + e["x"], acc[1] * 0.5 + e["y"]),
                       {"x": gc.constant(a), "y": gc.constant(b)}, initializer=(gc.constant(0.0), gc.constant(1.0)))
        got_sums, got_x, got_y = run([sums, both[0], both[1]], backend=backend, graph=g)
    np.testing.assert_allclose(got_sums, np.cumsum(a))
    np.testing.assert_allclose(got_x, np.cumsum(a))
    y, expect_y = 1.0, []
    for v in b:
        y = y * 0.5 + v
        expect_y.append(y)
    np.testing.assert_allclose(got_y, expect_y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_map_fn_foldl_foldr(backend):
    v = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    with gc.Graph().as_default() as g:
        x = gc.constant(v)
        squares = gc.map_fn(lambda e: e * e, x)
        pairs = gc.map_fn(lambda e: (e + 1.0, gc.cast(e, gc.int32)), x, dtype=(gc.float32, gc.int32))
        left = gc.foldl(lambda acc, e: acc * 2.0 + e, x, initializer=gc.constant(0.0))
        right = gc.foldr(lambda acc, e: acc * 2.0 + e, x, initializer=gc.constant(0.0))
        first = gc.foldl(lambda acc, e: acc - e, x)
        got = run([squares, pairs[0], pairs[1], left, right, first], backend=backend, graph=g)
    np.testing.assert_allclose(got[0], v * v)
    np.testing.assert_allclose(got[1], v + 1)
    np.testing.assert_array_equal(got[2], v.astype(np.int32))
    assert got[3] == ((1 * 2 + 2) * 2 + 3) * 2 + 4
    assert got[4] == ((4 * 2 + 3) * 2 + 2) * 2 + 1
    assert got[5] == 1 - 2 - 3 - 4


def test_loop_graph_does_not_grow_with_the_trip_count():
    sizes = []
    for length in (5, 200):
        with gc.Graph().as_default() as g:
            xs = gc.placeholder(gc.float32, [length, 3])
            w = gc.Variable(np.eye(3, dtype=np.float32))
            hs = gc.scan(lambda h, x: gc.tanh(h @ w + x), xs, initializer=gc.zeros([3]))
            loss = gc.reduce_sum(hs)
            gc.gradients(loss, [w])
            sizes.append(len(g.get_operations()))
    assert sizes[0] == sizes[1]


# --------------------------------------------------------------------------- cond
@pytest.mark.parametrize("backend", BACKENDS)
def test_cond_runs_only_the_taken_branch(backend):
    with gc.Graph().as_default() as g:
        p = gc.placeholder(gc.bool, [])
        x = gc.placeholder(gc.float32, [2])
        # the false branch fails its check when it runs; the true branch is fine
        out = gc.cond(p, lambda: x * 2.0, lambda: gc.check_numerics(gc.log(x - 10.0), "false branch ran"))
        np.testing.assert_allclose(run(out, {p: True, x: [1.0, 2.0]}, backend, g), [2.0, 4.0])
        with pytest.raises(gc.InvalidArgumentError, match="false branch ran"):
            run(out, {p: False, x: [1.0, 2.0]}, backend, g)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cond_structures(backend):
    with gc.Graph().as_default() as g:
        p = gc.placeholder(gc.bool, [])
        a = gc.constant([1.0, 2.0])
        out = gc.cond(p, lambda: {"s": a + 1.0, "n": gc.constant(1)}, lambda: {"s": a * 3.0, "n": gc.constant(2)})
        single = gc.cond(p, lambda: [a], lambda: [a * 0.0])
        assert isinstance(single, gc.Tensor)
        yes = run([out["s"], out["n"]], {p: True}, backend, g)
        no = run([out["s"], out["n"]], {p: False}, backend, g)
    np.testing.assert_allclose(yes[0], [2.0, 3.0])
    assert yes[1] == 1 and no[1] == 2
    np.testing.assert_allclose(no[0], [3.0, 6.0])


# --------------------------------------------------------------------------- gradients
def _rnn(xs, h0, w, unrolled, length):
    if not unrolled:
        return gc.scan(lambda h, x: gc.tanh(h @ w + x), xs, initializer=h0)
    h, outs = h0, []
    for t in range(length):
        h = gc.tanh(h @ w + xs[t])
        outs.append(h)
    return gc.stack(outs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_gradients_equal_the_unrolled_graph(backend):
    rng = np.random.default_rng(1)
    feed_v = {"xs": rng.normal(size=(5, 2, 3)), "h0": rng.normal(size=(2, 3))}
    results = []
    for unrolled in (False, True):
        with gc.Graph().as_default() as g:
            xs = gc.placeholder(gc.float64, [5, 2, 3])
            h0 = gc.placeholder(gc.float64, [2, 3])
            w = gc.Variable(np.random.default_rng(2).normal(size=(3, 3)) * 0.5)
            hs = _rnn(xs, h0, w, unrolled, 5)
            loss = gc.reduce_sum(hs * hs) + gc.reduce_sum(hs[-1] * 3.0)
            grads = gc.gradients(loss, [w, xs, h0])
            results.append(run([loss] + grads, {xs: feed_v["xs"], h0: feed_v["h0"]}, backend, g))
    for looped, unrolled in zip(*results):
        np.testing.assert_allclose(looped, unrolled, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_while_gradient_with_fed_trip_count(backend):
    rng = np.random.default_rng(3)
    a_v, w_v = rng.normal(size=3), rng.normal(size=3)
    with gc.Graph().as_default() as g:
        n = gc.placeholder(gc.int32, [])
        a = gc.placeholder(gc.float64, [3])
        w = gc.constant(w_v)
        _, y = gc.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, gc.sin(v) * w), [0, a], maximum_iterations=10)
        (g_loop,) = gc.gradients(gc.reduce_sum(y * y), [a])
        for count in (0, 3, 10, 12):
            got = run(g_loop, {n: count, a: a_v}, backend, g)
            v, dv = a_v.copy(), np.eye(3)
            for _ in range(min(count, 10)):
                dv = np.diag(np.cos(v) * w_v) @ dv
                v = np.sin(v) * w_v
            np.testing.assert_allclose(got, 2 * v @ dv, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cond_gradient_is_the_taken_branch_gradient(backend):
    with gc.Graph().as_default() as g:
        p = gc.placeholder(gc.bool, [])
        x = gc.placeholder(gc.float64, [3])
        y = gc.cond(p, lambda: gc.reduce_sum(gc.exp(x)), lambda: gc.reduce_sum(x * x * x))
        (dx,) = gc.gradients(y, [x])
        v = np.array([0.5, -1.0, 2.0])
        np.testing.assert_allclose(run(dx, {p: True, x: v}, backend, g), np.exp(v))
        np.testing.assert_allclose(run(dx, {p: False, x: v}, backend, g), 3 * v * v)


def test_finite_differences_through_loops_and_branches():
    rng = np.random.default_rng(4)

    def model(xs, h0, w):
        hs = gc.scan(lambda h, x: gc.tanh(h @ w + x), xs, initializer=h0, reverse=True)
        total = gc.foldl(lambda acc, h: acc + gc.reduce_sum(h * h), hs, initializer=gc.constant(0.0, gc.float64))
        _, grown = gc.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, gc.sin(v) + v * 0.5), [0, h0])
        picked = gc.cond(total > 1.0, lambda: gc.reduce_sum(grown * w[0]), lambda: gc.reduce_sum(grown))
        return total + picked + gc.reduce_sum(gc.map_fn(lambda r: gc.reduce_max(r), w))

    worst = gc.testing.check_gradients(model, [rng.normal(size=(4, 2, 3)), rng.normal(size=(2, 3)),
                                               rng.normal(size=(3, 3)) * 0.5], backend="numpy")
    assert worst <= 1.0


def test_second_order_gradient_through_scan():
    rng = np.random.default_rng(5)
    v = rng.normal(size=3)
    with gc.Graph().as_default() as g:
        x = gc.placeholder(gc.float64, [3])
        ys = gc.scan(lambda acc, e: gc.sin(acc) * e, gc.stack([x, x * 2.0, x]), initializer=gc.ones([3], gc.float64))
        y = gc.reduce_sum(ys[-1])
        (dx,) = gc.gradients(y, [x])
        (ddx,) = gc.gradients(gc.reduce_sum(dx), [x])
        # the same unrolled
        acc = gc.ones([3], gc.float64)
        for e in (x, x * 2.0, x):
            acc = gc.sin(acc) * e
        (ux,) = gc.gradients(gc.reduce_sum(acc), [x])
        (uxx,) = gc.gradients(gc.reduce_sum(ux), [x])
        for backend in BACKENDS:
            got = run([dx, ddx], {x: v}, backend, g)
            ref = run([ux, uxx], {x: v}, "numpy", g)
            for a, b in zip(got, ref):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_through_scan_matches_the_reference(backend):
    rng = np.random.default_rng(6)
    xs_v = rng.normal(size=(7, 4, 3)).astype(np.float32)
    with gc.Graph().as_default() as g:
        xs = gc.placeholder(gc.float32, [7, 4, 3])
        w = gc.Variable((rng.normal(size=(3, 3)) * 0.4).astype(np.float32))
        u = gc.Variable((rng.normal(size=(3, 3)) * 0.4).astype(np.float32))
        hs = gc.scan(lambda h, x: gc.tanh(h @ w + x @ u), xs, initializer=gc.zeros([4, 3]))
        loss = gc.reduce_mean(gc.square(hs - 0.3))
        train = gc.train.AdamOptimizer(0.05).minimize(loss)
        losses = []
        with gc.Session(backend=backend) as s:
            s.run(gc.global_variables_initializer())
            for _ in range(15):
                losses.append(s.run([train, loss], {xs: xs_v})[1])
    assert losses[-1] < losses[0] * 0.7
    if backend == "llvm":
        with gc.Session(backend="numpy", graph=g) as s:
            s.run(gc.global_variables_initializer())
            ref = [s.run([train, loss], {xs: xs_v})[1] for _ in range(15)]
        np.testing.assert_allclose(losses, ref, rtol=1e-4)


# --------------------------------------------------------------------------- bad input
def test_body_changing_a_dtype_names_the_loop_and_the_line():
    with gc.Graph().as_default():
        with pytest.raises(gc.DTypeError) as info:
            gc.while_loop(lambda i: i < 3, lambda i: gc.cast(i, gc.float32), [0])   # bad-dtype-line
    err = info.value
    assert err.op_type == "While" and "while" in err.node_name
    assert "int32 into float32" in str(err)
    assert "bad-dtype-line" in str(err)


def test_body_changing_a_shape_needs_an_invariant():
    with gc.Graph().as_default():
        x = gc.zeros([2])
        with pytest.raises(gc.ShapeError, match="changes the shape of loop value 1") as info:
            gc.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, gc.concat([v, v], 0)), [0, x])  # bad-shape-line
        assert "bad-shape-line" in str(info.value)
        # with an invariant the graph builds; its shape along that axis is unknown
        _, grown = gc.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, gc.concat([v, v], 0)), [0, x],
                                 shape_invariants=[gc.constant(0).shape, [None]])
        assert grown.shape == (None,)


def test_bad_predicates_and_branches():
    with gc.Graph().as_default():
        with pytest.raises(gc.DTypeError, match="one bool scalar"):
            gc.while_loop(lambda i: i, lambda i: i + 1, [0])
        with pytest.raises(gc.DTypeError, match="bool scalar"):
            gc.while_loop(lambda i: gc.stack([i < 3, i < 4]), lambda i: i + 1, [0])
        with pytest.raises(gc.DTypeError, match="bool scalar"):
            gc.cond(gc.constant(1.0), lambda: 1.0, lambda: 2.0)
        p = gc.placeholder(gc.bool, [])
        with pytest.raises(gc.DTypeError, match="float32 and int32") as info:
            gc.cond(p, lambda: gc.constant(1.0), lambda: gc.constant(1))   # bad-branch-line
        assert info.value.op_type == "If" and "bad-branch-line" in str(info.value)
        with pytest.raises(gc.ShapeError, match="different structures"):
            gc.cond(p, lambda: (gc.constant(1.0), gc.constant(2.0)), lambda: gc.constant(1.0))
        with pytest.raises(gc.ShapeError, match="different structure"):
            gc.while_loop(lambda a, b: a < 3, lambda a, b: a + 1, [0, 1])


def test_state_inside_a_body_is_refused_clearly():
    with gc.Graph().as_default():
        v = gc.Variable(1.0)
        with pytest.raises(gc.GraphcError, match="create variables before the loop"):
            gc.while_loop(lambda i: i < 3, lambda i: i + gc.cast(gc.Variable(2.0), gc.int32), [0])
        with pytest.raises(gc.GraphcError, match="assigning a variable inside a loop body"):
            gc.while_loop(lambda i: i < 3, lambda i: (i + 1) + gc.cast(v.assign(2.0), gc.int32) * 0, [0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_inside_a_body_name_the_body_node(backend):
    with gc.Graph().as_default() as g:
        xs = gc.placeholder(gc.float32, [3])
        out = gc.map_fn(lambda e: gc.check_numerics(gc.log(e), "log of the element"), xs)  # body-node-line
        with pytest.raises(gc.InvalidArgumentError, match="log of the element") as info:
            run(out, {xs: [1.0, -1.0, 2.0]}, backend, g)
    assert "body-node-line" in str(info.value)


def test_a_shape_that_really_changes_is_a_compile_error():
    with gc.Graph().as_default() as g:
        _, grown = gc.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, gc.concat([v, v], 0)), [0, gc.zeros([2])],
                                 shape_invariants=[gc.constant(0).shape, [None]])
        for backend in BACKENDS:
            with pytest.raises(gc.ShapeError, match="keeps one shape while the loop runs"):
                run(grown, backend=backend, graph=g)

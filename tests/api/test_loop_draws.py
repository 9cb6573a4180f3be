"""Random draws inside loop bodies and branches (gc.random_uniform / random_normal / dropout in
an RNN cell): each iteration and each run draws anew, a draw's counter being the program's run
counter (a RunCounter node the session advances) mixed with the iteration index; the same
numbers on every backend; gradients see the values the forward loop drew (also when the
backward pass recomputes a loop without a bound); a draw whose shape is unknown while building
is a clear error."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"RunCounter", "RandomUniform", "RandomStandardNormal", "While", "If"}
BACKENDS = ["numpy", "llvm", pytest.param("cuda-emulator", marks=pytest.mark.skipif(
    shutil.which("g++") is None, reason="the CUDA emulator needs g++"))]


def _masked_sum():
    x = gc.placeholder(gc.float32, [6, 4], name="x")
    w = gc.placeholder(gc.float32, [], name="w")

    def step(acc, x_t):
        mask = gc.cast(gc.random_uniform([4], seed=3) < 0.5, gc.float32)
        return acc[0] + x_t * w * mask, mask

    totals, masks = gc.scan(step, x, initializer=(gc.zeros([4]), gc.zeros([4])))
    (gw,) = gc.gradients(gc.reduce_sum(totals[-1]), [w])
    feeds = {x: np.random.default_rng(0).random((6, 4)).astype(np.float32), w: np.float32(2.0)}
    return x, totals, masks, gw, feeds


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_iteration_and_each_run_draws_anew_and_gradients_use_the_draws(backend):
    x, totals, masks, gw, feeds = _masked_sum()
    sess = gc.Session(backend=backend)
    first, grad, total = sess.run([masks, gw, totals], feeds)
    second = sess.run(masks, feeds)
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert len({tuple(row) for row in first}) > 1              # rows (iterations) differ
    assert not np.array_equal(first, second)                   # runs differ
    np.testing.assert_allclose(grad, np.sum(feeds[x] * first), rtol=1e-5)
    np.testing.assert_allclose(total[-1], np.sum(feeds[x] * 2.0 * first, 0), rtol=1e-5)
    reference = gc.Session(backend="numpy").run(masks, feeds)  # the same numbers on every backend
    np.testing.assert_array_equal(first, reference)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_loop_without_a_bound_recomputes_the_same_draws_for_its_gradient(backend):
    n = gc.placeholder(gc.int32, [])
    v0 = gc.placeholder(gc.float32, [3])

    def body(i, v, product):
        u = gc.random_uniform([3])
        return i + 1, v * (1.0 + u), product * (1.0 + u)

    _, v, product = gc.while_loop(lambda i, v, p: i < n, body, [0, v0, gc.ones([3])])
    (g,) = gc.gradients(gc.reduce_sum(v), [v0])
    grad, prod = gc.Session(backend=backend).run([g, product], {n: 5, v0: np.array([1.0, 2.0, 3.0], np.float32)})
    np.testing.assert_allclose(grad, prod, rtol=1e-5)          # d v / d v0 = prod(1 + u_i)
    assert np.all(prod > 1.0)


def test_nested_loops_and_branches_draw_independently():
    x = gc.placeholder(gc.float32, [3, 2])
    nested = gc.map_fn(lambda row: gc.map_fn(lambda e: e + gc.random_normal([]), row), x)
    branch = gc.cond(gc.reduce_sum(x) > -1.0, lambda: gc.random_uniform([4]), lambda: gc.zeros([4]))
    got = gc.Session(backend="llvm").run([nested, branch], {x: np.zeros((3, 2), np.float32)})
    assert len(np.unique(got[0])) == 6
    assert np.all((got[1] >= 0.0) & (got[1] < 1.0)) and len(np.unique(got[1])) == 4


def test_dropout_inside_an_rnn_cell_trains():
    """A cell with dropout on its input, as TF1's DropoutWrapper applies it: runs and
    differentiates on llvm, and the dropped units change from step to step."""
    x = gc.placeholder(gc.float32, [4, 5, 3])
    cell = gc.nn.rnn_cell.GRUCell(6, seed=1)

    class Dropped:
        state_size, output_size, built = cell.state_size, cell.output_size, True

        def zero_state(self, batch, dtype):
            return cell.zero_state(batch, dtype)

        def build(self, depth, dtype):
            cell.build(depth, dtype)

        def __call__(self, x_t, state):
            return cell(gc.nn.dropout(x_t, rate=0.5, seed=2), state)

    cell.build(3, gc.float32)
    outputs, _ = gc.nn.dynamic_rnn(Dropped(), x, dtype=gc.float32)
    loss = gc.reduce_sum(outputs ** 2)
    grads = gc.gradients(loss, cell.trainable_variables if hasattr(cell, "trainable_variables") else
                         [v for v in gc.global_variables()])
    sess = gc.Session()
    sess.run(gc.global_variables_initializer())
    value = np.ones((4, 5, 3), np.float32)
    a = sess.run([loss] + grads, {x: value})
    b = sess.run(loss, {x: value})
    assert np.isfinite(a[0]) and all(np.all(np.isfinite(g)) for g in a[1:]) and a[0] != b


def test_a_draw_of_unknown_shape_inside_a_body_is_a_clear_error():
    x = gc.placeholder(gc.float32, [None, 3])
    with pytest.raises(gc.GraphcError, match="needs a shape known while building"):
        gc.map_fn(lambda row: row + gc.random_uniform(gc.shape(x)[:1]), x)

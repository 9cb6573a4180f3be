"""Loops and branches on the CUDA backend (graphc.runtime.cuda_control: the host walks the
iterations, the body's kernels are compiled once): values and gradients against the NumPy
reference with no passes, in the CUDA emulator (CI) and on a GPU (marked gpu)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"While", "If"}
CUDA = [pytest.param("cuda-emulator", marks=pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")),
        pytest.param("cuda", marks=pytest.mark.gpu)]
RNG = np.random.default_rng(17)


def _agree(fetches, feeds, backend, rtol=1e-4):
    want = gc.Session(backend="numpy", pipeline=None).run(fetches, feeds)
    got = gc.Session(backend=backend).run(fetches, feeds)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=rtol, atol=1e-5)
    return got


@pytest.mark.parametrize("backend", CUDA)
def test_an_rnn_scan_and_its_gradients(backend):
    x = gc.placeholder(gc.float32, [7, 4, 3], name="x")
    w = gc.placeholder(gc.float32, [3 + 5, 5], name="w")
    hs = gc.scan(lambda h, x_t: gc.tanh(gc.matmul(gc.concat([x_t, h], 1), w)), x, initializer=gc.zeros([4, 5]))
    loss = gc.reduce_sum(hs[-1] ** 2) + gc.reduce_mean(hs)
    feeds = {x: RNG.normal(size=(7, 4, 3)).astype(np.float32), w: (0.5 * RNG.normal(size=(8, 5))).astype(np.float32)}
    _agree([hs, loss] + gc.gradients(loss, [w, x]), feeds, backend)


@pytest.mark.parametrize("backend", CUDA)
def test_a_while_loop_stops_on_its_condition_or_its_bound(backend):
    limit = gc.placeholder(gc.float32, [], name="limit")
    i, v = gc.while_loop(lambda i, v: gc.reduce_sum(v) < limit, lambda i, v: (i + 1, v * 1.5 + 0.25),
                         [0, gc.ones([3])], maximum_iterations=12)
    for bound in (2.0, 40.0, 1e9):   # stops at once, after some iterations, at maximum_iterations
        _agree([i, v], {limit: np.float32(bound)}, backend)


@pytest.mark.parametrize("backend", CUDA)
def test_cond_runs_the_taken_branch(backend):
    x = gc.placeholder(gc.float32, [6], name="x")
    y = gc.cond(gc.reduce_sum(x) > 0.0, lambda: gc.exp(x) * 2.0, lambda: x - gc.reduce_max(x))
    (gx,) = gc.gradients(gc.reduce_sum(y * y), [x])
    for sign in (1.0, -1.0):
        _agree([y, gx], {x: (sign * np.abs(RNG.normal(size=6))).astype(np.float32)}, backend)


@pytest.mark.parametrize("backend", CUDA)
def test_bidirectional_lstm_with_sequence_lengths_and_a_nested_loop(backend):
    x = gc.placeholder(gc.float32, [3, 5, 4], name="x")
    lengths = gc.placeholder(gc.int32, [3], name="lengths")
    fw, bw = gc.nn.rnn_cell.LSTMCell(6, seed=1), gc.nn.rnn_cell.GRUCell(6, seed=2)
    (out_fw, out_bw), _ = gc.nn.bidirectional_dynamic_rnn(fw, bw, x, sequence_length=lengths, dtype=gc.float32)
    # a loop inside a loop body: each step sums its row with an inner while_loop
    inner = gc.map_fn(lambda row: gc.while_loop(lambda k, s: k < 4, lambda k, s: (k + 1, s + row[k]),
                                                [0, 0.0])[1], gc.reshape(x, [15, 4]))
    feeds = {x: RNG.normal(size=(3, 5, 4)).astype(np.float32), lengths: np.array([5, 2, 0], np.int32)}
    want_sess = gc.Session(backend="numpy", pipeline=None)
    got_sess = gc.Session(backend=backend)
    init = gc.global_variables_initializer()
    want_sess.run(init)
    got_sess.run(init)
    fetches = [out_fw, out_bw, inner]
    for g, w in zip(got_sess.run(fetches, feeds), want_sess.run(fetches, feeds)):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=1e-5)

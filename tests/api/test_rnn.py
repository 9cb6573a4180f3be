"""gc.nn.rnn_cell and gc.nn.dynamic_rnn / bidirectional_dynamic_rnn against NumPy.

Each cell's step is checked against a hand-written NumPy version of TF1's equations, on the
cell's own weights fetched from the session (biases set to random values, so the gate order of
the fused bias matters too). The RNNs are checked against NumPy loops unrolled in Python, with
and without sequence lengths (TF1: zero outputs and a frozen state past a row's end), time major
or not, forward and bidirectional (the backward cell reads each row from its own end). The
gradients through the loop are checked against finite differences and against the same model
unrolled in Python with gc ops.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import graphc as gc
from graphc.api import nest
from tests.conftest import CPU_BACKENDS
from tests.helpers import assert_close

rnn_cell = gc.nn.rnn_cell
TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-5, "atol": 2e-6}}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------- NumPy cells (TF1)
def np_basic(x, h, w):
    kernel, bias = w
    out = np.tanh(np.concatenate([x, h], 1) @ kernel + bias)
    return out, out


def np_lstm(x, state, w, forget_bias=1.0):
    kernel, bias = w
    c, h = state
    i, j, f, o = np.split(np.concatenate([x, h], 1) @ kernel + bias, 4, axis=1)
    new_c = _sigmoid(f + forget_bias) * c + _sigmoid(i) * np.tanh(j)
    new_h = _sigmoid(o) * np.tanh(new_c)
    return new_h, (new_c, new_h)


def np_gru(x, h, w):
    gate_kernel, gate_bias, cand_kernel, cand_bias = w
    r, u = np.split(_sigmoid(np.concatenate([x, h], 1) @ gate_kernel + gate_bias), 2, axis=1)
    c = np.tanh(np.concatenate([x, r * h], 1) @ cand_kernel + cand_bias)
    new_h = u * h + (1 - u) * c
    return new_h, new_h


def np_multi(steps):
    """steps: (numpy cell, number of its variables) per layer."""
    def step(x, states, w):
        new, at = [], 0
        for (fn, n), s in zip(steps, states):
            x, s = fn(x, s, w[at:at + n])
            new.append(s)
            at += n
        return x, tuple(new)
    return step


CELLS: dict[str, tuple[Callable[[], Any], Callable]] = {
    "basic": (lambda: rnn_cell.BasicRNNCell(5, seed=1), np_basic),
    "lstm": (lambda: rnn_cell.LSTMCell(4, seed=2), np_lstm),
    "lstm_forget_bias": (lambda: rnn_cell.LSTMCell(4, forget_bias=0.3, seed=2),
                         lambda x, s, w: np_lstm(x, s, w, forget_bias=0.3)),
    "gru": (lambda: rnn_cell.GRUCell(3, seed=3), np_gru),
    "multi_lstm": (lambda: rnn_cell.MultiRNNCell([rnn_cell.LSTMCell(4, seed=4), rnn_cell.LSTMCell(3, seed=5)]),
                   np_multi([(np_lstm, 2), (np_lstm, 2)])),
}


def np_dynamic(step, w, xs, state, lengths=None, reverse=False):
    """Batch-major xs [B, T, D]; TF1's dynamic_rnn one row at a time, each row for its length
    (reverse: the row reversed within its length, run, and its outputs reversed back: TF1's
    bidirectional backward half). Outputs past a row's length stay zero."""
    batch, steps = xs.shape[:2]
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    rows, finals = [], []
    for b in range(batch):
        n = int(lengths[b])
        s = nest.pack_sequence_as(state, [v[b:b + 1] for v in nest.flatten(state)])
        seq = xs[b, :n][::-1] if reverse else xs[b, :n]
        outs = []
        for t in range(n):
            out, s = step(seq[t:t + 1], s, w)
            outs.append(out[0])
        rows.append(outs[::-1] if reverse else outs)
        finals.append(s)
    size = next(len(o[0]) for o in rows if o)
    out = np.zeros((batch, steps, size))
    for b, outs in enumerate(rows):
        if outs:
            out[b, :len(outs)] = outs
    final = nest.pack_sequence_as(state, [np.concatenate(parts, 0) for parts in
                                          zip(*[nest.flatten(f) for f in finals])])
    return out, final


def _randomize_and_fetch(sess, cell, rng):
    """Random values for every variable (biases included), returned in cell.variables order."""
    values = []
    for v in cell.variables:
        value = rng.uniform(-0.8, 0.8, v.shape).astype(v.dtype.np)
        v.load(value, sess)
        values.append(value)
    fetched = sess.run(cell.variables)
    for a, b in zip(fetched, values):
        np.testing.assert_array_equal(a, b)
    return values


def _random_state(cell, batch, rng, dtype=np.float64):
    return nest.pack_sequence_as(cell.state_size, [rng.uniform(-1, 1, (batch, n)).astype(dtype)
                                                   for n in nest.flatten(cell.state_size)])


def _state_placeholders(cell, dtype):
    return nest.pack_sequence_as(cell.state_size, [gc.placeholder(dtype, [None, n])
                                                   for n in nest.flatten(cell.state_size)])


def _feeds(placeholders, values):
    return dict(zip(nest.flatten(placeholders), nest.flatten(values)))


def _assert_state_close(got, expected, tol):
    nest.assert_same_structure(got, expected, "state")
    for a, b in zip(nest.flatten(got), nest.flatten(expected)):
        np.testing.assert_allclose(a, b, **tol)


# --------------------------------------------------------------------------- cells
@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cell_step_matches_tf1_equations(kind, backend, dtype, rng):
    make, np_step = CELLS[kind]
    cell = make()
    x = gc.placeholder(dtype, [None, 3])
    state = _state_placeholders(cell, dtype)
    output, new_state = cell(x, state)
    nest.assert_same_structure(new_state, cell.state_size, "state")
    assert output.dtype == gc.as_dtype(dtype) and output.shape == (None, cell.output_size)
    xv, sv = rng.uniform(-1, 1, (2, 3)).astype(dtype), _random_state(cell, 2, rng, dtype)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        w = _randomize_and_fetch(sess, cell, rng)
        got_out, got_state = sess.run([output, new_state], {x: xv, **_feeds(state, sv)})
    want_out, want_state = np_step(xv.astype(np.float64), nest.pack_sequence_as(
        sv, [v.astype(np.float64) for v in nest.flatten(sv)]), w)
    np.testing.assert_allclose(got_out, want_out, **TOL[dtype])
    _assert_state_close(got_state, want_state, TOL[dtype])


def test_cells_have_tf1_variables_and_sizes():
    x = gc.placeholder(gc.float32, [2, 3])
    lstm = rnn_cell.LSTMCell(4)
    lstm(x, lstm.zero_state(2, gc.float32))
    assert [v.name for v in lstm.variables] == ["lstm_cell/kernel:0", "lstm_cell/bias:0"]
    assert [v.shape for v in lstm.trainable_variables] == [(7, 16), (16,)]
    assert lstm.state_size == rnn_cell.LSTMStateTuple(4, 4) and lstm.output_size == 4
    gru = rnn_cell.GRUCell(5)
    gru(x, gru.zero_state(2, gc.float32))
    assert [(v.name, v.shape) for v in gru.variables] == [
        ("gru_cell/gates/kernel:0", (8, 10)), ("gru_cell/gates/bias:0", (10,)),
        ("gru_cell/candidate/kernel:0", (8, 5)), ("gru_cell/candidate/bias:0", (5,))]
    multi = rnn_cell.MultiRNNCell([rnn_cell.BasicRNNCell(6), rnn_cell.LSTMCell(2)])
    zero = multi.zero_state(gc.shape(x)[0], gc.float64)
    assert multi.state_size == (6, rnn_cell.LSTMStateTuple(2, 2)) and multi.output_size == 2
    assert isinstance(zero[1], rnn_cell.LSTMStateTuple) and zero[1].h.dtype == gc.float64
    out, _ = gc.nn.dynamic_rnn(multi, gc.placeholder(gc.float32, [2, 4, 3]))
    assert [v.name for v in multi.variables] == [
        "rnn/multi_rnn_cell/cell_0/basic_rnn_cell/kernel:0", "rnn/multi_rnn_cell/cell_0/basic_rnn_cell/bias:0",
        "rnn/multi_rnn_cell/cell_1/lstm_cell/kernel:0", "rnn/multi_rnn_cell/cell_1/lstm_cell/bias:0"]
    assert out.shape == (2, 4, 2)
    with gc.Session(backend="numpy") as sess:
        sess.run(gc.global_variables_initializer())
        zeros, kernel, gate_bias = sess.run([zero, lstm.kernel, gru.gate_bias], {x: np.ones((2, 3), np.float32)})
    assert all(z.shape[0] == 2 and not z.any() for z in nest.flatten(zeros))
    limit = np.sqrt(6.0 / (7 + 16))            # glorot uniform
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > limit / 2
    np.testing.assert_array_equal(gate_bias, np.ones(10, np.float32))   # TF1's GRU gates start at 1


def test_cell_seed_fixes_the_weights():
    def kernel(seed):
        g = gc.Graph()
        with g.as_default():
            cell = rnn_cell.LSTMCell(3, seed=seed)
            cell.build(2)
            with gc.Session(g, backend="numpy") as sess:
                sess.run(gc.global_variables_initializer())
                return sess.run(cell.kernel)
    np.testing.assert_array_equal(kernel(7), kernel(7))
    assert not np.allclose(kernel(7), kernel(8))


def test_cell_refuses_to_create_variables_inside_a_loop():
    cell = rnn_cell.BasicRNNCell(3)
    xs = gc.placeholder(gc.float32, [4, 2, 3])
    with pytest.raises(gc.GraphcError, match="build"):
        gc.scan(lambda h, x: cell(x, h)[1], xs, initializer=gc.zeros([2, 3]))
    cell.build(3)                                       # built first, the same loop works
    out = gc.scan(lambda h, x: cell(x, h)[1], xs, initializer=gc.zeros([2, 3]))
    assert out.shape == (4, 2, 3)


# --------------------------------------------------------------------------- dynamic_rnn
@pytest.mark.parametrize("kind", ["basic", "lstm", "gru", "multi_lstm"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("lengths", [None, [5, 2, 0]], ids=["full", "lengths"])
@pytest.mark.parametrize("time_major", [False, True], ids=["batch_major", "time_major"])
def test_dynamic_rnn_matches_unrolled_numpy(kind, backend, lengths, time_major, rng):
    make, np_step = CELLS[kind]
    cell = make()
    x = gc.placeholder(gc.float64, [None, None, 3])      # time and batch unknown while building
    seq = gc.placeholder(gc.int32, [None]) if lengths is not None else None
    state0 = _state_placeholders(cell, gc.float64)
    outputs, state = gc.nn.dynamic_rnn(cell, x, sequence_length=seq, initial_state=state0, time_major=time_major)
    whiles = [n for n in gc.get_default_graph().get_operations() if n.type == "While"]
    assert len(whiles) == 1                              # one loop node, whatever the length
    xv, sv = rng.uniform(-1, 1, (3, 5, 3)), _random_state(cell, 3, rng)
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        w = _randomize_and_fetch(sess, cell, rng)
        feeds = {x: xv.transpose(1, 0, 2) if time_major else xv, **_feeds(state0, sv)}
        if seq is not None:
            feeds[seq] = lengths
        got_out, got_state = sess.run([outputs, state], feeds)
        shorter = sess.run(outputs, {**feeds, x: feeds[x][:2] if time_major else feeds[x][:, :2],
                                     **({seq: [2, 1, 2]} if seq is not None else {})})
    want_out, want_state = np_dynamic(np_step, w, xv, sv, lengths)
    if time_major:
        got_out, shorter = got_out.transpose(1, 0, 2), shorter.transpose(1, 0, 2)
    np.testing.assert_allclose(got_out, want_out, **TOL[np.float64])
    _assert_state_close(got_state, want_state, TOL[np.float64])
    if lengths is not None:
        assert not got_out[1, 2:].any() and not got_out[2].any()          # zeros past each end
        _assert_state_close(nest.pack_sequence_as(sv, [v[2] for v in nest.flatten(got_state)]),
                            nest.pack_sequence_as(sv, [v[2] for v in nest.flatten(sv)]), TOL[np.float64])
    want_short, _ = np_dynamic(np_step, w, xv[:, :2], sv, [2, 1, 2] if lengths is not None else None)
    np.testing.assert_allclose(shorter, want_short, **TOL[np.float64])   # same graph, other length


def test_dynamic_rnn_zero_state_dtype_and_static_shapes(rng):
    cell = rnn_cell.GRUCell(4, seed=0)
    x = gc.placeholder(gc.float32, [2, 6, 3])
    outputs, state = gc.nn.dynamic_rnn(cell, x, dtype=gc.float32)
    assert outputs.shape == (2, 6, 4) and state.shape == (2, 4) and outputs.dtype == gc.float32
    xv = rng.uniform(-1, 1, (2, 6, 3)).astype(np.float32)
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        w = [a.astype(np.float64) for a in sess.run(cell.variables)]
        got_out, got_state = sess.run([outputs, state], {x: xv})
    want_out, want_state = np_dynamic(np_gru, w, xv.astype(np.float64), np.zeros((2, 4)))
    np.testing.assert_allclose(got_out, want_out, **TOL[np.float32])
    np.testing.assert_allclose(got_state, got_out[:, -1], **TOL[np.float32])
    np.testing.assert_allclose(got_state, want_state, **TOL[np.float32])


def test_dynamic_rnn_rejects_bad_inputs():
    cell = rnn_cell.LSTMCell(3)
    with pytest.raises(gc.ShapeError, match="rank 3"):
        gc.nn.dynamic_rnn(cell, gc.placeholder(gc.float32, [4, 3]))
    with pytest.raises(gc.ShapeError, match="feature"):
        gc.nn.dynamic_rnn(cell, gc.placeholder(gc.float32, [4, 2, None]))
    with pytest.raises(gc.ShapeError, match="sequence_length"):
        gc.nn.dynamic_rnn(cell, gc.placeholder(gc.float32, [4, 2, 3]), sequence_length=[1, 2])
    with pytest.raises(gc.DTypeError, match="integers"):
        gc.nn.dynamic_rnn(cell, gc.placeholder(gc.float32, [4, 2, 3]), sequence_length=[1.0, 2.0, 1.0, 1.0])


# --------------------------------------------------------------------------- bidirectional
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("lengths", [None, [4, 1, 3]], ids=["full", "lengths"])
def test_bidirectional_reverses_each_row_within_its_length(backend, lengths, rng):
    fw, bw = rnn_cell.LSTMCell(3, seed=1), rnn_cell.GRUCell(2, seed=2)
    x = gc.placeholder(gc.float64, [None, None, 2])
    seq = gc.placeholder(gc.int32, [None]) if lengths is not None else None
    (out_fw, out_bw), (state_fw, state_bw) = gc.nn.bidirectional_dynamic_rnn(fw, bw, x, sequence_length=seq,
                                                                             dtype=gc.float64)
    assert fw.variables[0].name == "bidirectional_rnn/fw/lstm_cell/kernel:0"
    assert bw.variables[0].name == "bidirectional_rnn/bw/gru_cell/gates/kernel:0"
    xv = rng.uniform(-1, 1, (3, 4, 2))
    with gc.Session(backend=backend) as sess:
        sess.run(gc.global_variables_initializer())
        w_fw, w_bw = _randomize_and_fetch(sess, fw, rng), _randomize_and_fetch(sess, bw, rng)
        feeds = {x: xv, **({seq: lengths} if seq is not None else {})}
        got = sess.run([out_fw, out_bw, state_fw, state_bw], feeds)
    zero_lstm = rnn_cell.LSTMStateTuple(np.zeros((3, 3)), np.zeros((3, 3)))
    want_fw, want_state_fw = np_dynamic(np_lstm, w_fw, xv, zero_lstm, lengths)
    want_bw, want_state_bw = np_dynamic(np_gru, w_bw, xv, np.zeros((3, 2)), lengths, reverse=True)
    np.testing.assert_allclose(got[0], want_fw, **TOL[np.float64])
    _assert_state_close(got[2], want_state_fw, TOL[np.float64])
    np.testing.assert_allclose(got[1], want_bw, **TOL[np.float64])
    np.testing.assert_allclose(got[3], want_state_bw, **TOL[np.float64])
    if lengths is not None:     # the backward state ends on each row's first step, read last
        np.testing.assert_allclose(got[3], got[1][:, 0], **TOL[np.float64])
        assert not got[1][1, 1:].any()


# --------------------------------------------------------------------------- gradients
def _unrolled(cell, x, lengths, state, steps):
    """The same RNN unrolled in Python with gc ops (TF1's static_rnn with the same masking)."""
    outs = []
    for t in range(steps):
        out, new = cell(x[:, t], state)
        if lengths is not None:
            valid = gc.expand_dims(gc.less(t, lengths), 1)
            out = gc.where(valid, out, 0.0)
            new = nest.pack_sequence_as(state, [gc.where(valid, n, s) for n, s in
                                                zip(nest.flatten(new), nest.flatten(state))])
        outs.append(out)
        state = new
    return gc.stack(outs, 1), state


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi_lstm"])
def test_gradients_match_the_unrolled_model(kind, rng):
    cell = CELLS[kind][0]()
    x = gc.placeholder(gc.float64, [3, 4, 2])
    lengths = gc.constant([4, 2, 3], gc.int32)
    state0 = _state_placeholders(cell, gc.float64)
    outputs, state = gc.nn.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=state0)
    ref_out, ref_state = _unrolled(cell, x, lengths, state0, 4)
    weight = gc.constant(rng.normal(size=(3, 4, cell.output_size)))

    def loss(out, st):
        return gc.reduce_sum(out * weight) + sum(gc.reduce_sum(gc.square(s)) for s in nest.flatten(st))

    wrt = cell.variables + [x] + nest.flatten(state0)
    grads = gc.gradients(loss(outputs, state), wrt)
    ref_grads = gc.gradients(loss(ref_out, ref_state), wrt)
    assert all(g is not None for g in grads)
    feeds = {x: rng.uniform(-1, 1, (3, 4, 2)), **_feeds(state0, _random_state(cell, 3, rng))}
    for backend in CPU_BACKENDS:
        with gc.Session(backend=backend) as sess:
            sess.run(gc.global_variables_initializer())
            _randomize_and_fetch(sess, cell, rng)
            got, want = sess.run([grads, ref_grads], feeds)
        for g, r in zip(got, want):
            assert_close(g, r, rtol=1e-9, atol=1e-11)
        assert np.abs(got[0]).max() > 1e-3        # the kernel's gradient is not trivially zero


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["dynamic", "bidirectional"])
def test_gradients_match_finite_differences(backend, bidirectional, rng):
    cell = rnn_cell.LSTMCell(2, seed=3)
    x = gc.placeholder(gc.float64, [2, 3, 2])
    h0 = gc.placeholder(gc.float64, [2, 2])
    lengths = gc.constant([3, 2], gc.int32)
    init = rnn_cell.LSTMStateTuple(gc.zeros([2, 2], gc.float64), h0)
    if bidirectional:
        (out_fw, out_bw), (s_fw, s_bw) = gc.nn.bidirectional_dynamic_rnn(
            cell, rnn_cell.GRUCell(2, seed=4), x, sequence_length=lengths, initial_state_fw=init)
        y = gc.concat([gc.reshape(out_fw * out_bw, [-1]), gc.reshape(s_fw.c, [-1]), gc.reshape(s_bw, [-1])], 0)
    else:
        outputs, state = gc.nn.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=init)
        y = gc.concat([gc.reshape(outputs, [-1]), gc.reshape(state.c, [-1])], 0)
    kernel = cell.kernel.value()                  # a variable's read can be fed: check its gradient too
    feeds = {x: rng.uniform(-1, 1, (2, 3, 2)), h0: rng.uniform(-1, 1, (2, 2)),
             kernel: rng.uniform(-1, 1, kernel.shape)}
    worst = gc.testing.check_gradients(y, [x, h0, kernel], feed_dict=feeds, backend=backend)
    assert 0 <= worst <= 1


def test_gradient_check_catches_a_wrong_model(rng):
    """The finite-difference check above can fail: the unrolled model without the mask has other
    gradients than dynamic_rnn with sequence lengths."""
    cell = rnn_cell.BasicRNNCell(2, seed=0)
    x = gc.placeholder(gc.float64, [2, 3, 2])
    outputs, _ = gc.nn.dynamic_rnn(cell, x, sequence_length=[3, 1])
    unmasked, _ = _unrolled(cell, x, None, cell.zero_state(2, gc.float64), 3)
    wrong = outputs + gc.stop_gradient(unmasked - outputs)   # unmasked values, masked gradients
    with pytest.raises(gc.testing.GradientCheckError):
        gc.testing.check_gradients(wrong, [x], feed_dict={x: rng.uniform(-1, 1, (2, 3, 2))}, backend="numpy")


def test_training_an_lstm_through_the_loop_lowers_the_loss(rng):
    """Adam through dynamic_rnn: the sum of a sequence, learned from 64 examples."""
    x = gc.placeholder(gc.float32, [None, 5, 1])
    target = gc.reduce_sum(x, axis=[1, 2])
    _, state = gc.nn.dynamic_rnn(rnn_cell.LSTMCell(8, seed=0), x, dtype=gc.float32)
    w = gc.Variable(gc.random_normal([8, 1], stddev=0.3, seed=1))
    loss = gc.reduce_mean(gc.square(gc.reshape(state.h @ w, [-1]) - target))
    train = gc.train.AdamOptimizer(0.05).minimize(loss)
    xv = rng.uniform(-0.5, 0.5, (64, 5, 1)).astype(np.float32)
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        first = sess.run(loss, {x: xv})
        for _ in range(60):
            sess.run(train, {x: xv})
        last = sess.run(loss, {x: xv})
    assert last < 0.2 * first, (first, last)

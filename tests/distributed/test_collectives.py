"""Collective graph ops in one process (no MPI needed): a world of one, and a simulated world of
two whose exchanges a test handler performs, so the compiled host calls (llvm) and the NumPy
reference are checked alike: values, shapes, gradients, buckets, the variables broadcast, errors
that cross native code, and clear refusals (bool tensors, loop bodies, C libraries)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.distributed as gd
from graphc.distributed import world as world_module
from graphc.ops.collective import set_collective_handler
from tests.conftest import CPU_BACKENDS

TESTED_OPS = {"MpiAllreduce", "MpiBroadcast", "MpiAllgather"}


class TwoRanks(world_module.World):
    """Rank 0 of a pretend world of two whose other rank holds 10 * x (and is the root)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(None)
        self.rank, self.size, self.fail, self.calls, self.started = 0, 2, fail, [], {}

    def __call__(self, kind, x, out, attrs):
        if kind == "allreduce_wait":   # compiled programs split an allreduce: start ... wait
            out[...] = self.started.pop(attrs["key"])
            return
        self.calls.append((kind, attrs["key"], x.shape))
        if self.fail:
            raise gc.DistributedError(f"{kind} '{attrs['key']}': the other rank is gone")
        other = x * 10
        if kind == "allreduce_start":
            self.started[attrs["key"]] = (x + other) / (2 if attrs.get("reduce") == "average" else 1)
            self.calls[-1] = ("allreduce",) + self.calls[-1][1:]
        elif kind == "allreduce":
            out[...] = (x + other) / (2 if attrs.get("reduce") == "average" else 1)
        elif kind == "broadcast":
            out[...] = x if attrs["root"] == 0 else other
        else:
            out[0], out[1] = x, other


@pytest.fixture
def two_ranks(monkeypatch):
    fake = TwoRanks()
    monkeypatch.setattr(world_module, "_world", fake)
    set_collective_handler(fake)
    yield fake
    set_collective_handler(None)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_world_of_one_leaves_values_alone(backend):
    gd.init()
    assert (gd.rank(), gd.size(), gd.local_rank()) == (0, 1, 0)
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, [2, 3], name="x")
        outs = [gd.allreduce(x), gd.allreduce(x, average=False), gd.broadcast(x, 0), gd.allgather(x)]
        with gc.Session(backend=backend) as sess:
            value = np.arange(6, dtype=np.float32).reshape(2, 3)
            got = sess.run(outs, {x: value})
    for g in got[:3]:
        np.testing.assert_array_equal(g, value)
    np.testing.assert_array_equal(got[3], value[None])
    np.testing.assert_array_equal(gd.allgather(np.arange(3)), [[0, 1, 2]])


def test_exchanges_and_their_gradients_in_a_world_of_two(two_ranks, backend):
    """On every backend; the CUDA one stages the buffers through host memory."""
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, [3], name="x")
        total = gd.allreduce(x, average=False)
        mean = gd.allreduce(x)
        rooted = gd.broadcast(x, root_rank=1)
        stacked = gd.allgather(x)
        loss = gc.reduce_sum(total * total) + gc.reduce_sum(rooted) + gc.reduce_sum(stacked[0])
        grad, = gc.gradients(loss, [x])
        with gc.Session(backend=backend) as sess:
            v = np.array([1.0, -2.0, 0.5])
            t, m, r, s, g = sess.run([total, mean, rooted, stacked, grad], {x: v})
    np.testing.assert_allclose(t, 11 * v)
    np.testing.assert_allclose(m, 5.5 * v)
    np.testing.assert_allclose(r, 10 * v)                  # rank 1's value
    np.testing.assert_allclose(s, [v, 10 * v])
    # d/dx of this rank's loss, summed over both (the pretend rank contributes 10x the upstream
    # gradient): the allreduce of 2 * total, nothing from a broadcast rooted elsewhere, and
    # this rank's row (0) of the allgather's gradient: 1 here, 10 there
    np.testing.assert_allclose(g, 11 * (2 * 11 * v) + 0 + 11 * np.ones(3))
    kinds = [c[0] for c in two_ranks.calls]
    assert kinds.count("allreduce") >= 5 and "broadcast" in kinds and "allgather" in kinds


def test_gradients_travel_in_buckets(two_ranks):
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, [4, 5], name="x")
        layers = [gc.Variable(np.full((5, 5), 0.1 * (i + 1), np.float32), name=f"w{i}") for i in range(4)]
        h = x
        for w in layers:
            h = gc.tanh(gc.matmul(h, w))
        loss = gc.reduce_mean(h)
        plain = gc.train.GradientDescentOptimizer(0.1).compute_gradients(loss)
        # 100-byte buckets: each 5x5 float32 gradient (100 bytes) alone, but one bucket of 250 bytes takes two
        small = gd.DistributedOptimizer(gc.train.GradientDescentOptimizer(0.1), op="sum", bucket_bytes=250)
        fused = small.compute_gradients(loss)
        with gc.Session(backend="llvm") as sess:
            sess.run(gc.global_variables_initializer())
            feed = {x: np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)}
            before = len(two_ranks.calls)
            exact, reduced = sess.run([[g for g, _ in plain], [g for g, _ in fused]], feed)
    for e, r in zip(exact, reduced):
        np.testing.assert_allclose(r, 11 * e, rtol=1e-5)         # this rank + the other (10x)
    assert len(two_ranks.calls) - before == 2                     # 4 gradients, 2 messages
    assert {c[2] for c in two_ranks.calls[before:]} == {(50,)}


def test_broadcast_global_variables_sets_every_variable(two_ranks):
    with gc.Graph().as_default():
        w = gc.Variable(np.ones((2, 2)), name="w")
        b = gc.Variable(np.arange(3.0), name="b")
        n = gc.Variable(np.array([1, 2], np.int32), name="n")
        sync = gd.broadcast_global_variables(root_rank=1)
        with gc.Session(backend="llvm") as sess:
            sess.run(gc.global_variables_initializer())
            sess.run(sync)
            got = sess.run([w, b, n])
    np.testing.assert_array_equal(got[0], 10 * np.ones((2, 2)))
    np.testing.assert_array_equal(got[1], 10 * np.arange(3.0))
    np.testing.assert_array_equal(got[2], [10, 20])
    assert sorted(c[2] for c in two_ranks.calls) == [(2,), (7,)]   # one message per dtype


def test_a_failed_exchange_raises_its_own_error_and_changes_nothing(monkeypatch, backend):
    fake = TwoRanks(fail=True)
    monkeypatch.setattr(world_module, "_world", fake)
    with gc.Graph().as_default():
        w = gc.Variable(np.ones(3), name="w")
        step = w.assign(gd.allreduce(w * 2.0))
        with gc.Session(backend=backend) as sess:
            sess.run(gc.global_variables_initializer())
            set_collective_handler(fake)
            try:
                with pytest.raises(gc.DistributedError, match="the other rank is gone"):
                    sess.run(step)
            finally:
                set_collective_handler(None)
            np.testing.assert_array_equal(sess.run(w), np.ones(3))   # the update did not happen


def test_refusals_are_clear(tmp_path):
    gd.init()
    with gc.Graph().as_default():
        flag = gc.placeholder(gc.bool, [2], name="flag")
        with pytest.raises(gc.DTypeError, match="numbers"):
            gd.allreduce(flag)
        with pytest.raises(gc.GraphcError, match="inside a loop body"):
            gc.while_loop(lambda i: i < 2, lambda i: gd.allreduce(i + 1), [gc.constant(0)])
        with pytest.raises(gc.GraphcError, match="root_rank"):
            gd.broadcast(gc.constant([1.0]), root_rank=3)
        x = gc.placeholder(gc.float32, [1, 3], name="x")
        with pytest.raises(gc.CompileError, match="C library"):
            gc.aot.compile([gd.allreduce(x)], {x: (1, 3)}, str(tmp_path), "net")
    with pytest.raises(gc.GraphcError, match="wraps a gc.train optimizer"):
        gd.DistributedOptimizer(object())

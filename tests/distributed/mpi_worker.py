"""What each rank runs under `mpirun -n N python -m tests.distributed.mpi_worker MODE OUT`
(tests/distributed/test_mpi.py starts it and compares with one process). Modes:

- tf1: TF1 code with DistributedOptimizer, every rank starting from its own random weights
  (broadcast_global_variables fixes that), 20 steps on its rows of one batch (uneven:
  rank r gets the rows r, r + size, ...), loss divided by the whole batch's row count;
- fit: a Sequential fitted with Model.fit (shards, padding and the global loss inside fit);
- raise / kill / stall / mismatch: one rank fails in its own way; the job must stop with a
  clear error, not hang.
Rank 0 writes the final weights to OUT (.npz)."""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import graphc as gc
import graphc.distributed as gd

STEPS = 20


def data(rows: int = 23) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 6))
    y = (np.tanh(x @ rng.normal(size=(6, 1))) + 0.1 * rng.normal(size=(rows, 1)))
    return x, y


def tf1_model(seed: int, hidden: int = 8):
    """A two-layer regression in float64 (so one process and several agree to the last bits)."""
    rng = np.random.default_rng(seed)
    x = gc.placeholder(gc.float64, [None, 6], name="x")
    y = gc.placeholder(gc.float64, [None, 1], name="y")
    count = gc.placeholder(gc.float64, [], name="count")
    w1 = gc.Variable(rng.normal(size=(6, hidden)) * 0.5, name="w1")
    b1 = gc.Variable(np.zeros(hidden), name="b1")
    w2 = gc.Variable(rng.normal(size=(hidden, 1)) * 0.5, name="w2")
    out = gc.matmul(gc.tanh(gc.matmul(x, w1) + b1), w2)
    loss = gc.reduce_sum(gc.square(out - y)) / count   # this rank's share of the batch's mean
    return x, y, count, loss, [w1, b1, w2]


def run_tf1(mode: str, out: str) -> None:
    rank, size = gd.rank(), gd.size()
    x_all, y_all = data()
    mine = np.arange(len(x_all))[rank::size]
    hidden = 9 if mode == "mismatch" and rank == 1 else 8
    x, y, count, loss, weights = tf1_model(seed=100 + rank, hidden=hidden)
    opt = gd.DistributedOptimizer(gc.train.AdamOptimizer(0.05), op="sum")
    step = opt.minimize(loss)
    sync = gd.broadcast_global_variables(0)
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(sync)
        feed = {x: x_all[mine], y: y_all[mine], count: float(len(x_all))}
        for i in range(STEPS):
            if i == 3 and rank == 1:
                if mode == "raise":
                    raise RuntimeError("rank 1 fails on purpose at step 3")
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if mode == "stall":
                    time.sleep(120)
            sess.run(step, feed)
        values = sess.run(weights)
    if rank == 0:
        np.savez(out, *values)


def run_fit(out: str) -> None:
    x_all, y_all = data()
    gc.set_random_seed(3 + 10 * gd.rank())   # different initial weights per rank: fit broadcasts rank 0's
    model = gc.Sequential([gc.layers.Dense(8, activation="tanh"), gc.layers.Dense(1)])
    model.compile(gc.train.AdamOptimizer(0.05), "mse")
    history = model.fit(x_all, y_all, batch_size=5, epochs=7, seed=11, verbose=1 if gd.rank() == 0 else 0)
    if gd.rank() == 0:
        np.savez(out, *model.get_weights(), loss=np.array(history.history["loss"]))


def main(argv: list[str]) -> int:
    mode, out = argv[0], argv[1]
    gd.init(timeout=float(argv[2]) if len(argv) > 2 else None)
    if mode == "fit":
        run_fit(out)
    else:
        run_tf1(mode, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

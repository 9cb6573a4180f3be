"""Data-parallel training over MPI (graphc.distributed): what one rank's training step costs at
1, 2 and 4 ranks on this machine, how long the gradients' allreduce takes, what overlapping it
with the backward pass saves, and a cost model that predicts throughput and scaling efficiency
at 2 to 64 machines on 10, 25 and 100 Gb/s links, checked against the 2- and 4-rank figures.

    python benchmarks/distributed.py            # launches `mpirun -n P` itself for P = 1, 2, 4
    python benchmarks/distributed.py --quick    # fewer rounds

Needs the mpi extra (pip install -e ".[mpi]": mpi4py and Open MPI's mpirun). Each rank runs
single-threaded (GRAPHC_NUM_THREADS=1), so P ranks use min(P, cores) cores; batch sizes are
per rank (weak scaling, as Horovod users train). The models (float32, Adam):

- mlp:  784-256-10, batch 128;
- cnn:  28x28x1 -> conv 3x3x16 + relu + pool 2 -> conv 3x3x32 + relu + pool 2 -> dense 10, batch 32;
- lstm: batch 32, 50 steps of 32 inputs, an LSTM of 128 units, dense 10.

Per model and rank count: the step time with the exchanges overlapped (graphc's default) and
with each allreduce waited for at once (GRAPHC_OVERLAP_EXCHANGES=0; both programs in the same
processes, their rounds alternating), the step without any exchange (the plain optimizer), and
an allreduce of the gradients' bytes alone. Medians of rounds after a warm-up; rank 0 reports.

The cost model (ring allreduce): t_comm(p) = 2 (p-1)/p * bytes / bandwidth + 2 (p-1) * latency,
latency 25 us per message step (MPI over TCP on Ethernet); t_step = t_compute + max(t_comm -
0.5 t_compute, t_comm / buckets): half a step is backward pass that can hide the exchange, and
the last bucket cannot hide. Throughput = p * batch / t_step; efficiency = t_compute / t_step.
On this machine the "link" is shared memory: its bandwidth and latency are fitted from the
measured allreduces, then the model's 2- and 4-rank predictions are set beside the measured
steps (with the cores shared when ranks outnumber them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 25e-6
BUCKET_BYTES = 4 << 20
LINKS_GBPS = (10, 25, 100)
MACHINES = (2, 4, 8, 16, 32, 64)


# ---------------------------------------------------------------------- the models (on each rank)
def build(model: str, distributed: bool) -> tuple[Any, dict, int, int]:
    """The training op, a feed, the gradients' bytes and the batch size."""
    import graphc as gc
    import graphc.distributed as gd

    rng = np.random.default_rng(0)
    gc.set_random_seed(0)
    if model == "mlp":
        batch = 128
        x = gc.placeholder(gc.float32, [batch, 784])
        y = gc.placeholder(gc.int32, [batch])
        logits = gc.layers.dense(gc.layers.dense(x, 256, activation=gc.nn.relu), 10)
        feed = {x: rng.random((batch, 784), np.float32), y: rng.integers(0, 10, batch).astype(np.int32)}
    elif model == "cnn":
        batch = 32
        x = gc.placeholder(gc.float32, [batch, 28, 28, 1])
        y = gc.placeholder(gc.int32, [batch])
        h = gc.layers.max_pooling2d(gc.layers.conv2d(x, 16, 3, padding="same", activation=gc.nn.relu), 2, 2)
        h = gc.layers.max_pooling2d(gc.layers.conv2d(h, 32, 3, padding="same", activation=gc.nn.relu), 2, 2)
        logits = gc.layers.dense(gc.layers.flatten(h), 10)
        feed = {x: rng.random((batch, 28, 28, 1), np.float32), y: rng.integers(0, 10, batch).astype(np.int32)}
    else:
        batch = 32
        x = gc.placeholder(gc.float32, [batch, 50, 32])
        y = gc.placeholder(gc.int32, [batch])
        _, state = gc.nn.dynamic_rnn(gc.nn.rnn_cell.LSTMCell(128), x, dtype=gc.float32)
        logits = gc.layers.dense(state.h, 10)
        feed = {x: rng.random((batch, 50, 32), np.float32), y: rng.integers(0, 10, batch).astype(np.int32)}
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    opt = gc.train.AdamOptimizer(1e-3)
    if distributed:
        opt = gd.DistributedOptimizer(opt)
    step = opt.minimize(loss)
    grad_bytes = sum(int(np.prod(v.shape)) * 4 for v in gc.trainable_variables())
    return step, feed, grad_bytes, batch


def median_step(run: Any, rounds: int, per_round: int) -> float:
    for _ in range(max(5, per_round)):
        run()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_round):
            run()
        times.append((time.perf_counter() - t0) / per_round)
    return statistics.median(times)


def worker(models: list[str], rounds: int) -> None:
    import graphc as gc
    import graphc.distributed as gd

    gd.init()
    results = []
    for model in models:
        out: dict[str, Any] = {"model": model, "ranks": gd.size()}
        with gc.Graph().as_default():
            step, feed, grad_bytes, batch = build(model, False)
            with gc.Session() as sess:
                sess.run(gc.global_variables_initializer())
                out["compute_ms"] = median_step(lambda s=sess, t=step, f=feed: s.run(t, f), rounds, 10) * 1e3
        gd.allreduce(np.zeros(1, np.float32))   # line the ranks up between figures
        with gc.Graph().as_default():
            step, feed, grad_bytes, batch = build(model, True)
            sessions = {}
            for mode in ("1", "0"):   # the same step compiled with the exchanges overlapped, and not
                os.environ["GRAPHC_OVERLAP_EXCHANGES"] = mode
                sessions[mode] = gc.Session()
                sessions[mode].run(gc.global_variables_initializer())
                for _ in range(10):
                    sessions[mode].run(step, feed)
            times: dict[str, list[float]] = {"1": [], "0": []}
            for _ in range(rounds):   # rounds alternate, so both see the same machine
                for mode, sess in sessions.items():
                    t0 = time.perf_counter()
                    for _ in range(10):
                        sess.run(step, feed)
                    times[mode].append((time.perf_counter() - t0) / 10)
            out["step_ms"] = statistics.median(times["1"]) * 1e3
            out["no_overlap_ms"] = statistics.median(times["0"]) * 1e3
        out["grad_bytes"], out["batch"] = grad_bytes, batch
        message = np.zeros(grad_bytes // 4, np.float32)
        out["allreduce_ms"] = median_step(lambda m=message: gd.allreduce(m), rounds, 10) * 1e3
        small = np.zeros(1, np.float32)
        out["latency_ms"] = median_step(lambda m=small: gd.allreduce(m), rounds, 50) * 1e3
        results.append(out)
    if gd.rank() == 0:
        print("RESULT " + json.dumps(results), flush=True)


# ---------------------------------------------------------------------- launcher and model
def launch(ranks: int, models: list[str], rounds: int) -> list[dict[str, Any]]:
    mpirun = shutil.which("mpirun") or str(Path(sys.executable).parent / "mpirun")
    env = dict(os.environ, GRAPHC_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([mpirun, "--oversubscribe", "-n", str(ranks), sys.executable, __file__, "--worker",
                           "--models", ",".join(models), "--rounds", str(rounds)],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=1800)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"mpirun -n {ranks} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def comm_seconds(p: int, nbytes: int, bandwidth: float, latency: float) -> float:
    """Ring allreduce of nbytes over p machines (bandwidth in bytes/s)."""
    return 0.0 if p == 1 else 2 * (p - 1) / p * nbytes / bandwidth + 2 * (p - 1) * latency


def step_seconds(compute: float, comm: float, nbytes: int) -> float:
    buckets = max(1, -(-nbytes // BUCKET_BYTES))
    return compute + max(comm - 0.5 * compute, comm / buckets)


def fit_link(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """This machine's shared-memory 'link': latency and bandwidth from the 2-rank allreduces."""
    two = [r for r in rows if r["ranks"] == 2]
    latency = statistics.median(r["latency_ms"] for r in two) / 1e3 / 2      # 2 (p-1) message steps
    bandwidth = statistics.median(r["grad_bytes"] / max(r["allreduce_ms"] / 1e3 - 2 * latency, 1e-9) for r in two)
    return latency, bandwidth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--models", default="mlp,cnn,lstm")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    if args.worker:
        worker(models, args.rounds)
        return 0
    rounds = 3 if args.quick else args.rounds
    cores = len(os.sched_getaffinity(0))
    rows: list[dict[str, Any]] = []
    for ranks in (1, 2, 4):
        rows.extend(launch(ranks, models, rounds))
    print(f"machine: {cores} cores available; ranks run one thread each; medians of {rounds} rounds\n")
    print("| model | ranks | step ms (overlap) | step ms (no overlap) | saved | step ms (no exchange) | "
          "allreduce ms (gradients alone) | gradient MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        saved = f"{1 - r['step_ms'] / r['no_overlap_ms']:+.0%}" if r["ranks"] > 1 else "-"   # alone: no exchange
        print(f"| {r['model']} | {r['ranks']} | {r['step_ms']:.2f} | {r['no_overlap_ms']:.2f} | {saved} | "
              f"{r['compute_ms']:.2f} | {r['allreduce_ms']:.3f} | {r['grad_bytes'] / 1e6:.2f} |")
    latency, bandwidth = fit_link(rows)
    print(f"\nthis machine's link, fitted from the 2-rank allreduces: latency {latency * 1e6:.1f} us, "
          f"bandwidth {bandwidth / 1e9:.2f} GB/s")
    print("\n| model | ranks | predicted step ms | measured step ms | predicted / measured |")
    print("|---|---|---|---|---|")
    base = {r["model"]: r for r in rows if r["ranks"] == 1}
    for r in rows:
        if r["ranks"] == 1:
            continue
        compute = base[r["model"]]["compute_ms"] / 1e3 * max(1.0, r["ranks"] / cores)   # cores shared beyond `cores`
        predicted = step_seconds(compute, comm_seconds(r["ranks"], r["grad_bytes"], bandwidth, latency),
                                 r["grad_bytes"])
        print(f"| {r['model']} | {r['ranks']} | {predicted * 1e3:.2f} | {r['step_ms']:.2f} | "
              f"{predicted * 1e3 / r['step_ms']:.2f} |")
    print("\nPredicted at scale (one rank per machine computing as one rank here; ring allreduce, latency 25 us):")
    print("| model | link | " + " | ".join(f"{p} machines" for p in MACHINES) + " |")
    print("|---|---|" + "---|" * len(MACHINES))
    for model, b in base.items():
        compute = b["compute_ms"] / 1e3
        for gbps in LINKS_GBPS:
            cells = []
            for p in MACHINES:
                t = step_seconds(compute, comm_seconds(p, b["grad_bytes"], gbps * 1e9 / 8, LATENCY), b["grad_bytes"])
                cells.append(f"{p * b['batch'] / t:,.0f}/s, {compute / t:.0%}")
            print(f"| {model} | {gbps} Gb/s | " + " | ".join(cells) + " |")
    print("\n(cells: examples per second, scaling efficiency = t_compute / t_step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

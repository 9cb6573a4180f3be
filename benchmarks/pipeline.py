"""Time of the default rewrite pipeline on an MLP training graph (784-256-10, forward +
backward + Adam), batch 128: building the program and running every pass, per pass.

    python benchmarks/pipeline.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graphc as gc  # noqa: E402
from graphc.passes import DEFAULT_PIPELINE, run_pipeline  # noqa: E402
from graphc.program import build_program  # noqa: E402
from timing import table  # noqa: E402


def main(repeats: int = 30) -> None:
    x = gc.placeholder(gc.float32, [None, 784])
    y = gc.placeholder(gc.int32, [None])
    w1 = gc.Variable(gc.random_normal([784, 256], stddev=0.05, seed=1))
    b1 = gc.Variable(gc.zeros([256]))
    w2 = gc.Variable(gc.random_normal([256, 10], stddev=0.05, seed=2))
    b2 = gc.Variable(gc.zeros([10]))
    logits = gc.nn.relu(x @ w1 + b1) @ w2 + b2
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train = gc.train.AdamOptimizer(0.001).minimize(loss)
    graph = gc.get_default_graph()
    feeds = [(x, gc.float32, (128, 784)), (y, gc.int32, (128,))]
    build, total, per_pass = [], [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        program = build_program(graph, [train, loss], feeds)
        t1 = time.perf_counter()
        trace = []
        final = run_pipeline(program, DEFAULT_PIPELINE, trace)
        total.append(time.perf_counter() - t1)
        build.append(t1 - t0)
        for i, (name, _, seconds) in enumerate(trace):
            per_pass.setdefault((i, name), []).append(seconds)
    rows = [(f"{i:2d} {name}", f"{statistics.median(s) * 1e3:.2f}") for (i, name), s in sorted(per_pass.items())]
    print(f"MLP 784-256-10 training step (Adam), batch 128: {len(graph.get_operations())} graph ops, "
          f"program {len(program.nodes())} -> {len(final.nodes())} nodes, {len(final.groups)} fusion groups")
    print(table(rows, ("pass", "ms (median)")))
    print(f"\nbuild program: {statistics.median(build) * 1e3:.2f} ms; full default pipeline: "
          f"{statistics.median(total) * 1e3:.2f} ms (median of {repeats}; goal <= 20 ms)")


if __name__ == "__main__":
    main()

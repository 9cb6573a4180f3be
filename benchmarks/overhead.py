"""Call overhead of a tiny graph, side by side with the same expression in plain NumPy.

    python benchmarks/overhead.py [--backend numpy]

The graph is y = x * 2 + 1 on 4 float32 values: the work is negligible, so the time is the
cost of a call. Reported as microseconds per call and as a ratio to NumPy in the same process.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graphc as gc  # noqa: E402
from timing import median_seconds, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default=None)
    args = parser.parse_args()

    x = gc.placeholder(gc.float32, [4], name="x")
    y = x * 2.0 + 1.0
    value = np.arange(4, dtype=np.float32)
    sess = gc.Session(backend=args.backend)
    callable_ = sess.make_callable(y, [x])
    fn = gc.function([x], y, backend=args.backend)
    feed = {x: value}

    t_numpy = median_seconds(lambda: value * np.float32(2.0) + np.float32(1.0))
    rows = []
    for label, call in [("Session.run", lambda: sess.run(y, feed)),
                        ("Session.make_callable", lambda: callable_(value)),
                        ("gc.function", lambda: fn(value))]:
        t = median_seconds(call)
        rows.append((label, f"{t * 1e6:.1f}", f"{t / t_numpy:.1f}x"))
    rows.append(("NumPy (same expression)", f"{t_numpy * 1e6:.2f}", "1.0x"))

    # compile time of a fresh program: a two-layer MLP forward pass, new feed shape each time
    g = gc.Graph()
    with g.as_default():
        xb = gc.placeholder(gc.float32, [None, 784])
        h = gc.nn.relu(xb @ gc.Variable(np.zeros((784, 256), np.float32)) + gc.Variable(np.zeros(256, np.float32)))
        logits = h @ gc.Variable(np.zeros((256, 10), np.float32))
        s2 = gc.Session(g, backend=args.backend)
        s2.run(gc.global_variables_initializer())
        times = []
        for batch in range(1, 8):
            t0 = time.perf_counter()
            s2.compile([logits], {xb: np.zeros((batch, 784), np.float32)})
            times.append(time.perf_counter() - t0)
    print(f"backend: {sess.backend}")
    print(table(rows, ("call", "us per call", "vs NumPy")))
    print(f"\ncompile (build + check the program) of an MLP forward pass: median {np.median(times) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()

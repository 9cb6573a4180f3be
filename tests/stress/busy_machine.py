"""Fresh processes running their first parallel kernel while other processes keep every core
busy: the situation in which the native pool used to hang forever (a worker thread that first ran
after the first job was published waited for the next one).

    python -m tests.stress.busy_machine --processes 20 --busy 3

Each fresh process builds a gc.function over 1e6 float32 (big enough to be split across the
pool) and calls it once; it must finish within --timeout seconds and give NumPy's result.
Prints the number of processes that finished, hung or failed; exits 1 on any hang or failure.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FIRST_RUN = """
import numpy as np, graphc as gc
x = gc.placeholder(gc.float32, [1 << 20])
f = gc.function([x], gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x))
a = np.linspace(-4, 4, 1 << 20, dtype=np.float32)
want = np.tanh(0.5 * a + 0.1) * (1 / (1 + np.exp(-a))) - np.exp(-a * a)
assert np.allclose(f(a), want, atol=1e-5), "wrong result"
assert f._last.executable._steps is not None, "the kernel was not split across threads"
print("ok")
"""


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def run(processes: int, busy: int, timeout: float, threads: int = 2) -> dict[str, int]:
    """Start `busy` spinning processes, then `processes` fresh graphc processes one after another."""
    outcome = {"finished": 0, "hung": 0, "failed": 0}
    spinners = [multiprocessing.Process(target=_spin, args=(time.time() + 3600,), daemon=True) for _ in range(busy)]
    for s in spinners:
        s.start()
    # one cache for all of them: from the second process on, the program's code comes from disk,
    # so the pool is created just before the first run, as in any process of a deployed model
    cache = tempfile.TemporaryDirectory(prefix="graphc-busy-")
    env = dict(os.environ, GRAPHC_NUM_THREADS=str(threads), GRAPHC_CACHE_DIR=os.path.join(cache.name, "cache"),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        for _ in range(processes):
            try:
                done = subprocess.run([sys.executable, "-c", FIRST_RUN], env=env, capture_output=True, text=True,
                                      timeout=timeout, cwd=REPO)
            except subprocess.TimeoutExpired:
                outcome["hung"] += 1
                continue
            ok = done.returncode == 0 and done.stdout.strip() == "ok"
            outcome["finished" if ok else "failed"] += 1
            if not ok:
                print(done.stderr[-2000:], file=sys.stderr)
    finally:
        for s in spinners:
            s.terminate()
            s.join()
        cache.cleanup()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--busy", type=int, default=3, help="spinning processes beside them")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=2, help="GRAPHC_NUM_THREADS of the fresh processes")
    args = parser.parse_args()
    outcome = run(args.processes, args.busy, args.timeout, args.threads)
    print(f"{args.processes} fresh processes beside {args.busy} busy ones: {outcome}")
    return 0 if outcome["finished"] == args.processes else 1


if __name__ == "__main__":
    sys.exit(main())

"""graphc against its peers, side by side in one process: `python benchmarks/suite.py` (or
`graphc bench`). Peers that are not installed are skipped (pip install ".[bench]" brings numexpr,
jax and pytensor). Each figure is the median of repeats after warm-up; ratios are graphc's time
over the peer's (below 1 means graphc is faster).

Sections: the elementwise chain tanh(0.5x+0.1)*sigmoid(x) - exp(-x^2) on 1e6 and 1e7 float32;
row softmax and logsumexp on 4096x1024; an MLP 784-256-10 training step (Adam, batch 128);
compile time of that step, cold and warm (new process); call overhead of a tiny graph.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graphc as gc  # noqa: E402
from busy import busy_processes  # noqa: E402
from machine import copy_gbps  # noqa: E402
from timing import compare, table  # noqa: E402


def peer(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


jax = peer("jax")
numexpr = peer("numexpr")
pytensor = peer("pytensor")
if jax is not None:
    import jax.numpy as jnp
    jax.config.update("jax_platforms", "cpu")


def _share(title: str, nbytes: int, seconds: float, bandwidth: float) -> str:
    rate = nbytes / seconds / 1e9
    return f"{title} {rate:.1f} GB/s ({100 * rate / bandwidth:.0f}%)"


def report(title: str, times: dict[str, float]) -> list[tuple[str, ...]]:
    """Table rows: each implementation's time and graphc's time over it."""
    rows = []
    for name, t in times.items():
        ratio = f"{times['graphc'] / t:.2f}" if name != "graphc" else "1.00"
        rows.append((title, name, f"{t * 1e3:.3f}", ratio))
    return rows


def elementwise(n: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=n).astype(np.float32)
    out: dict[str, float] = {}
    x = gc.placeholder(gc.float32, [n])
    f = gc.function([x], gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x))
    out["graphc"] = lambda: f(x_np)
    half, tenth = np.float32(0.5), np.float32(0.1)
    out["numpy"] = lambda: np.tanh(half * x_np + tenth) * (1 / (1 + np.exp(-x_np))) - np.exp(-x_np * x_np)
    if numexpr is not None:
        out["numexpr"] = lambda: numexpr.evaluate("tanh(0.5*x+0.1)*(1/(1+exp(-x)))-exp(-x*x)", local_dict={"x": x_np})
    if jax is not None:
        jf = jax.jit(lambda v: jnp.tanh(0.5 * v + 0.1) * jax.nn.sigmoid(v) - jnp.exp(-v * v))
        xj = jnp.asarray(x_np)
        out["jax.jit"] = lambda: jf(xj).block_until_ready()
    if pytensor is not None:
        import pytensor.tensor as pt
        v = pt.vector(dtype="float32")
        pf = pytensor.function([v], pt.tanh(0.5 * v + 0.1) * pt.sigmoid(v) - pt.exp(-v * v))
        out["pytensor"] = lambda: pf(x_np)
    result = compare(out)
    gc.reset_default_graph()
    return result


def softmax_and_logsumexp() -> tuple[dict[str, float], dict[str, float]]:
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(4096, 1024)).astype(np.float32)
    x = gc.placeholder(gc.float32, [4096, 1024])
    sm = gc.function([x], gc.nn.softmax(x))
    lse = gc.function([x], gc.reduce_logsumexp(x, axis=1))
    soft = {"graphc": lambda: sm(x_np)}
    logsum = {"graphc": lambda: lse(x_np)}

    def np_softmax(a):
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    soft["numpy"] = lambda: np_softmax(x_np)
    logsum["numpy"] = lambda: np.log(np.exp(x_np - x_np.max(1, keepdims=True)).sum(1)) + x_np.max(1)
    if jax is not None:
        xj = jnp.asarray(x_np)
        js = jax.jit(lambda v: jax.nn.softmax(v, axis=1))
        jl = jax.jit(lambda v: jax.nn.logsumexp(v, axis=1))
        soft["jax.jit"] = lambda: js(xj).block_until_ready()
        logsum["jax.jit"] = lambda: jl(xj).block_until_ready()
    if pytensor is not None:
        import pytensor.tensor as pt
        m = pt.matrix(dtype="float32")
        ps = pytensor.function([m], pt.special.softmax(m, axis=1))
        pl = pytensor.function([m], pt.logsumexp(m, axis=1))
        soft["pytensor"] = lambda: ps(x_np)
        logsum["pytensor"] = lambda: pl(x_np)
    result = compare(soft), compare(logsum)
    gc.reset_default_graph()
    return result


MLP_SCRIPT = """
import numpy as np, graphc as gc
x = gc.placeholder(gc.float32, [None, 784]); y = gc.placeholder(gc.int32, [None])
w1 = gc.Variable(gc.random_normal([784, 256], stddev=0.05, seed=1)); b1 = gc.Variable(gc.zeros([256]))
w2 = gc.Variable(gc.random_normal([256, 10], stddev=0.05, seed=2)); b2 = gc.Variable(gc.zeros([10]))
logits = gc.nn.relu(x @ w1 + b1) @ w2 + b2
loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
train = gc.train.AdamOptimizer(0.001).minimize(loss)
sess = gc.Session()
sess.run(gc.global_variables_initializer())
rng = np.random.default_rng(0)
feed = {x: rng.normal(size=(128, 784)).astype(np.float32), y: rng.integers(0, 10, 128).astype(np.int32)}
"""


def mlp_step() -> dict[str, float]:
    scope: dict = {}
    exec(MLP_SCRIPT, scope)
    sess, train, loss, feed = scope["sess"], scope["train"], scope["loss"], scope["feed"]
    step = sess.make_callable([train, loss], [scope["x"], scope["y"]])
    xb, yb = feed[scope["x"]], feed[scope["y"]]
    out = {"graphc": lambda: step(xb, yb)}
    gc.reset_default_graph()
    if jax is not None:
        key = jax.random.PRNGKey(0)
        k1, k2 = jax.random.split(key)
        params = [jax.random.normal(k1, (784, 256)) * 0.05, jnp.zeros(256), jax.random.normal(k2, (256, 10)) * 0.05,
                  jnp.zeros(10)]
        state = ([jnp.zeros_like(p) for p in params], [jnp.zeros_like(p) for p in params], jnp.zeros(()))

        def loss_fn(ps, xs, ys):
            h = jax.nn.relu(xs @ ps[0] + ps[1])
            lg = h @ ps[2] + ps[3]
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(lg), ys[:, None], axis=1))

        @jax.jit
        def jstep(ps, st, xs, ys):
            value, grads = jax.value_and_grad(loss_fn)(ps, xs, ys)
            m, v, t = st
            t = t + 1
            lr_t = 0.001 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            m = [0.9 * a + 0.1 * g for a, g in zip(m, grads)]
            v = [0.999 * a + 0.001 * g * g for a, g in zip(v, grads)]
            ps = [p - lr_t * a / (jnp.sqrt(b) + 1e-8) for p, a, b in zip(ps, m, v)]
            return ps, (m, v, t), value

        xj, yj = jnp.asarray(xb), jnp.asarray(yb)
        holder = {"ps": params, "st": state}

        def run():
            holder["ps"], holder["st"], value = jstep(holder["ps"], holder["st"], xj, yj)
            value.block_until_ready()

        out["jax.jit"] = run
    # Training steps settle after a couple of hundred steps on this VM (both implementations):
    # warm up well past that before timing.
    return compare(out, warmup=300)


def compile_times() -> dict[str, float]:
    """Cold (empty cache) and warm (new process, cache filled) compile of the MLP step: the
    median of three new processes each (cold ones with an empty cache of their own)."""
    probe = MLP_SCRIPT + textwrap.dedent("""
        import time
        t0 = time.perf_counter()
        sess.run([train, loss], feed)
        print(time.perf_counter() - t0)
    """)
    def run(cache: str) -> float:
        env = dict(os.environ, GRAPHC_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as cache:
        colds = [run(cache)]                            # fills this cache for the warm runs
        warm = sorted(run(cache) for _ in range(3))[1]
    for _ in range(2):
        with tempfile.TemporaryDirectory() as fresh:
            colds.append(run(fresh))
    return {"cold": sorted(colds)[1], "warm": warm}


def call_overhead() -> dict[str, float]:
    x = gc.placeholder(gc.float32, [4])
    y = x * 2.0 + 1.0
    v = np.arange(4, dtype=np.float32)
    f = gc.function([x], y)
    sess = gc.Session()
    feed = {x: v}
    out = {"graphc function": lambda: f(v), "graphc Session.run": lambda: sess.run(y, feed)}
    if jax is not None:
        jf = jax.jit(lambda a: a * 2.0 + 1.0)
        vj = jnp.asarray(v)
        out["jax.jit"] = lambda: jf(vj).block_until_ready()
    out["numpy"] = lambda: v * np.float32(2.0) + np.float32(1.0)
    result = compare(out)
    gc.reset_default_graph()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1e7 chain and the compile-time runs")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to run while measuring")
    args = parser.parse_args(argv)
    rows: list[tuple[str, ...]] = []
    bandwidth = copy_gbps()   # measured on the quiet machine, before any busy process starts
    moved: list[str] = []     # graphc's bytes per second on the memory-bound workloads
    with busy_processes(args.busy):
        for n in ([10 ** 6] if args.quick else [10 ** 6, 10 ** 7]):
            times = elementwise(n)
            rows += report(f"chain {n:.0e}", times)
            moved.append(_share(f"chain {n:.0e}", 8 * n, times["graphc"], bandwidth))
        soft, lse = softmax_and_logsumexp()
        rows += report("softmax 4096x1024", soft) + report("logsumexp 4096x1024", lse)
        moved.append(_share("softmax 4096x1024", 8 * 4096 * 1024, soft["graphc"], bandwidth))
        rows += report("MLP train step", mlp_step())
    print(table(rows, ("workload", "implementation", "ms (median)", "graphc / this")))
    print(f"\ngraphc's memory traffic (input read + result written) against a large copy's {bandwidth:.1f} GB/s: "
          + "; ".join(moved))
    overhead = call_overhead()
    print("\ncall overhead of a tiny graph (us): " + ", ".join(f"{k} {v * 1e6:.2f}" for k, v in overhead.items()))
    if not args.quick:
        ct = compile_times()
        print(f"MLP step compile: cold {ct['cold'] * 1e3:.0f} ms, warm (new process) {ct['warm'] * 1e3:.1f} ms")
    print(f"\nthreads: {os.cpu_count()}, busy processes: {args.busy}, peers: " + ", ".join(
        n for n, m in (("jax", jax), ("numexpr", numexpr), ("pytensor", pytensor)) if m is not None))


if __name__ == "__main__":
    main()

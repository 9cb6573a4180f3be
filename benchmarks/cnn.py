"""A small CNN (forward and Adam training step) and a multi-head attention block, graphc
against jax.jit side by side in one process: `python benchmarks/cnn.py` (or `graphc bench cnn`).

The CNN is the one the issue names: two 3x3 convolutions with ReLU and 2x2 max pooling, then a
dense layer (NHWC, 28x28x1 inputs, 32 and 64 channels, batch 64). The attention block is
batched multi-head self-attention with its projections (batch 8, 128 tokens, 4 heads of 64).
Both implementations are checked to agree before they are timed. `--busy N` runs N spinning
processes while measuring. Each figure is also given as GFLOP/s (the convolutions' and GEMMs'
multiply-adds x 2 per second) and as a fraction of the machine's SGEMM rate (benchmarks/machine.py).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graphc as gc  # noqa: E402
from busy import busy_processes  # noqa: E402
from machine import sgemm_gflops  # noqa: E402
from timing import compare, table  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_platforms", "cpu")
except ImportError:   # the bench extra brings jax; without it graphc is timed alone
    jax = None

BATCH, SIDE, C1, C2, CLASSES = 64, 28, 32, 64, 10
HEADS, TOKENS, HEAD, ABATCH = 4, 128, 64, 8


def cnn_params(rng: np.random.Generator) -> list[np.ndarray]:
    flat = (SIDE // 4) * (SIDE // 4) * C2
    return [(rng.normal(size=s) * scale).astype(np.float32) for s, scale in (
        ((3, 3, 1, C1), 0.3), ((C1,), 0.1), ((3, 3, C1, C2), 0.06), ((C2,), 0.1), ((flat, CLASSES), 0.02),
        ((CLASSES,), 0.1))]


def cnn_flops() -> float:
    """Multiply-adds x 2 of the forward pass (convolutions and the dense layer)."""
    conv1 = BATCH * SIDE * SIDE * C1 * 9 * 1
    conv2 = BATCH * (SIDE // 2) ** 2 * C2 * 9 * C1
    dense = BATCH * (SIDE // 4) ** 2 * C2 * CLASSES
    return 2.0 * (conv1 + conv2 + dense)


def graphc_cnn(x, params):
    w1, b1, w2, b2, w3, b3 = params
    h = gc.nn.relu(gc.nn.conv2d(x, w1, 1, "SAME") + b1)
    h = gc.nn.max_pool2d(h, 2, 2, "VALID")
    h = gc.nn.relu(gc.nn.conv2d(h, w2, 1, "SAME") + b2)
    h = gc.nn.max_pool2d(h, 2, 2, "VALID")
    return gc.matmul(gc.reshape(h, [BATCH, -1]), w3) + b3


def jax_cnn(x, params):
    w1, b1, w2, b2, w3, b3 = params
    dn = ("NHWC", "HWIO", "NHWC")
    pool = lambda h: jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")  # noqa: E731
    h = jax.nn.relu(jax.lax.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn) + b1)
    h = pool(h)
    h = jax.nn.relu(jax.lax.conv_general_dilated(h, w2, (1, 1), "SAME", dimension_numbers=dn) + b2)
    h = pool(h)
    return h.reshape(BATCH, -1) @ w3 + b3


def cnn_workloads() -> tuple[dict, dict]:
    """({name: fn} for the forward pass, {name: fn} for the Adam training step)."""
    rng = np.random.default_rng(0)
    params = cnn_params(rng)
    xb = rng.normal(size=(BATCH, SIDE, SIDE, 1)).astype(np.float32)
    yb = rng.integers(0, CLASSES, BATCH).astype(np.int32)
    gc.reset_default_graph()
    x = gc.placeholder(gc.float32, [BATCH, SIDE, SIDE, 1])
    y = gc.placeholder(gc.int32, [BATCH])
    variables = [gc.Variable(p) for p in params]
    logits = graphc_cnn(x, variables)
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train = gc.train.AdamOptimizer(1e-3).minimize(loss)
    sess = gc.Session()
    sess.run(gc.global_variables_initializer())
    forward = sess.make_callable(logits, [x])
    step = sess.make_callable([train, loss], [x, y])
    fwd = {"graphc": lambda: forward(xb)}
    trn = {"graphc": lambda: step(xb, yb)}
    if jax is not None:
        jf = jax.jit(jax_cnn)
        xj, pj = jnp.asarray(xb), [jnp.asarray(p) for p in params]
        got = forward(xb)
        want = np.asarray(jf(xj, pj))
        assert np.allclose(got, want, atol=1e-3 * float(np.abs(want).max())), "graphc and jax disagree on the CNN"
        fwd["jax.jit"] = lambda: jf(xj, pj).block_until_ready()
        trn["jax.jit"] = jax_adam_step(jax_cnn, pj, xj, jnp.asarray(yb))
    return fwd, trn


def jax_adam_step(model, params, xj, yj):
    """A jitted Adam step of model's cross-entropy, as a no-argument function to time."""
    def loss_fn(ps):
        logits = model(xj, ps)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yj[:, None], axis=1))

    @jax.jit
    def step(ps, st):
        value, grads = jax.value_and_grad(loss_fn)(ps)
        m, v, t = st
        t = t + 1
        lr = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        m = [0.9 * a + 0.1 * g for a, g in zip(m, grads)]
        v = [0.999 * a + 0.001 * g * g for a, g in zip(v, grads)]
        return [p - lr * a / (jnp.sqrt(b) + 1e-8) for p, a, b in zip(ps, m, v)], (m, v, t), value

    holder = {"ps": params, "st": ([jnp.zeros_like(p) for p in params], [jnp.zeros_like(p) for p in params],
                                   jnp.zeros(()))}

    def run():
        holder["ps"], holder["st"], value = step(holder["ps"], holder["st"])
        value.block_until_ready()
    return run


def attention_flops() -> float:
    d = HEADS * HEAD
    projections = 4 * ABATCH * TOKENS * d * d
    scores = 2 * ABATCH * HEADS * TOKENS * TOKENS * HEAD
    return 2.0 * (projections + scores)


def attention_workload() -> dict:
    rng = np.random.default_rng(1)
    d = HEADS * HEAD
    ws = [(rng.normal(size=(d, d)) / np.sqrt(d)).astype(np.float32) for _ in range(4)]
    xb = rng.normal(size=(ABATCH, TOKENS, d)).astype(np.float32)
    gc.reset_default_graph()
    x = gc.placeholder(gc.float32, [ABATCH, TOKENS, d])

    def heads(t):
        return gc.transpose(gc.reshape(t, [ABATCH, TOKENS, HEADS, HEAD]), [0, 2, 1, 3])

    q, k, v = (heads(gc.matmul(gc.reshape(x, [-1, d]), w)) for w in ws[:3])
    att = gc.nn.softmax(gc.matmul(q, k, transpose_b=True) / np.float32(np.sqrt(HEAD)))
    o = gc.reshape(gc.transpose(gc.matmul(att, v), [0, 2, 1, 3]), [-1, d])
    out = gc.reshape(gc.matmul(o, ws[3]), [ABATCH, TOKENS, d])
    sess = gc.Session()
    fn = sess.make_callable(out, [x])
    result = {"graphc": lambda: fn(xb)}
    if jax is not None:
        def jatt(xs, w):
            def jheads(t):
                return t.reshape(ABATCH, TOKENS, HEADS, HEAD).transpose(0, 2, 1, 3)
            q, k, v = (jheads(xs.reshape(-1, d) @ wi) for wi in w[:3])
            a = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(HEAD), axis=-1)
            return ((a @ v).transpose(0, 2, 1, 3).reshape(-1, d) @ w[3]).reshape(ABATCH, TOKENS, d)
        jf = jax.jit(jatt)
        xj, wj = jnp.asarray(xb), [jnp.asarray(w) for w in ws]
        want = np.asarray(jf(xj, wj))
        assert np.allclose(fn(xb), want, atol=1e-3 * float(np.abs(want).max())), "graphc and jax disagree on attention"
        result["jax.jit"] = lambda: jf(xj, wj).block_until_ready()
    return result


def rows_for(title: str, times: dict[str, float], flops: float | None, peak: float) -> list[tuple[str, ...]]:
    rows = []
    for name, t in times.items():
        ratio = "1.00" if name == "graphc" else f"{times['graphc'] / t:.2f}"
        rate = flops / t / 1e9 if flops else None
        rows.append((title, name, f"{t * 1e3:.3f}", "" if rate is None else f"{rate:.1f}",
                     "" if rate is None else f"{100 * rate / peak:.0f}%", ratio))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to run while measuring")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per figure (median)")
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 5)
    fwd, trn = cnn_workloads()
    att = attention_workload()
    peak = sgemm_gflops()   # measured on the quiet machine, before any busy process starts
    with busy_processes(args.busy):
        rows = rows_for("CNN forward", compare(fwd, rounds=args.rounds), cnn_flops(), peak)
        rows += rows_for("CNN Adam step", compare(trn, rounds=args.rounds, warmup=20), 3 * cnn_flops(), peak)
        rows += rows_for("attention block", compare(att, rounds=args.rounds), attention_flops(), peak)
    print(table(rows, ("workload", "implementation", "ms (median)", "GFLOP/s", "of SGEMM peak", "graphc / this")))
    print(f"\nthreads: {os.cpu_count()}, busy processes: {args.busy}, jax: {jax.__version__ if jax else 'absent'}; "
          f"SGEMM peak (NumPy's BLAS on all cores, 2048^3): {peak:.0f} GFLOP/s")


if __name__ == "__main__":
    main()

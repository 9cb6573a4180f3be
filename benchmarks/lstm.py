"""An LSTM training step, graphc's gc.scan against jax.lax.scan under jax.jit, side by side in
one process; and the first step's time (compilation included) against the sequence length.

    python benchmarks/lstm.py            # or: graphc bench lstm
    python benchmarks/lstm.py --quick    # fewer rounds, one process per compile figure
    python benchmarks/lstm.py --profile  # also graphc's kernel profile (sess.profile) of the step

The model: batch 32, 50 time steps, 32 inputs, an LSTM of 128 units (TF1's BasicLSTMCell: one
fused kernel [32 + 128, 512] and bias, gates in the order i, j, f, o, forget_bias 1.0), a dense
readout of the last hidden state into 10 classes, softmax cross-entropy, plain SGD (learning
rate 0.1), float32. graphc: the cell in gc.scan over the time axis, the train op from
gc.train.GradientDescentOptimizer, the default (llvm) backend. JAX: the same cell in
jax.lax.scan, jax.value_and_grad, the SGD update inside one jax.jit. Both start from the same
weights and see the same data; one step of each is checked against the other (loss and updated
weights to 1e-4 relative) before anything is timed.

1. Step time: after a warm-up (300 steps), rounds of 20 steps that alternate between the two
   (benchmarks/timing.compare); the median over 7 rounds, per step, and graphc / jax. The
   forward pass alone (the loss, no update) the same way, to tell the loop from its gradient.
2. Compile time against sequence length: the first training step (compile and run) at 10 and
   at 400 time steps, each in a new process with an empty graphc compile cache
   ($GRAPHC_CACHE_DIR set to a fresh temporary folder); the median of three processes each,
   and t(400) / t(10) (graphc's loop body is compiled once whatever the trip count: the goal
   is <= 1.5). The same for jax.jit's first call. Beside it: the time spent compiling
   (graphc: inside Session.compile; jax: the first call less the second), a second step, and
   for graphc building the graph (gradients included) and the whole cold start (build +
   initializer + first step).

JAX is optional (pip install "jax[cpu]" or ".[bench]"): without it, graphc's own figures are
reported and the comparisons are skipped with a note.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from busy import busy_processes
from timing import compare, table

import graphc as gc

BATCH, INPUTS, UNITS, CLASSES = 32, 32, 128, 10
STEPS = 50                  # time steps of the step-time figure
LEARNING_RATE = 0.1
FORGET_BIAS = 1.0
STEPS_PER_ROUND = 20


def load_jax() -> Any:
    """jax, set to the CPU, or None when it is not installed."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_platforms", "cpu")
    return jax


# --------------------------------------------------------------------------- data and weights
def make_data(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [time, batch, inputs] (time-major, as scan walks them) and labels [batch]."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, BATCH, INPUTS)).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH).astype(np.int32)
    return x, y


def make_weights(seed: int = 1) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels, zero biases (as TF1's defaults)."""
    rng = np.random.default_rng(seed)

    def glorot(fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)

    return {"kernel": glorot(INPUTS + UNITS, 4 * UNITS), "bias": np.zeros(4 * UNITS, np.float32),
            "w_out": glorot(UNITS, CLASSES), "b_out": np.zeros(CLASSES, np.float32)}


NAMES = ("kernel", "bias", "w_out", "b_out")


# --------------------------------------------------------------------------- graphc
class GraphcModel:
    """The model in a graph of its own, a session, and step(x, y) -> loss (one SGD update).
    Building it traces the cell and builds the gradient; initialize() sets the weights."""

    def __init__(self, steps: int, weights: dict[str, np.ndarray], profile: bool = False) -> None:
        self.graph = gc.Graph()
        with self.graph.as_default():
            self.x = gc.placeholder(gc.float32, [steps, BATCH, INPUTS], name="x")
            self.y = gc.placeholder(gc.int32, [BATCH], name="y")
            self.vars = {k: gc.Variable(weights[k], name=k) for k in NAMES}
            kernel, bias = self.vars["kernel"], self.vars["bias"]

            def cell(state: tuple[Any, Any], x_t: Any) -> tuple[Any, Any]:
                c, h = state
                z = gc.matmul(gc.concat([x_t, h], 1), kernel) + bias
                i, j, f, o = gc.split(z, 4, axis=1)
                c = c * gc.sigmoid(f + FORGET_BIAS) + gc.sigmoid(i) * gc.tanh(j)
                h = gc.tanh(c) * gc.sigmoid(o)
                return c, h

            zeros = gc.zeros([BATCH, UNITS])
            _, hs = gc.scan(cell, self.x, initializer=(zeros, zeros))
            logits = gc.matmul(hs[-1], self.vars["w_out"]) + self.vars["b_out"]
            self.loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=self.y, logits=logits))
            self.train = gc.train.GradientDescentOptimizer(LEARNING_RATE).minimize(self.loss)
            self.sess = gc.Session(profile=profile)
            self._init = gc.global_variables_initializer()
        self._step = self.sess.make_callable([self.train, self.loss], [self.x, self.y])
        self._forward = self.sess.make_callable(self.loss, [self.x, self.y])

    def initialize(self) -> GraphcModel:
        self.sess.run(self._init)
        return self

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self._step(x, y)[1])

    def forward(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self._forward(x, y))

    def weights(self) -> dict[str, np.ndarray]:
        return dict(zip(NAMES, self.sess.run([self.vars[k] for k in NAMES])))


# --------------------------------------------------------------------------- jax
class JaxModel:
    """The same model in JAX: step(x, y) -> loss, the weights kept between steps."""

    def __init__(self, jax: Any, weights: dict[str, np.ndarray]) -> None:
        import jax.numpy as jnp

        def loss_fn(params: list[Any], x: Any, y: Any) -> Any:
            kernel, bias, w_out, b_out = params

            def cell(state: tuple[Any, Any], x_t: Any) -> tuple[tuple[Any, Any], None]:
                c, h = state
                z = jnp.concatenate([x_t, h], 1) @ kernel + bias
                i, j, f, o = jnp.split(z, 4, axis=1)
                c = c * jax.nn.sigmoid(f + FORGET_BIAS) + jax.nn.sigmoid(i) * jnp.tanh(j)
                h = jnp.tanh(c) * jax.nn.sigmoid(o)
                return (c, h), None

            zeros = jnp.zeros((BATCH, UNITS), jnp.float32)
            (_, h), _ = jax.lax.scan(cell, (zeros, zeros), x)
            logits = h @ w_out + b_out
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

        @jax.jit
        def step(params: list[Any], x: Any, y: Any) -> tuple[list[Any], Any]:
            value, grads = jax.value_and_grad(loss_fn)(params, x, y)
            return [p - LEARNING_RATE * g for p, g in zip(params, grads)], value

        self.jax, self._step, self._forward = jax, step, jax.jit(loss_fn)
        self.params = [jnp.asarray(weights[k]) for k in NAMES]

    def device(self, a: np.ndarray) -> Any:
        return self.jax.numpy.asarray(a)

    def step(self, x: Any, y: Any) -> float:
        self.params, value = self._step(self.params, x, y)
        value.block_until_ready()
        return value

    def forward(self, x: Any, y: Any) -> Any:
        return self._forward(self.params, x, y).block_until_ready()

    def weights(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(p) for k, p in zip(NAMES, self.params)}


# --------------------------------------------------------------------------- 1. agreement, step time
def relative_error(a: Any, b: Any) -> float:
    """max |a - b| over max |b| (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale, diff = float(np.max(np.abs(b))), float(np.max(np.abs(a - b)))
    return diff / scale if scale else (0.0 if diff == 0 else float("inf"))


def check_agreement(jax: Any, steps: int = STEPS, tolerance: float = 1e-4) -> str:
    """One step of each model from the same weights on the same data: the loss and each
    updated weight must agree to `tolerance` (relative); each update (w1 - w0, the gradient
    times the learning rate) is compared too, for information. Raises SystemExit otherwise."""
    x, y = make_data(steps)
    w0 = make_weights()
    g, j = GraphcModel(steps, w0).initialize(), JaxModel(jax, w0)
    loss_g, loss_j = g.step(x, y), float(j.step(j.device(x), j.device(y)))
    wg, wj = g.weights(), j.weights()
    errors = {"loss": relative_error(loss_g, loss_j)}
    updates = {}
    for k in NAMES:
        errors[k] = relative_error(wg[k], wj[k])
        updates[k] = relative_error(wg[k] - w0[k], wj[k] - w0[k])
    text = (f"loss graphc {loss_g:.6f}, jax {loss_j:.6f}; max relative error: "
            + ", ".join(f"{k} {e:.1e}" for k, e in errors.items())
            + "; of the updates: " + ", ".join(f"{k} {e:.1e}" for k, e in updates.items()))
    if max(errors.values()) > tolerance:
        raise SystemExit(f"graphc and jax disagree after one step (tolerance {tolerance:.0e}): {text}")
    return text


def step_times(jax: Any, rounds: int, warmup_steps: int) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per training step and per forward pass (the loss alone) of each implementation:
    rounds of STEPS_PER_ROUND steps taking turns (timing.compare), median over the rounds."""
    x, y = make_data(STEPS)
    w0 = make_weights()
    g = GraphcModel(STEPS, w0).initialize()
    train = {"graphc": lambda: [g.step(x, y) for _ in range(STEPS_PER_ROUND)]}
    forward = {"graphc": lambda: [g.forward(x, y) for _ in range(STEPS_PER_ROUND)]}
    if jax is not None:
        j = JaxModel(jax, w0)
        xj, yj = j.device(x), j.device(y)
        train["jax.jit"] = lambda: [j.step(xj, yj) for _ in range(STEPS_PER_ROUND)]
        forward["jax.jit"] = lambda: [j.forward(xj, yj) for _ in range(STEPS_PER_ROUND)]
    # min_time=0: one call (STEPS_PER_ROUND steps) per implementation and round
    warmup = max(1, warmup_steps // STEPS_PER_ROUND)
    t_train = {k: v / STEPS_PER_ROUND for k, v in compare(train, rounds, 0.0, warmup).items()}
    t_forward = {k: v / STEPS_PER_ROUND for k, v in compare(forward, rounds, 0.0, max(1, warmup // 3)).items()}
    return t_train, t_forward


def profile_report() -> str:
    """graphc's kernels over 20 profiled steps and 20 forward passes (sess.profile, a session
    of its own, after 100 steps of warm-up): each loop is one kernel (its body runs inside it),
    so per-iteration figures are its time / STEPS."""
    x, y = make_data(STEPS)
    g = GraphcModel(STEPS, make_weights(), profile=True).initialize()
    for _ in range(100):
        g.step(x, y)
        g.forward(x, y)
    prof = g.sess.profile
    assert prof is not None
    prof.reset()
    for _ in range(STEPS_PER_ROUND):
        g.step(x, y)
    for _ in range(STEPS_PER_ROUND):
        g.forward(x, y)
    lines = [prof.summary(12), "", "loops (per iteration = kernel time / time steps):"]
    for k in prof.kernels():
        if k.calls and k.name.endswith("_while"):
            lines.append(f"  [{k.program}] {k.node}: {k.mean_us / 1e3:.2f} ms per run, "
                         f"{k.mean_us / STEPS:.1f} us per iteration")
    return "\n".join(lines)


# --------------------------------------------------------------------------- 2. first step vs length
def first_step(impl: str, steps: int) -> dict[str, float]:
    """In this (new) process: build the model for `steps` time steps and time its first
    training step, compilation included. graphc: building the graph (gradients included), the
    initializer, then the first step; jax: the first call of the jitted step."""
    x, y = make_data(steps)
    w0 = make_weights()
    if impl == "graphc":
        t0 = time.perf_counter()
        g = GraphcModel(steps, w0)
        t1 = time.perf_counter()
        g.initialize()
        t2 = time.perf_counter()
        compiling = [0.0]
        plain_compile = g.sess.compile

        def timed_compile(*args: Any, **kwargs: Any) -> Any:   # the time the step spends in Session.compile
            start = time.perf_counter()
            try:
                return plain_compile(*args, **kwargs)
            finally:
                compiling[0] += time.perf_counter() - start

        g.sess.compile = timed_compile   # type: ignore[method-assign]
        loss = g.step(x, y)
        t3 = time.perf_counter()
        g.step(x, y)
        t4 = time.perf_counter()
        return {"build": t1 - t0, "init": t2 - t1, "first": t3 - t2, "compile": compiling[0], "second": t4 - t3,
                "total": t3 - t0, "loss": loss}
    jax = load_jax()
    if jax is None:
        raise SystemExit("jax is not installed")
    j = JaxModel(jax, w0)
    xj, yj = j.device(x), j.device(y)
    t0 = time.perf_counter()
    loss = float(j.step(xj, yj))
    t1 = time.perf_counter()
    j.step(xj, yj)
    t2 = time.perf_counter()
    return {"build": 0.0, "init": 0.0, "first": t1 - t0, "compile": (t1 - t0) - (t2 - t1), "second": t2 - t1,
            "total": t1 - t0, "loss": loss}


def first_step_in_new_process(impl: str, steps: int) -> dict[str, float]:
    """first_step in a new Python process whose graphc compile cache is a fresh, empty folder."""
    with tempfile.TemporaryDirectory(prefix="graphc-lstm-cache-") as cache:
        env = dict(os.environ, GRAPHC_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--first-step", impl,
                              "--time-steps", str(steps)], env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"the {impl} first-step process ({steps} steps) failed:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def compile_times(impls: list[str], lengths: tuple[int, ...], repeats: int) -> dict[tuple[str, int], dict[str, float]]:
    """Per implementation and length, the median (per figure) of `repeats` new processes; the
    processes take turns (each length of each implementation once per turn)."""
    samples: dict[tuple[str, int], list[dict[str, float]]] = {(i, n): [] for i in impls for n in lengths}
    for _ in range(repeats):
        for key, runs in samples.items():
            runs.append(first_step_in_new_process(*key))
    return {key: {f: statistics.median(s[f] for s in runs) for f in runs[0]} for key, runs in samples.items()}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds after 100 warm-up steps, one process per compile figure")
    parser.add_argument("--profile", action="store_true", help="also print graphc's kernel profile of the step")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to run while timing the steps")
    parser.add_argument("--first-step", choices=["graphc", "jax"], help=argparse.SUPPRESS)   # the child process
    parser.add_argument("--time-steps", type=int, default=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_step:
        print(json.dumps(first_step(args.first_step, args.time_steps)))
        return 0

    jax = load_jax()
    if jax is None:
        print("jax is not installed (pip install \"jax[cpu]\"): graphc's own figures only, no comparison.\n")
    else:
        print(f"agreement after one step: {check_agreement(jax)}\n")

    rounds, warmup, repeats = (3, 100, 1) if args.quick else (7, 300, 3)
    with busy_processes(args.busy):
        t_train, t_forward = step_times(jax, rounds, warmup)
    rows = []
    for title, times in ((f"training step (T={STEPS})", t_train), (f"forward only (T={STEPS})", t_forward)):
        for name, t in times.items():
            ratio = f"{times['graphc'] / t:.2f}" if name != "graphc" else ""
            rows.append((title, name, f"{t * 1e3:.2f}", ratio))
    print(f"LSTM batch {BATCH}, {INPUTS} inputs, {UNITS} units, {CLASSES} classes; median of {rounds} rounds of "
          f"{STEPS_PER_ROUND} steps after {warmup} warm-up steps")
    print(table(rows, ("workload", "implementation", "ms per step", "graphc / this")))
    if args.profile:
        print("\n" + profile_report())

    impls = ["graphc"] + (["jax"] if jax is not None else [])
    lengths = (10, 400)
    ct = compile_times(impls, lengths, repeats)
    what = "median of 3 processes" if repeats == 3 else "one process"
    print(f"\nfirst training step, compilation included (new process, empty graphc cache; {what} each):")
    rows = []
    for impl in impls:
        short, long = ct[(impl, lengths[0])], ct[(impl, lengths[1])]
        rows.append((impl, "first step", f"{short['first'] * 1e3:.0f}", f"{long['first'] * 1e3:.0f}",
                     f"{long['first'] / short['first']:.2f}"))
        label = "  of which Session.compile" if impl == "graphc" else "  of which compiling (first - second call)"
        rows.append((impl, label, f"{short['compile'] * 1e3:.0f}", f"{long['compile'] * 1e3:.0f}",
                     f"{long['compile'] / short['compile']:.2f}"))
        rows.append((impl, "  a second step (no compiling)", f"{short['second'] * 1e3:.1f}",
                     f"{long['second'] * 1e3:.1f}", ""))
        if impl == "graphc":
            rows.append((impl, "build graph + gradients", f"{short['build'] * 1e3:.0f}", f"{long['build'] * 1e3:.0f}",
                         f"{long['build'] / short['build']:.2f}"))
            rows.append((impl, "build + init + first step", f"{short['total'] * 1e3:.0f}",
                         f"{long['total'] * 1e3:.0f}", f"{long['total'] / short['total']:.2f}"))
    print(table(rows, ("implementation", "figure", f"T={lengths[0]} ms", f"T={lengths[1]} ms",
                       f"T={lengths[1]} / T={lengths[0]} (goal <= 1.5)")))
    if jax is None:
        print("\n(jax is not installed: no jax.jit figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

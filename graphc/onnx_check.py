"""`graphc onnx check MODEL.onnx`: in one command, whether graphc runs a model.

It lists every operator of the model (sub-graphs included) that graphc cannot import, all of
them rather than the first; imports the model (dynamic axes sized by `--input-shape`, or 1);
runs it on the inputs given (`--input name=file.npy`) or on random ones; and, when onnxruntime
is installed, runs it there too and prints the largest difference per output and both times
(the first call, which compiles, and the median of warm calls, the two taking turns).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .errors import GraphcError
from .session import Session

WARM_UP = 2     # calls of each before the timed rounds
WARM_RUNS = 7   # alternating rounds: the warm time is each one's median
# untimed calls before each timed one, for at least this long: onnxruntime's pool keeps a thread
# spinning for 50-100 ms after a run (measured by /proc/self/stat), and on a 2-core machine
# graphc timed in that window lost a core to it (mobilenet_v2 15-19 ms instead of 11-13: ratios
# 1.3-1.6x too high). Calling rather than sleeping keeps the machine's cores awake: a pause of
# 0.2 s made the next call slower by as much.
SETTLE_SECONDS = 0.2


@dataclass
class CheckReport:
    missing: list[str] = field(default_factory=list)      # op types graphc has no import rule for
    error: str | None = None                              # why importing or running failed
    differences: dict[str, tuple[float, float]] = field(default_factory=dict)   # output -> (abs, rel)
    times: dict[str, tuple[float, float]] = field(default_factory=dict)         # who -> (first s, warm s)
    inputs: dict[str, str] = field(default_factory=dict)   # input -> "float32[1, 4, 6], random" (what ran)

    @property
    def ok(self) -> bool:
        return not self.missing and self.error is None


def missing_operators(model: Any) -> list[str]:
    """Op types (with their domain when not the default one) of the model and of its
    sub-graphs that graphc's importer has no rule for, sorted."""
    from .io.onnx import importer  # noqa: F401 - importing the driver fills RULES with every rule module's
    from .io.onnx.import_rules import RULES

    missing: set[str] = set()
    stack = [model.graph]
    while stack:
        g = stack.pop()
        for node in g.node:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            if key not in RULES:
                missing.add(key)
            for a in node.attribute:
                stack.extend([a.g] if a.HasField("g") else list(a.graphs))
    return sorted(missing)


def _declared(model: Any) -> list[tuple[str, int, list[int | None]]]:
    inits = {i.name for i in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") else []
        out.append((vi.name, tt.elem_type, dims))
    return out


def _random_input(elem: int, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    from onnx import helper

    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem))
    if dtype.kind == "f":
        return rng.normal(size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(size=shape) < 0.5
    return np.zeros(shape, dtype)   # integers are often indices or sizes: zeros are always valid


def check_model(path: str, inputs: dict[str, np.ndarray] | None = None,
                input_shapes: dict[str, list[int]] | None = None, backend: str = "llvm", seed: int = 0) -> CheckReport:
    """Check the model at `path` (see the module docstring)."""
    import onnx

    from .io.onnx.importer import import_model

    report = CheckReport()
    model = onnx.load(path, load_external_data=False)
    report.missing = missing_operators(model)
    given = set(inputs or {})
    input_given = given.__contains__
    inputs = dict(inputs or {})
    shapes = dict(input_shapes or {})
    rng = np.random.default_rng(seed)
    for name, elem, dims in _declared(model):
        if name in inputs:
            shapes.setdefault(name, list(np.shape(inputs[name])))
            continue
        shape = shapes.setdefault(name, [1 if d is None else d for d in dims])
        inputs[name] = _random_input(elem, shape, rng)
    for name, _, _ in _declared(model):
        a = inputs[name]
        report.inputs[name] = f"{a.dtype.name}{list(a.shape)}" + ("" if input_given(name) else ", random")
    if report.missing:
        return report
    sess = None
    try:
        imported = import_model(path, input_shapes=shapes)
        feeds = {t: inputs[n] for t, n in zip(imported.inputs, imported.input_names)}
        sess = Session(imported.graph, backend=backend)
        start = time.perf_counter()
        ours = sess.run(imported.outputs, feeds)
        first = {"graphc": time.perf_counter() - start}
        calls = {"graphc": lambda: sess.run(imported.outputs, feeds)}
        theirs = _onnxruntime(path, {n: inputs[n] for n in imported.input_names}, first, calls)
        for who, warm in _warm_side_by_side(calls).items():
            report.times[who] = (first[who], warm)
    except GraphcError as err:
        report.error = str(err)
        return report
    finally:
        if sess is not None:
            sess.close()
    if theirs is not None:
        for k, (name, g, w) in enumerate(zip(imported.output_names, ours, theirs)):
            if k in imported.output_maps:   # ZipMap: onnxruntime's list of dicts as a matrix, in label order
                labels = imported.output_maps[k]
                w = [[row[label] for label in labels] for row in w]
            g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
            if g.shape != w.shape:
                report.error = f"output {name!r}: graphc's shape {g.shape}, onnxruntime's {w.shape}"
                continue
            diff = np.abs(g - w)
            largest = float(diff.max()) if diff.size else 0.0
            # relative to the output's scale (its largest magnitude): elementwise ratios blow up
            # where an output is near zero, which says nothing of the model
            relative = float(largest / max(float(np.abs(w).max()), 1e-30)) if diff.size else 0.0
            report.differences[name] = (largest, relative)
    return report


def _warm_side_by_side(calls: dict[str, Any]) -> dict[str, float]:
    """The median warm time of each call, measured in alternating rounds after a warm-up, so
    that a slow spell of a shared machine hits graphc and onnxruntime alike (timed one after
    the other, their ratio moved with the machine's mood); each timed call comes after
    SETTLE_SECONDS of untimed calls of its own, in which the other's threads go quiet."""
    for call in calls.values():
        for _ in range(WARM_UP):
            call()
    times: dict[str, list[float]] = {who: [] for who in calls}
    for _ in range(WARM_RUNS):
        for who, call in calls.items():
            settled = time.perf_counter() + SETTLE_SECONDS
            call()
            while time.perf_counter() < settled:
                call()
            start = time.perf_counter()
            call()
            times[who].append(time.perf_counter() - start)
    return {who: float(np.median(t)) for who, t in times.items()}


def _onnxruntime(path: str, feeds: dict[str, np.ndarray], first: dict[str, float],
                 calls: dict[str, Any]) -> list[np.ndarray] | None:
    """onnxruntime's outputs (None when it is not installed); its first-call time and its call
    go into `first` and `calls`."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    start = time.perf_counter()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = sess.run(None, feeds)
    first["onnxruntime"] = time.perf_counter() - start
    calls["onnxruntime"] = lambda: sess.run(None, feeds)
    return out


def print_report(report: CheckReport, path: str, out: TextIO) -> None:
    print(f"graphc onnx check {path}", file=out)
    if report.missing:
        print(f"  operators graphc cannot import ({len(report.missing)}): {', '.join(report.missing)}", file=out)
        return
    if report.error is not None:
        print(f"  failed: {report.error}", file=out)
        return
    print("  every operator imports; the model runs on " + "; ".join(f"{k} {v}" for k, v in report.inputs.items()),
          file=out)
    for name, (largest, relative) in report.differences.items():
        print(f"  output {name!r}: largest difference from onnxruntime {largest:.3g} ({relative:.3g} of the "
              f"output's scale)",
              file=out)
    for who, (first, warm) in report.times.items():
        print(f"  {who}: first call {first * 1e3:.1f} ms (with compiling), warm {warm * 1e3:.3f} ms", file=out)
    if "onnxruntime" not in report.times:
        print("  (onnxruntime is not installed: no comparison)", file=out)

"""graphc against onnxruntime on a torchvision model in one process, at a given thread count:
`python benchmarks/vs_onnxruntime.py mobilenet_v2 --threads 1 --rounds 3`.

Why in one process, and why this way: models.py runs each model in a new process with its
default threads, which is what a user sees; this pins both to N threads (graphc's
intra_op_parallelism_threads, onnxruntime's intra_op_num_threads) and times them in alternating
rounds with graphc.onnx_check's warm timing, where each timed call follows SETTLE_SECONDS of
its own untimed calls: onnxruntime's threads spin after its runs, and graphc timed right after
them ran 1.5x slower at 2 threads on a 2-core machine. Prints each round's graphc /
onnxruntime ratio and their median; the outputs must agree first. Needs torch, torchvision and
onnxruntime (the bench extra).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import export  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-vs-ort-"))
    import onnxruntime as ort

    import graphc as gc
    from graphc.io.onnx.importer import import_model
    from graphc.onnx_check import _warm_side_by_side

    path = export(args.model, Path(tempfile.mkdtemp(prefix="graphc-vs-ort-models-")))
    imported = import_model(str(path), input_shapes={})
    session = gc.Session(imported.graph, config=gc.ConfigProto(intra_op_parallelism_threads=args.threads))
    x = np.random.default_rng(0).normal(size=tuple(imported.inputs[0].shape)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    peer = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ours, theirs = session.run(imported.outputs, {imported.inputs[0]: x})[0], peer.run(None, {"x": x})[0]
    scale = max(1.0, float(np.abs(theirs).max()))
    if not np.allclose(ours / scale, theirs / scale, atol=1e-4):
        print("graphc and onnxruntime disagree", file=sys.stderr)
        return 1
    calls = {"graphc": lambda: session.run(imported.outputs, {imported.inputs[0]: x}),
             "onnxruntime": lambda: peer.run(None, {"x": x})}
    ratios = []
    for _ in range(args.rounds):
        times = _warm_side_by_side(calls)
        ratios.append(times["graphc"] / times["onnxruntime"])
        print(f"graphc {times['graphc'] * 1e3:.2f} ms  onnxruntime {times['onnxruntime'] * 1e3:.2f} ms  "
              f"ratio {ratios[-1]:.3f}", flush=True)
    print(f"{args.model}, {args.threads} thread(s): median graphc / onnxruntime over {args.rounds} rounds "
          f"{statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

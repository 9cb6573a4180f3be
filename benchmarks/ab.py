"""In-process A/B of one graphc setting on a torchvision model: `python benchmarks/ab.py
mobilenet_v2 graphc.lower.conv_pointwise.MIN_PIXELS "1 << 30" 16 --threads 1`.

Why in one process: on a shared VM, whole-model times drift by 10-40% between processes minutes
apart, more than most changes are worth. Here both sides are compiled in the same process (the
module attribute set to each value in turn before its session is built, each with a fresh
compile) and timed alternately, round after round (timing.compare), so drift hits both alike.
Prints each round's B / A time ratio and their median; the outputs of both sides must agree.
Values are Python expressions. Settings of the direct convolution's and the pointwise kernel's
block functions work too (their symbols carry a tag of their settings, so each side calls its
own build); the other block functions are compiled once per process. Needs torch and torchvision
to export the model (the bench extra).
Run it both ways (A B, then B A): on the AVX-512 VM the side compiled second measured about 1-2%
faster than the same setting compiled first, so a one-way median can favour B.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import export  # noqa: E402
from timing import compare  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("setting", help="module.ATTRIBUTE, e.g. graphc.runtime.cpu.PARALLEL_NS")
    parser.add_argument("a", help="value of side A (a Python expression)")
    parser.add_argument("b", help="value of side B")
    parser.add_argument("--threads", type=int, default=None, help="intra_op_parallelism_threads (default: all)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-ab-"))
    import graphc as gc
    import graphc.backends.llvm as llvm_backend
    from graphc.io.onnx.importer import import_model

    module_name, attribute = args.setting.rsplit(".", 1)
    module = importlib.import_module(module_name)
    path = export(args.model, Path(tempfile.mkdtemp(prefix="graphc-ab-models-")))
    calls, outputs = {}, {}
    for side, text in (("A", args.a), ("B", args.b)):
        setattr(module, attribute, eval(text))   # noqa: S307 - the user's own command line
        llvm_backend.FORMAT += f"+ab{side}"      # a fresh compile, not the other side's cached code
        imported = import_model(str(path), input_shapes={})
        config = gc.ConfigProto(intra_op_parallelism_threads=args.threads) if args.threads else None
        session = gc.Session(imported.graph, config=config)
        feed = {imported.inputs[0]: np.random.default_rng(0).normal(size=tuple(imported.inputs[0].shape)).astype(np.float32)}
        outputs[side] = session.run(imported.outputs, feed)[0]
        calls[side] = lambda session=session, imported=imported, feed=feed: session.run(imported.outputs, feed)
    scale = max(1.0, float(np.abs(outputs["A"]).max()))
    if not np.allclose(outputs["A"] / scale, outputs["B"] / scale, atol=1e-4):
        print("the two sides disagree", file=sys.stderr)
        return 1
    ratios = []
    for _ in range(args.rounds):
        times = compare(calls, rounds=15, warmup=3)
        ratios.append(times["B"] / times["A"])
        print(f"A {times['A'] * 1e3:.2f} ms  B {times['B'] * 1e3:.2f} ms  B / A {ratios[-1]:.3f}", flush=True)
    print(f"median B / A over {args.rounds} rounds: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `graphc` command: demo, ops, the graph-file tools show and run, and bench."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Sequence

from . import __version__


def _demo(args: argparse.Namespace) -> int:
    from .demo import BAR, run_demo

    accuracy = run_demo(sys.stdout, epochs=args.epochs, backend=args.backend, model=args.model)
    if accuracy >= BAR:
        return 0
    if args.epochs < 10:   # too short a run to judge: say so, and do not fail what was asked
        print(f"graphc demo: {args.epochs} epoch(s) are too few to reach the demo's {BAR:.0%} test accuracy "
              f"(the default, 20, does)")
        return 0
    print(f"graphc demo: error: test accuracy {accuracy:.4f} is below {BAR:.0%} after {args.epochs} epochs, "
          f"which a working graphc reaches; please report it with this output", file=sys.stderr)
    return 1


def _ops(args: argparse.Namespace) -> int:
    from .ops import all_ops

    for name, op in sorted(all_ops().items()):
        doc = (op.__doc__ or "").strip().splitlines()
        print(f"{name:38s} {doc[0] if doc else ''}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from .cli_commands import show

    return show(args)


def _run(args: argparse.Namespace) -> int:
    from .cli_commands import run

    return run(args)


def _aot(args: argparse.Namespace) -> int:
    from .cli_commands import aot

    return aot(args)


def _onnx_check(args: argparse.Namespace) -> int:
    from .cli_commands import onnx_check

    return onnx_check(args)


def _suite_path() -> Path:
    """benchmarks/suite.py, shipped inside the package (graphc/benchmarks links to the
    checkout's benchmarks/ folder, and installs copy it)."""
    import graphc

    return Path(graphc.__file__).resolve().parent / "benchmarks" / "suite.py"


BENCHMARKS = ("suite", "lstm", "cnn", "gemm", "own_gemm", "models")   # benchmarks/NAME.py that `graphc bench NAME` runs


def _bench(args: argparse.Namespace) -> int:
    path = _suite_path()
    if args.benchmark != "suite":
        path = path.with_name(f"{args.benchmark}.py")
    if not path.is_file():
        print(f"graphc bench: the benchmark {path.name} is missing from this installation ({path}); "
              f"reinstall graphc (pip install --force-reinstall graphc)", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location(f"graphc_benchmark_{args.benchmark}", path)
    assert spec is not None and spec.loader is not None
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    code = suite.main((["--quick"] if args.quick else []) + list(args.options))
    return code if isinstance(code, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphc", description="A symbolic graph compiler for Python.")
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build, differentiate, compile and train a digits classifier")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--model", choices=["mlp", "cnn", "lstm"], default="mlp")
    demo.add_argument("--backend", default=None, help="llvm (compiled, the default), numpy (the reference interpreter), cuda (an NVIDIA GPU) or cuda-emulator")
    demo.set_defaults(fn=_demo)
    ops = sub.add_parser("ops", help="list every op graphc defines")
    ops.set_defaults(fn=_ops)
    show = sub.add_parser("show", help="describe a .gcx graph file (or draw it with --dot / --svg)")
    show.add_argument("file", help="the .gcx file")
    show.add_argument("--dot", action="store_true", help="write the graph as Graphviz DOT (stdout, or -o FILE)")
    show.add_argument("--svg", metavar="FILE", help="render the graph to an SVG file (needs Graphviz's `dot`)")
    show.add_argument("-o", "--output", metavar="FILE", help="where --dot writes")
    show.set_defaults(fn=_show)
    run = sub.add_parser("run", help="run a .gcx graph file on .npy inputs")
    run.add_argument("file", help="the .gcx file")
    run.add_argument("--feed", action="append", default=[], metavar="NAME=FILE.npy",
                     help="a value for a placeholder (by node name) or any tensor (by tensor name); repeatable")
    run.add_argument("--fetch", action="append", default=[], metavar="NAME",
                     help="a tensor (name:index) or node name to compute; repeatable (default: the graph's outputs)")
    run.add_argument("-o", "--output", metavar="FILE", help="write the results: .npy (one fetch) or .npz")
    run.add_argument("--backend", default=None, help="llvm (the default), numpy (the reference interpreter), cuda or cuda-emulator")
    run.set_defaults(fn=_run)
    aot_help = ("compile a .gcx graph or an ONNX model ahead of time into NAME.h, NAME.o and libNAME.so (no Python "
                "needed to run them)")
    aot = sub.add_parser("aot", help=aot_help, description=aot_help)
    aot.add_argument("file", help="the .gcx file, or an .onnx model (inputs and outputs by their ONNX names)")
    aot.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]",
                     help="a placeholder and its shape, e.g. x:1x784:float32; repeatable, in the C argument order")
    aot.add_argument("--output", action="append", default=[], metavar="NAME",
                     help="a tensor (name:index) or node name to compute; repeatable, in the C argument order")
    aot.add_argument("-o", "--output-dir", default=".", metavar="DIR", help="where the files go (default: .)")
    aot.add_argument("--name", required=True, help="the library name (a C identifier): NAME_run, NAME.h, ...")
    aot.add_argument("--target", metavar="TRIPLE", help="an LLVM target triple to cross-compile for (no .so is linked)")
    aot.add_argument("--cpu", metavar="CPU", help="the CPU to tune for (default: this machine's), e.g. x86-64-v3")
    aot.set_defaults(fn=_aot)
    onnx_help = "check whether graphc runs an ONNX model: missing operators, differences from onnxruntime, times"
    onnx = sub.add_parser("onnx", help=onnx_help, description=onnx_help)
    onnx_sub = onnx.add_subparsers(dest="onnx_command", required=True)
    check = onnx_sub.add_parser("check", help=onnx_help, description=onnx_help)
    check.add_argument("model", help="the .onnx file")
    check.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                       help="a value for an input (default: random values); repeatable")
    check.add_argument("--input-shape", action="append", default=[], metavar="NAME=8,128",
                       help="the size of an input's dynamic axes (default: 1 for each); repeatable")
    check.add_argument("--backend", default=None, help="llvm (the default), numpy, cuda or cuda-emulator")
    check.set_defaults(fn=_onnx_check)
    bench_help = "run the benchmark suite against NumPy and the installed peers (benchmarks/suite.py)"
    bench = sub.add_parser("bench", help=bench_help, description=bench_help)
    bench.add_argument("benchmark", nargs="?", choices=BENCHMARKS, default="suite",
                       help="suite (the default: elementwise, softmax, MLP step against numpy, numexpr, jax); lstm "
                       "(an LSTM training step against jax); cnn (a small CNN and an attention block against jax); "
                       "gemm (against numpy's BLAS); own_gemm (graphc's generated GEMM against OpenBLAS, one thread each); models (torchvision models through ONNX against onnxruntime)")
    bench.add_argument("--quick", action="store_true", help="fewer sizes, rounds or models")
    bench.epilog = ("Any other option goes to the benchmark, named first: `graphc bench cnn --busy 2` (two spinning processes "
                    "while it measures); `graphc bench NAME -- --help` lists a benchmark's options.")
    bench.set_defaults(fn=_bench)
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":   # the benchmark's own options (--busy N, --rounds ...) go through to it
        args.options = [a for a in extra if a != "--"]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from .errors import GraphcError

    try:
        return args.fn(args)
    except GraphcError as err:   # a user's mistake (a backend name, a file): one clean line, no traceback
        print(f"graphc: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

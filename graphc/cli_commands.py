"""`graphc show`, `graphc run`, `graphc aot` and `graphc onnx check`: the command-line face of
.gcx and ONNX files.

Errors a user can cause (a bad file, a missing feed, an unknown name) print one clear line on
stderr and return exit code 1 instead of a traceback.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Any

import numpy as np

from .errors import FeedError, GraphcError
from .io.describe import describe, graph_outputs, summarize_array, to_dot
from .io.load import load_graph


def _fail(message: str) -> int:
    print(f"graphc: error: {message}", file=sys.stderr)
    return 1


def show(args: argparse.Namespace) -> int:
    try:
        graph = load_graph(args.file)
    except GraphcError as err:
        return _fail(str(err).splitlines()[0])
    title = os.path.basename(args.file)
    if args.svg:
        dot = shutil.which("dot")
        if dot is None:
            return _fail("cannot render SVG: the Graphviz program `dot` was not found on PATH; install Graphviz "
                         "(e.g. `apt-get install graphviz`) or write DOT text with --dot")
        done = subprocess.run([dot, "-Tsvg", "-o", args.svg], input=to_dot(graph, title), text=True,
                              capture_output=True)
        if done.returncode != 0:
            return _fail(f"Graphviz failed: {done.stderr.strip()}")
        print(f"wrote {args.svg}")
        return 0
    if args.dot:
        text = to_dot(graph, title)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    describe(graph, sys.stdout, title)
    return 0


def _feed_target(graph: Any, name: str) -> Any:
    """A tensor by tensor name ('x:0') or by node name ('x' means its first output)."""
    if ":" in name:
        return graph.get_tensor_by_name(name)
    node = graph.get_operation_by_name(name)
    if not node.outputs:
        raise GraphcError(f"node {name!r} ({node.type}) has no output to feed")
    return node.outputs[0]


def _fetch_target(graph: Any, name: str) -> Any:
    if ":" in name:
        return graph.get_tensor_by_name(name)
    node = graph.get_operation_by_name(name)
    return node.outputs[0] if len(node.outputs) == 1 else node


def run(args: argparse.Namespace) -> int:
    from .session import Session

    try:
        graph = load_graph(args.file)
        feeds = {}
        for item in args.feed:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                return _fail(f"--feed takes NAME=FILE.npy, got {item!r}")
            try:
                value = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as err:
                return _fail(f"cannot read {path!r} for --feed {name}: {err}")
            if isinstance(value, np.lib.npyio.NpzFile):
                return _fail(f"--feed {name}: {path!r} is an .npz archive; give one .npy array")
            feeds[_feed_target(graph, name)] = value
        names = args.fetch or [t.name for t in graph_outputs(graph) if hasattr(t, "dtype")]
        if not names:
            return _fail("nothing to fetch: give --fetch NAME")
        fetches = [_fetch_target(graph, n) for n in names]
        with Session(graph, backend=args.backend) as sess:
            if graph.variables:
                sess.run([info.initializer for info in graph.variables.values()])
            values = sess.run(fetches, feeds)
    except GraphcError as err:
        return _fail(str(err).splitlines()[0])
    results = {n: v for n, v in zip(names, values) if v is not None}
    if args.output:
        return _write(args.output, results)
    for name, value in results.items():
        print(summarize_array(name, value))
    return 0


def _write(path: str, results: dict[str, Any]) -> int:
    if path.endswith(".npy"):
        if len(results) != 1:
            return _fail(f"{len(results)} results do not fit one .npy file; write an .npz")
        np.save(path, np.asarray(next(iter(results.values()))), allow_pickle=False)
    elif path.endswith(".npz"):
        np.savez(path, **{k.replace(":", "_").replace("/", "_"): np.asarray(v) for k, v in results.items()})
    else:
        return _fail(f"-o {path!r}: the file name must end in .npy or .npz")
    print(f"wrote {path}")
    return 0


def _parse_inputs(items: list[str]) -> dict[str, tuple[tuple[int, ...], str | None]] | str:
    """--input NAME:SHAPE[:DTYPE] items as {name: (shape, dtype or None)}, or the error message."""
    out: dict[str, tuple[tuple[int, ...], str | None]] = {}
    for item in items:
        parts = item.split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            return f"--input takes NAME:SHAPE[:DTYPE] (e.g. x:1x784:float32), got {item!r}"
        try:
            shape = tuple(int(d) for d in parts[1].split("x")) if parts[1] else ()
        except ValueError:
            return f"--input {parts[0]}: the shape must be dimensions joined by x (1x784), got {parts[1]!r}"
        out[parts[0]] = (shape, parts[2] if len(parts) == 3 else None)
    return out


def _aot_onnx(args: argparse.Namespace) -> int:
    """graphc aot MODEL.onnx: gc.aot.compile_onnx with the --input shapes and --output names."""
    from . import aot as aot_module

    given = _parse_inputs(args.input)
    if isinstance(given, str):
        return _fail(given)
    try:
        lib = aot_module.compile_onnx(args.file, args.output_dir, args.name, {n: s for n, (s, _) in given.items()},
                                      args.output, target=args.target, cpu=args.cpu,
                                      input_dtypes={n: d for n, (_, d) in given.items() if d is not None})
    except ImportError:
        return _fail("compiling an ONNX model needs the onnx package: pip install \"graphc[onnx]\"")
    for path in (lib.header, lib.object, lib.shared):
        if path is not None:
            print(f"wrote {path}")
    return 0


def aot(args: argparse.Namespace) -> int:
    """graphc aot FILE.gcx (or MODEL.onnx) --input x:1x784:float32 --output logits -o DIR --name NAME."""
    from . import aot as aot_module

    if str(args.file).lower().endswith(".onnx"):
        try:
            return _aot_onnx(args)
        except GraphcError as err:
            return _fail(str(err).splitlines()[0])
    given = _parse_inputs(args.input)
    if isinstance(given, str):
        return _fail(given)
    try:
        graph = load_graph(args.file)
        inputs = {}
        for name, (shape, dtype) in given.items():
            target = _feed_target(graph, name)
            if dtype is not None and dtype != target.dtype.name:
                return _fail(f"--input {name} is {target.dtype.name} in the graph, not {dtype}")
            inputs[target] = shape
        if not args.output:
            return _fail("give at least one --output NAME")
        outputs = [_fetch_target(graph, n) for n in args.output]
        lib = aot_module.compile(outputs, inputs, args.output_dir, args.name, target=args.target, cpu=args.cpu)
    except FeedError as err:
        if err.op_type != "Placeholder" or err.node_name is None:
            return _fail(str(err).splitlines()[0])
        return _fail(_missing_input(graph, err.node_name))
    except GraphcError as err:
        return _fail(str(err).splitlines()[0])
    for path in (lib.header, lib.object, lib.shared):
        if path is not None:
            print(f"wrote {path}")
    return 0


def _missing_input(graph: Any, name: str) -> str:
    """What to write for a placeholder the outputs need and no --input gave."""
    node = graph.get_operation_by_name(name)
    shape = node.attrs.get("shape")
    dtype = node.attrs["dtype"].name
    if shape is None:
        example = "SHAPE"
    else:
        example = "x".join("1" if d is None else str(d) for d in shape)   # empty for a scalar
    return (f"the outputs need placeholder '{name}' ({dtype}), which no --input gives: "
            f"add --input {name}:{example}:{dtype} (the C library takes inputs of fixed shapes)")


def onnx_check(args: argparse.Namespace) -> int:
    """graphc onnx check MODEL.onnx: see graphc/onnx_check.py."""
    from .onnx_check import check_model, print_report

    inputs, shapes = {}, {}
    for item in args.input:
        name, sep, path = item.partition("=")
        if not sep:
            return _fail(f"--input {item!r}: write NAME=FILE.npy")
        try:
            inputs[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            return _fail(f"--input {item!r}: cannot read {path}: {err}")
    for item in args.input_shape:
        name, sep, dims = item.partition("=")
        try:
            shapes[name] = [int(d) for d in dims.split(",")] if sep and dims else None
        except ValueError:
            shapes[name] = None
        if shapes[name] is None:
            return _fail(f"--input-shape {item!r}: write NAME=8,128")
    try:
        report = check_model(args.model, inputs, shapes, backend=args.backend or "llvm")
    except ImportError:
        return _fail("graphc onnx check needs the onnx package: pip install \"graphc[onnx]\"")
    except GraphcError as err:
        return _fail(str(err))
    print_report(report, args.model, sys.stdout)
    return 0 if report.ok else 1

"""gc.debugprint: what the user's graph is, and what compiling it does, at every level.

    gc.debugprint(loss, shapes={x: (32, 784)})                       # graph, passes, groups
    gc.debugprint(loss, shapes={x: (32, 784)}, level="kernels")      # ... and the kernel program

prints the graph the fetches need (one line per node: op, dtype and shape, the user's source
line), then, when every fed shape is known (from the placeholders, `shapes` or `feed_dict`),
compiles it through the one compile path (graphc.backends.compile) for `backend` and shows the
passes that run (those the target added are marked), the program before the passes and after
each pass that changed it, which named rules fired how often, the fusion groups, and with
level="kernels" the kernel program (iteration spaces, index maps, scalar bodies, memory plan).
Returns the text as well.
"""
from __future__ import annotations

import sys
from typing import Any, Sequence, TextIO

import numpy as np

from . import backends
from .ir.graph import get_default_graph
from .ir.node import Node
from .ir.shapes import format_shape, is_fully_defined
from .ir.tensor import Tensor
from .lower.listing import kernel_listing
from .program import Program, build_program, needed_nodes

LEVELS = ("graph", "passes", "kernels")


def debugprint(fetches: Any, feed_dict: dict | None = None, shapes: dict | None = None,
               pipeline: Any = "default", file: TextIO | None = None, backend: str | None = None,
               level: str = "passes") -> str:
    """Print (to `file`, default stdout) and return the graph and its compilation for `backend`
    (default: the default backend) with `pipeline`, down to `level`: "graph", "passes" or
    "kernels"."""
    from .errors import CompileError

    if level not in LEVELS:
        raise CompileError(f"debugprint level must be one of {LEVELS}, got {level!r}")
    targets = _flatten(fetches)
    graph = targets[0].graph if targets else get_default_graph()
    lines = ["graph:"]
    nodes = needed_nodes([t.node if isinstance(t, Tensor) else t for t in targets], set())
    lines += ["  " + _node_line(n) for n in nodes]
    feeds = _feed_types(nodes, feed_dict, shapes)
    if level == "graph":
        pass
    elif isinstance(feeds, str):
        lines.append(f"(not compiled: {feeds})")
    else:
        lines += _compilation(graph, targets, feeds, pipeline, backend, level)
    text = "\n".join(lines)
    print(text, file=file if file is not None else sys.stdout)
    return text


def _compilation(graph: Any, targets: list, feeds: list, pipeline: Any, backend: str | None, level: str) -> list[str]:
    target = backends.get_backend(backend)
    planned = target.plan(pipeline)
    program = build_program(graph, targets, feeds)
    lines = ["", f"passes for the {target.name} target: " + (", ".join(str(p) for p in planned) or "none"),
             "", "program as built:", program.listing()]
    trace: list[tuple[str, Program, float]] = []
    executable = backends.compile(program, target, planned=planned, trace=trace)
    previous = program.listing()
    for name, p, seconds in trace:
        note = p.log[-1] if p.log else name
        lines.append(f"\n-- {note}  ({seconds * 1e3:.2f} ms)")
        listing = p.listing()
        if name != "fuse" and listing != previous:
            lines.append(listing)
        previous = listing
        if p.groups is not None:
            lines += ["fusion groups:"] + ["  " + g.describe() for g in p.groups]
    timings = getattr(executable, "timings", {})
    if timings:
        lines.append("\n-- build: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in timings.items()))
    if level == "kernels":
        kp = getattr(executable, "kp", None)
        lines += ["", kernel_listing(kp) if kp is not None
                  else f"(the {target.name} target interprets the program: it has no kernels)"]
    return lines


def _flatten(fetches: Any) -> list[Tensor | Node]:
    if isinstance(fetches, (list, tuple)):
        return [t for f in fetches for t in _flatten(f)]
    if isinstance(fetches, dict):
        return [t for f in fetches.values() for t in _flatten(f)]
    if hasattr(fetches, "_as_graph_element"):
        return [fetches._as_graph_element()]
    return [fetches]


def _node_line(n: Node) -> str:
    outs = ", ".join(f"{t.dtype.name}{format_shape(t.shape)}" for t in n.outputs) or "-"
    args = ", ".join(t.name for t in n.inputs)
    where = f"  # {n.source}" if n.source is not None else ""
    return f"{n.name} = {n.type}({args}) -> {outs}{where}"


def _feed_types(nodes: Sequence[Node], feed_dict: dict | None,
                shapes: dict | None) -> list[tuple[Tensor, Any, tuple]] | str:
    """(placeholder, dtype, concrete shape) for each placeholder, or why it cannot be known."""
    given: dict[Any, tuple] = {}
    for key, value in (feed_dict or {}).items():
        given[key] = tuple(np.shape(value))
    for key, shape in (shapes or {}).items():
        given[key] = tuple(shape)
    feeds = []
    for n in nodes:
        if n.type != "Placeholder":
            continue
        t = n.outputs[0]
        shape = given.get(t, t.shape if is_fully_defined(t.shape) else None)
        if shape is None:
            return f"the shape of placeholder '{n.name}' is {format_shape(t.shape)}; give shapes={{x: (...)}}"
        feeds.append((t, t.dtype, tuple(shape)))
    return feeds

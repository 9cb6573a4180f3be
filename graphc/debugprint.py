"""gc.debugprint: what the user's graph is, and what compiling it does.

    gc.debugprint(loss, shapes={x: (32, 784)})

prints the graph the fetches need (one line per node: op, dtype and shape, the user's source
line), then, when every fed shape is known (from the placeholders, `shapes` or `feed_dict`), the
compiled program before the passes, after each pass that changed it, which rules fired how often,
and the fusion groups. Returns the text as well.
"""
from __future__ import annotations

import sys
from typing import Any, Sequence, TextIO

import numpy as np

from .ir.graph import get_default_graph
from .ir.node import Node
from .ir.shapes import format_shape, is_fully_defined
from .ir.tensor import Tensor
from .passes import DEFAULT_PIPELINE, resolve, run_pipeline
from .program import Program, build_program, needed_nodes


def debugprint(fetches: Any, feed_dict: dict | None = None, shapes: dict | None = None,
               pipeline: Any = "default", file: TextIO | None = None) -> str:
    """Print (to `file`, default stdout) and return the graph and its compilation."""
    targets = _flatten(fetches)
    graph = targets[0].graph if targets else get_default_graph()
    lines = ["graph:"]
    nodes = needed_nodes([t.node if isinstance(t, Tensor) else t for t in targets], set())
    for n in nodes:
        lines.append("  " + _node_line(n))
    feeds = _feed_types(nodes, feed_dict, shapes)
    if isinstance(feeds, str):
        lines.append(f"(not compiled: {feeds})")
    else:
        passes = resolve(pipeline, DEFAULT_PIPELINE)
        program = build_program(graph, targets, feeds)
        lines += ["", "program as built:", program.listing()]
        trace: list[tuple[str, Program, float]] = []
        run_pipeline(program, passes, trace)
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
    text = "\n".join(lines)
    print(text, file=file if file is not None else sys.stdout)
    return text


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

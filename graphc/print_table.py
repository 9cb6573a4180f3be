"""The graph's print table and what a session does with it (see graphc/printing.py, which
makes prints): which prints a run reaches, and a compiled run that prints their values after
each call and hands the caller only what it fetched."""
from __future__ import annotations

import sys
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from .ir.graph import Graph
from .ir.node import Node, ancestors
from .ir.tensor import Tensor


@dataclass
class PrintSpec:
    """One print: its node, the tensors it shows and how (TF1 Print or tf.print style)."""

    node: Node
    parts: list[Any]            # tensors and plain text, in order
    style: str                  # "Print" (TF1: message then [values] per tensor) or "print" (tf.print)
    summarize: int | None
    first_n: int | None = None
    stream: Any = None
    sep: str = " "
    end: str = "\n"

    @property
    def tensors(self) -> list[Tensor]:
        return [p for p in self.parts if isinstance(p, Tensor)]

    def emit(self, values: Sequence[np.ndarray], counts: dict[int, int]) -> None:
        """Print the values, unless this session printed them first_n times already."""
        printed = counts.get(self.node.id, 0)
        if self.first_n is not None and printed >= self.first_n:
            return
        counts[self.node.id] = printed + 1
        it = iter(values)
        out: TextIO = self.stream or sys.stderr
        if self.style == "Print":
            text = "".join(p if isinstance(p, str) else f"[{_format(next(it), self.summarize, ' ')}]"
                           for p in self.parts)
        else:
            text = self.sep.join(p if isinstance(p, str) else _format(next(it), self.summarize, " ", brackets=True)
                                 for p in self.parts)
        out.write(text + self.end)
        out.flush()


def _format(value: Any, summarize: int | None, sep: str, brackets: bool = False) -> str:
    """At most `summarize` elements of each axis end (all with None or -1), NumPy's layout."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return str(arr.item())
    limit = arr.size + 1 if summarize is None or summarize < 0 else summarize
    if not brackets:   # TF1 Print: the first `limit` elements, flattened
        flat = arr.reshape(-1)
        shown = sep.join(str(v) for v in flat[:limit])
        return shown + ("..." if flat.size > limit else "")
    return np.array2string(arr, separator=sep, threshold=limit * 2 if limit <= arr.size else arr.size + 1,
                           edgeitems=max(limit, 1), max_line_width=10_000)


# graph -> its prints, by node name (weakly: a graph's prints go with it)
_prints: weakref.WeakKeyDictionary[Graph, dict[str, PrintSpec]] = weakref.WeakKeyDictionary()


def register(graph: Graph, spec: PrintSpec) -> None:
    _prints.setdefault(graph, {})[spec.node.name] = spec


def prints_reached(graph: Graph, targets: Sequence[Any]) -> list[PrintSpec]:
    """The prints a run of `targets` computes, in graph order (empty when the graph has none)."""
    table = _prints.get(graph)
    if not table:
        return []
    return [table[n.name] for n in ancestors(targets) if table.get(n.name) is not None and table[n.name].node is n]


class PrintingRun:
    """A compiled run whose results end with the prints' tensors: prints them after each run
    and returns the caller's results only."""

    def __init__(self, run: Any, fetched: int, prints: list[PrintSpec], counts: dict[int, int]) -> None:
        self.run, self.fetched, self.prints, self.counts = run, fetched, prints, counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self.run, name)

    def __call__(self, state: Any, feeds: Sequence[np.ndarray], *args: Any, **kwargs: Any) -> list[np.ndarray]:
        values = self.run(state, feeds, *args, **kwargs)
        at = self.fetched
        for spec in self.prints:
            n = len(spec.tensors)
            spec.emit(values[at:at + n], self.counts)
            at += n
        return values[:self.fetched]

"""Which node holds a variable's starting value in a file, shared by the writer and the reader.

A saved variable restores its saved value when its initializer runs. When the initializer
already reads a Const that nothing else uses (the usual `gc.Variable(np.zeros(...))`, or a graph
that was loaded before), that Const carries the saved value; otherwise the reader inserts a new
Const, named `<var>/saved_value`, in front of the initializer. Either way a save / load / save
cycle leaves the graph's structure unchanged after the first load.
"""
from __future__ import annotations

from typing import Iterable

from ..ir.node import Node

SAVED_VALUE_SUFFIX = "/saved_value"


def consumer_counts(nodes: Iterable[Node]) -> dict[str, int]:
    """How many data edges read each tensor (by tensor name)."""
    counts: dict[str, int] = {}
    for n in nodes:
        for t in n.inputs:
            counts[t.name] = counts.get(t.name, 0) + 1
    return counts


def value_const(initializer: Node, counts: dict[str, int], control_targets: set[str]) -> Node | None:
    """The Const feeding `initializer` that may carry the saved value, or None."""
    if len(initializer.inputs) != 1:
        return None
    t = initializer.inputs[0]
    src = t.node
    if src.type != "Const" or counts.get(t.name, 0) != 1 or src.name in control_targets:
        return None
    return src

"""Printing values from inside a graph: TF1's `gc.Print(input_, data, message)` (an identity of
`input_` that prints `data` whenever it is computed) and `gc.print(*inputs)` (TF's tf.print:
an op that prints when it runs, for control dependencies or session.run).

A print is a node of the graph (an Identity or a NoOp) plus an entry in the graph's print
table. When a session compiles a run, the prints the run reaches (through data or control
edges) add their data tensors to the run's results; after each run the session prints them,
in graph order, to stderr (or the stream given) and hands the caller only what it fetched. So
printing costs nothing in a run that does not reach a print, the compiled code stays pure,
and every backend prints the same values. Prints inside loop bodies and branches are refused
(a value per iteration would need the loop to collect them; stack them with gc.scan instead).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .api.control import identity, no_op
from .api.convert import convert_to_tensor
from .errors import GraphcError
from .ir.function import FuncGraph
from .ir.graph import Graph, get_default_graph
from .ir.node import Node
from .ir.tensor import Tensor
from .print_table import PrintSpec, register


def _check_graph(graph: Graph, what: str) -> None:
    if isinstance(graph, FuncGraph):
        raise GraphcError(f"{what} inside a loop body or a branch ('{graph.name}') is not supported",
                          hint="return the values as loop outputs (gc.scan stacks them) and print those")


def Print(input_: Any, data: Sequence[Any] | None = None, message: str | None = None,
          first_n: int | None = None, summarize: int | None = None, name: str | None = None) -> Tensor:
    """TF1's tf.Print: `input_` unchanged; computing it prints `message` and each tensor of
    `data` (its first `summarize` elements, 3 by default) to stderr, the first `first_n` times."""
    x = convert_to_tensor(input_)
    graph = x.graph
    _check_graph(graph, "gc.Print")
    tensors = [convert_to_tensor(d) for d in (data if data is not None else [x])]
    if any(t.graph is not graph for t in tensors):
        raise GraphcError("gc.Print's data must be in the graph of its input")
    with graph.as_default():
        out = identity(x, name=name or "Print")
    parts: list[Any] = [message or ""] + tensors
    register(graph, PrintSpec(out.node, parts, "Print", 3 if summarize is None else summarize,
                                        first_n=None if first_n is None or first_n < 0 else first_n))
    return out


def print_(*inputs: Any, output_stream: Any = None, summarize: int = 3, sep: str = " ", end: str = "\n",
           name: str | None = None) -> Node:
    """tf.print: an op that prints its inputs (tensors, and strings as they are) when it runs;
    use it in gc.control_dependencies or run it. summarize: elements shown at each end of an
    axis (-1: all)."""
    graph = get_default_graph()
    _check_graph(graph, "gc.print")
    parts = [p if isinstance(p, str) else convert_to_tensor(p) for p in inputs]
    with graph.as_default():
        node = no_op(name=name or "PrintV2")
    register(graph, PrintSpec(node, parts, "print", summarize, stream=output_stream, sep=sep, end=end))
    return node


__all__ = ["Print", "print_"]

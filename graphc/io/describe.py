"""What `graphc show` prints about a graph: inputs, outputs, ops by type, variables, and the
sub-graphs of loops and branches, each indented under the node that owns it; and the graph as
Graphviz DOT (hand-written, so no pydot is needed; networkx gives the structure)."""
from __future__ import annotations

import collections
import math
from typing import Any, TextIO

import networkx as nx

from ..ir.graph import Graph
from ..ir.node import Node
from ..ir.shapes import format_shape
from ..ir.tensor import Tensor


def to_networkx(graph: Graph) -> nx.DiGraph:
    """Nodes by name (with their op type) and edges for data (tensor index) and control inputs."""
    g = nx.DiGraph()
    for n in graph.get_operations():
        g.add_node(n.name, op=n.type)
        for t in n.inputs:
            g.add_edge(t.node.name, n.name, tensor=t.name, control=False)
        for c in n.control_inputs:
            if not g.has_edge(c.name, n.name):
                g.add_edge(c.name, n.name, control=True)
    return g


def graph_inputs(graph: Graph) -> list[Node]:
    return [n for n in graph.get_operations() if n.type == "Placeholder"]


def graph_outputs(graph: Graph) -> list[Tensor | Node]:
    """Tensors no node reads, and nodes without outputs that no node waits for (variables'
    initializers, which every graph with variables has, are not listed)."""
    read = {t for n in graph.get_operations() for t in n.inputs}
    waited = {c for n in graph.get_operations() for c in n.control_inputs}
    initializers = {info.initializer for info in graph.variables.values()}
    out: list[Tensor | Node] = []
    for n in graph.get_operations():
        if n in initializers:
            continue
        if n.outputs:
            out.extend(t for t in n.outputs if t not in read)
        elif n not in waited:
            out.append(n)
    return out


def describe(graph: Graph, out: TextIO, title: str = "") -> None:
    """A readable listing of the graph."""
    nodes = graph.get_operations()
    inner = _count_inner(graph, set())
    more = f" (and {inner} in sub-graphs)" if inner else ""
    print(f"graph {title}: {len(nodes)} nodes{more}" if title else f"graph: {len(nodes)} nodes{more}", file=out)
    print("\ninputs (placeholders):", file=out)
    for n in graph_inputs(graph) or []:
        print(f"  {n.outputs[0].name:40s} {n.attrs['dtype'].name:8s} {format_shape(n.attrs['shape'])}", file=out)
    if not graph_inputs(graph):
        print("  (none)", file=out)
    print("\noutputs (nothing consumes them):", file=out)
    for item in graph_outputs(graph):
        if isinstance(item, Tensor):
            print(f"  {item.name:40s} {item.dtype.name:8s} {format_shape(item.shape):16s} {item.node.type}", file=out)
        else:
            print(f"  {item.name:40s} (op {item.type}, no value)", file=out)
    print("\nops by type:", file=out)
    for op, count in sorted(collections.Counter(n.type for n in nodes).items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {op:38s} {count}", file=out)
    infos = graph.variables
    params = sum(math.prod(i.shape) for i in infos.values())
    trainable = sum(math.prod(i.shape) for i in infos.values() if i.trainable)
    print(f"\nvariables: {len(infos)} ({params} parameters, {trainable} trainable)", file=out)
    for info in infos.values():
        flag = "" if info.trainable else "  (not trainable)"
        print(f"  {info.name:40s} {info.dtype.name:8s} {format_shape(info.shape)}{flag}", file=out)
    if any(_functions_of(n) for n in nodes):
        print("\nsub-graphs (loop bodies and conditions, branches), under the node owning them:", file=out)
        _describe_functions(graph, out, "  ", {})


MAX_LISTED = 12   # arguments or results listed per sub-graph; the rest are counted


def _functions_of(node: Node) -> list[tuple[str, Any]]:
    """(attribute, Function) for each sub-graph the node owns."""
    return [(key, node.attrs[key]) for key in getattr(node.op, "functions", ()) if node.attrs.get(key) is not None]


def _count_inner(graph: Graph, seen: set[int]) -> int:
    """The nodes of every sub-graph inside `graph`, each graph counted once."""
    total = 0
    for node in graph.get_operations():
        for _, fn in _functions_of(node):
            if id(fn.graph) not in seen:
                seen.add(id(fn.graph))
                total += len(fn.graph.get_operations()) + _count_inner(fn.graph, seen)
    return total


def _describe_functions(graph: Graph, out: TextIO, indent: str, seen: dict[tuple[str, int], str]) -> None:
    """Each node of `graph` owning sub-graphs, then each sub-graph indented under it: its
    arguments, results and ops, and the nodes inside it owning sub-graphs in turn. A sub-graph
    two nodes share (a loop and its gradient's twin) is listed once and named after that; one
    reusing another's graph with more results (a gradient's) lists its arguments and results."""
    for node in graph.get_operations():
        owned = _functions_of(node)
        if not owned:
            continue
        print(f"{indent}{node.name} ({node.type})", file=out)
        for key, fn in owned:
            head = f"{indent}  {key} '{fn.name}'"
            if ("function", id(fn)) in seen:
                print(f"{head}: the same sub-graph as {seen['function', id(fn)]}", file=out)
                continue
            seen["function", id(fn)] = f"{key} of {node.name}"
            inner = fn.graph.get_operations()
            shared = seen.get(("graph", id(fn.graph)))
            size = f"the graph of {shared}" if shared else f"{len(inner)} nodes"
            print(f"{head}: {len(fn.args)} args -> {len(fn.results)} results, {size}", file=out)
            for label, tensors in (("args", fn.args), ("results", fn.results)):
                print(f"{indent}    {label}:", file=out)
                for t in tensors[:MAX_LISTED]:
                    print(f"{indent}      {t.name:36s} {t.dtype.name:8s} {format_shape(t.shape)}", file=out)
                if len(tensors) > MAX_LISTED:
                    print(f"{indent}      ... {len(tensors) - MAX_LISTED} more", file=out)
            if shared:
                continue
            seen["graph", id(fn.graph)] = seen["function", id(fn)]
            counts = collections.Counter(n.type for n in inner)
            ops = ", ".join(f"{op} {c}" for op, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            print(f"{indent}    ops: {ops}", file=out)
            _describe_functions(fn.graph, out, indent + "    ", seen)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _quote(text: str) -> str:
    return f'"{_escape(text)}"'


def to_dot(graph: Graph, name: str = "graphc") -> str:
    """Graphviz DOT: placeholders as ellipses, variables as cylinders, control edges dashed."""
    g = to_networkx(graph)
    shapes = {"Placeholder": "ellipse", "VariableV2": "cylinder", "Const": "note"}
    lines = [f"digraph {_quote(name)} {{", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica", fontsize=10];']
    by_name = {n.name: n for n in graph.get_operations()}
    for node_name, data in g.nodes(data=True):
        n = by_name[node_name]
        parts = [node_name, data["op"]]
        if len(n.outputs) == 1:
            parts.append(f"{n.outputs[0].dtype.name} {format_shape(n.outputs[0].shape)}")
        label = "\\n".join(_escape(p) for p in parts)  # DOT's \n line break
        lines.append(f'  {_quote(node_name)} [label="{label}", shape={shapes.get(data["op"], "box")}];')
    for u, v, data in g.edges(data=True):
        style = " [style=dashed]" if data.get("control") else ""
        lines.append(f"  {_quote(u)} -> {_quote(v)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def summarize_array(name: str, value: Any) -> str:
    """One line about a fetched value: dtype, shape and a few numbers."""
    import numpy as np

    arr = np.asarray(value)
    head = f"{name}: {arr.dtype} {tuple(arr.shape)}"
    if arr.size == 0:
        return head + " (empty)"
    if arr.size <= 8:
        return head + " = " + np.array2string(arr.reshape(-1), precision=6, separator=", ")
    if arr.dtype.kind in "iuf":
        flat = arr.astype(np.float64).reshape(-1)
        finite = flat[np.isfinite(flat)]
        stats = (f" min {finite.min():.6g} max {finite.max():.6g} mean {finite.mean():.6g}" if finite.size
                 else " (no finite values)")
        return head + stats + " first " + np.array2string(arr.reshape(-1)[:5], precision=6, separator=", ")
    return head + f" true {int(arr.sum())} of {arr.size}"

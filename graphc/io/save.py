"""`gc.save_graph`: write a graph, its constants and its variables' values to a `.gcx` file.

The values come from `session` when one is given (a trained model), else from the variables'
initializers run once in a fresh reference Session (so random initial values are drawn exactly
as a first `global_variables_initializer()` would draw them). The file never holds code: ops are
named, attributes are typed JSON and arrays are plain `.npy` entries. A loop's body or a
branch (a Function attribute) is written as a nested graph of the same node entries, so the
reader rebuilds and checks it exactly like the graph around it (see format.py).
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from ..compiled import initial_values
from ..errors import GraphcError
from ..ir.function import Function
from ..ir.graph import Graph, get_default_graph
from ..ir.node import Node
from ..ir.tensor import Tensor
from .archive import write_archive
from .codec import encode_shape, encode_source, encode_value
from .format import ARRAY_DIR, DEFAULT_LIMITS, FORMAT_NAME, FORMAT_VERSION, LOOPS_VERSION, PLAIN_VERSION
from .initial import consumer_counts, value_const


class _ArrayTable:
    """Arrays to write, deduplicated by content; each gets an entry name `arrays/<n>.npy`."""

    def __init__(self) -> None:
        self.entries: dict[str, np.ndarray] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self._by_key: dict[tuple, str] = {}

    def add(self, value: np.ndarray) -> str:
        arr = np.asarray(value, order="C")
        if arr.dtype.kind not in "biuf" or arr.dtype.name not in ("bool", "int32", "int64", "float32", "float64"):
            raise GraphcError(f"cannot write an array of NumPy dtype {arr.dtype}: not a graphc dtype")
        digest = hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest()
        key = (arr.dtype.str, arr.shape, digest)
        name = self._by_key.get(key)
        if name is None:
            name = f"{ARRAY_DIR}{len(self.entries)}.npy"
            self._by_key[key] = name
            self.entries[name] = arr
            self.meta[name] = {"dtype": arr.dtype.name, "shape": list(arr.shape)}
        return name


def variable_values(graph: Graph, session: Any = None) -> dict[str, np.ndarray]:
    """Each variable's value: from `session` where it is initialized there, else its initial
    value computed by running every initializer once on the reference backend."""
    infos = graph.variables
    values: dict[str, np.ndarray] = {}
    if session is not None:
        for name in infos:
            v = session.variable_value(name)
            if v is not None:
                values[name] = v
    missing = [name for name in infos if name not in values]
    if missing:
        try:
            values.update(initial_values(graph, missing))
        except GraphcError as err:
            raise GraphcError(
                f"cannot compute the initial values of variables {missing} to save them: {err.message}",
                hint="pass session= with the variables initialized") from None
    return values


def save_graph(path: str | os.PathLike, graph: Graph | None = None, session: Any = None,
               model: dict[str, Any] | None = None) -> str:
    """Write `graph` (default: the session's graph, else the default graph) to `path` as one
    self-contained `.gcx` file with the variables' values from `session` (else their initial
    values). `model` is Model.save's description of the model (plain JSON). Returns the path
    written."""
    if graph is None:
        graph = session.graph if session is not None else get_default_graph()
    if session is not None and session.graph is not graph:
        raise GraphcError("save_graph: the session runs a different graph than the one to save")
    table = _ArrayTable()
    values = variable_values(graph, session)
    nodes = graph.get_operations()
    counts = consumer_counts(nodes)
    control_targets = {c.name for n in nodes for c in n.control_inputs}
    carrier: dict[str, str] = {}  # Const node name -> variable whose value it carries
    variables = []
    for name, info in graph.variables.items():
        value = np.asarray(values[name], dtype=info.dtype.np).reshape(info.shape)
        entry = table.add(value)
        const = value_const(info.initializer, counts, control_targets) if info.initializer is not None else None
        if const is not None:
            carrier[const.name] = entry
        variables.append({
            "name": name, "dtype": info.dtype.name, "shape": list(info.shape), "trainable": bool(info.trainable),
            "initializer": info.initializer.name if info.initializer is not None else None,
            "initial_value": info.initial_value.name if info.initial_value is not None else None,
            "read": info.read.name if info.read is not None else None,
            "value": entry, "source": encode_source(info.source),
        })
    writer = _NodeWriter(table)
    entries = [writer.node(n, carrier) for n in nodes]
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION if model is not None else LOOPS_VERSION if writer.defined else PLAIN_VERSION,
        "producer": f"graphc {_version()}",
        "graph": {"seed": graph.seed},
        "nodes": entries,
        "variables": variables,
        "collections": _collections(graph),
        "arrays": table.meta,
    }
    if model is not None:
        document["model"] = model
    write_archive(path, document, table.entries)
    return os.fspath(path)


class _NodeWriter:
    """Node entries, with sub-graphs (Function attributes) written as nested graphs.

    Functions are numbered in the order their definitions start; one already written (a body a
    loop and its gradient's twin share) is written again as a reference to its number, so the
    loaded nodes share it too; one whose graph is already written (the body with more results
    a gradient needs) names that function's graph instead of repeating its nodes, and names its
    `origin` when it has one, so the compiler can still merge the loop with its twin. A function
    reached again while its own definition is still being written would contain itself: that is
    refused, as is nesting deeper than a reader accepts."""

    def __init__(self, table: _ArrayTable) -> None:
        self.table = table
        self.ids: dict[int, int] = {}          # id(Function) -> its number, once completely written
        self.graphs: dict[int, int] = {}       # id(its graph) -> the number of the function that wrote it
        self.open: set[int] = set()            # id(graph) of the definitions being written
        self.defined = 0
        self.inside: list[str] = []            # names of the functions being written, outermost first

    def node(self, n: Node, carrier: dict[str, str]) -> dict[str, Any]:
        where = f"node '{n.name}' ({n.type})" + (f" in function '{self.inside[-1]}'" if self.inside else "")
        functions = getattr(n.op, "functions", ())
        attrs = {}
        for key, value in n.attrs.items():
            if key == "value" and n.name in carrier:
                attrs[key] = {"array": carrier[n.name]}
            elif key in functions and value is not None:
                attrs[key] = self.function(value, f"{where}, attribute '{key}'")
            else:
                attrs[key] = encode_value(value, self.table.add, f"{where}, attribute '{key}'")
        return {
            "name": n.name,
            "op": n.type,
            "inputs": [t.name for t in n.inputs],
            "control_inputs": [c.name for c in n.control_inputs],
            "attrs": attrs,
            "outputs": [{"dtype": t.dtype.name, "shape": encode_shape(t.shape)} for t in n.outputs],
            "source": encode_source(n.source),
        }

    def function(self, fn: Any, where: str) -> dict[str, Any]:
        if not isinstance(fn, Function):
            raise GraphcError(f"{where}: cannot write {type(fn).__name__} {fn!r} as a function")
        if id(fn) in self.ids:
            return {"function": self.ids[id(fn)]}
        if id(fn.graph) in self.open:
            raise GraphcError(f"{where}: function '{fn.name}' contains itself")
        if len(self.inside) >= DEFAULT_LIMITS.max_function_depth:
            raise GraphcError(f"{where}: sub-graphs nest deeper than {DEFAULT_LIMITS.max_function_depth} levels, "
                              f"more than graphc reads back")
        for kind, tensors in (("argument", fn.args), ("result", fn.results)):
            for t in tensors:
                if t.node.graph is not fn.graph:
                    raise GraphcError(f"{where}: {kind} '{t.name}' of function '{fn.name}' is not a tensor of its graph")
        number = self.defined
        self.defined += 1
        entry: dict[str, Any] = {"id": number, "name": fn.name}
        if id(fn.graph) in self.graphs:   # the same body with other results (a gradient's): its graph once
            entry["graph"] = self.graphs[id(fn.graph)]
        else:
            self.open.add(id(fn.graph))
            self.inside.append(fn.name)
            try:
                entry["nodes"] = [self.node(n, {}) for n in fn.graph.get_operations()]   # no variable values inside
            finally:
                self.inside.pop()
                self.open.discard(id(fn.graph))
            self.graphs[id(fn.graph)] = number
        entry["args"] = [t.name for t in fn.args]
        entry["results"] = [t.name for t in fn.results]
        origin = getattr(fn, "origin", None)
        if origin is not None and id(origin) in self.ids and _extends(fn, origin):
            entry["origin"] = self.ids[id(origin)]   # lets the compiler merge a loop with its gradient's twin
        self.ids[id(fn)] = number
        return {"function": entry}


def _extends(fn: Function, origin: Function) -> bool:
    """`fn` is `origin` with more results: what a reader accepts as an origin."""
    return (fn.graph is origin.graph and len(fn.args) == len(origin.args) and len(fn.results) >= len(origin.results)
            and all(a is b for a, b in zip(fn.args, origin.args))
            and all(a is b for a, b in zip(fn.results, origin.results)))


def _collections(graph: Graph) -> dict[str, list[dict[str, str]]]:
    """Collections of variables, nodes and tensors, by name; other Python objects cannot be
    written (a file holds no code) and are left out."""
    from ..api.variables import Variable

    out: dict[str, list[dict[str, str]]] = {}
    for key in graph.get_all_collection_keys():
        items = []
        for item in graph.get_collection(key):
            if isinstance(item, Variable):
                items.append({"variable": item._info.name})
            elif isinstance(item, Node):
                items.append({"node": item.name})
            elif isinstance(item, Tensor):
                items.append({"tensor": item.name})
        out[key] = items
    return out


def _version() -> str:
    from ..version import __version__

    return __version__

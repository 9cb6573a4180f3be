"""`gc.load_graph`: read a `.gcx` file into a new Graph that runs like the one saved.

The file is untrusted. Reading goes file (a regular file only, read in chunks up to the size
limit) -> archive (sizes, names, zip bombs, the central directory's size; see archive.py) ->
document (what parsing will cost, checked before parsing: jsoncost.py; JSON; version upgrade)
-> arrays (.npy without pickle, dtype and shape checked) -> structure (every field typed, names
unique, references resolved, no cycles) -> nodes, created one at a time through
`Graph.create_node`, which re-runs each op's attribute checks and its dtype and shape inference;
the result must equal what the file records. A sub-graph (a loop body, a branch) goes through
the same structure checks and node creation when the node owning it is rebuilt (rebuild.py),
its nodes counting towards the file's node limit and its nesting bounded. Any problem is a
GraphFileError naming the node and the field. Nothing from the file is ever executed.
"""
from __future__ import annotations

import os
from typing import Any

import networkx as nx
import numpy as np

from ..errors import GraphFileError
from ..ir.graph import Graph
from .archive import Archive
from .rebuild import GraphBuilder
from .codec import Decoder
from .files import read_regular
from .format import DEFAULT_LIMITS, GRAPH_ENTRY, Limits
from .upgrade import upgrade

_TOP_FIELDS = {"format", "version", "producer", "graph", "nodes", "variables", "collections", "arrays"}
_NODE_FIELDS = {"name", "op", "inputs", "control_inputs", "attrs", "outputs", "source"}


def load_graph(path: str | os.PathLike, limits: Limits | None = None) -> Graph:
    """A new Graph from the `.gcx` file at `path`: same node names, variables (as gc.Variable
    objects in the collections, their initializers restoring the saved values) and collections.
    Raises GraphFileError for anything invalid; never executes code from the file."""
    limits = limits or DEFAULT_LIMITS
    where = os.fspath(path)
    return load_graph_bytes(read_regular(where, f"graph file {where!r}", limits.max_file_size), where, limits)


def load_graph_bytes(data: bytes, where: str = "<bytes>", limits: Limits | None = None) -> Graph:
    """load_graph for the bytes of a file already in memory."""
    return load_graph_and_model(data, where, limits)[0]


def load_graph_and_model(data: bytes, where: str = "<bytes>", limits: Limits | None = None) -> tuple[Graph, Any]:
    """The graph, and the file's "model" field as parsed JSON (None when it has none; the
    caller checks its content, gc.load_model in graphc/model_files.py)."""
    limits = limits or DEFAULT_LIMITS
    archive = Archive(data, where, limits)
    doc = upgrade(archive.document(), where)
    dec = Decoder(limits, {})
    doc = dec.obj(doc, f"{where}: the graph document", _TOP_FIELDS, {"model"})
    dec.string(doc["producer"], f"{where}: field 'producer'")
    dec.arrays = _read_arrays(archive, doc["arrays"], dec, where)
    nodes = dec.array_list(doc["nodes"], f"{where}: field 'nodes'", limits.max_nodes)
    checked = check_nodes(dec, nodes, where, "the file")
    builder = GraphBuilder(dec, where, check_nodes)
    graph_meta = dec.obj(doc["graph"], f"{where}: field 'graph'", {"seed"})
    seed = graph_meta["seed"]
    if seed is not None:
        seed = dec.integer(seed, f"{where}: field 'graph.seed'")
    return builder.build(checked, doc["variables"], doc["collections"], seed), doc.get("model")


def _read_arrays(archive: Archive, table: Any, dec: Decoder, where: str) -> dict[str, np.ndarray]:
    if not isinstance(table, dict):
        raise GraphFileError(f"{where}: field 'arrays' must be a JSON object")
    undeclared = sorted(set(archive.entries) - set(table) - {GRAPH_ENTRY})
    if undeclared:
        raise GraphFileError(f"{where}: archive entry {undeclared[0]!r} is not declared in field 'arrays'")
    arrays: dict[str, np.ndarray] = {}
    for name, meta in table.items():
        at = f"{where}: field 'arrays', entry {name!r}"
        if name not in archive.entries:
            raise GraphFileError(f"{at}: the archive has no such entry")
        meta = dec.obj(meta, at, {"dtype", "shape"})
        dtype = dec.dtype(meta["dtype"], f"{at}, dtype")
        shape = dec.shape(meta["shape"], f"{at}, shape", allow_unknown=False)
        arrays[name] = archive.array(name, dtype.name, shape)
    return arrays


def check_nodes(dec: Decoder, nodes: list, where: str, scope: str) -> list[dict[str, Any]]:
    """The node entries of one graph (the file's, or a sub-graph's: `scope` names it in
    messages) with their fields typed and their references resolved within that graph."""
    checked = [_check_node(dec, raw, i, where) for i, raw in enumerate(nodes)]
    _check_references(checked, where, scope)
    return checked


def _check_node(dec: Decoder, raw: Any, index: int, where: str) -> dict[str, Any]:
    """The node's fields with their JSON types checked (attributes are decoded by the builder)."""
    at = f"{where}: node #{index}"
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        at = f"{where}: node #{index} '{raw['name'][:80]}'"
    raw = dec.obj(raw, at, _NODE_FIELDS)
    name = dec.string(raw["name"], f"{at}, field 'name'", allow_empty=False)
    op = dec.string(raw["op"], f"{at}, field 'op'", allow_empty=False)
    inputs = [dec.string(s, f"{at}, inputs[{i}]")
              for i, s in enumerate(dec.array_list(raw["inputs"], f"{at}, field 'inputs'", dec.limits.max_nodes))]
    controls = [dec.string(s, f"{at}, control_inputs[{i}]")
                for i, s in enumerate(dec.array_list(raw["control_inputs"], f"{at}, field 'control_inputs'",
                                                     dec.limits.max_nodes))]
    attrs = raw["attrs"]
    if not isinstance(attrs, dict):
        raise GraphFileError(f"{at}, field 'attrs' must be a JSON object")
    outputs = []
    for i, o in enumerate(dec.array_list(raw["outputs"], f"{at}, field 'outputs'", dec.limits.max_outputs_per_node)):
        o = dec.obj(o, f"{at}, outputs[{i}]", {"dtype", "shape"})
        outputs.append((dec.dtype(o["dtype"], f"{at}, outputs[{i}].dtype"),
                        dec.shape(o["shape"], f"{at}, outputs[{i}].shape")))
    refs = []
    for i, ref in enumerate(inputs):
        src, sep, idx = ref.rpartition(":")
        if not sep or not src or not idx.isdigit() or (len(idx) > 1 and idx[0] == "0") or len(idx) > 9:
            raise GraphFileError(f"{at}, inputs[{i}]: {ref!r} is not a tensor reference 'node_name:index'")
        refs.append((src, int(idx)))
    return {"at": at, "name": name, "op": op, "inputs": refs, "control_inputs": controls, "attrs": attrs,
            "outputs": outputs, "source": dec.source(raw["source"], f"{at}, field 'source'")}


def _check_references(nodes: list[dict[str, Any]], where: str, scope: str) -> None:
    """Names are unique; every input names a node of the same graph (a sub-graph reads only its
    own nodes: what it uses from outside comes in as an argument), with no cycle, and nodes
    come in creation order (each after everything it reads)."""
    position: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if n["name"] in position:
            raise GraphFileError(f"{n['at']}: the name '{n['name']}' is used by node #{position[n['name']]} too")
        position[n["name"]] = i
    deps = nx.DiGraph()
    deps.add_nodes_from(position)
    for n in nodes:
        for i, (src, _) in enumerate(n["inputs"]):
            if src not in position:
                raise GraphFileError(f"{n['at']}, inputs[{i}]: refers to node '{src}', which {scope} does not have")
            deps.add_edge(src, n["name"])
        for i, src in enumerate(n["control_inputs"]):
            if src not in position:
                raise GraphFileError(f"{n['at']}, control_inputs[{i}]: refers to node '{src}', which {scope} "
                                     f"does not have")
            deps.add_edge(src, n["name"])
    if not nx.is_directed_acyclic_graph(deps):
        cycle = nx.find_cycle(deps)
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise GraphFileError(f"{where}: {'the graph' if scope == 'the file' else scope} has a cycle: {path[:500]}")
    for i, n in enumerate(nodes):
        for src in [s for s, _ in n["inputs"]] + n["control_inputs"]:
            if position[src] >= i:
                raise GraphFileError(f"{n['at']}: reads node '{src}', which comes later in the file "
                                     f"(nodes must be listed in creation order)")

"""Rebuilding a Graph from a checked graph document, node by node.

Each node goes through `Graph.create_node`, so every op re-runs its own attribute checks and its
dtype and shape inference; the loader then insists that the result equals what the file records.
The op code is not hardened against arbitrary attribute values (it trusts the API layer that
normally builds its attributes), so any exception it raises on a file's node is reported as a
GraphFileError naming that node.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..api.variables import Variable
from ..errors import GraphcError, GraphFileError
from ..ir.dtypes import DType
from ..ir.graph import _VALID_NAME, Graph, VariableInfo
from ..ir.node import Node
from ..ir.shapes import format_shape
from ..ir.tensor import Tensor
from ..ops import all_ops
from .codec import Decoder
from .initial import SAVED_VALUE_SUFFIX

_VAR_FIELDS = {"name", "dtype", "shape", "trainable", "initializer", "initial_value", "read", "value", "source"}


class GraphBuilder:
    """Creates the nodes, variables and collections of one document in a new Graph."""

    def __init__(self, dec: Decoder, where: str) -> None:
        self.dec = dec
        self.where = where
        self.ops = all_ops()

    def build(self, nodes: list[dict[str, Any]], variables: Any, collections: Any, seed: int | None) -> Graph:
        graph = Graph()
        graph.seed = seed
        by_name = {n["name"]: n for n in nodes}
        specs = self._variables(variables, by_name)
        carriers, inserts = self._value_carriers(nodes, specs)
        taken = set(by_name)
        for n in nodes:
            if n["name"] in inserts:
                spec = specs[inserts[n["name"]]]
                const = self._saved_value_const(graph, spec, taken)
                spec["initial_tensor"] = const.outputs[0]
                n = dict(n, substitute=const.outputs[0])
            override = specs[carriers[n["name"]]]["value"] if n["name"] in carriers else None
            node = self._create(graph, n, override)
            if n["name"] in carriers:
                specs[carriers[n["name"]]]["initial_tensor"] = node.outputs[0]
        self._check_variable_ops(graph, specs)
        self._register_variables(graph, specs)
        self._collections(graph, collections)
        return graph

    # -------------------------------------------------------------- nodes
    def _create(self, graph: Graph, n: dict[str, Any], value_override: np.ndarray | None) -> Node:
        at = n["at"]
        op = self.ops.get(n["op"])
        if op is None:
            raise GraphFileError(f"{at}: unknown op {n['op'][:80]!r} (this graphc has no op of that name)")
        attrs = self._attrs(op, n, at)
        if value_override is not None:
            attrs["value"] = value_override
        inputs = []
        for i, (src, idx) in enumerate(n["inputs"]):
            outs = graph.get_operation_by_name(src).outputs
            if idx >= len(outs):
                raise GraphFileError(f"{at}, inputs[{i}]: node '{src}' has {len(outs)} output(s), not an output {idx}")
            inputs.append(outs[idx])
        if "substitute" in n:
            inputs = [n["substitute"]]
        arity = op.arity
        count = len(inputs)
        if arity is not None and not (count == arity if isinstance(arity, int) else arity[0] <= count <= arity[1]):
            want = arity if isinstance(arity, int) else f"{arity[0]} to {arity[1]}"
            raise GraphFileError(f"{at}: op {op.name} takes {want} input(s), the file gives {count}")
        _check_output_count(op.name, inputs, attrs, len(n["outputs"]), at)
        controls = [graph.get_operation_by_name(c) for c in n["control_inputs"]]
        try:
            node = graph.create_node(op, inputs, attrs, n["name"], source=n["source"], control_inputs=controls,
                                     exact_name=True)
        except GraphFileError:
            raise
        except Exception as err:  # the op's own checks; see the module docstring
            raise GraphFileError(f"{at}: op {op.name} rejects this node: {getattr(err, 'message', err)}") from None
        if node.name != n["name"]:
            raise GraphFileError(f"{at}: the name {n['name']!r} is not a valid node name")
        self._compare_outputs(node, n, at)
        return node

    def _attrs(self, op: Any, n: dict[str, Any], at: str) -> dict[str, Any]:
        raw = n["attrs"]
        unknown = sorted(set(raw) - set(op.attr_defaults))
        if unknown:
            raise GraphFileError(f"{at}: op {op.name} has no attribute {unknown[0][:80]!r}")
        attrs: dict[str, Any] = {}
        for key, value in raw.items():
            where = f"{at}, attribute '{key}'"
            decoded = self.dec.value(value, where)
            default = op.attr_defaults[key]
            if isinstance(default, bool) and not isinstance(decoded, bool):
                raise GraphFileError(f"{where} must be true or false, got {decoded!r}")
            if isinstance(default, DType) and not isinstance(decoded, DType):
                raise GraphFileError(f"{where} must be a dtype ({{'dtype': name}}), got {decoded!r}")
            attrs[key] = decoded
        return attrs

    def _compare_outputs(self, node: Node, n: dict[str, Any], at: str) -> None:
        recorded = n["outputs"]
        if len(recorded) != len(node.outputs):
            raise GraphFileError(f"{at}: the file records {len(recorded)} output(s), but op {node.type} "
                                 f"gives {len(node.outputs)}")
        for i, ((dtype, shape), t) in enumerate(zip(recorded, node.outputs)):
            if dtype is not t.dtype:
                raise GraphFileError(f"{at}, outputs[{i}]: the file records dtype {dtype.name}, but inference "
                                     f"gives {t.dtype.name}")
            if shape != t.shape:
                raise GraphFileError(f"{at}, outputs[{i}]: the file records shape {format_shape(shape)}, but "
                                     f"inference gives {format_shape(t.shape)}")

    # -------------------------------------------------------------- variables
    def _variables(self, raw: Any, by_name: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        dec = self.dec
        entries = dec.array_list(raw, f"{self.where}: field 'variables'", dec.limits.max_nodes)
        specs: dict[str, dict[str, Any]] = {}
        for i, v in enumerate(entries):
            at = f"{self.where}: variables[{i}]"
            v = dec.obj(v, at, _VAR_FIELDS)
            name = dec.string(v["name"], f"{at}.name", allow_empty=False)
            if not _VALID_NAME.match(name):
                raise GraphFileError(f"{at}, field 'name': {name[:80]!r} is not a valid variable name (letters, digits "
                                     f"and _ . - /, as node names)")
            at = f"{self.where}: variable '{name[:80]}'"
            if name in specs:
                raise GraphFileError(f"{at} is declared twice")
            dtype = dec.dtype(v["dtype"], f"{at}, field 'dtype'")
            shape = dec.shape(v["shape"], f"{at}, field 'shape'", allow_unknown=False)
            value = dec.value({"array": v["value"]}, f"{at}, field 'value'")
            if value.dtype != dtype.np or value.shape != shape:
                raise GraphFileError(f"{at}, field 'value': the array is {value.dtype} {value.shape}, the variable "
                                     f"is {dtype.name} {shape}")
            spec = {"at": at, "name": name, "dtype": dtype, "shape": shape, "value": value,
                    "trainable": dec.boolean(v["trainable"], f"{at}, field 'trainable'"),
                    "source": dec.source(v["source"], f"{at}, field 'source'")}
            for key, kind in (("initializer", "node"), ("initial_value", "tensor"), ("read", "tensor")):
                ref = dec.string(v[key], f"{at}, field '{key}'", allow_empty=False)
                node_name = ref.rpartition(":")[0] if kind == "tensor" else ref
                if kind == "tensor" and not ref.rpartition(":")[2].isdigit():
                    raise GraphFileError(f"{at}, field '{key}': {ref!r} is not a tensor name 'node:index'")
                if node_name not in by_name:
                    raise GraphFileError(f"{at}, field '{key}': refers to node '{node_name[:80]}', which the file "
                                         f"does not have")
                spec[key] = ref
            init = by_name[spec["initializer"]]
            if init["op"] != "Assign" or len(init["inputs"]) != 1:
                raise GraphFileError(f"{at}, field 'initializer': node '{init['name']}' is not an Assign of one input")
            if by_name[spec["read"].rpartition(":")[0]]["op"] != "VariableV2":
                raise GraphFileError(f"{at}, field 'read': {spec['read']!r} is not the output of a VariableV2 node")
            specs[name] = spec
        return specs

    def _value_carriers(self, nodes: list[dict[str, Any]], specs: dict[str, dict[str, Any]]
                        ) -> tuple[dict[str, str], dict[str, str]]:
        """(Const node -> variable whose saved value it carries, initializer -> variable needing a
        new Const): the same rule as graphc.io.initial, applied to the document."""
        uses: dict[tuple[str, int], int] = {}
        controls: set[str] = set()
        ops = {n["name"]: n["op"] for n in nodes}
        for n in nodes:
            for ref in n["inputs"]:
                uses[ref] = uses.get(ref, 0) + 1
            controls.update(n["control_inputs"])
        carriers: dict[str, str] = {}
        inserts: dict[str, str] = {}
        by_name = {n["name"]: n for n in nodes}
        for name, spec in specs.items():
            ref = by_name[spec["initializer"]]["inputs"][0]
            if ops[ref[0]] == "Const" and uses[ref] == 1 and ref[0] not in controls and ref[0] not in carriers:
                carriers[ref[0]] = name
            else:
                inserts[spec["initializer"]] = name
        return carriers, inserts

    def _saved_value_const(self, graph: Graph, spec: dict[str, Any], taken: set[str]) -> Node:
        base = spec["name"] + SAVED_VALUE_SUFFIX
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        try:
            return graph.create_node(self.ops["Const"], [], {"value": spec["value"]}, name, source=spec["source"],
                                     exact_name=True)
        except GraphcError as err:   # the file's variable makes a node graphc cannot have
            raise GraphFileError(f"{spec['at']}: cannot create the node '{name[:80]}' holding its saved value: "
                                 f"{err.message}") from None

    def _check_variable_ops(self, graph: Graph, specs: dict[str, dict[str, Any]]) -> None:
        for node in graph.get_operations():
            if node.op.variable_effect is None:
                continue
            var = node.attrs.get("var")
            spec = specs.get(var) if isinstance(var, str) else None
            at = f"{self.where}: node '{node.name}' ({node.type})"
            if spec is None:
                raise GraphFileError(f"{at}, attribute 'var': {var!r} is not a variable the file declares")
            if node.attrs.get("dtype") is not spec["dtype"] or tuple(node.attrs.get("shape") or ()) != spec["shape"]:
                raise GraphFileError(f"{at}: its dtype / shape attributes do not match variable '{var}' "
                                     f"({spec['dtype'].name} {spec['shape']})")
        for spec in specs.values():
            init = graph.get_operation_by_name(spec["initializer"])
            if init.attrs.get("var") != spec["name"]:
                raise GraphFileError(f"{spec['at']}, field 'initializer': node '{init.name}' assigns variable "
                                     f"{init.attrs.get('var')!r}")
            read_t = _tensor(graph, spec["read"], spec["at"], "read")
            if read_t.node.attrs.get("var") != spec["name"]:
                raise GraphFileError(f"{spec['at']}, field 'read': node '{read_t.node.name}' reads variable "
                                     f"{read_t.node.attrs.get('var')!r}")

    def _register_variables(self, graph: Graph, specs: dict[str, dict[str, Any]]) -> None:
        for spec in specs.values():
            info = VariableInfo(spec["name"], spec["dtype"], spec["shape"], spec["trainable"], spec["source"],
                                initializer=graph.get_operation_by_name(spec["initializer"]),
                                initial_value=spec.get("initial_tensor"),
                                read=_tensor(graph, spec["read"], spec["at"], "read"))
            Variable.from_info(graph, info)  # the nodes exist already: only the Python object is made
            graph.register_variable(info)

    # -------------------------------------------------------------- collections
    def _collections(self, graph: Graph, raw: Any) -> None:
        at = f"{self.where}: field 'collections'"
        if not isinstance(raw, dict):
            raise GraphFileError(f"{at} must be a JSON object")
        for key, items in raw.items():
            self.dec.string(key, f"{at}, a collection name", allow_empty=False)
            items = self.dec.array_list(items, f"{at}, '{key[:80]}'", self.dec.limits.max_nodes)
            for i, item in enumerate(items):
                where = f"{at}, '{key[:80]}'[{i}]"
                if not isinstance(item, dict) or len(item) != 1:
                    raise GraphFileError(f"{where} must be one of {{'variable'|'node'|'tensor': name}}")
                (kind, name), = item.items()
                name = self.dec.string(name, where)
                if kind == "variable":
                    if name not in graph.variables:
                        raise GraphFileError(f"{where}: there is no variable {name[:80]!r}")
                    graph.add_to_collection(key, graph.variable_info(name).python_object)
                elif kind == "node":
                    if not _has_node(graph, name):
                        raise GraphFileError(f"{where}: there is no node {name[:80]!r}")
                    graph.add_to_collection(key, graph.get_operation_by_name(name))
                elif kind == "tensor":
                    graph.add_to_collection(key, _tensor(graph, name, where, "tensor"))
                else:
                    raise GraphFileError(f"{where}: unknown kind {kind[:40]!r}; expected variable, node or tensor")


def _has_node(graph: Graph, name: str) -> bool:
    try:
        graph.get_operation_by_name(name)
        return True
    except Exception:
        return False


def _tensor(graph: Graph, ref: str, at: str, field: str) -> Tensor:
    try:
        return graph.get_tensor_by_name(ref)
    except Exception:
        raise GraphFileError(f"{at}, field '{field}': {ref[:80]!r} is not a tensor of the graph") from None


def _check_output_count(op: str, inputs: list[Tensor], attrs: dict[str, Any], declared: int, at: str) -> None:
    """Ops whose number of outputs comes from an attribute or a shape: check it against the
    file before inference, which would otherwise build a list of that many output types."""
    if op == "Split":
        n, sizes = attrs.get("num_split"), attrs.get("size_splits")
        if n is not None:
            count = n
        elif sizes is not None:
            count = len(sizes) if isinstance(sizes, tuple) else None
        elif len(inputs) > 1:
            t = inputs[1]
            count = (t.static_value.size if t.static_value is not None
                     else (t.shape[0] if t.shape is not None and len(t.shape) == 1 else None))
        else:
            count = None
    elif op == "Unpack":
        count = attrs.get("num")
        x = inputs[0] if inputs else None
        if count is None and x is not None and x.shape is not None:
            axis = attrs.get("axis", 0)
            if isinstance(axis, int) and not isinstance(axis, bool) and -len(x.shape) <= axis < len(x.shape):
                count = x.shape[axis]
    else:
        return
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count != declared):
        raise GraphFileError(f"{at}: op {op} would make {count!r} outputs, the file records {declared}")

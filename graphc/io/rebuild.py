"""Rebuilding a Graph from a checked graph document, node by node.

Each node goes through `Graph.create_node`, so every op re-runs its own attribute checks and its
dtype and shape inference; the loader then insists that the result equals what the file records.
The op code is not hardened against arbitrary attribute values (it trusts the API layer that
normally builds its attributes), so any exception it raises on a file's node is reported as a
GraphFileError naming that node.

Sub-graphs (a While's body and cond, an If's branches) are rebuilt when the node owning them
is: each definition becomes a `FuncGraph` whose outer graph is the graph being rebuilt, its
nodes created the same way, then a `Function` of its argument placeholders and results, which
the owning op's inference checks against the node's inputs. What keeps a hostile file from
making this recursion unbounded: nesting is limited (`Limits.max_function_depth`), every
sub-graph's nodes (and each sub-graph itself) count towards `Limits.max_nodes`, and a
reference (`{"function": id}`, a shared `graph`, an `origin`) may only name a definition
already complete, which is never one that encloses it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..api.variables import Variable
from ..errors import GraphcError, GraphFileError
from ..ir.dtypes import DType
from ..ir.function import FuncGraph, Function
from ..ir.graph import _VALID_NAME, Graph, VariableInfo
from ..ir.node import Node
from ..ir.shapes import format_shape
from ..ir.tensor import Tensor
from ..ops import all_ops
from .codec import Decoder, _kind
from .initial import SAVED_VALUE_SUFFIX

_VAR_FIELDS = {"name", "dtype", "shape", "trainable", "initializer", "initial_value", "read", "value", "source"}
_FUNCTION_FIELDS = {"id", "name", "args", "results"}   # and "nodes" or "graph"; "origin"
# (decoder, raw node entries, where, scope) -> the entries checked (load.check_nodes)
CheckNodes = Callable[[Decoder, list, str, str], list[dict[str, Any]]]


class GraphBuilder:
    """Creates the nodes, variables and collections of one document in a new Graph."""

    def __init__(self, dec: Decoder, where: str, check_nodes: CheckNodes) -> None:
        self.dec = dec
        self.where = where
        self.ops = all_ops()
        self.check_nodes = check_nodes
        self.functions: dict[int, Function] = {}   # complete definitions, by id
        self.started = 0                           # definitions begun (the next id)
        self.depth = 0                             # sub-graphs enclosing the node being rebuilt
        self.node_budget = dec.limits.max_nodes

    def build(self, nodes: list[dict[str, Any]], variables: Any, collections: Any, seed: int | None) -> Graph:
        self._spend_nodes(len(nodes), self.where)
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
        attrs = self._attrs(graph, op, n, at)
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
        if isinstance(graph, FuncGraph) and op.variable_effect is not None:
            raise GraphFileError(f"{at}: op {op.name} inside function '{graph.name}': a loop body or a branch uses "
                                 f"variables only through its arguments (the tracer captures them)")
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

    def _attrs(self, graph: Graph, op: Any, n: dict[str, Any], at: str) -> dict[str, Any]:
        raw = n["attrs"]
        unknown = sorted(set(raw) - set(op.attr_defaults))
        if unknown:
            raise GraphFileError(f"{at}: op {op.name} has no attribute {unknown[0][:80]!r}")
        functions = getattr(op, "functions", ())
        attrs: dict[str, Any] = {}
        for key, value in raw.items():
            where = f"{at}, attribute '{key}'"
            if key in functions:
                attrs[key] = self._function(graph, value, where)
                continue
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

    # -------------------------------------------------------------- sub-graphs
    def _spend_nodes(self, count: int, at: str) -> None:
        self.node_budget -= count
        if self.node_budget < 0:
            raise GraphFileError(f"{at}: the file holds more than {self.dec.limits.max_nodes} nodes, counting those "
                                 f"of its sub-graphs and one per sub-graph")

    def _function(self, graph: Graph, value: Any, where: str) -> Function | None:
        """A function attribute: null, a definition (rebuilt here, inside `graph`) or the id of
        a definition already complete."""
        if value is None:
            return None
        if not isinstance(value, dict) or list(value) != ["function"]:
            raise GraphFileError(f"{where} must be a sub-graph {{'function': {{...}}}}, a reference "
                                 f"{{'function': id}} or null, got {_kind(value)}")
        body = value["function"]
        if isinstance(body, int) and not isinstance(body, bool):
            fn = self.functions.get(body)
            if fn is None:
                why = ("encloses this attribute (a function cannot contain itself)" if 0 <= body < self.started
                       else "the file does not define before this point")
                raise GraphFileError(f"{where} refers to function {body}, which {why}")
            return fn
        return self._define(graph, body, where)

    def _define(self, graph: Graph, body: Any, where: str) -> Function:
        dec, limits = self.dec, self.dec.limits
        body = dec.obj(body, f"{where}, the function", _FUNCTION_FIELDS, {"nodes", "graph", "origin"})
        number = dec.integer(body["id"], f"{where}, function field 'id'")
        if number != self.started:
            raise GraphFileError(f"{where}, function field 'id' is {number}, expected {self.started} (functions are "
                                 f"numbered in the order the file defines them)")
        name = dec.string(body["name"], f"{where}, function field 'name'", allow_empty=False)
        if not name.isprintable():
            raise GraphFileError(f"{where}, function field 'name': {name[:80]!r} holds control characters")
        at = f"{where}, function '{name[:80]}'"
        if self.depth >= limits.max_function_depth:
            raise GraphFileError(f"{at}: sub-graphs nest deeper than {limits.max_function_depth} levels")
        if ("nodes" in body) == ("graph" in body):
            raise GraphFileError(f"{at}: a function has either its own 'nodes' or the 'graph' of another function")
        self.started += 1
        self._spend_nodes(1, at)   # a sub-graph costs about what a node does, even an empty one
        if "graph" in body:   # the graph of another function (the same body with more results)
            fg = self._complete(body["graph"], f"{at}, field 'graph'").graph
        else:
            raw_nodes = dec.array_list(body["nodes"], f"{at}, field 'nodes'", limits.max_nodes)
            self._spend_nodes(len(raw_nodes), at)
            checked = self.check_nodes(dec, raw_nodes, at, f"function '{name[:80]}'")
            fg = FuncGraph(graph, name, self.ops["Placeholder"])
            self.depth += 1
            try:
                for n in checked:
                    self._create(fg, n, None)
            finally:
                self.depth -= 1
        args = self._function_tensors(fg, body["args"], f"{at}, field 'args'")
        results = self._function_tensors(fg, body["results"], f"{at}, field 'results'")
        _check_arguments(fg, args, at)
        fn = Function(name, fg, args, results)
        if "origin" in body:
            fn.origin = self._origin(fn, body["origin"], f"{at}, field 'origin'")
        self.functions[number] = fn
        return fn

    def _complete(self, ref: Any, at: str) -> Function:
        number = self.dec.integer(ref, at)
        fn = self.functions.get(number)
        if fn is None:
            raise GraphFileError(f"{at} refers to function {number}, which is not a definition complete before "
                                 f"this point (a function cannot contain itself)")
        return fn

    def _origin(self, fn: Function, ref: Any, at: str) -> Function:
        """The function `fn` was made from (graphc.ir.function.Function.origin), which lets the
        compiler merge a loop with its gradient's twin: only the same graph with the same
        arguments and the origin's results first, so merging the two is sound."""
        origin = self._complete(ref, at)
        if (origin.graph is not fn.graph or len(origin.args) != len(fn.args)
                or any(a is not b for a, b in zip(origin.args, fn.args)) or len(origin.results) > len(fn.results)
                or any(a is not b for a, b in zip(origin.results, fn.results))):
            raise GraphFileError(f"{at}: function '{origin.name[:80]}' is not the same graph with the same arguments "
                                 f"and the first of these results")
        return origin

    def _function_tensors(self, fg: FuncGraph, raw: Any, at: str) -> list[Tensor]:
        refs = self.dec.array_list(raw, at, self.dec.limits.max_outputs_per_node)
        out = []
        for i, ref in enumerate(refs):
            ref = self.dec.string(ref, f"{at}[{i}]")
            src, sep, idx = ref.rpartition(":")
            if not sep or not idx.isdigit() or (len(idx) > 1 and idx[0] == "0") or len(idx) > 9:
                raise GraphFileError(f"{at}[{i}]: {ref[:80]!r} is not a tensor reference 'node_name:index'")
            if not _has_node(fg, src):
                raise GraphFileError(f"{at}[{i}]: refers to node '{src[:80]}', which function '{fg.name[:80]}' does "
                                     f"not have")
            outs = fg.get_operation_by_name(src).outputs
            if int(idx) >= len(outs):
                raise GraphFileError(f"{at}[{i}]: node '{src[:80]}' has {len(outs)} output(s), not an output {idx}")
            out.append(outs[int(idx)])
        return out

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


def _check_arguments(fg: FuncGraph, args: list[Tensor], at: str) -> None:
    """A function's arguments are its placeholders, each once, and all of them (a sub-graph
    reads nothing else from outside)."""
    taken: set[Node] = set()
    for i, t in enumerate(args):
        if t.node.type != "Placeholder":
            raise GraphFileError(f"{at}, args[{i}]: '{t.name}' is not a placeholder of the function")
        if t.node in taken:
            raise GraphFileError(f"{at}, args[{i}]: '{t.name}' is listed twice")
        taken.add(t.node)
    extra = next((p for p in fg.get_operations() if p.type == "Placeholder" and p not in taken), None)
    if extra is not None:
        raise GraphFileError(f"{at}: placeholder '{extra.name}' is not one of the function's arguments (a "
                             f"function takes everything it reads as an argument)")


def _check_output_count(op: str, inputs: list[Tensor], attrs: dict[str, Any], declared: int, at: str) -> None:
    """Ops whose number of outputs comes from an attribute, a shape or a sub-graph: check it
    against the file before inference, which would otherwise build a list of that many output
    types (a sub-graph's results are listed once but may be used by many nodes)."""
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
    elif op == "While":   # inference would list a type per result of the body
        body, n, history = attrs.get("body"), attrs.get("n_carries", 0), attrs.get("history", False)
        if not isinstance(body, Function) or not isinstance(n, int) or not isinstance(history, bool):
            return
        count = len(body.results) + 1 + (n if history else 0)
    elif op == "If":
        branch = attrs.get("then_branch")
        if not isinstance(branch, Function):
            return
        count = len(branch.results)
    else:
        return
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count != declared):
        raise GraphFileError(f"{at}: op {op} would make {count!r} outputs, the file records {declared}")

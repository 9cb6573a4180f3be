"""Importing an ONNX model as an ordinary graphc graph.

Each ONNX node is rebuilt from graphc's public builders by the rules in import_math,
import_array and import_nn, so the result is a graph like any other: it runs, differentiates
(gc.gradients) and saves. Initializers become constants (Const nodes), not variables: an imported
model is a function of its inputs; wrap a constant in gc.Variable to train it.

graphc compiles for static shapes, so ONNX inputs that carry shapes or axes (Reshape's shape,
Slice's starts, Pad's pads, ...) must be known while building: constants, initializers or
values computed from shapes. A model whose shape inputs are graph inputs can be imported with
`static_inputs={name: value}` (the backend does so per run).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import GraphcError
from ...ir.graph import Graph
from ...ir.tensor import Tensor
from .common import DEFAULT_OPSET, graphc_type

Rule = Callable[["ImportContext", Any, list, dict], Sequence[Any]]
RULES: dict[str, Rule] = {}
# Inputs (by position) that must be known while building, per op type: the backend binds graph
# inputs reaching them as constants.
STATIC_INPUTS: dict[str, tuple[int, ...]] = {}


def rule(*op_types: str, static: tuple[int, ...] = ()) -> Callable[[Rule], Rule]:
    """Register an import rule: rule(ctx, node, inputs, attrs) -> one tensor per ONNX output."""
    def deco(fn: Rule) -> Rule:
        for name in op_types:
            RULES[name] = fn
            if static:
                STATIC_INPUTS[name] = static
        return fn
    return deco


@dataclass
class Imported:
    """The result of an import: the graph, its input placeholders and output tensors, and the
    ONNX element types of the outputs (graphc may hold them in a wider type)."""

    graph: Graph
    inputs: list[Tensor]
    outputs: list[Tensor]
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    input_types: list[int] = field(default_factory=list)
    output_types: list[int] = field(default_factory=list)


class ImportContext:
    """State while importing: the ONNX value name -> graphc tensor map and the opset."""

    def __init__(self, graph: Graph, opset: int) -> None:
        import onnx

        self.onnx = onnx
        self.graph = graph
        self.opset = opset
        self.env: dict[str, Tensor] = {}
        self.node: Any = None

    def where(self) -> str:
        n = self.node
        return f"ONNX node '{n.name}' ({n.op_type})" if n is not None and n.name else \
            f"ONNX node {n.op_type if n is not None else ''}"

    def error(self, message: str) -> GraphcError:
        return GraphcError(f"{self.where()}: {message}")

    def static(self, t: Tensor | None, what: str) -> np.ndarray:
        """The value of an input that must be known while building."""
        if t is None:
            raise self.error(f"{what} is missing")
        if t.static_value is None:
            raise self.error(f"{what} must be known while building (a constant, an initializer or a value "
                             f"computed from shapes); graphc compiles for static shapes")
        return t.static_value

    def static_ints(self, t: Tensor | None, what: str) -> list[int]:
        return [int(v) for v in np.asarray(self.static(t, what)).reshape(-1)]

    def constant(self, value: Any, dtype: Any = None) -> Tensor:
        from ...api.convert import constant

        arr = np.asarray(value, dtype=dtype)
        return constant(arr, dtype=graphc_type_of(arr))


def graphc_type_of(arr: np.ndarray) -> Any:
    from ...ir.dtypes import from_numpy

    return from_numpy(arr.dtype)


_BAD = re.compile(r"[^A-Za-z0-9_.\-/]")


def sanitize(name: str, fallback: str = "t") -> str:
    """A valid graphc node name made from an ONNX name."""
    name = _BAD.sub("_", name).strip("/") or fallback
    return name if re.match(r"[A-Za-z0-9.]", name[0]) else f"{fallback}{name}"


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        out[a.name] = value
    return out


def _load_proto(source: Any) -> Any:
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray)):
        return onnx.load_model_from_string(bytes(source))
    return onnx.load(os.fspath(source))


def tensor_array(proto: Any) -> np.ndarray:
    """An ONNX TensorProto as a NumPy array in graphc's (possibly wider) dtype."""
    from onnx import numpy_helper

    dtype = graphc_type(proto.data_type, f"tensor '{proto.name}'")
    return np.asarray(numpy_helper.to_array(proto)).astype(dtype.np)


def import_model(source: Any, static_inputs: dict[str, np.ndarray] | None = None) -> Imported:
    """Build a graphc graph from an ONNX model (path, bytes or ModelProto)."""
    from . import import_array, import_math, import_nn  # noqa: F401  (register the rules)

    model = _load_proto(source)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)
    graph = Graph()
    ctx = ImportContext(graph, opset)
    static_inputs = static_inputs or {}
    g = model.graph
    result = Imported(graph, [], [])
    with graph.as_default():
        for init in g.initializer:
            ctx.env[init.name] = ctx.constant(tensor_array(init))
        for vi in g.input:
            if vi.name in ctx.env:
                continue  # an initializer listed as an input (older models)
            if not vi.type.HasField("tensor_type"):
                raise GraphcError(f"ONNX input '{vi.name}' is not a tensor; graphc imports tensors only")
            elem = vi.type.tensor_type.elem_type
            dtype = graphc_type(elem, f"ONNX input '{vi.name}'")
            if vi.name in static_inputs:
                ctx.env[vi.name] = ctx.constant(np.asarray(static_inputs[vi.name]).astype(dtype.np))
                continue
            from ...api.variables import placeholder

            dims = _dims(vi)
            p = placeholder(dtype, dims, name=sanitize(vi.name, "input"))
            ctx.env[vi.name] = p
            result.inputs.append(p)
            result.input_names.append(vi.name)
            result.input_types.append(elem)
        for node in g.node:
            _convert(ctx, node)
        for vo in g.output:
            if vo.name not in ctx.env:
                raise GraphcError(f"ONNX output '{vo.name}' is not computed by any node")
            result.outputs.append(ctx.env[vo.name])
            result.output_names.append(vo.name)
            result.output_types.append(vo.type.tensor_type.elem_type)
    return result


def _dims(vi: Any) -> Any:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


def _convert(ctx: ImportContext, node: Any) -> None:
    ctx.node = node
    if node.domain not in ("", "ai.onnx"):
        raise ctx.error(f"operator domain '{node.domain}' is not supported (only the default ONNX domain)")
    fn = RULES.get(node.op_type)
    if fn is None:
        raise ctx.error(f"graphc cannot import ONNX op {node.op_type}")
    inputs = []
    for name in node.input:
        if not name:
            inputs.append(None)
        elif name not in ctx.env:
            raise ctx.error(f"input '{name}' is not defined before this node")
        else:
            inputs.append(ctx.env[name])
    scope = sanitize(node.name or node.op_type, "node")
    try:
        with ctx.graph.name_scope(scope):
            outputs = list(fn(ctx, node, inputs, _attrs(node)))
    except GraphcError as err:
        if ctx.where() in err.message:
            raise
        raise GraphcError(f"{ctx.where()}: {err.message}", hint=err.hint) from None
    for name, t in zip(node.output, outputs):
        if name and t is not None:
            ctx.env[name] = t
    for name in list(node.output)[len(outputs):]:
        if name:
            raise ctx.error(f"output '{name}' is not supported by graphc's import of {node.op_type}")
    ctx.node = None

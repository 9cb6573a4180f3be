"""The table of ONNX import rules and the context they work in.

Each rule module (import_math, import_array, import_nn, import_control) registers its rules
here with @rule and imports nothing but this module, the checks and graphc's builders; the
driver (importer.py) imports the rule modules, so nothing imports in a circle. (import_control
imports sub-graphs node by node with the driver's own _convert, imported when first called.)
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import GraphcError, GraphFileError
from ...ir.graph import Graph
from ...ir.tensor import Tensor
from .files import short
from .tensors import DEFAULT_MAX_TENSOR_BYTES, checked_dims, tensor_array

Rule = Callable[["ImportContext", Any, list, dict], Sequence[Any]]
RULES: dict[str, Rule] = {}
# Inputs (by position) that must be known while building, per op type: the backend binds graph
# inputs reaching them as constants.
STATIC_INPUTS: dict[str, tuple[int, ...]] = {}


def rule(*op_types: str, static: tuple[int, ...] = ()) -> Callable[[Rule], Rule]:
    """Register an import rule: rule(ctx, node, inputs, attrs) -> one tensor per ONNX output.
    Ops of another domain are registered as "domain.OpType" ("ai.onnx.ml.Scaler")."""
    def deco(fn: Rule) -> Rule:
        for name in op_types:
            RULES[name] = fn
            if static:
                STATIC_INPUTS[name] = static
        return fn
    return deco


class ImportContext:
    """State while importing: the ONNX value name -> graphc tensor map, the opset, the node being
    imported (for errors), the folder external data may come from, and the size bound.

    Inside a sub-graph (a Loop body, an If branch; import_control.py) `graph` and `env` are the
    sub-graph's, `path` names where the sub-graph sits ("ONNX node 3 'loop' (Loop), attribute
    'body'") so errors locate nested nodes, and `depth` / `subgraph_nodes` count the nesting and
    the nodes of all sub-graphs so far (bounded: checks.check_subgraph)."""

    def __init__(self, graph: Graph, opset: int, folder: Path | None = None,
                 max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> None:
        import onnx

        self.onnx = onnx
        self.graph = graph
        self.opset = opset
        self.folder = folder
        self.max_tensor_bytes = max_tensor_bytes
        self.env: dict[str, Tensor] = {}
        self.node: Any = None
        self.index: int | None = None
        self.path = ""
        self.depth = 0
        self.subgraph_nodes = 0
        self.ml_opset = 1          # the ai.onnx.ml domain's opset (set by the importer)
        # outputs of ZipMap nodes: value name -> the class labels its probabilities map to
        self.zipmaps: dict[str, list[Any]] = {}

    def opset_of(self, domain: str) -> int:
        if domain == "ai.onnx.preview.training":
            return 1   # the only version of that domain
        return self.ml_opset if domain == "ai.onnx.ml" else self.opset

    def where(self) -> str:
        """'ONNX node 3 'relu' (Relu)': the node's index in the graph, its name and op type; in a
        sub-graph, after the path to it ("ONNX node 3 'loop' (Loop), attribute 'body', node 1 ...")."""
        n = self.node
        if n is None:
            return self.path or "ONNX model"
        name = f" {short(n.name)!r}" if n.name else ""
        here = f"node {self.index}{name} ({short(n.op_type)})"
        return f"{self.path}, {here}" if self.path else f"ONNX {here}"

    def error(self, message: str, hint: str | None = None) -> GraphcError:
        return GraphFileError(f"{self.where()}: {message}", hint=hint)

    def static(self, t: Tensor | None, what: str) -> np.ndarray:
        """The value of an input that must be known while building."""
        if t is None:
            raise self.error(f"{what} is missing")
        if t.static_value is None:
            raise self.error(f"{what} must be known while building (a constant, an initializer or a value "
                             f"computed from shapes); graphc compiles for static shapes",
                             hint="if the model has dynamic axes (a symbolic batch size), give their sizes when "
                                  "loading: gc.onnx.load(path, input_shapes={'x': [8, 128]})")
        return t.static_value

    def static_ints(self, t: Tensor | None, what: str) -> list[int]:
        value = np.asarray(self.static(t, what))
        if not (value.dtype.kind in "iu" or value.dtype == np.bool_):
            raise self.error(f"{what} must hold integers, got {value.dtype.name}")
        return [int(v) for v in value.reshape(-1)]

    def dims(self, values: Sequence[int], what: str, itemsize: int = 8) -> tuple[int, ...]:
        """A shape the importer is about to build a value of: dims >= 0, within the size bound."""
        return checked_dims(values, f"{self.where()}: {what}", itemsize, self.max_tensor_bytes)

    def tensor(self, proto: Any, what: str) -> np.ndarray:
        """A TensorProto (an attribute's value) as an array, checked."""
        return tensor_array(proto, f"{self.where()}: {what}", self.folder, self.max_tensor_bytes)

    def scalar_like(self, value: Any, like: Tensor) -> Tensor:
        """A scalar constant of `like`'s dtype (an attribute's value must fit it: no inf as an int)."""
        try:
            arr = np.asarray(value, dtype=like.dtype.np)
        except (OverflowError, ValueError):
            raise self.error(f"the value {value!r} does not fit the input's element type {like.dtype.name}") from None
        return self.constant(arr)

    def constant(self, value: Any, dtype: Any = None) -> Tensor:
        from ...api.convert import constant

        arr = np.asarray(value, dtype=dtype)
        return constant(arr, dtype=graphc_type_of(arr))


def graphc_type_of(arr: np.ndarray) -> Any:
    from ...ir.dtypes import from_numpy

    return from_numpy(arr.dtype)


_BAD = re.compile(r"[^A-Za-z0-9_.\-/]")


def sanitize(name: str, fallback: str = "t") -> str:
    """A valid graphc node name made from an ONNX name (at most 100 characters of it)."""
    name = _BAD.sub("_", name[:100]).strip("/") or fallback
    return name if re.match(r"[A-Za-z0-9.]", name[0]) else f"{fallback}{name}"

"""The table of ONNX export rules and the context they work in.

Each rule module (export_math, export_array, export_nn, export_control) registers its rules here with @rule and
imports nothing but this module; the driver (exporter.py) imports the rule modules, so nothing
imports in a circle.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ...errors import GraphcError
from ...ir.dtypes import DType
from ...ir.node import Node
from ...ir.tensor import Tensor
from .common import onnx_type

Rule = Callable[["ExportContext", Node], Sequence[str]]
RULES: dict[str, Rule] = {}


def data_ancestors(outputs: Sequence[Tensor], inputs: set[Tensor]) -> list[Node]:
    """The nodes the outputs need through data edges, stopping at the inputs, in creation
    order. Control dependencies are left out: ONNX is pure dataflow, and variables are frozen."""
    seen: dict[int, Node] = {}
    stack = [t.node for t in outputs if t not in inputs]
    while stack:
        n = stack.pop()
        if n.id not in seen:
            seen[n.id] = n
            stack.extend(t.node for t in n.inputs if t not in inputs)
    return [seen[i] for i in sorted(seen)]


def rule(*op_names: str) -> Callable[[Rule], Rule]:
    """Register an export rule: rule(ctx, node) -> one ONNX value name per node output."""
    def deco(fn: Rule) -> Rule:
        for name in op_names:
            RULES[name] = fn
        return fn
    return deco


class ExportContext:
    """The ONNX graph being built: nodes, initializers and the ONNX name of each graphc tensor.

    A sub-graph (a Loop body, an If branch: export_control.py) is built in a child context
    (`subgraph()`): its own nodes and tensor names, but the model's initializers, constants and
    set of used names, since ONNX names are unique across a model and a sub-graph may use any
    value of the graphs enclosing it (initializers included) by name."""

    def __init__(self, opset: int, variables: dict[str, np.ndarray]) -> None:
        import onnx

        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.variables = variables
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[Tensor, str] = {}
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}
        self.current: Node | None = None

    def subgraph(self) -> ExportContext:
        """A context for a sub-graph of the node being exported (see the class docstring)."""
        child = object.__new__(ExportContext)
        child.__dict__.update(self.__dict__)
        child.nodes, child.names = [], {}
        return child

    def convert(self, nodes: Sequence[Node]) -> None:
        """Export `nodes` (in creation order) by their rules; tensors already named are kept."""
        for n in nodes:
            if n.outputs and all(t in self.names for t in n.outputs):
                continue  # an input of the (sub-)graph
            self.current = n
            fn = RULES.get(n.type)
            if fn is None:
                raise self.unsupported(n)
            for t, name in zip(n.outputs, fn(self, n)):
                self.names.setdefault(t, name)
        self.current = None

    def value_info(self, name: str, t: Tensor) -> Any:
        return self.helper.make_tensor_value_info(name, onnx_type(t.dtype), None if t.shape is None else list(t.shape))

    # ------------------------------------------------------------------ names and values
    def fresh(self, hint: str) -> str:
        name, k = hint, 0
        while name in self._used:
            k += 1
            name = f"{hint}_{k}"
        self._used.add(name)
        return name

    def input(self, node: Node, i: int, dtype: DType | None = None) -> str:
        """The ONNX name of input i, cast to `dtype` when given and different."""
        t = node.inputs[i]
        name = self.names[t]
        return self.cast(name, t.dtype, dtype) if dtype is not None else name

    def cast(self, name: str, have: DType, want: DType | None) -> str:
        if want is None or have is want:
            return name
        return self.op("Cast", [name], to=onnx_type(want))

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding `value` (deduplicated)."""
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == np.float16 or arr.dtype.kind not in "biuf":
            raise GraphcError(f"cannot export a constant of dtype {arr.dtype}")
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in self._consts:
            return self._consts[key]
        name = self.fresh(f"{self.current.name}/{hint}" if self.current is not None else hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(arr, order="C"), name))
        self._consts[key] = name
        return name

    def ints(self, values: Sequence[int], hint: str = "ints") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1), hint=hint)

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        """Add an ONNX node; returns its output name (or a list of names when n_out != 1)."""
        base = self.current.name if self.current is not None else op_type
        outs = [self.fresh(f"{base}/{op_type}" + (f":{i}" if n_out > 1 else "")) for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=self.fresh(f"{base}/{op_type}#"),
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool) -> str:
        """A Reduce* node in this opset's form: axes as an input (opset >= 18, and ReduceSum
        since 13) or as an attribute."""
        keep = 1 if keepdims else 0
        if axes is None:
            return self.op(op_type, [x], keepdims=keep)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes, "axes")], keepdims=keep)
        return self.op(op_type, [x], axes=list(axes), keepdims=keep)

    def unsupported(self, node: Node, why: str = "") -> GraphcError:
        detail = f": {why}" if why else ""
        return GraphcError(f"graphc op {node.type} has no ONNX equivalent{detail}", op_type=node.type,
                           node_name=node.name, source=node.source)

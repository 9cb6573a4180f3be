"""Exporting a graphc subgraph as an ONNX model.

The exported model computes `outputs` from `inputs`: the nodes the outputs need (cut at the
inputs) are converted one by one by the rules in export_math / export_array / export_nn /
export_control (loops and branches, with their sub-graphs), each producing ONNX nodes. Variables are frozen: their reads become initializers holding the value
from `session` (else the initial value). ONNX requires equal input types where graphc promotes
like NumPy, so rules cast operands to the dtype graphc computes in. A node without an ONNX
equivalent is a GraphcError naming its op type, its name and the line that created it.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from ...errors import GraphcError
from ...ir.graph import Graph
from ...ir.tensor import Tensor
from ..save import variable_values
from . import export_array, export_control, export_math, export_nn  # noqa: F401  (their @rule functions fill RULES)
from .common import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, onnx_type
from .export_control import with_subgraph_nodes
from .export_rules import ExportContext, data_ancestors


def _as_tensor(graph: Graph, item: Any, what: str) -> Tensor:
    if isinstance(item, str):
        item = graph.get_tensor_by_name(item) if ":" in item else graph.get_operation_by_name(item).outputs[0]
    elif hasattr(item, "_as_graph_element"):
        item = item._as_graph_element()
    if not isinstance(item, Tensor):
        raise GraphcError(f"ONNX export: {what} must be tensors (or tensor names), got {item!r}")
    return item


def build_model(inputs: Sequence[Any], outputs: Sequence[Any], session: Any = None, opset: int | None = None) -> Any:
    """The ONNX ModelProto computing `outputs` from `inputs` (checked by onnx.checker). ONNX
    value names are graphc tensor names ('x:0'), so the model's inputs and outputs keep them."""
    import onnx


    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise GraphcError(f"ONNX export supports opsets {MIN_OPSET} to {MAX_OPSET}, not {opset}")
    if not outputs:
        raise GraphcError("ONNX export needs at least one output")
    first = outputs[0]._as_graph_element() if hasattr(outputs[0], "_as_graph_element") else outputs[0]
    graph = session.graph if session is not None else first.graph
    ins = [_as_tensor(graph, x, "inputs") for x in inputs]
    outs = [_as_tensor(graph, y, "outputs") for y in outputs]
    nodes = data_ancestors(outs, set(ins))
    read_vars = sorted({n.attrs["var"] for n in with_subgraph_nodes(nodes) if n.op.variable_effect == "read"})
    values = variable_values(graph, session) if read_vars else {}
    ctx = ExportContext(opset, values)
    helper = onnx.helper
    graph_inputs = []
    for t in ins:
        name = ctx.fresh(t.name)
        ctx.names[t] = name
        graph_inputs.append(helper.make_tensor_value_info(name, onnx_type(t.dtype), _dims(t.shape)))
    ctx.convert(nodes)
    graph_outputs = []
    for t in outs:  # each output gets its own Identity, so names are the graphc tensor names
        final = ctx.fresh(t.name)
        ctx.nodes.append(helper.make_node("Identity", [ctx.names[t]], [final], name=ctx.fresh(f"{t.name}/output")))
        graph_outputs.append(helper.make_tensor_value_info(final, onnx_type(t.dtype), _dims(t.shape)))
    onnx_graph = helper.make_graph(ctx.nodes, "graphc", graph_inputs, graph_outputs, ctx.initializers)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="graphc", producer_version=_version())
    model.ir_version = min(model.ir_version, 10)  # readable by onnxruntime releases of the same era
    onnx.checker.check_model(model)
    return model


def export_model(path: Any, inputs: Sequence[Any], outputs: Sequence[Any], session: Any = None,
                 opset: int | None = None) -> Any:
    """build_model, written to `path`."""
    import onnx

    model = build_model(inputs, outputs, session=session, opset=opset)
    onnx.save(model, os.fspath(path))
    return model


def _dims(shape: Any) -> Any:
    return None if shape is None else [d for d in shape]


def _version() -> str:
    from ...version import __version__

    return __version__

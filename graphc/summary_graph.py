"""A graphc graph as TensorFlow's GraphDef protocol buffer, for TensorBoard's Graphs tab: each
node with its name (scopes become TensorBoard's collapsible groups), op type, inputs (data and
`^control` edges), output dtypes and shapes. Loop bodies and branches show as their one node."""
from __future__ import annotations

from typing import Any

from .ir.graph import Graph
from .ir.tensor import Tensor


def _tensor_ref(t: Tensor) -> str:
    return t.node.name if t.index == 0 else f"{t.node.name}:{t.index}"


def graph_def(graph: Graph) -> Any:
    """The GraphDef (tensorboardX's generated class) describing `graph`."""
    from tensorboardX.proto import attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, types_pb2, versions_pb2

    dtypes = {"float32": types_pb2.DT_FLOAT, "float64": types_pb2.DT_DOUBLE, "int32": types_pb2.DT_INT32,
              "int64": types_pb2.DT_INT64, "bool": types_pb2.DT_BOOL}
    AttrValue = attr_value_pb2.AttrValue

    def shape_proto(shape: Any) -> Any:
        if shape is None:
            return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
        return tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=-1 if d is None else int(d)) for d in shape])

    nodes = []
    for node in graph.get_operations():
        attr = {"_output_shapes": AttrValue(list=AttrValue.ListValue(shape=[shape_proto(t.shape) for t in node.outputs]))}
        if node.outputs:
            attr["T"] = AttrValue(type=dtypes.get(node.outputs[0].dtype.name, types_pb2.DT_INVALID))
        nodes.append(node_def_pb2.NodeDef(
            name=node.name, op=node.type,
            input=[_tensor_ref(t) for t in node.inputs] + [f"^{c.name}" for c in node.control_inputs],
            attr=attr))
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))

"""The graph IR: dtypes, static shapes, tensors, nodes and graphs. Knows no particular op."""
from .dtypes import DType, as_dtype, bool_, float32, float64, int32, int64, promote
from .graph import Graph, NotFoundError, VariableInfo, get_default_graph, reset_default_graph
from .node import Node
from .shapes import Shape
from .tensor import Tensor

__all__ = [
    "DType", "as_dtype", "bool_", "float32", "float64", "int32", "int64", "promote",
    "Graph", "NotFoundError", "VariableInfo", "get_default_graph", "reset_default_graph",
    "Node", "Shape", "Tensor",
]

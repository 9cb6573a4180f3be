"""Tensor: one output of a node, with a dtype and a static (possibly partial) shape.

The arithmetic operators (`+`, `@`, `x[1:3]`, ...) are installed onto this class by the API
layer (graphc.api.operators), so that the IR stays free of any knowledge of particular ops.
Tensors compare by identity (`==` is not overloaded) so that they can be dict keys, as in TF1.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GraphcError
from . import context
from .dtypes import DType
from .shapes import Shape, format_shape, num_elements

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph
    from .node import Node


class Tensor:
    """A symbolic value: output `index` of `node`."""

    __slots__ = ("node", "index", "dtype", "shape", "static_value", "__weakref__")
    # NumPy must hand `ndarray * tensor` to Tensor.__rmul__ instead of looping over the array.
    __array_ufunc__ = None

    def __init__(self, node: "Node", index: int, dtype: DType, shape: Shape) -> None:
        self.node = node
        self.index = index
        self.dtype = dtype
        self.shape = shape
        # The value, when it is small and computable while building (constants, shapes of
        # fully known tensors, arithmetic on those). Lets reshape(x, shape(y)) know its shape.
        self.static_value: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.node.name}:{self.index}"

    @property
    def op(self) -> "Node":
        """The node that produces this tensor (TF1 calls it the tensor's operation)."""
        return self.node

    @property
    def graph(self) -> "Graph":
        return self.node.graph

    @property
    def ndim(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def get_shape(self) -> Shape:
        return self.shape

    @property
    def size(self) -> int | None:
        """Number of elements when the shape is fully known, else None."""
        return num_elements(self.shape)

    def consumers(self) -> list["Node"]:
        """The nodes that take this tensor as an input."""
        return [n for n in self.graph.get_operations() if any(t is self for t in n.inputs)]

    def eval(self, feed_dict: dict | None = None, session: Any = None) -> np.ndarray:
        """Run this tensor in `session`, or in the default session (`with gc.Session() as s`)."""
        return context.session_for(session).run(self, feed_dict=feed_dict)

    def __repr__(self) -> str:
        return f"<gc.Tensor '{self.name}' shape={format_shape(self.shape)} dtype={self.dtype.name}>"

    def __bool__(self) -> bool:
        raise GraphcError(
            f"the truth value of tensor '{self.name}' is unknown while the graph is built",
            hint="use gc.where(cond, a, b) for a choice made at run time",
        )

    def __iter__(self):
        raise GraphcError(
            f"tensor '{self.name}' is not iterable while the graph is built",
            hint="use gc.unstack(x) or gc.split(x, n) to get a list of tensors",
        )

    def __len__(self) -> int:
        raise GraphcError(
            f"len() of tensor '{self.name}' is not defined; use x.shape[0] or gc.shape(x)[0]"
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise GraphcError(
            f"tensor '{self.name}' is symbolic and has no value until it is run",
            hint="call sess.run(x) (or x.eval(session=sess)) to get a NumPy array",
        )

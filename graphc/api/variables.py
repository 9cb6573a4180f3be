"""Placeholders and variables (TF1 names and semantics, with resource-variable reads).

A Variable's pieces are created in this order: its initial value, its initializer (an Assign),
then its canonical read, the node named after the variable. Using `v` in an expression uses
that read, so within one run it sees the value from before any later assignment in the same run
(see graphc.program.from_graph for the ordering rule); `v.read_value()` makes a fresh read at the
point where it is called.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import GraphcError, ShapeError
from ..ir import context
from ..ir.dtypes import DType, as_dtype
from ..ir.graph import Graph, VariableInfo, get_default_graph
from ..ir.node import Node
from ..ir.shapes import Shape, as_shape, format_shape, is_fully_defined
from ..ir.tensor import Tensor
from ..ops import get_op
from ..source import capture_source
from .convert import graph_of, apply1, apply_op, convert_to_tensor, is_tensor_like

GLOBAL_VARIABLES = "variables"
TRAINABLE_VARIABLES = "trainable_variables"


def placeholder(dtype: Any, shape: Any = None, name: str | None = None) -> Tensor:
    """A value to feed at run time; None dims (or shape=None, unknown rank) are free."""
    attrs = {"dtype": as_dtype(dtype), "shape": as_shape(shape)}
    return apply1("Placeholder", [], attrs, name, graph=get_default_graph())


def placeholder_with_default(input: Any, shape: Any, name: str | None = None) -> Tensor:  # noqa: A002
    """`input` unless a value is fed for this tensor."""
    x = convert_to_tensor(input)
    return apply1("PlaceholderWithDefault", [x], {"shape": as_shape(shape)}, name)


class Variable:
    """A TF1-style variable: `gc.Variable(initial_value, dtype=None, name=None, trainable=True)`.

    Usable wherever a tensor is (it converts to its value). Its value lives in each session.
    """

    def __init__(self, initial_value: Any, dtype: Any = None, name: str | None = None,
                 trainable: bool = True, collections: list[str] | None = None) -> None:
        graph = initial_value.graph if isinstance(initial_value, Tensor) else get_default_graph()
        source = capture_source(1)
        var_name = graph.unique_name(name or "Variable")
        self._graph = graph
        with graph.as_default(), graph.control_dependencies(None), graph.name_scope(var_name + "/"):
            if callable(initial_value):
                initial_value = initial_value()
            init = convert_to_tensor(initial_value, dtype=None if is_tensor_like(initial_value) else dtype,
                                     name="initial_value")
            if dtype is not None and init.dtype != as_dtype(dtype):
                raise GraphcError(f"variable '{var_name}': the initial value is {init.dtype.name}, "
                                  f"not {as_dtype(dtype).name}; cast it first")
            if not is_fully_defined(init.shape):
                raise ShapeError(f"variable '{var_name}' needs an initial value of fully known shape, "
                                 f"got {format_shape(init.shape)}")
            info = VariableInfo(var_name, init.dtype, tuple(init.shape), trainable, source,
                                initial_value=init, python_object=self)
            graph.register_variable(info)
            attrs = {"var": var_name, "dtype": init.dtype, "shape": tuple(init.shape)}
            info.initializer = apply_op("Assign", [init], attrs, "Assign")
        with graph.as_default(), graph.control_dependencies(None):
            read = graph.create_node(get_op("VariableV2"), [], attrs, var_name, exact_name=True)
        info.read = read.outputs[0]
        self._info = info
        for key in collections if collections is not None else (
                [GLOBAL_VARIABLES] + ([TRAINABLE_VARIABLES] if trainable else [])):
            graph.add_to_collection(key, self)

    @classmethod
    def from_info(cls, graph: Graph, info: VariableInfo) -> "Variable":
        """The Python object for a variable whose nodes already exist in `graph` (a loaded
        graph file): no nodes are created."""
        var = cls.__new__(cls)
        var._graph = graph
        var._info = info
        info.python_object = var
        return var

    # ---------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self._info.read.name

    @property
    def op(self) -> Node:
        return self._info.read.node

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def dtype(self) -> DType:
        return self._info.dtype

    @property
    def shape(self) -> Shape:
        return self._info.shape

    def get_shape(self) -> Shape:
        return self._info.shape

    @property
    def trainable(self) -> bool:
        return self._info.trainable

    @property
    def initializer(self) -> Node:
        assert self._info.initializer is not None
        return self._info.initializer

    @property
    def initial_value(self) -> Tensor:
        assert self._info.initial_value is not None
        return self._info.initial_value

    def value(self) -> Tensor:
        """The canonical read (what `v` means in an expression)."""
        assert self._info.read is not None
        return self._info.read

    def initialized_value(self) -> Tensor:
        """TF1 compatibility: graphc orders reads after initializers already, so this is value()."""
        return self.value()

    def _as_graph_element(self) -> Tensor:
        """What `v` means where a tensor is expected: inside a control_dependencies block a fresh
        read there (so `identity(v)` after an update sees it, as with TF resource variables),
        else the canonical read."""
        if self._graph.control_inputs_in_scope():
            return self.read_value()
        return self.value()

    # ---------------------------------------------------------------- state changes
    def read_value(self, name: str | None = None) -> Tensor:
        """A fresh read, ordered where it is created (after assignments created before it)."""
        attrs = {"var": self._info.name, "dtype": self.dtype, "shape": self.shape}
        with self._graph.as_default():
            return apply1("ReadVariable", [], attrs, name or f"{self._info.name}/read", graph=self._graph)

    def _assign(self, op: str, value: Any, name: str | None) -> Tensor:
        graph = graph_of([self.value()])   # a loop body being traced refuses the assignment
        with graph.as_default():
            v = value if isinstance(value, Tensor) else convert_to_tensor(value, dtype=self.dtype)
            attrs = {"var": self._info.name, "dtype": self.dtype, "shape": self.shape}
            return apply1(op, [v], attrs, name or f"{self._info.name}/{op}", graph=graph)

    def assign(self, value: Any, name: str | None = None) -> Tensor:
        """Set the variable; returns its new value."""
        return self._assign("Assign", value, name)

    def assign_add(self, delta: Any, name: str | None = None) -> Tensor:
        """Add to the variable; returns its new value."""
        return self._assign("AssignAdd", delta, name)

    def assign_sub(self, delta: Any, name: str | None = None) -> Tensor:
        """Subtract from the variable; returns its new value."""
        return self._assign("AssignSub", delta, name)

    def eval(self, session: Any = None) -> np.ndarray:
        return context.session_for(session).run(self)

    def load(self, value: Any, session: Any = None) -> None:
        """Set the value in `session` directly, without running graph ops."""
        context.session_for(session).load_variable(self._info.name, value)

    def __repr__(self) -> str:
        return f"<gc.Variable '{self.name}' shape={format_shape(self.shape)} dtype={self.dtype.name}>"


def global_variables(graph: Graph | None = None) -> list[Variable]:
    return (graph or get_default_graph()).get_collection(GLOBAL_VARIABLES)


def trainable_variables(graph: Graph | None = None) -> list[Variable]:
    return (graph or get_default_graph()).get_collection(TRAINABLE_VARIABLES)


def variables_initializer(var_list: list[Variable], name: str = "init") -> Node:
    """One op running the initializers of var_list."""
    graph = var_list[0].graph if var_list else get_default_graph()
    with graph.as_default(), graph.control_dependencies([v.initializer for v in var_list]):
        return apply_op("NoOp", [], {}, name, graph=graph)


def global_variables_initializer() -> Node:
    """One op running the initializer of every variable of the default graph."""
    return variables_initializer(global_variables(), name="init")


def local_variables_initializer() -> Node:
    """TF1 compatibility: graphc has no local variables, so this does nothing."""
    return variables_initializer([], name="init_local")


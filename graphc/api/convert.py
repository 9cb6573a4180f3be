"""Turning user values into graph tensors, and applying ops.

A Python scalar next to a tensor is weak (NEP 50): `x_f32 * 2.0` makes a float32 constant.
Standalone Python values take graphc's defaults (float32, int32), as in TF1. NumPy arrays keep
their dtype, so `x_f32 + np.ones(3)` is float64, as in NumPy.
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from ..errors import DTypeError, GraphcError
from ..ir.aligned import aligned_copy
from ..ir.dtypes import DType, as_dtype, bool_, float32, from_numpy, int32, int64, widen
from ..ir.function import FuncGraph
from ..ir.graph import Graph, get_default_graph
from ..ir.node import Node
from ..ir.tensor import Tensor
from ..ops import get_op

_PY_SCALARS = (bool, int, float)


def is_tensor_like(value: Any) -> bool:
    return isinstance(value, Tensor) or hasattr(value, "_as_graph_element")


def is_weak_scalar(value: Any) -> bool:
    """Python bool/int/float (not NumPy scalars, which NumPy 2 treats as strong)."""
    return isinstance(value, _PY_SCALARS) and not isinstance(value, np.generic)


def weak_representative(value: Any) -> Any:
    """For a Python scalar, or a (nested) list/tuple of Python scalars, a Python scalar of the
    same kind whose NEP 50 promotion stands for it; None for anything strong.

    Lists of Python numbers are weak like the numbers in them, as TF1 converts them to the
    other operand's dtype: `x_f32 + [1, 2]` stays float32.
    """
    if is_weak_scalar(value):
        return value
    if not isinstance(value, (list, tuple)) or not value:
        return None
    stack, kinds = [value], set()
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif is_weak_scalar(v):
            kinds.add(float if isinstance(v, float) else int if not isinstance(v, bool) else bool)
        else:
            return None
    if float in kinds:
        return 0.0
    if int in kinds:
        ints = np.asarray(value)
        return int(ints.max()) if abs(int(ints.max())) >= abs(int(ints.min())) else int(ints.min())
    return False


def graph_of(values: Sequence[Any]) -> Graph:
    """The graph of the first tensor among `values`, else the default graph. Inside a loop
    body or a branch being traced (a FuncGraph, the default graph then) a tensor of an
    enclosing graph stands for a captured value: the op goes into the body."""
    default = get_default_graph()
    for v in values:
        if isinstance(v, Tensor):
            graph = v.graph
        elif hasattr(v, "_as_graph_element"):
            graph = v._as_graph_element().graph
        else:
            continue
        if graph is not default and isinstance(default, FuncGraph) and default.encloses(graph):
            return default
        return graph
    return default


def apply_op(op_name: str, inputs: Sequence[Tensor], attrs: dict[str, Any] | None = None,
             name: str | None = None, graph: Graph | None = None) -> Node:
    """Create a node of op `op_name` in the inputs' graph (or the default graph)."""
    g = graph if graph is not None else graph_of(inputs)
    return g.create_node(get_op(op_name), inputs, attrs or {}, name)


def apply1(op_name: str, inputs: Sequence[Tensor], attrs: dict[str, Any] | None = None,
           name: str | None = None, graph: Graph | None = None) -> Tensor:
    """apply_op for single-output ops: returns the output tensor."""
    return apply_op(op_name, inputs, attrs, name, graph).outputs[0]


def _default_dtype_for_python(value: Any) -> DType:
    """float32 / int32 (int64 if needed) / bool for a Python scalar or nested list."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        return float32
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
            return int64
        return int32
    if arr.dtype.kind == "b":
        return bool_
    raise DTypeError(f"cannot make a tensor from {value!r} (NumPy sees dtype {arr.dtype})")


def to_array(value: Any, dtype: DType | None = None, what: str = "value") -> np.ndarray:
    """A NumPy array for a constant; refuses conversions that would change values."""
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        source_dtype = from_numpy(arr.dtype, what) if arr.dtype.kind in "biuf" else None
        if source_dtype is None:
            raise DTypeError(f"{what} has NumPy dtype {arr.dtype}, which graphc cannot hold")
        target = dtype or source_dtype
    else:
        try:
            target = dtype or _default_dtype_for_python(value)
            arr = np.asarray(value)
            if arr.dtype == object and target.is_floating:
                arr = np.asarray(value, dtype=np.float64)  # Python ints beyond int64 next to floats
        except OverflowError:
            raise DTypeError(f"the value {value!r} is too large for {target.name}") from None
        except (ValueError, TypeError) as err:
            raise DTypeError(f"cannot make a tensor from {value!r}: {err}") from None
        if arr.dtype.kind not in "biuf":
            raise DTypeError(f"cannot make a tensor from {value!r} (NumPy sees dtype {arr.dtype})")
    if arr.dtype == target.np:
        return arr
    return _convert_exactly(arr, target, what)


def _convert_exactly(arr: np.ndarray, target: DType, what: str) -> np.ndarray:
    """arr as `target`, or DTypeError naming the first value that would change."""
    if target.kind in ("int", "bool") and arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.trunc(arr))
        if target.is_bool:
            bad |= (arr != 0) & (arr != 1)
        if np.any(bad):
            raise DTypeError(f"{what} {_first(arr, bad)} cannot be represented as {target.name} without changing it")
    with np.errstate(all="ignore"):
        out = arr.astype(target.np)
    if target.is_integer and arr.dtype.kind in "iuf":
        bad = out != arr
        if np.any(bad):
            raise DTypeError(f"{what} {_first(arr, bad)} does not fit in {target.name}")
    if target.is_floating and arr.dtype.kind == "f":
        bad = np.isinf(out) & np.isfinite(arr)
        if np.any(bad):
            raise DTypeError(f"{what} {_first(arr, bad)} overflows {target.name}")
    return out


def _first(arr: np.ndarray, bad: np.ndarray) -> str:
    """The first offending value, and where it is in an array."""
    if arr.ndim == 0:
        return repr(arr.item())
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{arr[where].item()!r} (at index {list(where)})"


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Tensor:
    """A constant tensor (TF1 `tf.constant`): Python floats default to float32, ints to int32.
    A scalar `value` with a `shape` is broadcast to that shape."""
    if is_tensor_like(value):
        raise GraphcError("gc.constant takes a Python or NumPy value, not a tensor; use gc.identity")
    arr = to_array(value, as_dtype(dtype) if dtype is not None else None)
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if arr.size == 1:
            arr = np.full(shape, arr.reshape(()), dtype=arr.dtype)
        elif arr.shape != shape:
            arr = arr.reshape(shape)
    arr = aligned_copy(arr)  # the graph owns its constants; later changes by the user do not leak in
    arr.setflags(write=False)
    return apply1("Const", [], {"value": arr}, name or "Const")


def convert_to_tensor(value: Any, dtype: Any = None, name: str | None = None) -> Tensor:
    """A tensor from a tensor, a variable, or a Python / NumPy value (TF1 semantics)."""
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != as_dtype(dtype):
            raise DTypeError(f"expected a {as_dtype(dtype).name} tensor, got '{value.name}' of dtype {value.dtype.name}")
        return value
    if hasattr(value, "_as_graph_element"):
        return convert_to_tensor(value._as_graph_element(), dtype, name)
    if isinstance(value, (Node,)):
        raise GraphcError(f"operation '{value.name}' has no value; use one of its outputs")
    return constant(value, dtype=dtype, name=name)


def convert_operands(values: Sequence[Any], typed: Sequence[int] | None = None) -> list[Tensor]:
    """Tensors for the operands of an elementwise op, with Python scalars typed weakly.

    `typed` lists the operand positions that share a type (e.g. the two branches of where);
    a weak scalar among them takes the NumPy 2 result type of the strong ones and itself.
    """
    positions = range(len(values)) if typed is None else typed
    graph = graph_of(values)
    with graph.as_default():
        weak = [weak_representative(v) for v in values]
        strong: list[Tensor | None] = [
            None if w is not None else convert_to_tensor(v) for v, w in zip(values, weak)
        ]
        strong_types = [strong[i].dtype.np for i in positions if strong[i] is not None]
        weak_values = [weak[i] for i in positions if strong[i] is None]
        if strong_types:
            try:
                shared = widen(np.result_type(*strong_types, *weak_values))
            except (OverflowError, TypeError) as err:
                raise DTypeError(str(err)) from None
        elif weak_values:
            shared = max((_default_dtype_for_python(v) for v in weak_values), key=_kind_rank)
        out: list[Tensor] = []
        for i, (v, t) in enumerate(zip(values, strong)):
            if t is not None:
                out.append(t)
            elif i in positions:
                out.append(constant(v, dtype=shared))
            else:
                out.append(constant(v))
    return out


def _kind_rank(d: DType) -> int:
    return {"bool": 0, "int": 1, "float": 2}[d.kind] * 10 + d.itemsize


def elementwise_op(op_name: str, *values: Any, name: str | None = None,
                   attrs: dict[str, Any] | None = None, typed: Sequence[int] | None = None) -> Tensor:
    """Apply an elementwise op to user values (tensors, variables, scalars, arrays)."""
    return apply1(op_name, convert_operands(values, typed), attrs, name)


def as_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    """A tuple of Python ints from ints, lists, or tensors whose value is known while building."""
    if isinstance(value, Tensor):
        if value.static_value is None:
            raise GraphcError(f"{what} must be known while building the graph, but '{value.name}' is computed at run time")
        value = value.static_value.tolist()
    if isinstance(value, numbers.Integral):
        return (int(value),)
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise GraphcError(f"{what} must be a list of ints, got {value!r}") from None

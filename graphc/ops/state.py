"""Graph inputs and state: placeholders, constants, variables and assignments.

Variable ops name their variable by the attribute `var`. They are never executed as such: when
a run is compiled, graphc.program.from_graph turns them into plain dataflow (a read becomes the
variable's current value, an assignment becomes the new value), so backends see pure functions.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DTypeError, FeedError, ShapeError, internal_error
from ..ir.dtypes import as_dtype, from_numpy
from ..ir.shapes import compatible, format_shape
from . import attrs as attr_rules
from .base import OpDef, register, register_gradient


@register
class Placeholder(OpDef):
    """A value supplied at run time through feed_dict (or a function argument)."""

    name = "Placeholder"
    arity = 0
    attr_defaults = {"dtype": None, "shape": None}
    attr_checks = {"dtype": attr_rules.dtype(), "shape": attr_rules.shape()}
    stateful = True

    def infer(self, inputs, attrs):
        return [(as_dtype(attrs["dtype"]), attrs["shape"])]

    def reference(self, inputs, attrs):
        raise FeedError("a placeholder was run without a fed value")


@register
class PlaceholderWithDefault(OpDef):
    """Its input, unless a value is fed (e.g. an is_training flag that defaults to False)."""

    name = "PlaceholderWithDefault"
    arity = 1
    attr_defaults = {"shape": None}
    attr_checks = {"shape": attr_rules.shape()}
    stateful = True  # two of these are fed separately, so they must never be merged

    def infer(self, inputs, attrs):
        x = inputs[0]
        shape = attrs["shape"]
        if not compatible(shape, x.shape):
            raise ShapeError(f"default value of shape {format_shape(x.shape)} does not fit shape {format_shape(shape)}")
        return [(x.dtype, shape)]

    def reference(self, inputs, attrs):
        return inputs[0]


@register
class Const(OpDef):
    """A constant array stored in the graph."""

    name = "Const"
    arity = 0
    attr_defaults = {"value": None}

    def check_attrs(self, attrs):
        value = attrs["value"]
        if not isinstance(value, np.ndarray):
            raise attr_rules.fail(self.name, "value", "an array", value)

    def infer(self, inputs, attrs):
        value = attrs["value"]
        return [(from_numpy(value.dtype), value.shape)]

    def static_values(self, node):
        return [node.attrs["value"]]

    def reference(self, inputs, attrs):
        return attrs["value"]


_VARIABLE_ATTRS = {
    "var": attr_rules.string(max_length=4096),
    "dtype": attr_rules.dtype(),
    "shape": attr_rules.shape(optional=False, allow_unknown=False),
}


class _VariableRead(OpDef):
    arity = 0
    attr_defaults = {"var": None, "dtype": None, "shape": None}
    attr_checks = _VARIABLE_ATTRS
    stateful = True
    variable_effect = "read"

    def infer(self, inputs, attrs):
        return [(as_dtype(attrs["dtype"]), tuple(attrs["shape"]))]

    def reference(self, inputs, attrs):
        raise internal_error("variable reads are resolved when a run is compiled")


@register
class VariableV2(_VariableRead):
    """A variable. Its output is the variable's value at this point of the run (its canonical
    read, ordered right after the variable's initializer)."""

    name = "VariableV2"

    @property
    def default_name(self) -> str:
        return "Variable"


@register
class ReadVariable(_VariableRead):
    """An explicit read of a variable (v.read_value()), ordered where it was created."""

    name = "ReadVariable"


class _Assign(OpDef):
    arity = 1
    attr_defaults = {"var": None, "dtype": None, "shape": None}
    attr_checks = _VARIABLE_ATTRS
    stateful = True

    def infer(self, inputs, attrs):
        value = inputs[0]
        dtype, shape = as_dtype(attrs["dtype"]), tuple(attrs["shape"])
        if value.dtype != dtype:
            raise DTypeError(
                f"cannot assign a value of dtype {value.dtype.name} to variable '{attrs['var']}' of dtype {dtype.name}",
                hint=f"convert it with gc.cast(value, gc.{dtype.name})",
            )
        ok = compatible(shape, value.shape) if self.variable_effect == "set" else _broadcasts_into(value.shape, shape)
        if not ok:
            raise ShapeError(
                f"cannot assign a value of shape {format_shape(value.shape)} to variable "
                f"'{attrs['var']}' of shape {format_shape(shape)}"
            )
        return [(dtype, shape)]

    def reference(self, inputs, attrs):
        raise internal_error("assignments are resolved when a run is compiled")


def _broadcasts_into(value: Any, target: tuple) -> bool:
    if value is None:
        return True
    if len(value) > len(target):
        return False
    return all(v in (1, None) or v == t for v, t in zip(value[::-1], target[::-1]))


@register
class Assign(_Assign):
    """Set a variable to a value of its shape; the output is the new value."""

    name = "Assign"
    variable_effect = "set"


@register
class AssignAdd(_Assign):
    """Add to a variable (the value may broadcast); the output is the new value."""

    name = "AssignAdd"
    variable_effect = "add"


@register
class AssignSub(_Assign):
    """Subtract from a variable (the value may broadcast); the output is the new value."""

    name = "AssignSub"
    variable_effect = "sub"


@register_gradient("PlaceholderWithDefault")
def _placeholder_with_default_gradient(build, node, g):
    return [g]

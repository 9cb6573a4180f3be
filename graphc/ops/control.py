"""Structural ops: identity, stop_gradient, no-op (group) and numerics checks."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, InvalidArgumentError
from . import attrs as attr_rules
from .base import OpDef, register, register_gradient


@register
class Identity(OpDef):
    """Its input, unchanged."""

    name = "Identity"
    arity = 1

    def infer(self, inputs, attrs):
        return [(inputs[0].dtype, inputs[0].shape)]

    def reference(self, inputs, attrs):
        return inputs[0]


@register
class StopGradient(Identity):
    """Its input, unchanged; gradients do not flow through it."""

    name = "StopGradient"


@register
class NoOp(OpDef):
    """Does nothing; with control inputs it groups other ops (gc.group)."""

    name = "NoOp"
    arity = 0

    def infer(self, inputs, attrs):
        return []

    def reference(self, inputs, attrs):
        return []


@register
class CheckNumerics(Identity):
    """Its input, after checking it holds no NaN or infinity (error naming this node if it does).
    Runs even when only used as a control dependency."""

    name = "CheckNumerics"
    attr_defaults = {"message": ""}
    attr_checks = {"message": attr_rules.string(max_length=1 << 16)}
    has_side_effect = True

    def infer(self, inputs, attrs):
        if not inputs[0].dtype.is_floating:
            raise DTypeError("check_numerics takes float tensors")
        return super().infer(inputs, attrs)

    def reference(self, inputs, attrs):
        x = inputs[0]
        if not np.all(np.isfinite(x)):
            kinds = []
            if np.any(np.isnan(x)):
                kinds.append("NaN")
            if np.any(np.isinf(x)):
                kinds.append("Inf")
            prefix = f"{attrs['message']}: " if attrs["message"] else ""
            raise InvalidArgumentError(f"{prefix}tensor had {' and '.join(kinds)} values")
        return x


def _pass_through(build, node, g):
    return [g]


register_gradient("Identity")(_pass_through)
register_gradient("CheckNumerics")(_pass_through)

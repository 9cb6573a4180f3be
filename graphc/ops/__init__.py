"""Every op graphc knows, each defined once (see base.OpDef). Importing this package registers
them all; `get_op(name)` finds one by its type name."""
from . import activations, collective, control, conv, elementwise, linalg, loops, nn, random, reductions, shape_ops, slicing, state
from .base import ElementwiseOp, OpDef, all_ops, elementwise as define_elementwise, get_op, register, register_gradient

__all__ = [
    "ElementwiseOp", "OpDef", "all_ops", "define_elementwise", "get_op", "register", "register_gradient",
    "activations", "collective", "control", "conv", "elementwise", "linalg", "loops", "nn", "random", "reductions", "shape_ops",
    "slicing", "state",
]

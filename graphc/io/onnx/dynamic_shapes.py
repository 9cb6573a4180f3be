"""Shape arguments computed at run time: a model exported with dynamic axes (a symbolic batch
or sequence length) computes Reshape's shape, Expand's shape or ConstantOfShape's shape from
Shape(x). graphc compiles for the fed shapes, so such a tensor is known when compiling (its
value folds from the fed input's shape: graphc.program.from_graph); at import it is a graph
value, and these helpers turn ONNX's conventions into graphc's ops on it:

- Reshape: a 0 copies the input's size at that position (unless allowzero), -1 is inferred;
- Expand: ONNX broadcasts both ways (a 1 in the shape keeps the input's size), graphc's
  broadcast_to one way: the target is the elementwise maximum of the two aligned shapes;
- ConstantOfShape: a fill of that shape.
"""
from __future__ import annotations

from typing import Any

from ...api import array as array_ops
from ...api import math as math_ops
from ...ir.dtypes import int64
from ...ir.tensor import Tensor
from .import_rules import ImportContext

SHAPE_ONLY = frozenset({"Shape", "Size"})   # ops whose output depends on their input's shape alone


def reads_fed_values(t: Tensor) -> bool:
    """Whether `t` depends on the values (not only the shapes) of a fed input."""
    seen: set[int] = set()
    stack = [t.node]
    while stack:
        node = stack.pop()
        if node.id in seen or node.type in SHAPE_ONLY:
            continue
        seen.add(node.id)
        if node.type == "Placeholder":
            return True
        stack.extend(i.node for i in node.inputs)
    return False


def shape_vector(ctx: ImportContext, t: Tensor, field: str) -> Tensor:
    """A 1-D int64 shape tensor of known length, computed from shapes and constants only."""
    if reads_fed_values(t):
        ctx.static(t, field)   # raises: a shape from fed values cannot be known while compiling
    if t.shape is None or len(t.shape) != 1 or t.shape[0] is None:
        raise ctx.error(f"{field} is computed at run time and its length is unknown; graphc needs the rank "
                        f"of a shape while building", hint="give the model's dynamic axes with "
                        "gc.onnx.load(path, input_shapes={...})")
    if not t.dtype.is_integer:
        raise ctx.error(f"{field} must hold integers, got {t.dtype.name}")
    return math_ops.cast(t, int64)


def reshape(ctx: ImportContext, x: Tensor, shape: Tensor, allowzero: bool, field: str) -> Tensor:
    target = shape_vector(ctx, shape, field)
    if not allowzero:
        length, rank = target.shape[0], x.ndim
        if rank is None:
            raise ctx.error(f"{field} is computed at run time, and the input's rank is unknown")
        dims = array_ops.shape(x, out_type=int64)
        if length > rank:   # a 0 past the input's rank has nothing to copy: ONNX forbids it
            dims = array_ops.concat([dims, array_ops.zeros([length - rank], int64)], 0)
        else:
            dims = array_ops.getitem(dims, slice(0, length))
        zero = array_ops.zeros([length], int64)
        target = math_ops.where(math_ops.equal(target, zero), dims, target)
    return array_ops.reshape(x, target)


def expand(ctx: ImportContext, x: Tensor, shape: Tensor, field: str) -> Tensor:
    target = shape_vector(ctx, shape, field)
    if x.ndim is None:
        raise ctx.error(f"{field} is computed at run time, and the input's rank is unknown")
    rank = max(x.ndim, target.shape[0])
    ones = lambda n: array_ops.ones([n], int64)

    def aligned(v: Tensor, n: int) -> Tensor:
        return v if n == rank else array_ops.concat([ones(rank - n), v], 0)

    full = math_ops.maximum(aligned(array_ops.shape(x, out_type=int64), x.ndim), aligned(target, target.shape[0]))
    return array_ops.broadcast_to(x, full)


def constant_of_shape(ctx: ImportContext, shape: Tensor, fill: Any, field: str) -> Tensor:
    target = shape_vector(ctx, shape, field)
    return array_ops.fill(target, ctx.constant(fill))

"""Algebraic simplification and canonical forms.

Rewrites, each only when the result has exactly the replaced node's dtype and shape:
  x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1, x ** 1     -> x
  x ** 2 -> x * x,  x ** -1 -> 1 / x,  -(-x) -> x
  x * 0 -> 0 for integers and bools; for floats only when strict=False (NaN * 0 and inf * 0
          are NaN, so the rewrite is not exact)
  identity, stop_gradient, cast to the same dtype      -> their input
  transpose(transpose(x)) -> one transpose (or x);  reshape(reshape(x)) -> one reshape;
  a reshape / broadcast / transpose that changes nothing -> x
  expand_dims, squeeze -> reshape;  fill -> broadcast_to   (one way to say each thing)
  sum over axes a broadcast created -> a multiplication by their sizes
  matmul of a transposed operand -> the matmul's transpose flag
  where(constant all-true / all-false, a, b) -> a / b
Signed zeros are not significant here (x + 0.0 may turn -0.0 into +0.0), as with compilers'
no-signed-zeros; NaN and infinities are always preserved in strict mode.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.node import Node
from ..ir.tensor import Tensor
from ..ops.slicing import sliced_shape
from ..program import Program
from .rewriter import Rewriter, const_value, is_scalar, same_type

RuleFn = Callable[[Rewriter, Node, list[Tensor]], list[Tensor] | None]


def simplify(program: Program, strict: bool = True) -> Program:
    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        fn = _RULES.get(node.type)
        out = fn(rw, node, inputs) if fn is not None else None
        if out is not None:
            rw.note(node.type)
        return out

    rewriter = Rewriter(program, "simplify")
    rewriter.options["strict"] = strict
    return rewriter.run(rule)


def _keeps(node: Node, t: Tensor) -> list[Tensor] | None:
    """Replace node by t when that changes neither dtype nor shape."""
    return [t] if same_type(t, node.outputs[0]) else None


def _add(rw, node, inputs):
    x, y = inputs
    if is_scalar(y, 0):
        return _keeps(node, x)
    if is_scalar(x, 0):
        return _keeps(node, y)
    return None


def _sub(rw, node, inputs):
    return _keeps(node, inputs[0]) if is_scalar(inputs[1], 0) else None


def _mul(rw, node, inputs):
    strict = rw.options.get("strict", True)
    x, y = inputs
    out = node.outputs[0]
    for a, b in ((x, y), (y, x)):
        if is_scalar(b, 1):
            kept = _keeps(node, a)
            if kept:
                return kept
        if is_scalar(b, 0) and (not out.dtype.is_floating or not strict) and a.dtype is out.dtype:
            zero = rw.constant(0, out.dtype, node)
            return [zero if out.shape == () else rw.emit("BroadcastTo", [zero], {"shape": out.shape}, node)]
    return None


def _div(rw, node, inputs):
    return _keeps(node, inputs[0]) if is_scalar(inputs[1], 1) else None


def _pow(rw, node, inputs):
    x, y = inputs
    if not same_type(x, node.outputs[0]):
        return None
    if is_scalar(y, 1):
        return [x]
    if is_scalar(y, 2):
        return [rw.emit("Mul", [x, x], {}, node)]
    if is_scalar(y, -1) and x.dtype.is_floating:
        return [rw.emit("Reciprocal", [x], {}, node)]
    return None


def _neg(rw, node, inputs):
    (x,) = inputs
    return [x.node.inputs[0]] if x.node.type == "Neg" else None


def _passthrough(rw, node, inputs):
    return _keeps(node, inputs[0])


def _cast(rw, node, inputs):
    return [inputs[0]] if inputs[0].dtype is node.outputs[0].dtype else None


def _transpose(rw, node, inputs):
    (x,) = inputs
    perm = _perm(node)
    if x.node.type == "Transpose":
        inner = x.node.inputs[0]
        combined = tuple(_perm(x.node)[p] for p in perm)
        if combined == tuple(range(len(combined))):
            return [inner]
        return [rw.emit("Transpose", [inner], {"perm": combined}, node)]
    if perm == tuple(range(len(perm))):
        return [x]
    return None


def _perm(node: Node) -> tuple[int, ...]:
    ndim = len(node.inputs[0].shape)
    perm = node.attrs["perm"]
    return tuple(range(ndim))[::-1] if perm is None else tuple(p % ndim for p in perm)


def _reshape(rw, node, inputs):
    x = inputs[0]
    out = node.outputs[0]
    if x.shape == out.shape:
        return [x]
    if x.node.type == "Reshape" and len(x.node.inputs) == 1:
        inner = x.node.inputs[0]
        return [inner] if inner.shape == out.shape else [rw.emit("Reshape", [inner], {"shape": out.shape}, node)]
    if len(inputs) > 1 or node.attrs["shape"] != out.shape:  # canonical: resolved, no -1
        return [rw.emit("Reshape", [x], {"shape": out.shape}, node)]
    return None


def _as_reshape(rw, node, inputs):
    return [rw.emit("Reshape", [inputs[0]], {"shape": node.outputs[0].shape}, node)]


def _broadcast(rw, node, inputs):
    x = inputs[0]
    out = node.outputs[0]
    if x.shape == out.shape:
        return [x]
    if x.node.type == "BroadcastTo":
        inner = x.node.inputs[0]
        return [inner] if inner.shape == out.shape else [rw.emit("BroadcastTo", [inner], {"shape": out.shape}, node)]
    if len(inputs) > 1:
        return [rw.emit("BroadcastTo", [x], {"shape": out.shape}, node)]
    return None


def _fill(rw, node, inputs):
    return [rw.emit("BroadcastTo", [inputs[0]], {"shape": node.outputs[0].shape}, node)]


def _sum(rw, node, inputs):
    """sum(broadcast_to(x, S), axes): the axes the broadcast created become a multiplication."""
    (b,) = inputs
    if b.node.type != "BroadcastTo" or b.dtype.is_bool:
        return None
    x = b.node.inputs[0]
    shape = b.shape
    aligned = (1,) * (len(shape) - len(x.shape)) + tuple(x.shape)
    axes = range(len(shape)) if node.attrs["axis"] is None else [a % len(shape) for a in node.attrs["axis"]]
    created = [a for a in axes if aligned[a] == 1 and shape[a] != 1]
    if not created:
        return None
    factor = int(np.prod([shape[a] for a in created]))
    t = rw.emit("Reshape", [x], {"shape": aligned}, node) if aligned != tuple(x.shape) else x
    real = tuple(a for a in axes if aligned[a] != 1)
    if real:
        t = rw.emit("Sum", [t], {"axis": real, "keepdims": True}, node)
    t = rw.emit("Mul", [t, rw.constant(factor, t.dtype, node)], {}, node)
    keep_shape = tuple(1 if a in axes else d for a, d in enumerate(shape))
    if t.shape != keep_shape:
        t = rw.emit("BroadcastTo", [t], {"shape": keep_shape}, node)
    out = node.outputs[0]
    if t.shape != out.shape:
        t = rw.emit("Reshape", [t], {"shape": out.shape}, node)
    return [t]


def _sum_to_shape(rw, node, inputs):
    return _keeps(node, inputs[0])


def _matmul(rw, node, inputs):
    a, b = inputs
    attrs = dict(node.attrs)
    changed = False
    for i, key in ((0, "transpose_a"), (1, "transpose_b")):
        t = inputs[i]
        if t.node.type == "Transpose" and t.ndim is not None and t.ndim >= 2:
            perm = _perm(t.node)
            n = len(perm)
            if perm == tuple(range(n - 2)) + (n - 1, n - 2):
                inputs = list(inputs)
                inputs[i] = t.node.inputs[0]
                attrs[key] = not attrs[key]
                changed = True
    return [rw.emit("MatMul", inputs, attrs, node)] if changed else None


def _select(rw, node, inputs):
    cond, a, b = inputs
    c = const_value(cond)
    if c is None:
        return None
    if np.all(c):
        return _keeps(node, a)
    if not np.any(c):
        return _keeps(node, b)
    return None


def _strided_slice(rw, node, inputs):
    x = inputs[0]
    spec = node.attrs["spec"]
    full = all(e[0] == "slice" and e[1:] in ((None, None, None), (None, None, 1), (0, None, 1)) or e[0] == "ellipsis"
               for e in spec)
    if full and sliced_shape(x.shape, spec) == x.shape:
        return _keeps(node, x)
    return None


_RULES: dict[str, RuleFn] = {
    "Add": _add, "Sub": _sub, "Mul": _mul, "RealDiv": _div, "Pow": _pow, "Neg": _neg,
    "Identity": _passthrough, "StopGradient": _passthrough, "Cast": _cast, "Transpose": _transpose,
    "Reshape": _reshape, "ExpandDims": _as_reshape, "Squeeze": _as_reshape, "BroadcastTo": _broadcast,
    "Fill": _fill, "Sum": _sum, "SumToShape": _sum_to_shape, "MatMul": _matmul, "Select": _select,
    "StridedSlice": _strided_slice,
}

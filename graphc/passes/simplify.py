"""Algebraic simplification and canonical forms, as a table of named rules
(graphc.passes.patterns). Rewrites, each only when the result has exactly the replaced node's
dtype and shape:
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

import numpy as np

from ..ir.node import Node
from ..ir.tensor import Tensor
from ..ops.slicing import sliced_shape
from ..program import Program
from .patterns import Match, Op, Rule, rules_pass
from .rewriter import Rewriter, const_value


def _zero_product(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """x * 0 -> 0: exact for integers and bools; for floats only outside strict mode (NaN * 0
    and inf * 0 are NaN)."""
    out = node.outputs[0]
    if (out.dtype.is_floating and rw.options.get("strict", True)) or m["x"].dtype is not out.dtype:
        return None
    zero = rw.constant(0, out.dtype, node)
    return zero if out.shape == () else rw.emit("BroadcastTo", [zero], {"shape": out.shape}, node)


def _is_floating(rw: Rewriter, m: Match) -> bool:
    return m["x"].dtype.is_floating


def _shape_of_node(m: Match) -> dict:
    return {"shape": m["n"].outputs[0].shape}


def _transpose(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """transpose(transpose(x)) -> one transpose (or x); a transpose that changes nothing -> x."""
    x = m["x"]
    perm = _perm(node)
    if x.node.type == "Transpose":
        inner = x.node.inputs[0]
        combined = tuple(_perm(x.node)[p] for p in perm)
        if combined == tuple(range(len(combined))):
            return inner
        return rw.emit("Transpose", [inner], {"perm": combined}, node)
    return x if perm == tuple(range(len(perm))) else None


def _perm(node: Node) -> tuple[int, ...]:
    ndim = len(node.inputs[0].shape)
    perm = node.attrs["perm"]
    return tuple(range(ndim))[::-1] if perm is None else tuple(p % ndim for p in perm)


def _reshape(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """reshape(reshape(x)) -> one reshape; one that changes nothing -> x; a reshape by a shape
    tensor or with -1 -> the canonical form, its resolved shape as an attribute."""
    x, out = m["x"], node.outputs[0]
    if x.shape == out.shape:
        return x
    if x.node.type == "Reshape" and len(x.node.inputs) == 1:
        inner = x.node.inputs[0]
        return inner if inner.shape == out.shape else rw.emit("Reshape", [inner], {"shape": out.shape}, node)
    if len(node.inputs) > 1 or node.attrs["shape"] != out.shape:
        return rw.emit("Reshape", [x], {"shape": out.shape}, node)
    return None


def _broadcast(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """broadcast_to(broadcast_to(x)) -> one; one that changes nothing -> x; by a shape tensor ->
    the shape as an attribute."""
    x, out = m["x"], node.outputs[0]
    if x.shape == out.shape:
        return x
    if x.node.type == "BroadcastTo":
        inner = x.node.inputs[0]
        return inner if inner.shape == out.shape else rw.emit("BroadcastTo", [inner], {"shape": out.shape}, node)
    if len(node.inputs) > 1:
        return rw.emit("BroadcastTo", [x], {"shape": out.shape}, node)
    return None


def _sum_of_broadcast(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """sum(broadcast_to(x, S), axes): the axes the broadcast created become a multiplication."""
    b = m["b"].outputs[0]
    if b.dtype.is_bool:
        return None
    x = m["x"]
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
    return t


def _matmul_of_transpose(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """A matmul operand transposed in its last two axes -> the matmul's transpose flag."""
    inputs, attrs, changed = [m["a"], m["b"]], dict(node.attrs), False
    for i, key in ((0, "transpose_a"), (1, "transpose_b")):
        t = inputs[i]
        if t.node.type == "Transpose" and t.ndim is not None and t.ndim >= 2:
            perm = _perm(t.node)
            n = len(perm)
            if perm == tuple(range(n - 2)) + (n - 1, n - 2):
                inputs[i] = t.node.inputs[0]
                attrs[key] = not attrs[key]
                changed = True
    return rw.emit("MatMul", inputs, attrs, node) if changed else None


def _select_constant(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """where(c, a, b) with c constant and all true (all false) -> a (b)."""
    c = const_value(m["c"])
    if c is None:
        return None
    if np.all(c):
        return m["a"]
    return m["b"] if not np.any(c) else None


def _full_slice(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """A strided slice that takes everything -> x."""
    x, spec = m["x"], node.attrs["spec"]
    full = all(e[0] == "slice" and e[1:] in ((None, None, None), (None, None, 1), (0, None, 1)) or e[0] == "ellipsis"
               for e in spec)
    return x if full and sliced_shape(x.shape, spec) == x.shape else None


SIMPLIFY_RULES = [
    Rule("x+0 -> x", Op("Add", "x", 0), "x"),
    Rule("x-0 -> x", Op("Sub", "x", 0), "x"),
    Rule("x*1 -> x", Op("Mul", "x", 1), "x"),
    Rule("x*0 -> 0", Op("Mul", "x", 0), _zero_product),
    Rule("x/1 -> x", Op("RealDiv", "x", 1), "x"),
    Rule("x**1 -> x", Op("Pow", "x", 1), "x"),
    Rule("x**2 -> x*x", Op("Pow", "x", 2), Op("Mul", "x", "x")),
    Rule("x**-1 -> 1/x", Op("Pow", "x", -1), Op("Reciprocal", "x"), when=_is_floating),
    Rule("-(-x) -> x", Op("Neg", Op("Neg", "x")), "x"),
    Rule("identity(x) -> x", Op("Identity", "x"), "x"),
    Rule("stop_gradient(x) -> x", Op("StopGradient", "x"), "x"),
    Rule("cast(x) to its own dtype -> x", Op("Cast", "x"), "x"),
    Rule("sum_to_shape(x) to its own shape -> x", Op("SumToShape", "x", ...), "x"),
    Rule("transpose(transpose(x)) -> transpose(x)", Op("Transpose", "x"), _transpose),
    Rule("reshape(reshape(x)) -> reshape(x)", Op("Reshape", "x", ...), _reshape),
    Rule("expand_dims(x) -> reshape(x)", Op("ExpandDims", "x", bind="n"), Op("Reshape", "x", attrs=_shape_of_node)),
    Rule("squeeze(x) -> reshape(x)", Op("Squeeze", "x", bind="n"), Op("Reshape", "x", attrs=_shape_of_node)),
    Rule("broadcast_to(broadcast_to(x)) -> broadcast_to(x)", Op("BroadcastTo", "x", ...), _broadcast),
    Rule("fill(x, shape) -> broadcast_to(x)", Op("Fill", "x", ..., bind="n"), Op("BroadcastTo", "x", attrs=_shape_of_node)),
    Rule("sum(broadcast_to(x)) -> sum(x) * count", Op("Sum", Op("BroadcastTo", "x", ..., bind="b")),
         _sum_of_broadcast),
    Rule("matmul(transpose(a), b) -> matmul with a transpose flag", Op("MatMul", "a", "b"), _matmul_of_transpose),
    Rule("where(constant, a, b) -> a or b", Op("Select", "c", "a", "b"), _select_constant),
    Rule("x[:] -> x", Op("StridedSlice", "x"), _full_slice),
]

_strict = rules_pass("simplify", SIMPLIFY_RULES, {"strict": True})
_loose = rules_pass("simplify", SIMPLIFY_RULES, {"strict": False})


def simplify(program: Program, strict: bool = True) -> Program:
    """Apply SIMPLIFY_RULES; strict=False also turns float x * 0 into 0."""
    return (_strict if strict else _loose)(program)

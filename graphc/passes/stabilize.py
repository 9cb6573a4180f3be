"""Numerical stabilization: naive formulas users write are replaced by forms that stay finite
and accurate where the naive ones overflow or cancel (what Theano's `stabilize` does):

  log(1 + x), log(x + 1)            -> log1p(x)
  exp(x) - 1                        -> expm1(x)
  log(sigmoid(x))                   -> -softplus(-x)
  log(1 - sigmoid(x))               -> -softplus(x)
  log(1 - x)                        -> log1p(-x)
  log(softmax(x))                   -> log_softmax(x)
  log(sum(exp(x)))                  -> logsumexp(x)          (max-shifted)
  exp(x) / sum(exp(x), axis)        -> softmax(x, axis)      (max-shifted)
  -sum(labels * log_softmax(x), a)  -> softmax_cross_entropy_with_logits(labels, x, a)

Each fires only when the replacement has the same dtype and shape. Run after CSE, so that the
two exp(x) of a naive softmax are one node.
"""
from __future__ import annotations

from ..ir.node import Node
from ..ir.tensor import Tensor
from ..program import Program
from .rewriter import Rewriter, is_scalar, same_type


def stabilize(program: Program) -> Program:
    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        fn = _RULES.get(node.type)
        if fn is None:
            return None
        result = fn(rw, node, inputs)
        if result is None:
            return None
        name, t = result
        if not same_type(t, node.outputs[0]):
            return None
        rw.note(name)
        return [t]

    return Rewriter(program, "stabilize").run(rule)


def _one_plus(t: Tensor) -> Tensor | None:
    """x when t is 1 + x or x + 1 (with 1 broadcast to nothing larger than x)."""
    if t.node.type != "Add":
        return None
    a, b = t.node.inputs
    if is_scalar(a, 1) and same_type(b, t):
        return b
    if is_scalar(b, 1) and same_type(a, t):
        return a
    return None


def _one_minus(t: Tensor) -> Tensor | None:
    """x when t is 1 - x."""
    if t.node.type != "Sub":
        return None
    a, b = t.node.inputs
    return b if is_scalar(a, 1) and same_type(b, t) else None


def _log(rw: Rewriter, node: Node, inputs: list[Tensor]):
    (arg,) = inputs
    kind = arg.node.type
    if kind == "Sigmoid":
        x = arg.node.inputs[0]
        return "log(sigmoid)", rw.emit("Neg", [rw.emit("Softplus", [rw.emit("Neg", [x], {}, node)], {}, node)], {}, node)
    if kind == "Softmax":
        return "log(softmax)", rw.emit("LogSoftmax", [arg.node.inputs[0]], dict(arg.node.attrs), node)
    if kind == "Sum" and arg.node.inputs[0].node.type == "Exp":
        x = arg.node.inputs[0].node.inputs[0]
        return "log(sum(exp))", rw.emit("LogSumExp", [x], dict(arg.node.attrs), node)
    x = _one_plus(arg)
    if x is not None:
        return "log(1+x)", rw.emit("Log1p", [x], {}, node)
    x = _one_minus(arg)
    if x is not None:
        if x.node.type == "Sigmoid":
            return "log(1-sigmoid)", rw.emit("Neg", [rw.emit("Softplus", [x.node.inputs[0]], {}, node)], {}, node)
        return "log(1-x)", rw.emit("Log1p", [rw.emit("Neg", [x], {}, node)], {}, node)
    return None


def _sub(rw: Rewriter, node: Node, inputs: list[Tensor]):
    a, b = inputs
    if a.node.type == "Exp" and is_scalar(b, 1):
        return "exp(x)-1", rw.emit("Expm1", [a.node.inputs[0]], {}, node)
    return None


def _single_axis_sum(t: Tensor) -> int | None:
    """The axis of t = sum(., axis=(a,), keepdims=True), possibly broadcast back, else None."""
    node = t.node
    if node.type == "BroadcastTo":
        node = node.inputs[0].node
    if node.type != "Sum" or not node.attrs["keepdims"] or node.attrs["axis"] is None or len(node.attrs["axis"]) != 1:
        return None
    return node.attrs["axis"][0]


def _div(rw: Rewriter, node: Node, inputs: list[Tensor]):
    num, den = inputs
    axis = _single_axis_sum(den)
    if num.node.type != "Exp" or axis is None:
        return None
    total = den.node if den.node.type == "Sum" else den.node.inputs[0].node
    if total.inputs[0] is not num:
        return None
    return "exp/sum(exp)", rw.emit("Softmax", [num.node.inputs[0]], {"axis": axis}, node)


def _neg(rw: Rewriter, node: Node, inputs: list[Tensor]):
    (s,) = inputs
    if s.node.type != "Sum" or s.node.attrs["keepdims"] or s.node.attrs["axis"] is None or len(s.node.attrs["axis"]) != 1:
        return None
    prod = s.node.inputs[0]
    if prod.node.type != "Mul":
        return None
    axis = s.node.attrs["axis"][0]
    for labels, logp in (prod.node.inputs, prod.node.inputs[::-1]):
        if logp.node.type != "LogSoftmax" or not same_type(labels, logp):
            continue
        ndim = len(logp.shape)
        if logp.node.attrs["axis"] % ndim != axis % ndim:
            continue
        logits = logp.node.inputs[0]
        return "-sum(y*log_softmax)", rw.emit("SoftmaxCrossEntropyWithLogits", [labels, logits], {"axis": axis}, node)
    return None


_RULES = {"Log": _log, "Sub": _sub, "RealDiv": _div, "Neg": _neg}

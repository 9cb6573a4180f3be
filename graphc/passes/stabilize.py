"""Numerical stabilization: naive formulas users write are replaced by forms that stay finite
and accurate where the naive ones overflow or cancel (what Theano's `stabilize` does). The rules
are a table (graphc.passes.patterns); each fires only when the replacement has the same dtype
and shape, and each is tested at x = +-800 on every backend (tests/passes/test_stabilize.py).

Forms a Theano user relies on, and how they are reached:
  log(1 + exp(x)), log1p(exp(x))    -> softplus(x)
  log(sigmoid(x))                   -> -softplus(-x)
  1 - sigmoid(x)                    -> sigmoid(-x)       (so log(1 - sigmoid(x)) -> -softplus(x))
  log(softmax(x))                   -> log_softmax(x)
  log(sum(exp(x)))                  -> logsumexp(x)      (max-shifted)
  log(exp(x))                       -> x
  exp(x) - 1                        -> expm1(x)
  log(1 + x), log(1 - x)            -> log1p(x), log1p(-x)
  log(1 - exp(x))                   -> log(-expm1(x))
  exp(x) / sum(exp(x), axis)        -> softmax(x, axis)
  -sum(labels * log_softmax(x), a)  -> softmax_cross_entropy_with_logits(labels, x, a)
and the binary cross-entropy -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))) becomes softplus
terms through the sigmoid rules. Run after CSE, so that the two exp(x) of a naive softmax are one
node, and before simplify (which removes the double negations some rules leave).
"""
from __future__ import annotations

from ..ir.node import Node
from ..ir.tensor import Tensor
from .patterns import Match, Op, Rule, rules_pass
from .rewriter import Rewriter, same_type


def _attrs_of(bind: str):
    """Template attributes: all of the node matched as `bind`'s."""
    return lambda m: dict(m[bind].attrs)


def _single_axis_sum(t: Tensor) -> int | None:
    """The axis of t = sum(., axis=(a,), keepdims=True), possibly broadcast back, else None."""
    node = t.node
    if node.type == "BroadcastTo":
        node = node.inputs[0].node
    if node.type != "Sum" or not node.attrs["keepdims"] or node.attrs["axis"] is None or len(node.attrs["axis"]) != 1:
        return None
    return node.attrs["axis"][0]


def _softmax(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """exp(x) / sum(exp(x), axis, keepdims) (the sum possibly broadcast back) -> softmax(x, axis)."""
    num, den = m["exp"].outputs[0], m["total"]
    axis = _single_axis_sum(den)
    if axis is None:
        return None
    total = den.node if den.node.type == "Sum" else den.node.inputs[0].node
    if total.inputs[0] is not num:
        return None
    return rw.emit("Softmax", [m["x"]], {"axis": axis}, node)


def _cross_entropy(rw: Rewriter, node: Node, m: Match) -> Tensor | None:
    """-sum(labels * log_softmax(x), axis a) over the softmax's own axis -> the fused op."""
    total, logp, labels = m["sum"], m["logp"], m["labels"]
    axes = total.attrs["axis"]
    if total.attrs["keepdims"] or axes is None or len(axes) != 1 or not same_type(labels, logp.outputs[0]):
        return None
    ndim = len(logp.outputs[0].shape)
    if logp.attrs["axis"] % ndim != axes[0] % ndim:
        return None
    return rw.emit("SoftmaxCrossEntropyWithLogits", [labels, m["x"]], {"axis": axes[0]}, node)


STABILIZE_RULES = [
    Rule("log(1+exp(x)) -> softplus(x)", Op("Log", Op("Add", 1, Op("Exp", "x"))), Op("Softplus", "x")),
    Rule("log1p(exp(x)) -> softplus(x)", Op("Log1p", Op("Exp", "x")), Op("Softplus", "x")),
    Rule("log(sigmoid(x)) -> -softplus(-x)", Op("Log", Op("Sigmoid", "x")), Op("Neg", Op("Softplus", Op("Neg", "x")))),
    Rule("log(1-sigmoid(x)) -> -softplus(x)", Op("Log", Op("Sub", 1, Op("Sigmoid", "x"))),
         Op("Neg", Op("Softplus", "x"))),
    Rule("1-sigmoid(x) -> sigmoid(-x)", Op("Sub", 1, Op("Sigmoid", "x")), Op("Sigmoid", Op("Neg", "x"))),
    Rule("log(softmax(x)) -> log_softmax(x)", Op("Log", Op("Softmax", "x", bind="s")),
         Op("LogSoftmax", "x", attrs=_attrs_of("s"))),
    Rule("log(sum(exp(x))) -> logsumexp(x)", Op("Log", Op("Sum", Op("Exp", "x"), bind="s")),
         Op("LogSumExp", "x", attrs=_attrs_of("s"))),
    Rule("log(exp(x)) -> x", Op("Log", Op("Exp", "x")), "x"),
    Rule("log(1-exp(x)) -> log(-expm1(x))", Op("Log", Op("Sub", 1, Op("Exp", "x"))),
         Op("Log", Op("Neg", Op("Expm1", "x")))),
    Rule("log(1+x) -> log1p(x)", Op("Log", Op("Add", 1, "x")), Op("Log1p", "x")),
    Rule("log(1-x) -> log1p(-x)", Op("Log", Op("Sub", 1, "x")), Op("Log1p", Op("Neg", "x"))),
    Rule("exp(x)-1 -> expm1(x)", Op("Sub", Op("Exp", "x"), 1), Op("Expm1", "x")),
    Rule("exp(x)+(-1) -> expm1(x)", Op("Add", Op("Exp", "x"), -1), Op("Expm1", "x")),
    Rule("exp(x)/sum(exp(x)) -> softmax(x)", Op("RealDiv", Op("Exp", "x", bind="exp"), "total"), _softmax),
    Rule("-sum(y*log_softmax(x)) -> softmax_cross_entropy(y, x)",
         Op("Neg", Op("Sum", Op("Mul", "labels", Op("LogSoftmax", "x", bind="logp")), bind="sum")), _cross_entropy),
]

stabilize = rules_pass("stabilize", STABILIZE_RULES)

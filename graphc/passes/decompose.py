"""Decomposition of composite ops into the primitives the fusion pass groups and the code
generators render: elementwise ops, simple reductions (sum, max, ...) and views.

  softmax(x)        -> e / sum(e) with e = exp(x - m), m = max(x) (0 where m is not finite)
  log_softmax(x)    -> (x - m) - log(sum(exp(x - m)))
  logsumexp(x)      -> log(sum(exp(x - m))) + m
  softmax_cross_entropy_with_logits(l, x) -> -sum(where(l != 0, l * log_softmax(x), 0))
  mean(x)           -> sum(x) / count            (in the result dtype, as the reference does;
                                                 over nothing, 0 / 0 gives the reference's NaN)
  sum_to_shape(x)   -> reshape(sum(x, axes))

Each expansion computes what the op's reference computes, step by step, so results agree with
the reference to rounding. Ops the backends implement as library kernels (matmul, conv, pooling,
gather, sparse cross-entropy) are left alone.
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..ir.node import Node
from ..ir.tensor import Tensor
from ..program import Program
from .rewriter import Rewriter


def decompose(program: Program) -> Program:
    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        fn = _RULES.get(node.type)
        if fn is None:
            return None
        out = fn(rw, node, inputs)
        if out is not None:
            rw.note(node.type)
            return [out]
        return None

    return Rewriter(program, "decompose").run(rule)


def _shifted(rw: Rewriter, node: Node, x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """x - m with m = max(x over axes, keepdims) replaced by 0 where it is not finite."""
    m = rw.emit("Max", [x], {"axis": axes, "keepdims": True}, node)
    zero = rw.constant(0, m.dtype, node)
    m = rw.emit("Select", [rw.emit("IsFinite", [m], {}, node), m, zero], {}, node)
    return m, rw.emit("Sub", [x, m], {}, node)


def _log_softmax(rw: Rewriter, node: Node, x: Tensor, axis: int) -> Tensor:
    _, s = _shifted(rw, node, x, (axis,))
    z = rw.emit("Sum", [rw.emit("Exp", [s], {}, node)], {"axis": (axis,), "keepdims": True}, node)
    return rw.emit("Sub", [s, rw.emit("Log", [z], {}, node)], {}, node)


def _softmax(rw, node, inputs):
    (x,) = inputs
    _, s = _shifted(rw, node, x, (node.attrs["axis"],))
    e = rw.emit("Exp", [s], {}, node)
    z = rw.emit("Sum", [e], {"axis": (node.attrs["axis"],), "keepdims": True}, node)
    # One division per row and a multiplication per element (as XLA does): a division per
    # element costs more than the exponential; the result differs by at most an ulp.
    return rw.emit("Mul", [e, rw.emit("Reciprocal", [z], {}, node)], {}, node)


def _log_softmax_rule(rw, node, inputs):
    return _log_softmax(rw, node, inputs[0], node.attrs["axis"])


def _as_float(rw: Rewriter, node: Node, x: Tensor, dtype: DType) -> Tensor:
    return x if x.dtype is dtype else rw.emit("Cast", [x], {"dtype": dtype}, node)


def _logsumexp(rw, node, inputs):
    out = node.outputs[0]
    x = _as_float(rw, node, inputs[0], out.dtype)
    axes = tuple(range(x.ndim)) if node.attrs["axis"] is None else tuple(a % x.ndim for a in node.attrs["axis"])
    m, s = _shifted(rw, node, x, axes)
    z = rw.emit("Sum", [rw.emit("Exp", [s], {}, node)], {"axis": axes, "keepdims": True}, node)
    r = rw.emit("Add", [rw.emit("Log", [z], {}, node), m], {}, node)
    return r if r.shape == out.shape else rw.emit("Reshape", [r], {"shape": out.shape}, node)


def _softmax_xent(rw, node, inputs):
    out = node.outputs[0]
    labels, logits = (_as_float(rw, node, t, out.dtype) for t in inputs)
    axis = node.attrs["axis"]
    logp = _log_softmax(rw, node, logits, axis)
    zero = rw.constant(0, out.dtype, node)
    nonzero = rw.emit("NotEqual", [labels, zero], {}, node)
    terms = rw.emit("Select", [nonzero, rw.emit("Mul", [labels, logp], {}, node), zero], {}, node)
    return rw.emit("Neg", [rw.emit("Sum", [terms], {"axis": (axis,), "keepdims": False}, node)], {}, node)


def _mean(rw, node, inputs):
    out = node.outputs[0]
    x = _as_float(rw, node, inputs[0], out.dtype)
    count = int(np.prod(x.shape)) // max(int(np.prod(out.shape)), 1)   # 0 over nothing: 0 / 0 is NaN
    total = rw.emit("Sum", [x], dict(node.attrs), node)
    return rw.emit("RealDiv", [total, rw.constant(count, out.dtype, node)], {}, node)


def _sum_to_shape(rw, node, inputs):
    (x,) = inputs
    target = node.outputs[0].shape
    lead = x.ndim - len(target)
    axes = tuple(range(lead)) + tuple(lead + i for i, t in enumerate(target) if t == 1 and x.shape[lead + i] != 1)
    summed = rw.emit("Sum", [x], {"axis": axes, "keepdims": False}, node) if axes else x
    return summed if summed.shape == target else rw.emit("Reshape", [summed], {"shape": target}, node)


_RULES = {
    "Softmax": _softmax, "LogSoftmax": _log_softmax_rule, "LogSumExp": _logsumexp,
    "SoftmaxCrossEntropyWithLogits": _softmax_xent, "Mean": _mean, "SumToShape": _sum_to_shape,
}

"""Constant folding: a node whose inputs are all constants is evaluated once, at compile time,
with its reference semantics, and replaced by a constant.

Results that would be larger than their inputs (beyond SMALL elements) are not folded: folding
`zeros([4096, 4096])` or `zeros_like(g)` would only trade a free broadcast for a 64 MB constant.
Nothing beyond FOLD_LIMIT elements is folded, except a layout change or an elementwise op that
does not grow the data (up to LINEAR_LIMIT): evaluating it costs one pass, and leaving it lazy
costs that pass on every run (an ONNX model's OIHW convolution weights reach the convolution
through a Transpose, which the GEMM form would otherwise copy per call). Stateful ops and checks
are never folded.
"""
from __future__ import annotations

import numpy as np

from ..errors import GraphcError
from ..ir.node import Node
from ..ir.tensor import Tensor
from ..program import Program
from .rewriter import Rewriter, const_value

FOLD_LIMIT = 1 << 16  # elements
SMALL = 1024          # results up to this size are folded even when they grow the data
LINEAR_LIMIT = 1 << 26   # elements: the limit for layout changes and elementwise ops
LAYOUT_OPS = frozenset({"Reshape", "Transpose", "StridedSlice", "ExpandDims", "Squeeze", "Cast"})


def constant_folding(program: Program) -> Program:
    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        op = node.op
        if op.stateful or op.has_side_effect or node.type == "Const" or not node.outputs:
            return None
        values = [const_value(t) for t in inputs]
        if any(v is None for v in values):
            return None
        out_size = sum(int(np.prod(t.shape)) for t in node.outputs)
        in_size = sum(v.size for v in values)
        if out_size > SMALL and out_size > in_size:
            return None  # folding would materialize a broadcast (zeros_like, fill): keep it lazy
        linear = node.type in LAYOUT_OPS or op.is_elementwise
        if out_size > (LINEAR_LIMIT if linear and out_size <= in_size else FOLD_LIMIT):
            return None
        try:
            results = op.evaluate(values, dict(node.attrs))
        except GraphcError:
            return None  # the error is reported when the program runs, with its full context
        rw.note(node.type)
        return [rw.constant(np.asarray(r, dtype=t.dtype.np).reshape(t.shape), t.dtype, node)
                for r, t in zip(results, node.outputs)]

    return Rewriter(program, "fold").run(rule)

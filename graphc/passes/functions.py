"""Sub-graphs through the pipeline: a loop's body and condition and a cond's branches are
Programs of their own (graphc.program.from_graph builds them), optimized by the same passes as
the program that owns them before it is, innermost first. So stabilization, simplification and
fusion apply inside a loop body exactly as outside it.

A body shared by two nodes (a loop and the twin its gradient made) is optimized once, so the
twins still hold one and the same body and can be merged (graphc.passes.cse).
"""
from __future__ import annotations

from typing import Any, Callable

from ..ir.function import Function
from ..ir.node import Node
from ..ir.tensor import Tensor
from ..program import Program
from .rewriter import Rewriter


def function_keys(node: Node) -> tuple[str, ...]:
    """The attributes of `node` that hold Functions (none for ordinary ops)."""
    return getattr(node.op, "functions", ())


def optimize_functions(program: Program, optimize: Callable[[Program], Program]) -> Program:
    """`program` with each sub-graph replaced by optimize(its program)."""
    if not any(function_keys(n) for n in program.nodes()):
        return program
    done: dict[int, Function] = {}

    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        keys = function_keys(node)
        if not keys:
            return None
        attrs: dict[str, Any] = dict(node.attrs)
        for key in keys:
            fn = attrs[key]
            if fn is None or fn.program is None:
                continue
            new = done.get(id(fn))
            if new is None:
                body = optimize(fn.program)
                new = done[id(fn)] = Function(fn.name, body.graph, body.input_tensors(), body.outputs, program=body,
                                              origin=fn.root)
            attrs[key] = new
        copy = rw.graph.create_node(node.op, inputs, attrs, node.name, source=node.source, exact_name=True,
                                    output_types=[(t.dtype, t.shape) for t in node.outputs])
        return list(copy.outputs)

    return Rewriter(program, "sub-graphs").run(rule)

"""Common subexpression elimination: merge nodes applying the same op, with the same
attributes, to the same inputs (structural hashing, bottom-up); equal constants are merged by
content. Stateful nodes (program inputs, random draws) are never merged."""
from __future__ import annotations

from typing import Any

from ..ir.node import Node, freeze_attrs
from ..ir.tensor import Tensor
from ..program import Program
from .rewriter import Rewriter


def common_subexpressions(program: Program) -> Program:
    seen: dict[Any, Node] = {}
    twins = _loops_with_history(program)

    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        if node.op.stateful or node.op.has_side_effect:
            return None
        twin = twins.get(_twin_key(node)) if node.type == "While" and not node.attrs["history"] else None
        if twin is not None:
            # the gradient's twin also outputs the history (and what the backward loop needs):
            # run that one loop for both
            merged = rw.graph.create_node(twin.op, inputs, dict(twin.attrs), node.name, source=node.source,
                                          exact_name=True, output_types=[(t.dtype, t.shape) for t in twin.outputs])
            key = (merged.op.name, freeze_attrs(merged.attrs), tuple((id(t.node), t.index) for t in inputs))
            merged = seen.setdefault(key, merged)
            rw.note("While (merged with its gradient's twin)")
            n = node.attrs["n_carries"]
            values = len(node.attrs["body"].results) - n
            twin_values = len(twin.attrs["body"].results) - n
            return list(merged.outputs[:n + values]) + [merged.outputs[n + twin_values]]
        attrs_key = node._cache.get("attrs_key")
        if attrs_key is None:
            attrs_key = node._cache["attrs_key"] = freeze_attrs(node.attrs)
        key = (node.op.name, attrs_key, tuple((id(t.node), t.index) for t in inputs))
        twin = seen.get(key)
        if twin is None:
            seen[key] = rw.copy(node, inputs)
            return list(seen[key].outputs)
        rw.note(node.type)
        return list(twin.outputs)

    return Rewriter(program, "cse").run(rule)


def _twin_key(node: Node) -> Any:
    """What a loop and the twin made for its gradient share: the same inputs and attributes
    except the history flag, and bodies made from the same user body (the twin's may return
    more values: what the backward loop needs)."""
    attrs = {k: (v.root if k in ("body", "cond") and v is not None else v)
             for k, v in node.attrs.items() if k != "history"}
    return (freeze_attrs(attrs), tuple((id(t.node), t.index) for t in node.inputs))


def _loops_with_history(program: Program) -> dict[Any, Node]:
    return {_twin_key(n): n for n in program.nodes() if n.type == "While" and n.attrs["history"]}

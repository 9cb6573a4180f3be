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

    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        if node.op.stateful or node.op.has_side_effect:
            return None
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

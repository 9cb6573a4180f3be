"""The NumPy reference backend: interprets a Program node by node with each op's reference
semantics. It is the oracle every compiled backend is tested against, so it favours clarity and
strictness over speed: each result is checked against the dtype and shape the IR inferred.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import GraphcError, InvalidArgumentError, internal_error
from ..ir.node import Node
from ..program import Program


class ReferenceExecutable:
    """Runs one Program: call it with the argument arrays in `program.inputs` order; it returns
    the values of `program.results`."""

    def __init__(self, program: Program) -> None:
        self.program = program
        nodes = [n for n in program.nodes() if n.type != "Placeholder"]
        slot: dict[int, int] = {}

        def slot_of(t: Any) -> int:
            return slot.setdefault(id(t), len(slot))

        self.input_slots = [slot_of(i.tensor) for i in program.inputs]
        self.steps: list[tuple[Node, list[int], list[int]]] = []
        for n in nodes:
            self.steps.append((n, [slot_of(t) for t in n.inputs], [slot_of(t) for t in n.outputs]))
        self.result_slots = [slot_of(t) for t in program.results]
        self.n_slots = len(slot)
        # Free each intermediate after its last use, so memory stays near the live set.
        keep = set(self.result_slots)
        last_use: dict[int, int] = {}
        for i, (_, ins, _) in enumerate(self.steps):
            for s in ins:
                last_use[s] = i
        self.frees: list[list[int]] = [[] for _ in self.steps]
        for s, i in last_use.items():
            if s not in keep:
                self.frees[i].append(s)

    def __call__(self, args: Sequence[np.ndarray]) -> list[np.ndarray]:
        values: list[Any] = [None] * self.n_slots
        for s, a in zip(self.input_slots, args):
            values[s] = a
        for (node, ins, outs), frees in zip(self.steps, self.frees):
            results = _run_node(node, [values[s] for s in ins])
            for s, r in zip(outs, results):
                values[s] = r
            for s in frees:
                values[s] = None
        return [values[s] for s in self.result_slots]


def _run_node(node: Node, inputs: list[np.ndarray]) -> list[np.ndarray]:
    try:
        results = node.op.evaluate(inputs, dict(node.attrs))
    except GraphcError as err:
        raise err.attach_node(node.type, node.name, node.source) from None
    except (ValueError, IndexError, TypeError, ArithmeticError) as err:
        raise InvalidArgumentError(f"failed while running: {err}", op_type=node.type,
                                   node_name=node.name, source=node.source) from err
    if len(results) != len(node.outputs):
        raise internal_error(f"{node.type} '{node.name}' returned {len(results)} values, not {len(node.outputs)}")
    checked = []
    for r, t in zip(results, node.outputs):
        r = np.asarray(r)
        if r.dtype != t.dtype.np or r.shape != t.shape:
            raise internal_error(
                f"{node.type} '{node.name}' produced {r.dtype}{r.shape} but its inferred type is "
                f"{t.dtype.name}{t.shape}")
        checked.append(r)
    return checked


class ReferenceBackend:
    """backend="numpy"."""

    name = "numpy"

    def compile(self, program: Program) -> ReferenceExecutable:
        return ReferenceExecutable(program)

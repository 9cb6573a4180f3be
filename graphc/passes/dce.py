"""Dead code elimination: keep only the nodes the program's results and checks need.

Rewrites leave replaced nodes behind in the program's graph; this pass copies the live nodes
into a fresh graph, so that later stages (and listings) see exactly what runs.
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.tensor import Tensor
from ..program import Program, ProgramInput
from .rewriter import copy_node


def dead_code_elimination(program: Program) -> Program:
    graph = Graph(unique_names=False)
    mapping: dict[Tensor, Tensor] = {}
    inputs = []
    for i in program.inputs:
        node = i.tensor.node
        new = copy_node(graph, node, [])
        mapping[i.tensor] = new.outputs[0]
        inputs.append(ProgramInput(i.kind, i.key, new.outputs[0], i.source))
    live = program.nodes()
    for node in live:
        if node.type == "Placeholder":
            continue
        new = copy_node(graph, node, [mapping[t] for t in node.inputs])
        mapping.update(zip(node.outputs, new.outputs))
    total = len(program.graph.get_operations())
    note = f"dce: kept {len(live)} of {total} nodes"
    return Program(graph, inputs, [mapping[t] for t in program.outputs],
                   [(v, mapping[t]) for v, t in program.updates], [mapping[t] for t in program.effects],
                   program.log + [note], None)

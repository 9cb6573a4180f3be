"""Fusion grouping: partition a program into the kernels the lowering will generate.

Every node other than a source (program input or constant) belongs to one group:
  - "elementwise": elementwise ops over one iteration space (the output shape);
  - "reduction": a reduction (sum, max, min, prod, any, all) with the elementwise ops that
    produce its input (its prologue, in the input's space) and the elementwise ops that consume
    its result (its epilogue, in the result's space);
  - "library": an op with its own kernel (matmul, conv, pooling, gather, ...) followed by an
    elementwise epilogue in its output space (bias add, activation, optimizer update);
  - "copy": a view that must be materialized because it is a result of the program.
Views (reshape, transpose, broadcast_to, strided slice) are index maps: they join no group; a
group reads the stored value under them at no cost.

A value is stored (written to memory) when it is a program result or check, when a node of
another group reads it, or when it must be read through a view or broadcast (a reduction's
result broadcast back over its axis, a transpose of a member). A node joins a producer's group
only when it runs over the same iteration space and reads that producer's value element for
element, and only when the group graph stays acyclic (checked with ancestor bitsets; networkx
orders the final groups and verifies the DAG).
"""
from __future__ import annotations


import networkx as nx

from ..errors import internal_error
from ..ir.node import Node
from ..ir.tensor import Tensor
from ..ops.shape_ops import VIEW_OPS
from ..program import FusionGroup, Program

REDUCTION_OPS = frozenset({"Sum", "Max", "Min", "Prod", "Any", "All"})
SOURCE_OPS = frozenset({"Placeholder", "Const"})
# Members per group at most: a fused group is one scalar expression tree per element, and every
# walk over it (cost model, fingerprint, code generation) follows its depth; a chain of 20,000
# elementwise ops becomes 20,000 / MAX_GROUP_NODES kernels instead of a RecursionError.
MAX_GROUP_NODES = 96


def kind_of(node: Node) -> str:
    if node.type in SOURCE_OPS:
        return "source"
    if node.type in VIEW_OPS:
        return "view"
    if node.type in REDUCTION_OPS:
        return "reduction"
    if node.op.is_elementwise:
        return "elementwise"
    return "library"


class _Partitioner:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.groups: list[FusionGroup] = []
        self.group_of: dict[int, FusionGroup] = {}     # node id -> group
        self.out_side: set[Tensor] = set()             # member values in their group's out_space
        self.ancestors: list[int] = []                 # group id -> bitset of ancestor group ids

    # -------------------------------------------------------------- helpers
    def base(self, t: Tensor) -> Tensor:
        """The stored value a (chain of) view(s) reads."""
        while t.node.type in VIEW_OPS:
            t = t.node.inputs[0]
        return t

    def input_groups(self, node: Node) -> set[int]:
        groups = set()
        for t in node.inputs:
            g = self.group_of.get(self.base(t).node.id)
            if g is not None:
                groups.add(g.id)
        return groups

    def ancestry(self, groups: set[int], exclude: int | None = None) -> int:
        bits = 0
        for h in groups:
            if h != exclude:
                bits |= self.ancestors[h] | (1 << h)
        return bits

    def new_group(self, node: Node, kind: str, space: tuple[int, ...], out_space: tuple[int, ...]) -> None:
        g = FusionGroup(len(self.groups), kind, [node], space, out_space, node if kind in ("reduction", "library") else None)
        self.groups.append(g)
        self.ancestors.append(self.ancestry(self.input_groups(node)))
        self.group_of[node.id] = g
        self.out_side.update(node.outputs)

    def can_join(self, node: Node, g: FusionGroup, kind: str) -> bool:
        out = node.outputs[0]
        direct = [t for t in node.inputs if self.group_of.get(t.node.id) is g]
        through_views = [t for t in node.inputs if t.node.type in VIEW_OPS and self.group_of.get(self.base(t).node.id) is g]
        if not direct or through_views or len(g.nodes) >= MAX_GROUP_NODES:
            return False  # a member read through an index map must be stored first
        if kind == "elementwise":
            ok = g.kind != "copy" and tuple(out.shape) == g.out_space and all(
                t in self.out_side and tuple(t.shape) == g.out_space for t in direct)
        else:  # a reduction takes an elementwise group over its input's space as its prologue
            ok = g.kind == "elementwise" and tuple(node.inputs[0].shape) == g.space and direct == [node.inputs[0]]
        if not ok:
            return False
        others = self.ancestry(self.input_groups(node), exclude=g.id)
        return not (others >> g.id) & 1  # joining must not make g depend on itself

    def join(self, node: Node, g: FusionGroup, kind: str) -> None:
        others = self.ancestry(self.input_groups(node), exclude=g.id)
        g.nodes.append(node)
        self.group_of[node.id] = g
        if kind == "reduction":
            g.kind, g.anchor, g.out_space = "reduction", node, tuple(node.outputs[0].shape)
            self.out_side.difference_update(t for m in g.nodes for t in m.outputs)
        self.out_side.update(node.outputs)
        new = others & ~self.ancestors[g.id]
        if new:
            self.ancestors[g.id] |= new
            bit = 1 << g.id
            for d in range(len(self.groups)):
                if self.ancestors[d] & bit:
                    self.ancestors[d] |= new

    # -------------------------------------------------------------- main loop
    def partition(self) -> list[FusionGroup]:
        results = set(self.program.results) | set(self.program.effects)
        nodes = [n for n in self.program.nodes() if kind_of(n) not in ("source",)]
        for node in nodes:
            kind = kind_of(node)
            if kind == "view":
                if any(t in results for t in node.outputs):
                    self.new_group(node, "copy", tuple(node.outputs[0].shape), tuple(node.outputs[0].shape))
                continue
            if kind == "library" or len(node.outputs) != 1:
                self.new_group(node, "library", tuple(node.outputs[0].shape) if node.outputs else (), 
                               tuple(node.outputs[0].shape) if node.outputs else ())
                continue
            for t in node.inputs:
                g = self.group_of.get(t.node.id)
                if g is not None and self.can_join(node, g, kind):
                    self.join(node, g, kind)
                    break
            else:
                if kind == "reduction":
                    self.new_group(node, "reduction", tuple(node.inputs[0].shape), tuple(node.outputs[0].shape))
                else:
                    shape = tuple(node.outputs[0].shape)
                    self.new_group(node, "elementwise", shape, shape)
        self.merge_producers(results)
        self.merge_epilogues()
        self.merge_producers(results)
        self.finish(results)
        return self.ordered()

    def merge_epilogues(self) -> None:
        """Append an elementwise group to a library op's or a reduction's epilogue when it runs
        over that group's result space and reads its results element for element, and no other
        group lies between the two (checked on the ancestor bitsets)."""
        for p in self.groups:
            if p.kind not in ("library", "reduction") or not p.nodes or p.anchor is None:
                continue
            for c in list(self.groups):
                if c is p or c.kind != "elementwise" or not c.nodes or c.space != p.out_space:
                    continue
                if len(p.nodes) + len(c.nodes) > MAX_GROUP_NODES:
                    continue
                if not self.reads_results_of(c, p):
                    continue
                others = 0
                members = {m.id for m in c.nodes}
                for m in c.nodes:
                    for t in m.inputs:
                        k = self.group_of.get(self.base(t).node.id)
                        if k is not None and k is not p and k is not c and t.node.id not in members:
                            others |= self.ancestors[k.id] | (1 << k.id)
                if (others >> p.id) & 1:
                    continue  # another group between p and c: merging would make a cycle
                p.nodes = p.nodes + c.nodes
                for m in c.nodes:
                    self.group_of[m.id] = p
                self.out_side.update(t for m in c.nodes for t in m.outputs)
                c.nodes = []
                new = self.ancestors[c.id] & ~(1 << p.id)
                self.ancestors[p.id] |= new
                for d in range(len(self.groups)):
                    if self.ancestors[d] & (1 << p.id):
                        self.ancestors[d] |= new

    def reads_results_of(self, c: FusionGroup, p: FusionGroup) -> bool:
        """c reads p's values, only its result-space values, only directly."""
        producers = {m.id for m in p.nodes}
        reads = False
        for m in c.nodes:
            for t in m.inputs:
                if self.base(t).node.id not in producers:
                    continue
                if t.node.id not in producers or t not in self.out_side or tuple(t.shape) != p.out_space:
                    return False
                reads = True
        return reads

    def merge_producers(self, results: set[Tensor]) -> None:
        """Merge an elementwise group into the one group that reads its values, when that group
        reads them element for element in the same space. A single reader means no other path
        between the two groups, so no cycle can appear."""
        changed = True
        while changed:
            changed = False
            readers = self.reader_map()
            for h in reversed(self.groups):
                if h.kind != "elementwise" or not h.nodes or len(readers.get(h.id, ())) != 1:
                    continue
                (g,) = readers[h.id]
                if len(g.nodes) + len(h.nodes) > MAX_GROUP_NODES:
                    continue
                if g.kind in ("elementwise", "reduction") and g.space == h.space and self.reads_directly(g, h):
                    self.absorb(g, h)
                    changed = True
                    break  # reader sets changed: recompute them

    def reader_map(self) -> dict[int, set[FusionGroup]]:
        """group id -> the other groups that read its values (in one pass over the nodes)."""
        readers: dict[int, set[FusionGroup]] = {}
        for g in self.groups:
            for m in g.nodes:
                for t in m.inputs:
                    src = self.group_of.get(self.base(t).node.id)
                    if src is not None and src is not g:
                        readers.setdefault(src.id, set()).add(g)
        return readers

    def reads_directly(self, g: FusionGroup, h: FusionGroup) -> bool:
        """g reads h's values only directly, by members running over g's main space."""
        members = {m.id for m in h.nodes}
        before_anchor = g.nodes if g.anchor is None else g.nodes[: g.nodes.index(g.anchor) + 1]
        for m in g.nodes:
            for t in m.inputs:
                if self.base(t).node.id not in members:
                    continue
                if t.node.id not in members or m not in before_anchor or tuple(t.shape) != g.space:
                    return False
        return True

    def absorb(self, g: FusionGroup, h: FusionGroup) -> None:
        # h never depends on g (g reads h, and groups are acyclic), so h's nodes can run first:
        # all of them belong to g's main space, before any anchor, whatever their creation order
        g.nodes = h.nodes + g.nodes
        for m in h.nodes:
            self.group_of[m.id] = g
        h.nodes = []
        new = self.ancestors[h.id] & ~(1 << g.id)
        self.ancestors[g.id] |= new
        for d in range(len(self.groups)):
            if self.ancestors[d] & (1 << g.id):
                self.ancestors[d] |= new

    def finish(self, results: set[Tensor]) -> None:
        readers: dict[Tensor, set[int]] = {}
        for node in self.program.nodes():
            g = self.group_of.get(node.id)
            for t in node.inputs:
                chain = []
                while t.node.type in VIEW_OPS and t.node.id not in self.group_of:
                    chain.append(t.node)
                    t = t.node.inputs[0]
                if g is None:
                    continue
                readers.setdefault(t, set()).add(g.id)
                if self.group_of.get(t.node.id) is not g or chain:
                    if t not in g.inputs:
                        g.inputs.append(t)
                    g.views.extend(v for v in chain if v not in g.views)
        for g in self.groups:
            for m in g.nodes:  # emptied (merged) groups have no nodes
                for t in m.outputs:
                    if t in results or readers.get(t, set()) - {g.id} or t in g.inputs:
                        g.stores.append(t)

    def ordered(self) -> list[FusionGroup]:
        live = [g for g in self.groups if g.nodes]
        dag = nx.DiGraph()
        dag.add_nodes_from(g.id for g in live)
        for g in live:
            for t in g.inputs:
                src = self.group_of.get(t.node.id)
                if src is not None and src is not g:
                    dag.add_edge(src.id, g.id)
        if not nx.is_directed_acyclic_graph(dag):
            raise internal_error("fusion produced a cycle between groups")
        order = [self.groups[i] for i in nx.lexicographical_topological_sort(dag)]
        for new_id, g in enumerate(order):
            g.id = new_id
        return order


def fuse(program: Program) -> Program:
    """Annotate the program with its fusion groups (program.groups), in an executable order."""
    groups = _Partitioner(program).partition()
    result = program.derive(list(program.outputs), list(program.updates), list(program.effects))
    result.groups = groups
    stores = sum(len(g.stores) for g in groups)
    kinds: dict[str, int] = {}
    for g in groups:
        kinds[g.kind] = kinds.get(g.kind, 0) + 1
    detail = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))
    result.log.append(f"fuse: {len(groups)} groups ({detail}), {stores} stores")
    return result

"""Program: what one kind of run computes, as a pure function over concrete shapes.

A Program is built from the user's graph for given fetches and feed types (graphc.program.from_graph)
and lives in a private Graph of its own, so rewriting it never touches the user's graph. It is
pure dataflow: its inputs are the fed values, the variables' values at the start of the run and
one counter per random node; its results are the fetched values and the variables' new values.
Every shape in it is fully known.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..ir.graph import Graph
from ..ir.node import Node
from ..ir.shapes import format_shape
from ..ir.tensor import Tensor
from ..source import SourceLocation


@dataclass
class ProgramInput:
    """One argument of the program: a feed, a variable's value, or a random node's run counter."""

    kind: str                 # "feed", "variable" or "rng"
    key: Any                  # the user's fed Tensor, the variable name, or the random node's name
    tensor: Tensor            # the placeholder standing for it inside the program
    source: SourceLocation | None = None  # for errors: where the user's graph first needs it


@dataclass
class Program:
    graph: Graph
    inputs: list[ProgramInput]
    outputs: list[Tensor]                      # one per fetched tensor, in fetch order
    updates: list[tuple[str, Tensor]]          # (variable name, its value after the run)
    effects: list[Tensor] = field(default_factory=list)  # checks that must run (check_numerics)
    log: list[str] = field(default_factory=list)         # what built or rewrote it, for inspection
    groups: list[Any] | None = None                       # FusionGroups, once the fuse pass ran

    def derive(self, outputs: list[Tensor], updates: list[tuple[str, Tensor]], effects: list[Tensor],
               note: str | None = None) -> "Program":
        """A program with the same graph and inputs and new results (what a pass returns)."""
        log = self.log + ([note] if note else [])
        return Program(self.graph, list(self.inputs), outputs, updates, effects, log, None)

    @property
    def results(self) -> list[Tensor]:
        """Everything the program must produce: outputs, then update values."""
        return self.outputs + [t for _, t in self.updates]

    def nodes(self) -> list[Node]:
        """The nodes the results and effects need, in a topological (creation) order."""
        live: set[int] = set()
        stack = [t.node for t in self.results + self.effects]
        while stack:
            n = stack.pop()
            if n.id in live:
                continue
            live.add(n.id)
            stack.extend(t.node for t in n.inputs)
        return [n for n in self.graph.get_operations() if n.id in live]

    def input_tensors(self) -> list[Tensor]:
        return [i.tensor for i in self.inputs]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes():
            counts[n.type] = counts.get(n.type, 0) + 1
        return counts

    def listing(self) -> str:
        """A readable text form: one line per node, with dtypes and shapes. Nodes keep their
        user names; when two live nodes share one, the later ones get #2, #3..."""
        nodes = self.nodes()
        label: dict[int, str] = {}
        seen: dict[str, int] = {}
        for n in nodes:
            seen[n.name] = seen.get(n.name, 0) + 1
            label[n.id] = n.name if seen[n.name] == 1 else f"{n.name}#{seen[n.name]}"

        def ref(t: Tensor) -> str:
            base = label.get(t.node.id, t.node.name)
            return f"%{base}" if t.node.type == "Placeholder" else f"%{base}:{t.index}"

        lines = [f"  input  {ref(i.tensor)}: {_type(i.tensor)}  ({i.kind})" for i in self.inputs]
        for n in nodes:
            if n.type == "Placeholder":
                continue
            outs = ", ".join(f"{ref(t)}: {_type(t)}" for t in n.outputs)
            lines.append(f"  {outs} = {n.type}({', '.join(ref(t) for t in n.inputs)}){_attr_text(n)}")
            for key in getattr(n.op, "functions", ()):   # a loop's body, a branch: indented below
                fn = n.attrs.get(key)
                if fn is not None and getattr(fn, "program", None) is not None:
                    lines.append(f"    {key}:")
                    lines += ["    " + line for line in fn.program.listing().splitlines()]
        lines += [f"  output {i}: {ref(t)}" for i, t in enumerate(self.outputs)]
        lines += [f"  update {var} <- {ref(t)}" for var, t in self.updates]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Program {len(self.inputs)} inputs, {len(self.nodes())} nodes, {len(self.outputs)} outputs>"


def _type(t: Tensor) -> str:
    return f"{t.dtype.name}{format_shape(t.shape)}"


def _attr_text(n: Node) -> str:
    shown = []
    for k, v in n.attrs.items():
        if k == "value":
            v = f"<{v.dtype}{list(v.shape)}>" if getattr(v, "size", 0) > 4 else getattr(v, "tolist", lambda: v)()
        shown.append(f"{k}={v}")
    return f" {{{', '.join(shown)}}}" if shown else ""


def iter_tensors(nodes: Iterable[Node]) -> Iterable[Tensor]:
    for n in nodes:
        yield from n.outputs

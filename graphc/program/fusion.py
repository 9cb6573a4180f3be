"""FusionGroup: one future kernel, as the fusion pass (graphc.passes.fuse) partitions a program
and the lowering (graphc.lower) reads it. It belongs with the Program (program.groups), so the
lowering depends on the program, not on the passes that made the groups."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.node import Node
from ..ir.tensor import Tensor


@dataclass(eq=False)
class FusionGroup:
    """One future kernel."""

    id: int
    kind: str                                        # elementwise | reduction | library | copy
    nodes: list[Node] = field(default_factory=list)  # members, in topological order
    space: tuple[int, ...] = ()                      # the iteration space of the main loop
    out_space: tuple[int, ...] = ()                  # the space of values later members may read
    anchor: Node | None = None                       # the reduction or library node, if any
    inputs: list[Tensor] = field(default_factory=list)   # values read from memory (bases of views)
    views: list[Node] = field(default_factory=list)      # index maps applied to those reads
    stores: list[Tensor] = field(default_factory=list)   # values written to memory

    @property
    def epilogue(self) -> list[Node]:
        """Members after the anchor (elementwise work fused behind a library op or reduction)."""
        if self.anchor is None:
            return []
        return self.nodes[self.nodes.index(self.anchor) + 1:]

    def describe(self) -> str:
        ops = ", ".join(n.type for n in self.nodes)
        return (f"group {self.id} [{self.kind}] space {self.space}: {ops}; reads {len(self.inputs)}, "
                f"views {len(self.views)}, stores {len(self.stores)}")

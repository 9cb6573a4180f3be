"""Programs: the pure, concretely shaped computation of one kind of run (see program.py)."""
from .from_graph import build_program, needed_nodes
from .fusion import FusionGroup
from .program import Program, ProgramInput

__all__ = ["FusionGroup", "Program", "ProgramInput", "build_program", "needed_nodes"]

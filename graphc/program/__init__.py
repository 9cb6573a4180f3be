"""Programs: the pure, concretely shaped computation of one kind of run (see program.py)."""
from .build import build_program, needed_nodes
from .program import Program, ProgramInput

__all__ = ["Program", "ProgramInput", "build_program", "needed_nodes"]

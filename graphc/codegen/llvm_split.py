"""A program's LLVM module as several module texts that compile side by side (graphc.runtime.
compile_workers) and load together into one engine.

Why: a model's first call is mostly LLVM compiling a hundred kernel bodies one after another on
one core. The kernels are independent: each entry `P_k<i>` and the internal functions it calls
(its body, shared bodies, math helpers) can live in a module of their own, and the other modules
then declare the entry instead of defining it. Entries that share an internal body stay in one
part (it would otherwise be compiled twice); small `alwaysinline` helpers are copied into every
part that calls them. Parts are balanced by instruction counts (optnone bodies count little).

The split is made on the rendered functions' text, which is what the compiler reads anyway: each
global is rendered once, and a part is the texts it defines plus declarations of what it calls
elsewhere, so the parts together define exactly what the whole module does.
"""
from __future__ import annotations

import re

from llvmlite import ir

# Kernels whose bodies need the O3 pipeline, below which a program is compiled in one piece
# (a worker's start and the extra declarations would cost more than the parallelism saves).
MIN_UNITS_TO_SPLIT = 8
_REFERENCE = re.compile(r'@"((?:[^"\\]|\\.)*)"|@([-a-zA-Z$._][-a-zA-Z$._0-9]*)')
MIN_UNIT_WEIGHT = 16      # instructions (optimised ones) that make a unit count as a body to compile
_OPTNONE_WEIGHT = 0.05   # an optnone function compiles in a small fraction of an optimised one's time


def _defines(value: ir.GlobalValue) -> bool:
    if isinstance(value, ir.Function):
        return not value.is_declaration
    return getattr(value, "initializer", None) is not None


def _internal(value: ir.GlobalValue) -> bool:
    return getattr(value, "linkage", "") in ("internal", "private")


def _weight(value: ir.GlobalValue) -> float:
    if not isinstance(value, ir.Function) or value.is_declaration:
        return 0.0
    count = sum(len(block.instructions) for block in value.blocks)
    return count * (_OPTNONE_WEIGHT if "optnone" in value.attributes else 1.0)


def _heavy(value: ir.GlobalValue) -> bool:
    """An internal function worth compiling once only (not a small alwaysinline helper)."""
    return isinstance(value, ir.Function) and "alwaysinline" not in value.attributes and \
        "optnone" not in value.attributes


class _Split:
    def __init__(self, module: ir.Module) -> None:
        self.values = dict(module.globals)
        self.text = {name: str(v) for name, v in self.values.items()}
        self.refs = {name: {m.group(1) or m.group(2) for m in _REFERENCE.finditer(t)} - {name}
                     for name, t in self.text.items()}
        # module-level metadata (branch weights: `!prof !0`) is numbered per module: every part
        # carries all of it, so the numbers mean the same everywhere
        self.metadata = "\n".join(module._get_metadata_lines())

    def closure(self, roots: list[str]) -> set[str]:
        """The roots and every internal definition they reach."""
        seen, todo = set(roots), list(roots)
        while todo:
            for ref in self.refs[todo.pop()]:
                v = self.values.get(ref)
                if ref not in seen and v is not None and _internal(v) and _defines(v):
                    seen.add(ref)
                    todo.append(ref)
        return seen

    def declaration(self, name: str) -> str:
        """How a part that does not define `name` refers to it."""
        v = self.values[name]
        if not _defines(v):
            return self.text[name]
        scratch = ir.Module()
        if isinstance(v, ir.Function):
            return str(ir.Function(scratch, v.function_type, name=name))
        return str(ir.GlobalVariable(scratch, v.value_type, name=name))

    def part_text(self, members: set[str]) -> str:
        """The module defining `members` (and copies of the internal definitions they reach)."""
        defined = self.closure(sorted(members))
        referenced = set().union(*(self.refs[n] for n in defined)) - defined
        declared = [self.declaration(n) for n in sorted(referenced) if n in self.values]
        return "\n".join(declared + [self.text[n] for n in sorted(defined)] + [self.metadata]) + "\n"


def split_module(module: ir.Module, movable: list[str], parts: int) -> list[str]:
    """IR texts that together define what `module` does, the functions named in `movable` (kernel
    entries) spread over up to `parts` texts; [str(module)] when splitting would not pay."""
    if parts < 2 or module.context.identified_types or not hasattr(module, "_get_metadata_lines"):
        return [str(module)]   # (the metadata lines are llvmlite's private API: without it, one piece)
    split = _Split(module)
    movable = [n for n in movable if n in split.values and not _internal(split.values[n])]
    units = _units(split, movable)
    weights = [sum(_weight(split.values[n]) for n in split.closure(u)) for u in units]
    if sum(1 for w in weights if w >= MIN_UNIT_WEIGHT) < MIN_UNITS_TO_SPLIT:
        return [str(module)]
    moved = set().union(*map(set, units))
    fixed = {n for n, v in split.values.items() if _defines(v) and not _internal(v) and n not in moved}
    loads = [sum(_weight(split.values[n]) for n in split.closure(sorted(fixed)))] + [0.0] * (parts - 1)
    members: list[set[str]] = [set(fixed)] + [set() for _ in range(parts - 1)]
    for w, unit in sorted(zip(weights, units), key=lambda p: -p[0]):
        target = min(range(parts), key=loads.__getitem__)
        loads[target] += w
        members[target] |= set(unit)
    return [split.part_text(m) for m in members if m]


def _units(split: _Split, entries: list[str]) -> list[list[str]]:
    """The entries grouped so that entries reaching the same heavy internal function share a group."""
    parent = {e: e for e in entries}

    def find(e: str) -> str:
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    first_reacher: dict[str, str] = {}
    for e in entries:
        for r in split.closure([e]) - {e}:
            v = split.values[r]
            if _internal(v) and _heavy(v):
                if r in first_reacher:
                    parent[find(e)] = find(first_reacher[r])
                else:
                    first_reacher[r] = e
    groups: dict[str, list[str]] = {}
    for e in entries:
        groups.setdefault(find(e), []).append(e)
    return list(groups.values())

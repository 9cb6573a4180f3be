"""One direction of flow (ARCHITECTURE.md): graphc's modules import each other without circles,
and no layer imports one above it, counting imports made inside functions too."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import graphc

PACKAGE = Path(graphc.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The graphc modules `path` imports (module-level only, or anywhere in the file)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and top_level_only:
            continue   # `if TYPE_CHECKING:` blocks
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("graphc"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("graphc"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)   # `from . import module`
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _graph(top_level_only: bool) -> nx.DiGraph:
    g = nx.DiGraph()
    for name, path in MODULES.items():
        g.add_node(name)
        for target in _imports(path, top_level_only):
            if target in MODULES and target != name:
                g.add_edge(name, target)
    return g


def test_module_level_imports_have_no_cycle():
    g = _graph(top_level_only=True)
    # a package's __init__ importing its own modules is not a circle through them
    g.remove_edges_from([(a, b) for a, b in list(g.edges) if b.startswith(a + ".") or a.startswith(b + ".")
                         and MODULES[b].name == "__init__.py"])
    cycles = list(nx.simple_cycles(g))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


# layer -> the graphc packages / modules it must never import (anywhere in its files)
FORBIDDEN = {
    "graphc.ir": ["graphc.ops", "graphc.passes", "graphc.lower", "graphc.codegen", "graphc.runtime", "graphc.backends",
                  "graphc.session", "graphc.io", "graphc.api"],
    "graphc.lower": ["graphc.passes", "graphc.codegen", "graphc.runtime", "graphc.backends", "graphc.session"],
    "graphc.passes": ["graphc.lower", "graphc.codegen", "graphc.runtime", "graphc.backends", "graphc.session"],
    "graphc.codegen": ["graphc.runtime", "graphc.backends", "graphc.session", "graphc.ir.graph", "graphc.passes"],
    "graphc.runtime": ["graphc.codegen", "graphc.backends", "graphc.session", "graphc.passes"],
    "graphc.io": ["graphc.session", "graphc.function", "graphc.cli"],
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_a_higher_one(layer):
    offences = []
    for name, path in MODULES.items():
        if not (name == layer or name.startswith(layer + ".")):
            continue
        for target in _imports(path, top_level_only=False):
            if any(target == f or target.startswith(f + ".") for f in FORBIDDEN[layer]):
                offences.append(f"{name} imports {target}")
            if layer == "graphc.io" and target == "graphc":
                offences.append(f"{name} imports the package root")
    assert not offences, offences

"""Nested structures of values (TF1's nest): lists, tuples, named tuples (LSTMStateTuple) and
dicts of tensors, flattened in a fixed order and packed back into the same structure. Loops and
branches take and return such structures."""
from __future__ import annotations

from typing import Any

from ..errors import GraphcError


def is_sequence(x: Any) -> bool:
    return isinstance(x, (list, tuple, dict))


def flatten(structure: Any) -> list[Any]:
    """The leaves, depth first (dict entries in sorted key order, as TF1 does)."""
    if isinstance(structure, dict):
        return [leaf for k in sorted(structure) for leaf in flatten(structure[k])]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def pack_sequence_as(structure: Any, leaves: list[Any]) -> Any:
    """`structure` with its leaves replaced, in flatten order, by `leaves`."""
    leaves = list(leaves)
    if len(leaves) != len(flatten(structure)):
        raise GraphcError(f"cannot pack {len(leaves)} values into a structure of {len(flatten(structure))}")
    packed, _ = _pack(structure, leaves)
    return packed


def _pack(structure: Any, leaves: list[Any]) -> tuple[Any, list[Any]]:
    if isinstance(structure, dict):
        out = {}
        for k in sorted(structure):
            out[k], leaves = _pack(structure[k], leaves)
        return type(structure)((k, out[k]) for k in structure), leaves
    if isinstance(structure, (list, tuple)):
        items = []
        for item in structure:
            value, leaves = _pack(item, leaves)
            items.append(value)
        if isinstance(structure, tuple) and hasattr(structure, "_fields"):   # a named tuple
            return type(structure)(*items), leaves
        return type(structure)(items), leaves
    return leaves[0], leaves[1:]


def describe(structure: Any) -> str:
    """A short text of a structure's shape, for error messages: [_, (_, _)]."""
    if isinstance(structure, dict):
        return "{" + ", ".join(f"{k!r}: {describe(structure[k])}" for k in sorted(structure)) + "}"
    if isinstance(structure, tuple):
        name = type(structure).__name__ if hasattr(structure, "_fields") else ""
        return f"{name}(" + ", ".join(describe(x) for x in structure) + ("," if len(structure) == 1 else "") + ")"
    if isinstance(structure, list):
        return "[" + ", ".join(describe(x) for x in structure) + "]"
    return "_"


def assert_same_structure(a: Any, b: Any, what: str) -> None:
    if _signature(a) != _signature(b):
        raise GraphcError(f"{what}: {describe(a)} vs {describe(b)}")


def _signature(x: Any) -> Any:
    if isinstance(x, dict):
        return ("dict", tuple((k, _signature(x[k])) for k in sorted(x)))
    if isinstance(x, (list, tuple)):
        return ("seq", len(x), tuple(_signature(v) for v in x))
    return "leaf"


def flatten_up_to(structure: Any, values: Any) -> list[Any]:
    """The entries of `values` at the leaves of `structure` (values may hold sequences there,
    as shape invariants do: `[(), [None, 3]]` for two loop values)."""
    if isinstance(structure, dict):
        return [v for k in sorted(structure) for v in flatten_up_to(structure[k], values[k])]
    if isinstance(structure, (list, tuple)):
        if not isinstance(values, (list, tuple)) or len(values) != len(structure):
            raise GraphcError(f"expected {len(structure)} entries matching {describe(structure)}, got {values!r}")
        return [v for s, x in zip(structure, values) for v in flatten_up_to(s, x)]
    return [values]

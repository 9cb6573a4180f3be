"""Checking an ONNX node before an import rule reads it: arity, empty required inputs, input
element types and attribute types, from ONNX's own operator schemas; plus the range checks
(axes, permutations, window sizes) that rules call for the values they use.

Why here, once: import rules index their inputs (`ins[1]`), read attributes (`attrs["axis"]`)
and use the values as list indices or sizes. Without these checks a node with a missing input, an
attribute of the wrong type or an axis past the rank raised IndexError, TypeError or KeyError from
deep inside a rule. The schemas say how many inputs each op takes at the model's opset, which of
them may be empty, which element types each accepts and the type of each attribute, so a rule
only ever sees a node that has the inputs and attribute types it was written for. Every error is
a GraphFileError that names the node (index, name, op type) and the input or attribute.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .common import FROM_ONNX
from .files import short

if TYPE_CHECKING:
    from .import_rules import ImportContext

# AttributeProto.AttributeType numbers (the same as onnx.defs.OpSchema.AttrType).
FLOAT_A, INT_A, STRING_A, TENSOR_A, GRAPH_A, FLOATS_A, INTS_A, STRINGS_A = 1, 2, 3, 4, 5, 6, 7, 8
SPARSE_TENSOR_A = 11
_ATTR_NAMES = {0: "UNDEFINED", 1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 5: "GRAPH", 6: "FLOATS", 7: "INTS",
               8: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS",
               13: "TYPE_PROTO", 14: "TYPE_PROTOS"}


@functools.cache
def schema(op_type: str, opset: int, domain: str = "") -> Any:
    """The schema of `op_type` (of `domain`: "" or "ai.onnx.ml") in effect at `opset`; an op
    newer than the model's opset gets its first schema (graphc imports it leniently); None for
    an op ONNX does not define."""
    from onnx import defs

    try:
        return defs.get_schema(op_type, opset, domain)
    except defs.SchemaError:
        history = [s for s in defs.get_all_schemas_with_history() if s.name == op_type and s.domain == domain]
        return min(history, key=lambda s: s.since_version) if history else None


@functools.cache
def attribute_types(op_type: str, opset: int, domain: str = "") -> dict[str, int]:
    """Attribute name -> AttributeType: as the schema in effect at `opset` says, and for names
    it lacks as the newest version that has them says (rules read attributes of old and new
    versions alike, e.g. Pad's 'pads' attribute before opset 11)."""
    from onnx import defs

    out: dict[str, int] = {}
    history = sorted((s for s in defs.get_all_schemas_with_history() if s.name == op_type and s.domain == domain),
                     key=lambda s: s.since_version)
    for s in history:
        out.update({name: int(a.type.value) for name, a in s.attributes.items()})
    current = schema(op_type, opset, domain)
    if current is not None:
        out.update({name: int(a.type.value) for name, a in current.attributes.items()})
    return out


@functools.cache
def _allowed(op_type: str, opset: int, type_str: str, domain: str = "") -> frozenset[str] | None:
    """The graphc dtype names an input typed `type_str` may have (after graphc's widening of
    narrow ONNX types); None when the schema allows something graphc does not model."""
    import onnx

    s = schema(op_type, opset, domain)
    strs: Iterable[str] = [type_str]
    for c in s.type_constraints:
        if c.type_param_str == type_str:
            strs = c.allowed_type_strs
    numbers = dict(onnx.TensorProto.DataType.items())
    names = set()
    for t in strs:
        if t.startswith("tensor(") and t.endswith(")"):
            dtype = FROM_ONNX.get(numbers.get(t[len("tensor("):-1].upper(), -1))
            if dtype is not None:
                names.add(dtype.name)
    return frozenset(names) if names else None


OTHER_DOMAINS = ("ai.onnx.ml", "ai.onnx.preview.training")


def ml_domain(node: Any) -> str:
    """The node's domain as the schemas name it: "" (the default domain), "ai.onnx.ml" or
    "ai.onnx.preview.training"."""
    return node.domain if node.domain in OTHER_DOMAINS else ""


def check_arity(ctx: ImportContext, node: Any, ins: Sequence[Any]) -> None:
    """Input and output counts within the schema's bounds, no empty required input, and input
    element types the schema accepts."""
    domain = ml_domain(node)
    opset = ctx.opset_of(domain)
    s = schema(node.op_type, opset, domain)
    if s is None:
        return
    n = len(ins)
    if not s.min_input <= n <= s.max_input:
        raise ctx.error(f"takes {_bounds(s.min_input, s.max_input)} inputs at opset {opset}, got {n}")
    formals = list(s.inputs)
    for i, t in enumerate(ins):
        formal = formals[min(i, len(formals) - 1)]
        field = f"input {i} ({short(formal.name)!r})"
        if t is None:
            if formal.option.name != "Optional":
                raise ctx.error(f"{field} is required, but its name is empty")
            continue
        allowed = _allowed(node.op_type, opset, formal.type_str, domain)
        if allowed is not None and t.dtype.name not in allowed:
            raise ctx.error(f"{field} has element type {t.dtype.name}; {node.op_type} takes "
                            f"{' or '.join(sorted(allowed))} there")
    m = len(node.output)
    if not s.min_output <= m <= s.max_output:
        raise ctx.error(f"has {m} outputs; {node.op_type} has {_bounds(s.min_output, s.max_output)} at opset "
                        f"{opset}")


def _bounds(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo} or more" if hi >= 1 << 30 else f"{lo} to {hi}"


def read_attrs(ctx: ImportContext, node: Any) -> dict[str, Any]:
    """The node's attributes as Python values, each of the type the schema gives it; required
    ones present. Attributes no version of the op defines are dropped (no rule reads them)."""
    domain = ml_domain(node)
    types = attribute_types(node.op_type, ctx.opset_of(domain), domain)
    out: dict[str, Any] = {}
    for a in node.attribute:
        field = f"attribute {short(a.name)!r}"
        if a.name in out:
            raise ctx.error(f"{field} is given twice")
        if a.ref_attr_name:
            raise ctx.error(f"{field} refers to a function attribute ({short(a.ref_attr_name)!r}); graphc imports "
                            f"graphs, not function bodies")
        expected = types.get(a.name)
        if expected is None:
            continue
        if a.type != expected:
            raise ctx.error(f"{field} must be of type {_ATTR_NAMES.get(expected, expected)}, got "
                            f"{_ATTR_NAMES.get(a.type, a.type)}")
        out[a.name] = _value(ctx, a, expected, field)
    s = schema(node.op_type, ctx.opset_of(domain), domain)
    for name, a in (s.attributes.items() if s is not None else ()):
        if a.required and name not in out:
            raise ctx.error(f"attribute {name!r} is required")
    return out


def _value(ctx: ImportContext, a: Any, kind: int, field: str) -> Any:
    if kind == INT_A:
        return int(a.i)
    if kind == FLOAT_A:
        return float(a.f)
    if kind == INTS_A:
        return [int(v) for v in a.ints]
    if kind == FLOATS_A:
        return [float(v) for v in a.floats]
    if kind in (STRING_A, STRINGS_A):
        try:
            return a.s.decode("utf-8") if kind == STRING_A else [s.decode("utf-8") for s in a.strings]
        except UnicodeDecodeError:
            raise ctx.error(f"{field} is not valid UTF-8 text") from None
    if kind == TENSOR_A:
        return a.t
    if kind == SPARSE_TENSOR_A:
        return a.sparse_tensor
    if kind == GRAPH_A:
        return a.g
    return None


# ----------------------------------------------------------------------------- range checks
def rank_of(ctx: ImportContext, t: Any, field: str = "input 0") -> int:
    """The rank of `t`, which must be known."""
    if t.shape is None:
        raise ctx.error(f"{field} must have a known rank")
    return len(t.shape)


def axis(ctx: ImportContext, value: int, rank: int, field: str, extra: int = 0) -> int:
    """`value` as an axis of a rank-`rank` tensor (+`extra` for axes of a result that has more
    dims), normalized to be non-negative."""
    n = rank + extra
    if not -n <= value < n:
        raise ctx.error(f"{field} is {short(value)}, outside [{-n}, {n}) for an input of rank {rank}")
    return value % n if n else 0


def axes(ctx: ImportContext, values: Iterable[int], rank: int, field: str, extra: int = 0) -> list[int]:
    """Distinct axes, normalized."""
    out = [axis(ctx, int(v), rank, field, extra) for v in values]
    if len(set(out)) != len(out):
        raise ctx.error(f"{field} names an axis twice: {short(list(values))}")
    return out


def ints(ctx: ImportContext, values: Sequence[int], field: str, count: int | None = None, lo: int | None = None,
         hi: int | None = None) -> list[int]:
    """A list of ints of length `count` (if given), each within [lo, hi]."""
    values = [int(v) for v in values]
    if count is not None and len(values) != count:
        raise ctx.error(f"{field} has {len(values)} values, expected {count}: {short(values)}")
    for v in values:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f">= {lo}" if hi is None else f"<= {hi}" if lo is None else f"in [{lo}, {hi}]"
            raise ctx.error(f"{field} has {short(v)}; each value must be {rng}: {short(values)}")
    return values


def one_of(ctx: ImportContext, value: Any, field: str, options: Sequence[Any]) -> Any:
    if value not in options:
        raise ctx.error(f"{field} is {short(value)!r}, not one of {', '.join(map(repr, options))}")
    return value


def permutation(ctx: ImportContext, perm: Sequence[int], rank: int, field: str) -> list[int]:
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(rank)):
        raise ctx.error(f"{field} is {short(perm)}, not a permutation of the {rank} axes of the input")
    return perm


def scalar(ctx: ImportContext, value: Any, field: str) -> Any:
    """The one element of a static value (ONNX scalars may come as shape () or (1,))."""
    import numpy as np

    arr = np.asarray(value).reshape(-1)
    if arr.size != 1:
        raise ctx.error(f"{field} must hold one value, got {arr.size}")
    return arr[0]


def known_shape(ctx: ImportContext, t: Any, field: str) -> tuple[int, ...]:
    if t.shape is None or any(d is None for d in t.shape):
        raise ctx.error(f"{field} must have a known shape")
    return tuple(t.shape)


# ----------------------------------------------------------------------------- sub-graphs
MAX_SUBGRAPH_DEPTH = 16          # Loop / Scan / If bodies nested in each other
MAX_SUBGRAPH_NODES = 100_000     # nodes, inputs, outputs and initializers of all sub-graphs of a model


def check_subgraph(ctx: ImportContext, g: Any, field: str, n_inputs: int | None, n_outputs: int | None = None,
                   min_outputs: int = 0) -> None:
    """A sub-graph attribute (`field`) is safe to import: nested at most MAX_SUBGRAPH_DEPTH deep,
    within the model's budget of sub-graph entries, with the inputs and outputs its op calls it
    with, tensor-typed, and no sparse initializers. Why a bound on depth and size: a sub-graph is
    imported by recursion, and a model built in memory may nest bodies thousands deep or hold
    millions of nodes; both are refused before any work instead of exhausting the stack or
    the time of the caller."""
    if ctx.depth >= MAX_SUBGRAPH_DEPTH:
        raise ctx.error(f"attribute {field!r}: sub-graphs nest more than {MAX_SUBGRAPH_DEPTH} deep")
    size = len(g.node) + len(g.input) + len(g.output) + len(g.initializer)
    ctx.subgraph_nodes += size
    if ctx.subgraph_nodes > MAX_SUBGRAPH_NODES:
        raise ctx.error(f"attribute {field!r}: the model's sub-graphs hold more than {MAX_SUBGRAPH_NODES} nodes, "
                        f"inputs, outputs and initializers in all (this one {size})")
    if len(g.sparse_initializer):
        raise ctx.error(f"attribute {field!r}: sparse initializers are not supported")
    if n_inputs is not None and len(g.input) != n_inputs:
        raise ctx.error(f"attribute {field!r} takes {len(g.input)} inputs; {ctx.node.op_type} passes it {n_inputs}")
    m = len(g.output)
    if (n_outputs is not None and m != n_outputs) or m < min_outputs:
        want = n_outputs if n_outputs is not None else f"at least {min_outputs}"
        raise ctx.error(f"attribute {field!r} has {m} outputs; {ctx.node.op_type} needs {want}")
    for kind, infos in (("input", g.input), ("output", g.output)):
        for k, vi in enumerate(infos):
            if not vi.name:
                raise ctx.error(f"attribute {field!r}: {kind} {k} has an empty name")
            if vi.HasField("type") and not vi.type.HasField("tensor_type"):
                kind_of = (vi.type.WhichOneof("value") or "untyped").replace("_type", "")
                raise ctx.error(f"attribute {field!r}: {kind} {k} {short(vi.name)!r} is of ONNX type {kind_of}; "
                                f"graphc values are tensors, ONNX sequences, maps and optionals have no graphc form")

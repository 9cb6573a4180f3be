"""Import rules for ONNX's control flow: Loop, Scan and If become graphc While and If nodes.

An ONNX sub-graph (a `body`, a `then_branch`) is imported node by node, by the same driver and
rules as the main graph, into a FuncGraph (graphc/ir/function.py) traced like gc.while_loop's
body (api/control_flow.py's _trace / _functions). ONNX sub-graphs may use any value of an
enclosing graph by name; SubgraphEnv resolves such a name on first use: a value known while
building becomes a constant of the sub-graph (so shapes inside the body stay static), any other
one is captured, i.e. becomes an extra input of the While / If node.

Semantics, exactly as ONNX defines them:
- Loop(M, cond, v...) with body(i, cond_in, v...) -> (cond_out, v..., scan...): a While with
  trip count M (or no limit) carrying the condition as a bool loop value, and a `cond` Function
  returning it (checked before each iteration, like ONNX's cond before the first iteration and
  cond_out after each). Without a cond input, cond_out is ignored (the ONNX spec's for-loop form;
  onnxruntime instead stops on it). A loop that can stop only by its count is a counted While.
- Scan stacked outputs have as many rows as iterations ran; graphc compiles for static shapes,
  so a Loop with scan outputs needs M known while building and a condition that cannot end it
  early (constant, or passed through unchanged); otherwise a clear GraphFileError.
- Scan (opset 9+): a counted While over the scan inputs (moved to axis 0 and reversed as
  scan_input_axes / directions say), outputs moved and reversed back. Scan-8's batch axis is an
  outer While over the batch around the same loop.
- If with a condition known while building imports only the taken branch, inline; otherwise
  an If node (both branches must give the same dtypes, and the same shapes where known).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...api import array as array_ops
from ...api import math as math_ops
from ...api.control_flow import _functions, _trace
from ...api.convert import apply_op
from ...ir.dtypes import bool_, int64
from ...ir.graph import Graph, get_default_graph
from ...ir.shapes import compatible, format_shape
from ...ir.tensor import Tensor
from ...ops.loops import NO_LIMIT, static_trip
from .checks import axis as check_axis
from .checks import check_subgraph, ints
from .common import graphc_type
from .files import short
from .import_rules import ImportContext, rule, sanitize


class SubgraphEnv(dict):
    """The ONNX names a sub-graph sees: its own values, and those of the enclosing graphs,
    brought into the sub-graph's graph the first time they are used. `name in env` is true for
    an enclosing graph's name too, so a sub-graph cannot define a name again (ONNX forbids
    shadowing)."""

    def __init__(self, ctx: ImportContext, parent: dict, graph: Graph) -> None:
        super().__init__()
        self.ctx, self.parent, self.graph = ctx, parent, graph

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.parent

    def __getitem__(self, name: str) -> Tensor:
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        t = bring_in(self.ctx, self.graph, self.parent[name])
        dict.__setitem__(self, name, t)
        return t


def bring_in(ctx: ImportContext, graph: Graph, t: Tensor) -> Tensor:
    """`t` (of an enclosing graph) as a tensor of `graph`: a constant when its value is known
    while building, else captured (graph is then a FuncGraph)."""
    if t.node.graph is graph:
        return t
    if t.static_value is not None:
        with graph.as_default():
            return ctx.constant(t.static_value)
    return graph.capture(t)  # type: ignore[attr-defined]


def run_subgraph(ctx: ImportContext, g: Any, field: str, graph: Graph, args: list[Tensor]) -> list[Tensor]:
    """Import the nodes of sub-graph `g` (attribute `field` of the current node) into `graph`,
    its inputs bound to `args`; returns its outputs. The context is restored afterwards, also on
    errors, so the enclosing node's errors still name it."""
    from .importer import _convert, _define  # the driver imports this module: imported here, not above

    path = f"{ctx.where()}, attribute {field!r}"
    saved = (ctx.graph, ctx.env, ctx.node, ctx.index, ctx.path)
    ctx.graph, ctx.env, ctx.node, ctx.index, ctx.path = graph, SubgraphEnv(ctx, ctx.env, graph), None, None, path
    ctx.depth += 1
    try:
        with graph.as_default():
            for k, init in enumerate(g.initializer):
                what = f"{path}: initializer {k} {short(init.name)!r}"
                _define(ctx, init.name, what)
                ctx.env[init.name] = ctx.constant(ctx.tensor(init, f"initializer {k} {short(init.name)!r}"))
            for k, (vi, t) in enumerate(zip(g.input, args)):
                what = f"{path}: input {k} {short(vi.name)!r}"
                _define(ctx, vi.name, what)
                _check_declared(ctx, vi, t, what)
                ctx.env[vi.name] = t
            for index, node in enumerate(g.node):
                _convert(ctx, index, node)
            out = []
            for k, vo in enumerate(g.output):
                if vo.name not in ctx.env:
                    raise ctx.error(f"output {k} {short(vo.name)!r} is not computed by any node")
                out.append(ctx.env[vo.name])
            return out
    finally:
        ctx.graph, ctx.env, ctx.node, ctx.index, ctx.path = saved
        ctx.depth -= 1


def _check_declared(ctx: ImportContext, vi: Any, t: Tensor, what: str) -> None:
    """A sub-graph input's declared element type and known dims must fit the value passed."""
    if not vi.type.HasField("tensor_type"):
        return
    tt = vi.type.tensor_type
    if tt.elem_type:
        dtype = graphc_type(tt.elem_type, what)
        if dtype is not t.dtype:
            raise ctx.error(f"input {short(vi.name)!r} is declared {dtype.name}, but the value passed is {t.dtype.name}")
    if tt.HasField("shape") and t.shape is not None:
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        if not compatible(dims, t.shape):
            raise ctx.error(f"input {short(vi.name)!r} is declared of shape {format_shape(dims)}, but the value "
                            f"passed has shape {format_shape(t.shape)}")


def _scalar(ctx: ImportContext, t: Tensor, what: str) -> Tensor:
    """A one-element input (ONNX allows shape () or [1]) as a scalar."""
    if t.shape == ():
        return t
    if t.shape is not None and all(d is not None for d in t.shape) and int(np.prod(t.shape)) != 1:
        raise ctx.error(f"{what} must hold one value, got shape {format_shape(t.shape)}")
    return array_ops.reshape(t, [])


def _passes_through(t: Tensor, arg: Tensor) -> bool:
    """t is `arg` (through Identity nodes) or the constant True: a condition that never changes."""
    while t.node.type == "Identity" and t is not arg:
        t = t.node.inputs[0]
    return t is arg or (t.static_value is not None and t.static_value.size == 1 and bool(t.static_value.reshape(())))


def _check_carries(ctx: ImportContext, g: Any, args: list[Tensor], results: list[Tensor], first: int) -> None:
    """The body returns each loop-carried value with its dtype and shape (graphc loops keep them)."""
    for k, (a, r) in enumerate(zip(args, results)):
        name = short(g.output[first + k].name)
        if r.dtype is not a.dtype:
            raise ctx.error(f"attribute 'body': output {first + k} {name!r} is {r.dtype.name}, but the loop-carried "
                            f"value it updates is {a.dtype.name}")
        if not compatible(a.shape, r.shape) or (a.shape is not None and r.shape is None):
            raise ctx.error(f"attribute 'body': output {first + k} {name!r} has shape {format_shape(r.shape)}, but "
                            f"the loop-carried value it updates has shape {format_shape(a.shape)}; graphc loops keep "
                            f"the shape of each carried value")


def _label(vi: Any, fallback: str) -> str:
    return sanitize(vi.name, fallback)


# ----------------------------------------------------------------------------- Loop
@rule("Loop", static=(0, 1))
def _loop(ctx, node, ins, attrs):
    body = attrs["body"]
    m, cond, initial = ins[0], ins[1], list(ins[2:])
    n = len(initial)
    check_subgraph(ctx, body, "body", 2 + n, min_outputs=1 + n)
    k = len(body.output) - 1 - n
    if len(node.output) != n + k:
        raise ctx.error(f"has {len(node.output)} outputs; its body returns {n} loop-carried values and {k} scan "
                        f"outputs, so it has {n + k}")
    if m is None and cond is None:
        raise ctx.error("has neither a trip count (input 0, 'M') nor a condition (input 1, 'cond'): it never ends")
    trip = _scalar(ctx, m, "input 0 ('M')") if m is not None else ctx.constant(np.int64(NO_LIMIT))
    c0 = _scalar(ctx, cond, "input 1 ('cond')") if cond is not None else ctx.constant(np.True_)
    name = sanitize(node.name or "Loop", "Loop")
    specs = ([(int64, (), _label(body.input[0], "iteration")), (bool_, (), _label(body.input[1], "cond"))]
             + [(t.dtype, t.shape, _label(vi, "v")) for t, vi in zip(initial, body.input[2:])])

    def trace_body(args: list[Tensor]) -> list[Tensor]:
        results = run_subgraph(ctx, body, "body", args[0].graph, args)
        c = results[0]
        if c.dtype is not bool_:
            raise ctx.error(f"attribute 'body': output 0 (the condition) is {c.dtype.name}, not bool")
        return [_scalar(ctx, c, "attribute 'body': output 0 (the condition)")] + results[1:]

    body_tr = _trace(ctx.graph, f"{name}/body", specs, trace_body)
    _check_carries(ctx, body, body_tr.args[2:], body_tr.results[1:1 + n], 1)
    c_static = None if c0.static_value is None else bool(c0.static_value)
    use_cond = False
    if c_static is False:
        trip = ctx.constant(np.int64(0))   # the condition is false before the first iteration
    elif cond is not None and not (c_static and _passes_through(body_tr.results[0], body_tr.args[1])):
        use_cond = True   # without a cond input, the spec ignores cond_out (a for loop)
    if not use_cond and m is None and c_static is not False:
        raise ctx.error("its condition is always true and it has no trip count (input 0, 'M'): it never ends")
    if k and use_cond:
        raise ctx.error(f"has {k} scan output(s), whose number of rows is the number of iterations run, which its "
                        f"condition decides at run time; graphc compiles for static shapes, so a Loop with scan "
                        f"outputs needs a condition that is constant or passed through unchanged")
    if k and static_trip(trip) is None:
        raise ctx.error(f"has {k} scan output(s), whose number of rows is the trip count; graphc compiles for static "
                        f"shapes, so input 0 ('M') must be known while building (a constant, an initializer or a "
                        f"value computed from shapes)")
    traced = [body_tr]
    if use_cond:
        traced.append(_trace(ctx.graph, f"{name}/cond", specs, lambda args: [args[1]]))
    functions, captures = _functions(traced)
    loop = apply_op("While", [trip, c0, *initial, *captures],
                    {"cond": functions[1] if use_cond else None, "body": functions[0], "n_carries": 1 + n},
                    "While", graph=ctx.graph)
    return list(loop.outputs[1:1 + n + k])


# ----------------------------------------------------------------------------- Scan
@rule("Scan")
def _scan(ctx, node, ins, attrs):
    body = attrs["body"]
    m = int(attrs["num_scan_inputs"])
    if ctx.opset < 9:
        lens, values = ins[0], list(ins[1:])
    else:
        lens, values = None, list(ins)
    if not 1 <= m <= len(values):
        raise ctx.error(f"attribute 'num_scan_inputs' is {m}; it must be in [1, {len(values)}] (the node has "
                        f"{len(values)} state and scan inputs)")
    n = len(values) - m
    check_subgraph(ctx, body, "body", n + m, min_outputs=n)
    k = len(body.output) - n
    if len(node.output) != n + k:
        raise ctx.error(f"has {len(node.output)} outputs; its body returns {n} states and {k} scan outputs, so "
                        f"it has {n + k}")
    states, scans = values[:n], values[n:]
    if ctx.opset >= 9:
        return _scan_loop(ctx, node, body, states, scans, attrs)
    return _scan8(ctx, node, body, states, scans, lens, attrs)


def _directions(ctx: ImportContext, attrs: dict, key: str, count: int) -> list[int]:
    return ints(ctx, attrs.get(key, [0] * count), f"attribute {key!r}", count=count, lo=0, hi=1)


def _scan_loop(ctx: ImportContext, node: Any, body: Any, states: list[Tensor], scans: list[Tensor],
               attrs: dict, batch_dims: int = 0) -> list[Tensor]:
    """Scan-9+ in ctx.graph: a counted While walking the scan inputs along their scan axes."""
    n, m, k = len(states), len(scans), len(body.output) - len(states)
    in_axes = ints(ctx, attrs.get("scan_input_axes", [0] * m), "attribute 'scan_input_axes'", count=m)
    in_dirs = _directions(ctx, attrs, "scan_input_directions" if ctx.opset >= 9 else "directions", m)
    out_axes = ints(ctx, attrs.get("scan_output_axes", [0] * k), "attribute 'scan_output_axes'", count=k)
    out_dirs = _directions(ctx, attrs, "scan_output_directions", k)
    sequences = []
    for j, (x, a, d) in enumerate(zip(scans, in_axes, in_dirs)):
        field = f"scan input {j}"
        if x.shape is None:
            raise ctx.error(f"{field} must have a known rank")
        a = check_axis(ctx, a, len(x.shape), f"attribute 'scan_input_axes' for {field}")
        if a:
            x = array_ops.transpose(x, [a] + [i for i in range(len(x.shape)) if i != a])
        sequences.append(array_ops.getitem(x, slice(None, None, -1)) if d else x)
    lengths = {q.shape[0] for q in sequences if q.shape[0] is not None}
    if len(lengths) > 1:
        raise ctx.error(f"its scan inputs have different lengths along their scan axes: {sorted(lengths)}")
    name = sanitize(node.name or "Scan", "Scan")
    specs = ([(int64, (), "iteration")] + [(t.dtype, t.shape, _label(vi, "state")) for t, vi in zip(states, body.input)]
             + [(q.dtype, q.shape[1:], _label(vi, "slice")) for q, vi in zip(sequences, body.input[n:])])
    body_tr = _trace(ctx.graph, f"{name}/body", specs, lambda args: run_subgraph(ctx, body, "body", args[0].graph,
                                                                                   args[1:]))
    _check_carries(ctx, body, body_tr.args[1:1 + n], body_tr.results[:n], 0)
    (body_fn,), captures = _functions([body_tr])
    loop = apply_op("While", [ctx.constant(np.int64(NO_LIMIT)), *states, *sequences, *captures],
                    {"cond": None, "body": body_fn, "n_carries": n, "n_sequences": m}, "While", graph=ctx.graph)
    out = list(loop.outputs[:n])
    for j, (y, a, d) in enumerate(zip(loop.outputs[n:n + k], out_axes, out_dirs)):
        if d:
            y = array_ops.getitem(y, slice(None, None, -1))
        if y.shape is None:
            raise ctx.error(f"scan output {j} must have a known rank")
        a = check_axis(ctx, a, len(y.shape), f"attribute 'scan_output_axes' for scan output {j}")
        if a:
            rest = list(range(1, len(y.shape)))
            y = array_ops.transpose(y, rest[:a] + [0] + rest[a:])
        out.append(y)
    return out


def _scan8(ctx: ImportContext, node: Any, body: Any, states: list[Tensor], scans: list[Tensor], lens: Tensor | None,
           attrs: dict) -> list[Tensor]:
    """Scan-8: every input has a leading batch axis (scan inputs [batch, sequence, ...]), the
    body sees one batch entry. An outer While over the batch runs the Scan-9 loop per entry;
    sequence_lens, when given, must be known and equal to the full length (no padding)."""
    values = states + scans
    for j, x in enumerate(values):
        if x.shape is None or len(x.shape) < (2 if j >= len(states) else 1):
            raise ctx.error(f"input {j + 1} needs a known rank with a batch axis (and a sequence axis for scan inputs)")
    if lens is not None:
        given = ctx.static_ints(lens, "input 0 ('sequence_lens')")
        full = {q.shape[1] for q in scans}
        if len(full) != 1 or None in full or any(v != next(iter(full)) for v in given):
            raise ctx.error("input 0 ('sequence_lens') gives lengths other than the full sequence length; graphc "
                            "imports Scan-8 only with full-length sequences")
    n = len(states)
    name = sanitize(node.name or "Scan", "Scan")
    specs = [(int64, (), "batch_entry")] + [(t.dtype, t.shape[1:], f"entry_{j}") for j, t in enumerate(values)]

    def per_entry(args: list[Tensor]) -> list[Tensor]:
        saved = ctx.graph
        ctx.graph = args[0].graph
        try:
            return _scan_loop(ctx, node, body, args[1:1 + n], args[1 + n:], attrs)
        finally:
            ctx.graph = saved

    outer_tr = _trace(ctx.graph, f"{name}/batch", specs, per_entry)
    (outer_fn,), captures = _functions([outer_tr])
    loop = apply_op("While", [ctx.constant(np.int64(NO_LIMIT)), *values, *captures],
                    {"cond": None, "body": outer_fn, "n_carries": 0, "n_sequences": len(values)}, "While",
                    graph=ctx.graph)
    return list(loop.outputs[:len(outer_tr.results)])


# ----------------------------------------------------------------------------- If
@rule("If")
def _if(ctx, node, ins, attrs):
    pred = _scalar(ctx, ins[0], "input 0 ('cond')")
    branches = (("then_branch", attrs["then_branch"]), ("else_branch", attrs["else_branch"]))
    for field, g in branches:
        check_subgraph(ctx, g, field, 0, n_outputs=len(node.output))
    if pred.static_value is not None:   # known while building: the taken branch, inline
        field, g = branches[0] if bool(pred.static_value) else branches[1]
        return run_subgraph(ctx, g, field, ctx.graph, [])
    name = sanitize(node.name or "If", "If")

    def branch(field: str, g: Any) -> Any:   # a branch takes no arguments: it is traced into the default graph
        return lambda args: run_subgraph(ctx, g, field, get_default_graph(), [])

    traced = [_trace(ctx.graph, f"{name}/{field}", [], branch(field, g)) for field, g in branches]
    for j, (a, b) in enumerate(zip(traced[0].results, traced[1].results)):
        if a.dtype is not b.dtype:
            raise ctx.error(f"its branches return output {j} as {a.dtype.name} and {b.dtype.name}")
        known = a.shape is not None and b.shape is not None and None not in a.shape and None not in b.shape
        if known and tuple(a.shape) != tuple(b.shape):
            raise ctx.error(f"its branches return output {j} with shapes {format_shape(a.shape)} and "
                            f"{format_shape(b.shape)}; graphc compiles for static shapes, so the branches of an If "
                            f"decided at run time must agree")
    (then_fn, else_fn), captures = _functions(traced)
    branch = apply_op("If", [pred, *captures], {"then_branch": then_fn, "else_branch": else_fn}, "If", graph=ctx.graph)
    return list(branch.outputs)



# ----------------------------------------------------------------------------- slices at run-time offsets
_AFFINE_DEPTH = 32   # nodes looked through to find a slice bound's base


def _affine(t: Tensor) -> tuple[Tensor | None, np.ndarray] | None:
    """t as base + offsets (flat int64, the base None for a constant), looking through reshapes,
    integer casts and additions of constants; None when t is not of that form."""
    offset = np.zeros(1, np.int64)
    for _ in range(_AFFINE_DEPTH):
        if offset is None:
            return None
        if t.static_value is not None:
            value = _plus(offset, t.static_value.reshape(-1).astype(np.int64)) if t.dtype.is_integer else None
            return None if value is None else (None, value)
        node = t.node
        if node.type in ("Identity", "Reshape", "ExpandDims", "Squeeze") or (
                node.type == "Cast" and t.dtype.is_integer and node.inputs[0].dtype.is_integer):
            t = node.inputs[0]
        elif node.type in ("Add", "Sub") and node.inputs[1].static_value is not None and node.inputs[1].dtype.is_integer:
            step = node.inputs[1].static_value.reshape(-1).astype(np.int64)
            offset, t = _plus(offset, step if node.type == "Add" else -step), node.inputs[0]
        elif node.type == "Add" and node.inputs[0].static_value is not None and node.inputs[0].dtype.is_integer:
            offset, t = _plus(offset, node.inputs[0].static_value.reshape(-1).astype(np.int64)), node.inputs[1]
        else:
            return (t, offset) if t.dtype.is_integer else None
    return None


def _plus(offset: np.ndarray | None, step: np.ndarray) -> np.ndarray | None:
    if offset is None or (len(offset) != 1 and len(step) not in (1, len(offset))):
        return None
    return offset + step


def dynamic_slice(ctx: ImportContext, x: Tensor, starts: Tensor, ends: Tensor, axes: list[int] | None,
                  steps: list[int] | None) -> Tensor | None:
    """An ONNX Slice whose starts and ends are computed at run time (in a Loop body, from the
    iteration number: x[i:i+1]) but whose length is known while building, because ends are
    starts plus constants; as a gather of the rows start + range(length). None when the slice
    is not of that form. Where ONNX would clamp a bound past the axis, graphc's gather raises
    at run time instead (the result would have another shape than the one compiled for)."""
    s, e = _affine(starts), _affine(ends)
    if s is None or e is None or s[0] is None or s[0] is not e[0] or x.shape is None:
        return None
    base, (off_s, off_e) = s[0], (s[1], e[1])
    count = max(len(off_s), len(off_e))
    if base.shape is None or None in base.shape or int(np.prod(base.shape)) not in (1, count):
        return None
    if any(len(o) not in (1, count) for o in (off_s, off_e)):
        return None
    axes = list(range(count)) if axes is None else axes
    if len(axes) != count or (steps is not None and list(steps) != [1] * count):
        return None
    flat = array_ops.reshape(base, [-1])
    for j, (a, lo, hi) in enumerate(zip(axes, np.broadcast_to(off_s, count), np.broadcast_to(off_e, count))):
        a = check_axis(ctx, a, len(x.shape), "the axes of the slice")
        dim, length = x.shape[a], max(int(hi) - int(lo), 0)
        if dim is None or length > dim:
            return None
        first = math_ops.cast(array_ops.getitem(flat, j if flat.shape[0] > 1 else 0), int64)
        first = math_ops.add(first, ctx.constant(np.int64(lo)))
        first = math_ops.where(math_ops.less(first, ctx.constant(np.int64(0))),
                               math_ops.add(first, ctx.constant(np.int64(dim))), first)
        x = array_ops.gather(x, math_ops.add(first, ctx.constant(np.arange(length, dtype=np.int64))), axis=a)
    return x


@rule("ai.onnx.preview.training.Gradient")
def _gradient(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    """ai.onnx.preview.training's Gradient: d y / d x for each named input x, built by graphc's
    own reverse-mode differentiation (gc.gradients; the seed is ones, as ONNX defines)."""
    from ...autodiff import gradients

    xs = [x.decode() if isinstance(x, bytes) else x for x in attrs.get("xs", [])]
    y_name = attrs.get("y")
    y_name = y_name.decode() if isinstance(y_name, bytes) else y_name
    if not xs or not y_name:
        raise ctx.error("Gradient needs the attributes 'xs' (what to differentiate by) and 'y' (what)")
    if y_name not in ctx.env:
        raise ctx.error(f"attribute 'y' names {y_name!r}, which no earlier node computes")
    missing = [x for x in xs if x not in ctx.env]
    if missing:
        raise ctx.error(f"attribute 'xs' names {missing}, which are not values of the graph")
    if len(node.output) != len(xs):
        raise ctx.error(f"Gradient has {len(node.output)} outputs for {len(xs)} names in 'xs'")
    return gradients(ctx.env[y_name], [ctx.env[x] for x in xs], unconnected_gradients="zero")

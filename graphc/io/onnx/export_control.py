"""Export rules for loops and branches: graphc While -> ONNX Loop, If -> ONNX If.

A Function's graph is exported into its own GraphProto (export_rules.ExportContext.subgraph),
its captured arguments bound to the names of the node's capture inputs in the enclosing graph:
ONNX sub-graphs use enclosing values by name, so captures need no inputs of their own.

While -> Loop keeps graphc's meaning (graphc/ops/loops.py) exactly:
- the trip count is T = min(trip, length of each sequence), computed before the loop; the body
  takes the slices of the sequences itself (Gather at i, or T - 1 - i with reverse);
- graphc checks `cond` before every iteration, ONNX checks its cond input before the first and
  the body's cond output before the others. So the initial cond is cond(0, ...) and the body's
  cond output is cond(i + 1, new values, ...), each inside an If that yields false past T
  instead (the slices at T do not exist): the same calls, in the same order, as graphc makes;
- the iteration count output is an extra loop-carried int64 (i + 1 after each iteration);
- stacked values are ONNX scan outputs, reversed back with reverse and padded with zero rows to
  graphc's capacity when the loop can run fewer iterations than that (a cond, or a trip count
  only known at run time below the sequences' length); `history` stacks the carries an
  iteration started from as more scan outputs.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...ir.dtypes import bool_, int64
from ...ir.function import Function
from ...ir.node import Node
from ...ops.loops import static_trip
from .common import onnx_type
from .export_rules import ExportContext, data_ancestors, rule

INT64_MIN = np.iinfo(np.int64).min


def with_subgraph_nodes(nodes: Sequence[Node]) -> list[Node]:
    """`nodes` and the nodes of their sub-graphs at any depth (to find the variables a model
    reads, which are frozen into initializers)."""
    out, stack = [], list(nodes)
    while stack:
        n = stack.pop()
        out.append(n)
        for key in getattr(n.op, "functions", ()):
            fn = n.attrs.get(key)
            if fn is not None:
                stack.extend(data_ancestors(fn.results, set(fn.args)))
    return out


def _body(sub: ExportContext, fn: Function, bound: Sequence[str]) -> list[str]:
    """Export the nodes of `fn` into `sub` with its arguments bound to `bound`; its result names."""
    sub.names.update(zip(fn.args, bound))
    sub.convert(data_ancestors(fn.results, set(fn.args)))
    return [sub.names[t] for t in fn.results]


def _graph(sub: ExportContext, name: str, inputs: list[Any], outputs: Sequence[tuple[str, Any, Any]]) -> Any:
    """The GraphProto of `sub`: each output (value name, dtype, shape) gets its own Identity,
    so sub-graph outputs are values of the sub-graph (not its inputs, nor enclosing values)."""
    infos = []
    for value, dtype, shape in outputs:
        final = sub.fresh(f"{name}/out")
        sub.nodes.append(sub.helper.make_node("Identity", [value], [final], name=sub.fresh(f"{name}/out#")))
        infos.append(sub.helper.make_tensor_value_info(final, onnx_type(dtype), None if shape is None else list(shape)))
    return sub.helper.make_graph(sub.nodes, sub.fresh(name), inputs, infos)


def _const_graph(ctx: ExportContext, name: str, value: bool) -> Any:
    sub = ctx.subgraph()
    out = sub.op("Constant", [], value=sub.onnx.numpy_helper.from_array(np.array(value)))
    return _graph(sub, name, [], [(out, bool_, ())])


def _cond_at(ctx: ExportContext, node: Node, i: str, total: str, carries: Sequence[str], sequences: Sequence[str],
             captures: Sequence[str]) -> str:
    """cond(i, carries, slices at i, captures) where i < total, else false: an ONNX If."""
    cond: Function = node.attrs["cond"]
    sub = ctx.subgraph()
    slices = [sub.op("Gather", [q, i], axis=0) for q in sequences]
    (c,) = _body(sub, cond, [i, *carries, *slices, *captures])
    then = _graph(sub, f"{node.name}/cond", [], [(c, bool_, ())])
    guard = ctx.op("Less", [i, total])
    return ctx.op("If", [guard], then_branch=then, else_branch=_const_graph(ctx, f"{node.name}/past_end", False))


def _length(ctx: ExportContext, q: Any, name: str) -> str:
    """The first dim of sequence `q` as an int64 scalar."""
    if q.shape is not None and q.shape[0] is not None:
        return ctx.const(np.int64(q.shape[0]), hint="length")
    return ctx.op("Gather", [ctx.op("Shape", [name]), ctx.const(np.int64(0), hint="zero")], axis=0)


def _min(ctx: ExportContext, values: list[str]) -> str:
    return values[0] if len(values) == 1 else ctx.op("Min", values)


@rule("While")
def _while(ctx, node):
    attrs = node.attrs
    n, reverse, history = attrs["n_carries"], bool(attrs["reverse"]), bool(attrs["history"])
    body, cond = attrs["body"], attrs["cond"]
    trip_t, carries, seqs, caps = node.op.split(node.inputs, attrs)
    trip = ctx.input(node, 0)
    carry_names, seq_names, cap_names = ([ctx.names[t] for t in ts] for ts in (carries, seqs, caps))
    lengths = [_length(ctx, q, qn) for q, qn in zip(seqs, seq_names)]
    total = _min(ctx, [trip, *lengths])
    zero, one = ctx.const(np.int64(0), hint="zero"), ctx.const(np.int64(1), hint="one")

    sub = ctx.subgraph()
    i, c_in, count_in = (sub.fresh(f"{node.name}/{s}") for s in ("i", "cond_in", "count_in"))
    carry_in = [sub.fresh(f"{node.name}/carry_in") for _ in carries]
    at = sub.op("Sub", [sub.op("Sub", [total, one]), i]) if reverse else i
    slices = [sub.op("Gather", [q, at], axis=0) for q in seq_names]
    results = _body(sub, body, [i, *carry_in, *slices, *cap_names])
    count_out = sub.op("Add", [i, one])
    if cond is not None:
        c_out = _cond_at(sub, node, count_out, total, results[:n], seq_names, cap_names)
    else:
        c_out = sub.op("Identity", [c_in])
    carry_types = [(a.dtype, a.shape) for a in body.args[1:1 + n]]
    stacked_types = [(t.dtype, t.shape) for t in body.results[n:]] + (carry_types if history else [])
    inputs = [sub.helper.make_tensor_value_info(i, onnx_type(int64), []), sub.helper.make_tensor_value_info(c_in, onnx_type(bool_), [])]
    inputs += [sub.helper.make_tensor_value_info(name, onnx_type(d), None if s is None else list(s))
               for name, (d, s) in zip(carry_in, carry_types)]
    inputs.append(sub.helper.make_tensor_value_info(count_in, onnx_type(int64), []))
    outputs = [(c_out, bool_, ())] + [(r, d, s) for r, (d, s) in zip(results[:n], carry_types)]
    outputs.append((count_out, int64, ()))
    outputs += [(r, d, s) for r, (d, s) in zip(results[n:] + (carry_in if history else []), stacked_types)]
    graph = _graph(sub, f"{node.name}/body", inputs, outputs)

    c0 = (_cond_at(ctx, node, zero, total, carry_names, seq_names, cap_names) if cond is not None
          else ctx.const(np.bool_(True), hint="true"))
    n_out = n + 1 + len(stacked_types)
    outs = ctx.op("Loop", [total, c0, *carry_names, zero], n_out=n_out, body=graph)
    outs = [outs] if n_out == 1 else list(outs)
    finals, count, stacked = outs[:n], outs[n], outs[n + 1:]
    rows = _capacity(ctx, node, trip_t, seqs, lengths)
    stacked = [_finish(ctx, node, s, shape, reverse, rows, count) for s, (_, shape) in zip(stacked, stacked_types)]
    k = len(body.results) - n
    return finals + stacked[:k] + [count] + stacked[k:]


def _capacity(ctx: ExportContext, node: Node, trip_t: Any, seqs: list[Any], lengths: list[str]) -> str | None:
    """graphc's number of stacked rows, when the loop may run fewer iterations (else None)."""
    known = static_trip(trip_t)
    if node.attrs["cond"] is None and (trip_t.static_value is not None or not seqs):
        return None   # a counted loop with a constant trip count (or none) runs exactly `capacity` iterations
    bounds = lengths + ([ctx.const(np.int64(known), hint="trip")] if known is not None else [])
    return _min(ctx, bounds) if bounds else None


def _finish(ctx: ExportContext, node: Node, stacked: str, row_shape: Any, reverse: bool, rows: str | None,
            count: str) -> str:
    """An ONNX scan output as graphc stacks it: reversed back, padded with zero rows."""
    if reverse:
        stacked = ctx.op("Slice", [stacked, ctx.ints([-1]), ctx.ints([INT64_MIN]), ctx.ints([0]), ctx.ints([-1])])
    if rows is None:
        return stacked
    if row_shape is None:
        raise ctx.unsupported(node, "padding its stacked values needs their rank, which is unknown")
    rank = len(row_shape) + 1
    missing = ctx.op("Unsqueeze", [ctx.op("Sub", [rows, count]), ctx.ints([0])])
    pads = ctx.op("Concat", [ctx.ints([0] * rank), missing] + ([ctx.ints([0] * (rank - 1))] if rank > 1 else []),
                  axis=0)
    return ctx.op("Pad", [stacked, pads])


@rule("If")
def _if(ctx, node):
    captures = [ctx.input(node, k) for k in range(1, len(node.inputs))]
    branches = {}
    for key in ("then_branch", "else_branch"):
        fn: Function = node.attrs[key]
        sub = ctx.subgraph()
        results = _body(sub, fn, captures)
        branches[key] = _graph(sub, f"{node.name}/{key}", [],
                               [(r, t.dtype, t.shape) for r, t in zip(results, fn.results)])
    n_out = len(node.outputs)
    outs = ctx.op("If", [ctx.input(node, 0)], n_out=n_out, **branches)
    return [outs] if n_out == 1 else list(outs)

"""Loops and branches (TF1 names): gc.while_loop, gc.cond, gc.scan, gc.map_fn, gc.foldl, gc.foldr.

Each traces the user's Python functions once into sub-graphs (graphc.ir.function.FuncGraph)
and adds one node that owns them (While or If, graphc/ops/loops.py), so a loop's graph, its
compile time and its gradient do not grow with the trip count, and the trip count may depend
on fed values. Loop values may be nested structures (lists, tuples, named tuples, dicts).

Theano's scan maps onto these: `sequences` are scan's `elems` (walked along their first axis),
`outputs_info` its `initializer`, `non_sequences` whatever the step function uses from outside
(captured automatically); see the README's "Loops and branches" section.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import DTypeError, GraphcError, ShapeError
from ..ir.dtypes import bool_, int64
from ..ir.function import FuncGraph, Function
from ..ir.graph import Graph, get_default_graph
from ..ir.shapes import as_shape, compatible, format_shape
from ..ir.tensor import Tensor
from ..ops import get_op
from ..ops.loops import NO_LIMIT
from ..source import capture_source
from . import nest
from .array import concat, expand_dims
from .convert import apply_op, constant, convert_to_tensor, elementwise_op, graph_of

_PLACEHOLDER = get_op("Placeholder")


# --------------------------------------------------------------------------- tracing
class _Traced:
    """A function traced into a FuncGraph: its declared arguments and flat results."""

    def __init__(self, graph: FuncGraph, args: list[Tensor], results: list[Tensor], structure: Any) -> None:
        self.graph, self.args, self.results, self.structure = graph, args, results, structure


# Odd, so counter * DRAW_MIX + i + 1 gives each (run, iteration) its own counter (int64 wraps).
DRAW_MIX = -7046029254386353131   # 0x9E3779B97F4A7C15 as a signed 64-bit integer


def _draw_counter(fg: FuncGraph) -> Tensor:
    """The counter input of random draws inside `fg`: the enclosing body's counter (or, at the
    top, a RunCounter of the outer graph that the session advances per run), mixed with this
    loop body's iteration index."""
    if fg.draw_counter is None:
        outer = fg.outer
        if isinstance(outer, FuncGraph) and outer.draws is not None:
            base = _draw_counter(outer)
        else:
            base = outer.create_node(get_op("RunCounter"), [], {}, f"{fg.name}/draws").outputs[0]
        with fg.as_default():
            counter = fg.capture(base)
            if fg.iteration is not None:
                step = elementwise_op("Add", fg.iteration, constant(1, dtype=int64))
                counter = elementwise_op("Add", elementwise_op("Mul", counter, constant(DRAW_MIX, dtype=int64)), step)
        fg.draw_counter = counter
    return fg.draw_counter


def _draw_in_body(fg: FuncGraph, op: Any, inputs: list[Tensor], attrs: dict[str, Any], name: str | None,
                  kwargs: dict[str, Any]) -> Any:
    """A random draw traced inside a loop body or a branch (FuncGraph.create_node): the same op
    with its counter as an input (see _draw_counter); its shape must be known while building."""
    shape = attrs.get("shape")
    if inputs:
        value = inputs[0].static_value
        if value is None:
            raise GraphcError(f"{op.name} inside '{fg.name}': a random draw inside a loop body or a branch needs a "
                              "shape known while building", hint="give the draw a shape of Python ints")
        shape = tuple(int(d) for d in value.reshape(-1))
    attrs.update(shape=tuple(shape), counter_input=True)
    return fg.create_node(op, [_draw_counter(fg)], attrs, name, **kwargs)


def _trace(outer: Graph, name: str, specs: list[tuple[Any, Any, str]], fn: Callable[[list[Tensor]], Any],
           loop: bool = False) -> _Traced:
    """Call fn on placeholders of `specs` (dtype, shape, name) inside a new FuncGraph; for a
    loop's body or condition (`loop`), the first is the iteration index. Random draws inside
    draw anew each iteration and each run (_draw_in_body)."""
    fg = FuncGraph(outer, name, _PLACEHOLDER)
    fg.draws = _draw_in_body
    with fg.as_default():
        args = [fg.create_node(_PLACEHOLDER, [], {"dtype": d, "shape": s}, label).outputs[0] for d, s, label in specs]
        if loop:
            fg.iteration = args[0]
        structure = fn(args)
        leaves = nest.flatten(structure)
        results = []
        for leaf in leaves:
            t = convert_to_tensor(leaf)
            results.append(fg.resolve_input(t))
    return _Traced(fg, args, results, structure)


def _functions(traced: list[_Traced]) -> tuple[list[Function], list[Tensor]]:
    """Functions taking the declared arguments and then every capture of any of `traced` (so
    all take the same arguments), and the captured outer tensors in that order."""
    union: list[Tensor] = []
    for tr in traced:
        for outer_t, _ in tr.graph.captured_order:
            if not any(outer_t is u for u in union):
                union.append(outer_t)
    functions = []
    for tr in traced:
        mine = {id(o): p for o, p in tr.graph.captured_order}
        extra = []
        for u in union:
            p = mine.get(id(u))
            if p is None:   # used by another function of the node only: an unused argument here
                p = tr.graph.create_node(_PLACEHOLDER, [], {"dtype": u.dtype, "shape": u.shape},
                                         f"captured/{u.node.name}").outputs[0]
            extra.append(p)
        functions.append(Function(tr.graph.name, tr.graph, tr.args + extra, tr.results))
    return functions, union


def _loop_error(kind: type, message: str, name: str, hint: str | None = None) -> GraphcError:
    return kind(message, op_type="While", node_name=name, source=capture_source(2), hint=hint)


def _single(structure: Any) -> bool:
    return isinstance(structure, (list, tuple)) and not hasattr(structure, "_fields")


# --------------------------------------------------------------------------- while_loop
def while_loop(cond: Callable[..., Any], body: Callable[..., Any], loop_vars: Any, shape_invariants: Any = None,
               parallel_iterations: int = 10, back_prop: bool = True, swap_memory: bool = False,
               maximum_iterations: Any = None, name: str | None = None, return_same_structure: bool = False) -> Any:
    """Repeat `body` while `cond` holds: TF1's tf.while_loop.

    `loop_vars` is a tensor or a nested structure of tensors; `cond(*loop_vars)` returns a bool
    scalar and `body(*loop_vars)` the next values in the same structure, dtypes and shapes (a
    dimension may change across iterations only where `shape_invariants` leaves it None). At
    most `maximum_iterations` iterations run. Returns the final values (a single value for a
    one-element list unless return_same_structure)."""
    flat = [convert_to_tensor(v) for v in nest.flatten(loop_vars)]
    graph = graph_of(flat) if flat else get_default_graph()
    with graph.as_default(), graph.name_scope(name or "while") as scope:
        loop_name = scope.rstrip("/")
        invariants = _invariants(flat, loop_vars, shape_invariants, loop_name)
        specs = [(int64, (), "iteration")] + [(t.dtype, s, f"loop_var_{k}") for k, (t, s) in enumerate(zip(flat, invariants))]

        def call(fn: Callable[..., Any], args: list[Tensor]) -> Any:
            packed = nest.pack_sequence_as(loop_vars, args[1:])
            return fn(*packed) if _single(loop_vars) else fn(packed)

        cond_tr = _trace(graph, f"{loop_name}/cond", specs, lambda args: call(cond, args), loop=True)
        body_tr = _trace(graph, f"{loop_name}/body", specs, lambda args: call(body, args), loop=True)
        _check_cond(cond_tr, loop_name)
        returned = body_tr.structure
        if _single(loop_vars) and len(loop_vars) == 1 and not _single(returned):
            returned = [returned]
        try:
            nest.assert_same_structure(loop_vars, returned, "the loop body returns a different structure than loop_vars")
        except GraphcError as err:
            raise _loop_error(ShapeError, err.message, loop_name) from None
        _check_body(body_tr, flat, invariants, loop_name)
        (cond_fn, body_fn), captures = _functions([cond_tr, body_tr])
        trip = _trip_count(maximum_iterations)
        node = apply_op("While", [trip, *flat, *captures],
                        {"cond": cond_fn, "body": body_fn, "n_carries": len(flat)}, "While", graph=graph)
    finals = list(node.outputs[:len(flat)])
    out = nest.pack_sequence_as(loop_vars, finals)
    if _single(loop_vars) and len(loop_vars) == 1 and not return_same_structure:
        return out[0]
    return out


def _invariants(flat: list[Tensor], loop_vars: Any, shape_invariants: Any, loop_name: str) -> list[Any]:
    if shape_invariants is None:
        return [t.shape for t in flat]
    try:
        given = nest.flatten_up_to(loop_vars, shape_invariants)
    except (GraphcError, KeyError, TypeError):
        raise _loop_error(ShapeError, f"shape_invariants {shape_invariants!r} does not match the structure of "
                          f"loop_vars {nest.describe(loop_vars)}", loop_name) from None
    if len(given) != len(flat):
        raise _loop_error(ShapeError, f"shape_invariants has {len(given)} shapes for {len(flat)} loop values", loop_name)
    shapes = []
    for k, (t, s) in enumerate(zip(flat, given)):
        s = as_shape(s)
        if not compatible(s, t.shape):
            raise _loop_error(ShapeError, f"loop value {k} of shape {format_shape(t.shape)} does not fit its shape "
                              f"invariant {format_shape(s)}", loop_name)
        shapes.append(s)
    return shapes


def _check_cond(tr: _Traced, loop_name: str) -> None:
    if len(tr.results) != 1 or tr.results[0].dtype is not bool_ or tr.results[0].shape not in ((), None):
        got = (f"{len(tr.results)} values" if len(tr.results) != 1
               else f"{tr.results[0].dtype.name}{format_shape(tr.results[0].shape)}")
        raise _loop_error(DTypeError, f"the loop condition must return one bool scalar, got {got}", loop_name,
                          hint="compare with gc.less(i, n) or reduce with gc.reduce_any(...)")


def _check_body(tr: _Traced, flat: list[Tensor], invariants: list[Any], loop_name: str) -> None:
    for k, (t, inv, res) in enumerate(zip(flat, invariants, tr.results)):
        if res.dtype is not t.dtype:
            raise _loop_error(DTypeError, f"the loop body turns loop value {k} from {t.dtype.name} into "
                              f"{res.dtype.name}", loop_name, hint="cast it back with gc.cast(...)")
        if not compatible(inv, res.shape) or (inv is not None and res.shape is None):
            raise _loop_error(ShapeError, f"the loop body changes the shape of loop value {k} from "
                              f"{format_shape(inv)} to {format_shape(res.shape)}", loop_name,
                              hint="pass shape_invariants=... with None where the dimension may change")


def _trip_count(maximum_iterations: Any) -> Tensor:
    if maximum_iterations is None:
        return constant(NO_LIMIT, int64)
    t = convert_to_tensor(maximum_iterations)
    if not t.dtype.is_integer or t.shape not in ((), None):
        raise DTypeError(f"maximum_iterations must be an integer scalar, got {t.dtype.name}{format_shape(t.shape)}")
    return t if t.dtype is int64 else apply_op("Cast", [t], {"dtype": int64}).outputs[0]


# --------------------------------------------------------------------------- scan family
def _sequence_loop(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any, reverse: bool, name: str,
                   carry_out: bool, stack_out: bool, stack_fn: Callable[[Any, Any], Any] | None = None) -> tuple[Any, Any]:
    """A counted While walking `elems` (a structure of tensors) along their first axis.
    fn(acc, elem) -> new acc; stacked per-iteration values are the new accs (or stack_fn's)."""
    flat_elems = [convert_to_tensor(e) for e in nest.flatten(elems)]
    if not flat_elems:
        raise GraphcError(f"{name} needs at least one tensor in elems")
    for e in flat_elems:
        if e.shape is not None and len(e.shape) == 0:
            raise ShapeError(f"{name} walks its elems along the first axis; '{e.name}' is a scalar")
    graph = graph_of(flat_elems)
    with graph.as_default(), graph.name_scope(name) as scope:
        loop_name = scope.rstrip("/")
        flat_init = [convert_to_tensor(v) for v in nest.flatten(initializer)] if initializer is not None else []
        specs = [(int64, (), "iteration")]
        specs += [(t.dtype, t.shape, f"acc_{k}") for k, t in enumerate(flat_init)]
        specs += [(e.dtype, None if e.shape is None else e.shape[1:], f"elem_{k}") for k, e in enumerate(flat_elems)]
        n = len(flat_init)

        def step(args: list[Tensor]) -> Any:
            acc = nest.pack_sequence_as(initializer, args[1:1 + n]) if initializer is not None else None
            elem = nest.pack_sequence_as(elems, args[1 + n:])
            new = fn(acc, elem)
            if initializer is not None:
                if _single(initializer) and len(nest.flatten(initializer)) == 1 and not _single(new):
                    new = type(initializer)([new])
                try:
                    nest.assert_same_structure(initializer, new, f"{name}: fn returns a different structure than "
                                               "the initializer")
                except GraphcError as err:
                    raise _loop_error(ShapeError, err.message, loop_name) from None
            stacked = stack_fn(acc, elem) if stack_fn is not None else new
            return [nest.flatten(new) if carry_out else [], nest.flatten(stacked) if stack_out else []]

        tr = _trace(graph, f"{loop_name}/body", specs, step, loop=True)
        if initializer is not None:
            _check_body(tr, flat_init, [t.shape for t in flat_init], loop_name)
        n_carry_results = n if carry_out else 0
        if carry_out and len(tr.results) < n:
            raise _loop_error(ShapeError, "fn returns fewer values than the initializer holds", loop_name)
        (body_fn,), captures = _functions([tr])
        node = apply_op("While", [constant(NO_LIMIT, int64), *flat_init, *flat_elems, *captures],
                        {"cond": None, "body": body_fn, "n_carries": n, "n_sequences": len(flat_elems),
                         "reverse": bool(reverse)}, "While", graph=graph)
    finals = list(node.outputs[:n_carry_results])
    stacked = list(node.outputs[n:len(node.outputs) - 1])
    return finals, stacked


def scan(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None, parallel_iterations: int = 10,
         back_prop: bool = True, swap_memory: bool = False, infer_shape: bool = True, reverse: bool = False,
         name: str | None = None) -> Any:
    """TF1's tf.scan: acc = fn(acc, elem) for each elem along the first axis of `elems` (a
    tensor or structure), returning every acc stacked (same structure as the initializer).
    Without an initializer, the first element is the initial acc (and the first row)."""
    name = name or "scan"
    if initializer is None:
        first = [convert_to_tensor(e) for e in nest.flatten(elems)]
        start = [e[-1] if reverse else e[0] for e in first]
        rest = [e[:-1] if reverse else e[1:] for e in first]
        init = nest.pack_sequence_as(elems, start)
        _, stacked = _sequence_loop(fn, nest.pack_sequence_as(elems, rest), init, reverse, name, True, True)
        joined = [concat([s, expand_dims(a, 0)] if reverse else [expand_dims(a, 0), s], 0)
                  for a, s in zip(start, stacked)]
        return nest.pack_sequence_as(init, joined)
    _, stacked = _sequence_loop(fn, elems, initializer, reverse, name, True, True)
    return nest.pack_sequence_as(initializer, stacked)


def foldl(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None, parallel_iterations: int = 10,
          back_prop: bool = True, swap_memory: bool = False, name: str | None = None, reverse: bool = False) -> Any:
    """TF1's tf.foldl: fn(acc, elem) over the first axis of elems, left to right; the last acc."""
    name = name or ("foldr" if reverse else "foldl")
    if initializer is None:
        first = [convert_to_tensor(e) for e in nest.flatten(elems)]
        initializer = nest.pack_sequence_as(elems, [e[-1] if reverse else e[0] for e in first])
        elems = nest.pack_sequence_as(elems, [e[:-1] if reverse else e[1:] for e in first])
    finals, _ = _sequence_loop(fn, elems, initializer, reverse, name, True, False)
    return nest.pack_sequence_as(initializer, finals)


def foldr(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None, parallel_iterations: int = 10,
          back_prop: bool = True, swap_memory: bool = False, name: str | None = None) -> Any:
    """TF1's tf.foldr: fn(acc, elem) over the first axis of elems, right to left; the last acc."""
    return foldl(fn, elems, initializer, name=name or "foldr", reverse=True)


def map_fn(fn: Callable[[Any], Any], elems: Any, dtype: Any = None, parallel_iterations: int = 10,
           back_prop: bool = True, swap_memory: bool = False, infer_shape: bool = True, name: str | None = None) -> Any:
    """TF1's tf.map_fn: fn applied to each element along the first axis, results stacked.
    (`dtype` is accepted for TF1 compatibility: the result structure is found by tracing fn.)"""
    holder: dict[str, Any] = {}

    def values(acc: Any, elem: Any) -> Any:
        out = fn(elem)
        holder["structure"] = out
        return out

    _, stacked = _sequence_loop(lambda acc, elem: None, elems, None, False, name or "map", False, True, values)
    return nest.pack_sequence_as(holder["structure"], stacked)


# --------------------------------------------------------------------------- cond
def cond(pred: Any, true_fn: Callable[[], Any] | None = None, false_fn: Callable[[], Any] | None = None,
         strict: bool = False, name: str | None = None) -> Any:
    """TF1's tf.cond: true_fn() if pred else false_fn(); only the taken branch runs. Both must
    return the same structure and dtypes (a singleton list is unpacked unless strict)."""
    if true_fn is None or false_fn is None:
        raise GraphcError("cond needs both true_fn and false_fn")
    if isinstance(pred, bool):
        out = true_fn() if pred else false_fn()
        return out
    p = convert_to_tensor(pred)
    graph = graph_of([p])
    with graph.as_default(), graph.name_scope(name or "cond") as scope:
        cond_name = scope.rstrip("/")
        if p.dtype is not bool_ or p.shape not in ((), None):
            raise DTypeError(f"the predicate of cond must be a bool scalar, got {p.dtype.name}{format_shape(p.shape)}",
                             op_type="If", node_name=cond_name, source=capture_source(1),
                             hint="reduce it first, e.g. gc.reduce_all(x > 0)")
        then_tr = _trace(graph, f"{cond_name}/true", [], lambda args: true_fn())
        else_tr = _trace(graph, f"{cond_name}/false", [], lambda args: false_fn())
        try:
            nest.assert_same_structure(then_tr.structure, else_tr.structure,
                                       "the branches of cond return different structures")
        except GraphcError as err:
            raise ShapeError(err.message, op_type="If", node_name=cond_name, source=capture_source(1)) from None
        for k, (a, b) in enumerate(zip(then_tr.results, else_tr.results)):
            if a.dtype is not b.dtype:
                raise DTypeError(f"the branches of cond return {a.dtype.name} and {b.dtype.name} as value {k}",
                                 op_type="If", node_name=cond_name, source=capture_source(1))
        (then_fn, else_fn), captures = _functions([then_tr, else_tr])
        node = apply_op("If", [p, *captures], {"then_branch": then_fn, "else_branch": else_fn}, "If", graph=graph)
    out = nest.pack_sequence_as(then_tr.structure, list(node.outputs))
    if not strict and _single(out) and len(out) == 1:
        return out[0]
    return out


__all__ = ["while_loop", "cond", "scan", "map_fn", "foldl", "foldr"]

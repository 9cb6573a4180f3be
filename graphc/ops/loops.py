"""Loops and branches: nodes that own sub-graphs (graphc.ir.function.Function).

While (one op serves gc.while_loop, gc.scan, map_fn, foldl/foldr and dynamic_rnn; it maps onto
ONNX's Loop and Scan):
    inputs   trip (int64 scalar: at most this many iterations), carries..., sequences...,
             captures...
    attrs    cond: Function(i, *carries, *slices, *captures) -> bool scalar, or None
             body: Function(i, *carries, *slices, *captures) -> (*new carries, *per-iteration values)
             n_carries, n_sequences; reverse (walk the sequences and stack the values from the
             end); history (also output the carries each iteration started from)
    outputs  final carries..., per-iteration values stacked [capacity, ...]..., count (the
             iterations run, int64), then with history the carries, stacked [capacity, ...]
    runs     T = min(trip, length of each sequence); i = 0
             while i < T and cond(i, carries, slices at s(i), captures):
                 carries, values = body(i, carries, slices at s(i), captures)
                 stacked[s(i)] = values; i += 1
             where s(i) = i, or T - 1 - i with reverse (a counted loop: no cond).
The capacity of the stacked values is T when it is known while compiling (a constant trip, or
the sequences' length); rows past the count are zeros.

If:
    inputs   pred (bool scalar), captures...
    attrs    then_branch / else_branch: Function(*captures) -> results (same types)
    outputs  the taken branch's results; only that branch runs.

The backends supply how a Function runs (`run_with(inputs, attrs, call)`, call(function,
arrays) -> arrays); the ops define what the loop and the branch mean, once.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..ir.dtypes import bool_, int64
from ..ir.shapes import compatible, format_shape
from .base import OpDef, register

Call = Callable[[Any, list[np.ndarray]], list[np.ndarray]]
NO_LIMIT = np.iinfo(np.int64).max


def _merge_shape(a: Any, b: Any) -> Any:
    """The most specific shape both fit: equal dims kept, others unknown."""
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def static_trip(trip: Any) -> int | None:
    """The trip count when it is known while building or compiling (and not "no limit")."""
    v = trip.static_value
    if v is None:
        return None
    n = int(v)
    return None if n >= NO_LIMIT else max(n, 0)


class _SubgraphOp(OpDef):
    """Ops owning Functions: never evaluated while building, never folded."""

    functions: tuple[str, ...] = ()

    def static_values(self, node: Any) -> None:
        return None

    def reference(self, inputs: list[np.ndarray], attrs: dict[str, Any]) -> Any:
        raise InvalidArgumentError(f"{self.name} runs only through a backend (it owns sub-graphs)")


@register
class While(_SubgraphOp):
    name = "While"
    arity = None
    attr_defaults = {"cond": None, "body": None, "n_carries": 0, "n_sequences": 0, "reverse": False,
                     "history": False}
    functions = ("cond", "body")

    def split(self, inputs: Sequence[Any], attrs: dict[str, Any]) -> tuple[Any, list[Any], list[Any], list[Any]]:
        """(trip, carries, sequences, captures)."""
        n, m = attrs["n_carries"], attrs["n_sequences"]
        return inputs[0], list(inputs[1:1 + n]), list(inputs[1 + n:1 + n + m]), list(inputs[1 + n + m:])

    def capacity(self, inputs: Sequence[Any], attrs: dict[str, Any]) -> int | None:
        """The rows of the stacked outputs when known while building: a bound on T, the least of
        a known trip count and the sequences' lengths (None when a length is unknown, or when
        nothing bounds the loop)."""
        trip, _, sequences, _ = self.split(inputs, attrs)
        lengths = [q.shape[0] if q.shape is not None else None for q in sequences]
        if any(length is None for length in lengths):
            return None
        known = static_trip(trip)
        bounds = lengths + ([known] if known is not None else [])
        return min(bounds) if bounds else None

    def function_arg_types(self, inputs: Sequence[Any], attrs: dict[str, Any]) -> dict[str, list[tuple[Any, Any]]]:
        """The argument types each Function is called with, from the node's input types."""
        _, carries, sequences, captures = self.split(inputs, attrs)
        types = ([(int64, ())] + [(t.dtype, t.shape) for t in carries]
                 + [(q.dtype, None if q.shape is None else tuple(q.shape[1:])) for q in sequences]
                 + [(t.dtype, t.shape) for t in captures])
        return {"cond": types, "body": types}

    def infer(self, inputs, attrs):
        body, cond, n, m = attrs["body"], attrs["cond"], attrs["n_carries"], attrs["n_sequences"]
        if (body is None or not isinstance(n, int) or not isinstance(m, int) or n < 0 or m < 0
                or len(inputs) < 1 + n + m):
            raise InvalidArgumentError("While needs a body, n_carries >= 0, n_sequences >= 0 and a trip count")
        if attrs["reverse"] and cond is not None:
            raise InvalidArgumentError("a While with reverse=True is a counted loop: it takes no cond")
        trip, carries, sequences, captures = self.split(inputs, attrs)
        if trip.dtype is not int64 or trip.shape not in ((), None):
            raise DTypeError(f"the trip count must be an int64 scalar, got {trip.dtype.name}{format_shape(trip.shape)}")
        for q in sequences:
            if q.shape is not None and len(q.shape) == 0:
                raise ShapeError(f"a sequence the loop walks must have a first axis, got '{q.name}' of shape ()")
        slices = [(q.dtype, None if q.shape is None else tuple(q.shape[1:])) for q in sequences]
        arg_types = [(int64, ())] + [(t.dtype, t.shape) for t in carries] + slices + [(t.dtype, t.shape) for t in captures]
        for fn in (body, cond):
            if fn is not None:
                _check_args(fn, arg_types, n, m)
        results = body.results
        if len(results) < n:
            raise InvalidArgumentError(f"the loop body returns {len(results)} values for {n} loop values")
        for k, (arg, res) in enumerate(zip(body.args[1:1 + n], results[:n])):
            if res.dtype is not arg.dtype:
                raise DTypeError(f"the loop body turns loop value {k} from {arg.dtype.name} into {res.dtype.name}")
            if not compatible(arg.shape, res.shape) or (arg.shape is not None and res.shape is None):
                raise ShapeError(f"the loop body changes the shape of loop value {k} from {format_shape(arg.shape)} "
                                 f"to {format_shape(res.shape)} in one iteration; a loop value keeps one shape while "
                                 "the loop runs (shape_invariants only relaxes the shapes known while building)",
                                 hint="keep a fixed-size buffer and a length in the loop (gc.pad / gc.where), or "
                                      "stack per-step values with gc.scan and join them after the loop")
        if cond is not None:
            c = cond.results[0] if len(cond.results) == 1 else None
            if c is None or c.dtype is not bool_ or c.shape not in ((), None):
                got = "several values" if c is None else f"{c.dtype.name}{format_shape(c.shape)}"
                raise DTypeError(f"the loop condition must return one bool scalar, got {got}")
        capacity = self.capacity(inputs, attrs)
        out = [(a.dtype, a.shape) for a in body.args[1:1 + n]]
        out += [(t.dtype, _stacked(capacity, t.shape)) for t in results[n:]]
        out.append((int64, ()))
        if attrs["history"]:
            out += [(a.dtype, _stacked(capacity, a.shape)) for a in body.args[1:1 + n]]
        return out

    def run_with(self, inputs: list[np.ndarray], attrs: dict[str, Any], call: Call,
                 capacity: int | None = None) -> list[np.ndarray]:
        """Run the loop; `capacity` is self.capacity() of the node (None: as many rows as ran)."""
        n = attrs["n_carries"]
        trip, carries, sequences, captures = self.split(inputs, attrs)
        body, cond = attrs["body"], attrs["cond"]
        limit = min([int(trip)] + [len(q) for q in sequences])
        rows: list[list[np.ndarray]] = [[] for _ in body.results[n:]]
        history: list[list[np.ndarray]] = [[] for _ in range(n)]
        i = 0
        while i < limit:
            at = limit - 1 - i if attrs["reverse"] else i
            args = [np.array(i, np.int64), *carries, *(q[at] for q in sequences), *captures]
            if cond is not None and not bool(call(cond, args)[0]):
                break
            if attrs["history"]:
                for h, c in zip(history, carries):
                    h.append(c)
            results = call(body, args)
            carries = results[:n]
            for r, value in zip(rows, results[n:]):
                r.append(value)
            i += 1
        if capacity is None:
            capacity = i
        out = list(carries)
        out += [_stack(r, capacity, t.dtype.np, _row_shape(t, r), attrs["reverse"], limit) for r, t in zip(rows, body.results[n:])]
        out.append(np.array(i, np.int64))
        if attrs["history"]:
            out += [_stack(h, capacity, a.dtype.np, np.shape(c), attrs["reverse"], limit)
                    for h, a, c in zip(history, body.args[1:1 + n], carries)]
        return out


def _row_shape(t: Any, rows: list[np.ndarray]) -> tuple[int, ...]:
    return np.shape(rows[0]) if rows else tuple(d or 0 for d in (t.shape or ()))


def _stack(rows: list[np.ndarray], capacity: int, dtype: Any, row_shape: tuple[int, ...], reverse: bool,
           limit: int) -> np.ndarray:
    out = np.zeros((capacity, *row_shape), dtype)
    for i, r in enumerate(rows[:capacity]):
        out[limit - 1 - i if reverse else i] = r
    return out


def _stacked(capacity: int | None, shape: Any) -> Any:
    return None if shape is None else (capacity, *shape)


def _check_args(fn: Any, arg_types: list[tuple[Any, Any]], n_carries: int, n_sequences: int) -> None:
    if len(fn.args) != len(arg_types):
        raise InvalidArgumentError(f"'{fn.name}' takes {len(fn.args)} arguments, the loop passes {len(arg_types)}")
    for k, (a, (dtype, shape)) in enumerate(zip(fn.args, arg_types)):
        if a.dtype is not dtype or not compatible(a.shape, shape):
            what = ("the iteration index" if k == 0 else f"loop value {k - 1}" if k <= n_carries
                    else f"an element of sequence {k - 1 - n_carries}" if k <= n_carries + n_sequences
                    else "a captured value")
            raise ShapeError(f"'{fn.name}' expects {what} as {a.dtype.name}{format_shape(a.shape)}, the loop passes "
                             f"{dtype.name}{format_shape(shape)}")


@register
class If(_SubgraphOp):
    name = "If"
    arity = None
    attr_defaults = {"then_branch": None, "else_branch": None}
    functions = ("then_branch", "else_branch")

    def function_arg_types(self, inputs: Sequence[Any], attrs: dict[str, Any]) -> dict[str, list[tuple[Any, Any]]]:
        types = [(t.dtype, t.shape) for t in inputs[1:]]
        return {"then_branch": types, "else_branch": types}

    def infer(self, inputs, attrs):
        then_fn, else_fn = attrs["then_branch"], attrs["else_branch"]
        if then_fn is None or else_fn is None or not inputs:
            raise InvalidArgumentError("If needs a predicate and two branches")
        pred, captures = inputs[0], inputs[1:]
        if pred.dtype is not bool_ or pred.shape not in ((), None):
            raise DTypeError(f"the predicate of cond must be a bool scalar, got {pred.dtype.name}{format_shape(pred.shape)}")
        types = [(t.dtype, t.shape) for t in captures]
        for fn in (then_fn, else_fn):
            if len(fn.args) != len(types) or any(a.dtype is not d or not compatible(a.shape, s)
                                                 for a, (d, s) in zip(fn.args, types)):
                raise InvalidArgumentError(f"branch '{fn.name}' does not take the values cond passes it")
        if len(then_fn.results) != len(else_fn.results):
            raise InvalidArgumentError(f"the branches of cond return {len(then_fn.results)} and "
                                       f"{len(else_fn.results)} values")
        out = []
        for k, (a, b) in enumerate(zip(then_fn.results, else_fn.results)):
            if a.dtype is not b.dtype:
                raise DTypeError(f"the branches of cond return {a.dtype.name} and {b.dtype.name} as value {k}")
            out.append((a.dtype, _merge_shape(a.shape, b.shape)))
        return out

    def run_with(self, inputs: list[np.ndarray], attrs: dict[str, Any], call: Call,
                 capacity: int | None = None) -> list[np.ndarray]:
        branch = attrs["then_branch"] if bool(inputs[0]) else attrs["else_branch"]
        return call(branch, list(inputs[1:]))

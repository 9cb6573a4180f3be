"""gc.function: Theano-style compiled functions on the Session machinery.

`f = gc.function([x, y], out, updates=[(w, w - lr * g)], givens={...})` returns a callable
taking arrays positionally (or by input name). Outputs are computed from the variables' values
before the call; then all updates are stored together, as in Theano. Functions share their
variables as Theano's shared variables are shared: every function built on one graph without
`session=` runs on one session per graph (`f.session`), so a `predict` function built after
`train` sees the trained weights. (A function asking for another backend or pipeline than that
session's gets a session of its own that holds the very same variable store.) A function
initializes any variable it finds uninitialized on its first call, as Theano's shared
variables always have values.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import numpy as np

from .api.convert import convert_to_tensor, graph_of, is_tensor_like
from .api.graph_edit import clone_replace
from .compiled import CompiledRun
from .errors import DTypeError, FailedPreconditionError, FeedError, GraphcError, ShapeError
from .ir.shapes import compatible, format_shape
from .feeds import convert_feed
from .ir.tensor import Tensor
from .program import Program
from .session import Session, _fetch_values


# graph -> the sessions its functions run on, by (backend, pipeline, profile); the first one's
# variable store is every one's
_SHARED: "weakref.WeakKeyDictionary[Any, dict[tuple, Session]]" = weakref.WeakKeyDictionary()


def _shared_session(graph: Any, backend: str | None, pipeline: Any, profile: bool) -> Session:
    """The session functions built on `graph` share (see the module docstring)."""
    sessions = _SHARED.setdefault(graph, {})
    probe = Session(graph, backend, pipeline=pipeline, profile=profile)
    key = (probe.backend, probe.pipeline, profile)
    found = sessions.get(key)
    if found is not None and not found._closed:
        return found
    first = next((s for s in sessions.values() if not s._closed), None)
    if first is not None:
        probe._state = first._state   # another backend or pipeline: the same variables
    sessions[key] = probe
    return probe


class Function:
    """A compiled callable; see gc.function."""

    def __init__(self, inputs: Sequence[Any], outputs: Any = None, updates: Any = None,
                 givens: dict | None = None, backend: str | None = None,
                 session: Session | None = None, name: str | None = None, pipeline: Any = "default",
                 profile: bool = False) -> None:
        self.name = name or "function"
        self.inputs = [_as_input(x) for x in inputs]
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise GraphcError("gc.function inputs must be distinct tensors")
        self._single = outputs is not None and not isinstance(outputs, (list, tuple))
        outs = [] if outputs is None else ([outputs] if self._single else list(outputs))
        graph = graph_of(list(self.inputs) + outs)
        with graph.as_default():
            out_tensors = [convert_to_tensor(o) for o in outs]
            pairs = _update_pairs(updates)
        if givens:
            cloned = clone_replace(out_tensors + [t for _, t in pairs], givens)
            out_tensors, pairs = cloned[: len(out_tensors)], [(v, t) for (v, _), t in zip(pairs, cloned[len(out_tensors):])]
        self.outputs = out_tensors
        self._updates = [(v.name.split(":")[0], t) for v, t in pairs]
        self.session = session if session is not None else _shared_session(graph, backend, pipeline, profile)
        if self.session.graph is not graph:
            raise GraphcError("the session passed to gc.function belongs to a different graph")
        self._by_name = {t.node.name: i for i, t in enumerate(self.inputs)}
        self._last: CompiledRun | None = None
        self._fast: tuple[list, Callable] | None = None   # see __call__

    @property
    def profile(self) -> Any:
        """The session's graphc.profile.Profile (gc.function(..., profile=True)), else None."""
        return self.session.profile

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fast = self._fast
        if fast is not None and not kwargs and len(args) == len(fast[0]):
            # The hot path: the same array types as the last call need no conversion, no
            # checks beyond this loop and no cache lookup (about 1 us of Python in all).
            for a, (dtype, shape) in zip(args, fast[0]):
                if type(a) is not np.ndarray or a.dtype is not dtype or a.shape != shape:
                    break
            else:
                try:
                    return fast[1](args)
                except FailedPreconditionError:   # a variable lost its value: the full path
                    self._fast = None              # initializes it again
        values = self._bind(args, kwargs)
        feeds = {t: convert_feed(t, v) for t, v in zip(self.inputs, values)}
        compiled = self.session.compile(self.outputs, feeds, self._updates)
        self._last = compiled
        state = self.session._state
        missing = [v for v in compiled.variables_read if v not in state.variables]
        if missing:
            self._initialize(missing)
        out = _fetch_values(self.outputs, compiled(state, [feeds[t] for t in compiled.feed_tensors]))
        self._fast = self._fast_path(compiled, [feeds[t] for t in self.inputs])
        return out[0] if self._single else out

    def _fast_path(self, compiled: CompiledRun, fed: list[np.ndarray]) -> tuple[list, Callable]:
        """(the argument types it accepts, a call running `compiled` on such arguments)."""
        signature = [(a.dtype, a.shape) for a in fed]
        order = [next(i for i, t in enumerate(self.inputs) if t is f) for f in compiled.feed_tensors]
        state, outputs, single = self.session._state, self.outputs, self._single

        if single and order == list(range(len(self.inputs))):
            def run(args: tuple) -> Any:
                value = compiled(state, args)[0]
                return value[()] if value.ndim == 0 else value
        elif single:
            def run(args: tuple) -> Any:
                value = compiled(state, [args[i] for i in order])[0]
                return value[()] if value.ndim == 0 else value
        else:
            def run(args: tuple) -> Any:
                return _fetch_values(outputs, compiled(state, [args[i] for i in order]))
        return signature, run

    def _initialize(self, names: list[str]) -> None:
        """Run the initializers of `names` and of the uninitialized variables they read."""
        graph, state = self.session.graph, self.session._state
        pending = list(names)
        while True:
            inits = [graph.variable_info(v).initializer for v in pending]
            reads = self.session.compile(inits, {}).variables_read
            more = [v for v in reads if v not in state.variables and v not in pending]
            if not more:
                break
            pending = more + pending
        self.session.run(inits)

    def _bind(self, args: tuple, kwargs: dict) -> list[Any]:
        n = len(self.inputs)
        if len(args) > n:
            raise FeedError(f"{self.name} takes {n} arguments ({self._signature()}), got {len(args)}")
        values: list[Any] = list(args) + [_MISSING] * (n - len(args))
        for key, value in kwargs.items():
            index = self._by_name.get(key)
            if index is None:
                raise FeedError(f"{self.name} has no input named {key!r}; its inputs are ({self._signature()})")
            if values[index] is not _MISSING:
                raise FeedError(f"{self.name} got input {key!r} twice")
            values[index] = value
        absent = [self.inputs[i].node.name for i, v in enumerate(values) if v is _MISSING]
        if absent:
            raise FeedError(f"{self.name} is missing a value for input(s) {', '.join(absent)} ({self._signature()})")
        return values

    def _signature(self) -> str:
        return ", ".join(t.node.name for t in self.inputs)

    @property
    def program(self) -> Program | None:
        """The Program of the most recent call (None before the first call)."""
        return None if self._last is None else self._last.program

    def __repr__(self) -> str:
        return f"<gc.function {self.name}({self._signature()})>"


_MISSING = object()


def _as_input(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if is_tensor_like(x):
        raise GraphcError("a variable cannot be a function input (it has a value already); "
                          "use a placeholder, or pass the variable in updates/givens")
    raise GraphcError(f"gc.function inputs must be tensors (usually placeholders), got {x!r}")


def _update_pairs(updates: Any) -> list[tuple[Any, Tensor]]:
    if updates is None:
        return []
    items = list(updates.items()) if isinstance(updates, dict) else list(updates)
    pairs = []
    for item in items:
        try:
            var, value = item
        except (TypeError, ValueError):
            raise GraphcError(f"updates must be (variable, new_value) pairs, got {item!r}") from None
        if not hasattr(var, "initializer"):
            raise GraphcError(f"updates must target variables, got {var!r}")
        value = convert_to_tensor(value, dtype=var.dtype) if not isinstance(value, Tensor) else value
        if value.dtype != var.dtype:
            raise DTypeError(f"the update of variable '{var.op.name}' is {value.dtype.name} but the variable is "
                             f"{var.dtype.name}", hint=f"cast it: gc.cast(new_value, gc.{var.dtype.name})")
        if not compatible(var.shape, value.shape):
            raise ShapeError(f"the update of variable '{var.op.name}' has shape {format_shape(value.shape)} but "
                             f"the variable has shape {format_shape(var.shape)}")
        pairs.append((var, value))
    return pairs


def function(inputs: Sequence[Any], outputs: Any = None, updates: Any = None,
             givens: dict | None = None, backend: str | None = None,
             session: Session | None = None, name: str | None = None, pipeline: Any = "default",
             profile: bool = False) -> Function:
    """Compile `outputs` as a function of `inputs` (Theano's theano.function); `pipeline`
    chooses the rewrite passes as for gc.Session; profile=True keeps `f.profile` (per-kernel
    run times and compile timings, graphc.profile)."""
    return Function(inputs, outputs, updates, givens, backend, session, name, pipeline, profile)

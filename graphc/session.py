"""Session: runs parts of a graph with the TF1 `Session.run` contract.

A session owns the values of the graph's variables and the run counters of its random nodes;
two sessions on one graph never share state. Each distinct (fetches, feed tensors, feed dtypes
and shapes) is compiled once into a CompiledRun and cached; a run with a cached key does no
graph work.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import backends
from .compiled import CompiledRun, SessionState
from .config import ConfigProto
from .errors import GraphcError
from .feeds import convert_feed, feed_target
from .ir import context
from .ir.aligned import aligned_copy
from .ir.graph import Graph, get_default_graph
from .ir.node import Node
from .ir.tensor import Tensor
from .print_table import PrintingRun, prints_reached
from .profile import Profile
from .program import build_program

Fetch = Tensor | Node


class Session:
    """`gc.Session(graph=None, backend=None, pipeline="default")`; a context manager like TF1's.

    `pipeline` chooses the rewrite passes: "default" (the backend's own choice: none for the
    NumPy reference, the full graphc.passes.DEFAULT_PIPELINE for compiled backends), None, or a
    list of pass names, which run as given; the backend's target then adds the passes it needs
    (`sess.passes` lists all, each marked when added; gc.debugprint shows them)."""

    def __init__(self, graph: Graph | None = None, backend: str | None = None, config: Any = None,
                 pipeline: Any = "default", profile: bool = False) -> None:
        self.graph = graph if graph is not None else get_default_graph()
        self.backend = backend or backends.DEFAULT_BACKEND
        self.config = config if config is not None else ConfigProto()
        if not isinstance(self.config, ConfigProto):
            raise GraphcError(f"config must be a gc.ConfigProto, got {type(config).__name__}")
        self.target = backends.get_backend(self.backend, self.config.threads)
        self.passes = self.target.plan(pipeline)   # checked now: a bad pipeline fails here
        self.pipeline = tuple(p.name for p in self.passes if p.added_by is None)   # as the user gave it
        self._state = SessionState()
        self._cache: dict[Any, CompiledRun] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._contexts: list[Any] = []
        self._fast_runs: dict[Any, tuple] = {}   # see run()
        self._printed: dict[int, int] = {}        # gc.Print node id -> times printed (for first_n)
        # With profile=True: compile timings and per-kernel run times (graphc.profile.Profile).
        self.profile: Profile | None = Profile() if profile else None

    # ------------------------------------------------------------------ running
    def run(self, fetches: Any, feed_dict: dict | None = None, options: Any = None,
            run_metadata: Any = None) -> Any:
        """Compute `fetches` (a tensor, an op, a variable, a name, or nested lists / tuples /
        dicts of them); the result has the same structure, with NumPy values for tensors and
        None for ops. Feeds are checked before anything runs."""
        key = _run_key(fetches, feed_dict)
        fast = self._fast_runs.get(key) if key is not None else None
        if fast is not None and not self._closed:
            # The hot path: same fetches, same feed keys, arrays of the same types as a run
            # that was checked in full; no conversion, no lookups, no cache key to build.
            signature, compiled, order, rebuild, targets = fast
            values = list(feed_dict.values()) if feed_dict else []
            for v, (dtype, shape) in zip(values, signature):
                if type(v) is not np.ndarray or v.dtype is not dtype or v.shape != shape:
                    break
            else:
                return rebuild(_fetch_values(targets, compiled(self._state, [values[i] for i in order])))
        self._check_open()
        targets: list[Fetch] = []
        rebuild = _flatten(self.graph, fetches, targets)
        feeds = self._convert_feeds(feed_dict)
        compiled = self.compile(targets, feeds)
        values = compiled(self._state, [feeds[t] for t in compiled.feed_tensors])
        if key is not None:
            self._remember_run(key, feed_dict, feeds, compiled, rebuild, targets)
        return rebuild(_fetch_values(targets, values))

    def _remember_run(self, key: Any, feed_dict: dict | None, feeds: dict[Tensor, np.ndarray],
                      compiled: CompiledRun, rebuild: Callable, targets: list[Fetch]) -> None:
        """Keep what run() needs to repeat this run on arrays of the same types (only when the
        fed arrays were used as they are: no conversion the hot path would skip)."""
        raw = list(feed_dict.values()) if feed_dict else []
        converted = list(feeds.values())
        if len(raw) != len(converted) or any(r is not c for r, c in zip(raw, converted)):
            return
        position = {id(t): i for i, t in enumerate(feeds)}
        order = [position[id(t)] for t in compiled.feed_tensors]
        if len(self._fast_runs) >= 256:
            self._fast_runs.clear()
        self._fast_runs[key] = ([(a.dtype, a.shape) for a in raw], compiled, order, rebuild, targets)

    def make_callable(self, fetches: Any, feed_list: Sequence[Any] = ()) -> Callable[..., Any]:
        """A function of the values for `feed_list` that runs `fetches` (TF1's make_callable)."""
        self._check_open()
        targets: list[Fetch] = []
        rebuild = _flatten(self.graph, fetches, targets)
        feed_tensors = [feed_target(self.graph, k) for k in feed_list]

        def call(*values: Any) -> Any:
            if len(values) != len(feed_tensors):
                raise GraphcError(f"this callable takes {len(feed_tensors)} values, got {len(values)}")
            feeds = {t: convert_feed(t, v) for t, v in zip(feed_tensors, values)}
            compiled = self.compile(targets, feeds)
            out = compiled(self._state, [feeds[t] for t in compiled.feed_tensors])
            return rebuild(_fetch_values(targets, out))

        return call

    def compile(self, targets: Sequence[Fetch], feeds: dict[Tensor, np.ndarray],
                updates: Sequence[tuple[str, Tensor]] = ()) -> CompiledRun:
        """The cached CompiledRun for these fetches, feed types and updates."""
        key = (
            tuple(targets),
            tuple(sorted((t.node.id, t.index, a.dtype.str, a.shape) for t, a in feeds.items())),
            tuple(updates),
        )
        compiled = self._cache.get(key)
        if compiled is None:
            start = time.perf_counter()
            ordered = sorted(feeds, key=lambda t: (t.node.id, t.index))
            prints = prints_reached(self.graph, list(targets) + [t for _, t in updates])
            results = list(targets) + [t for spec in prints for t in spec.tensors]   # what the prints show, last
            program = build_program(self.graph, results,
                                     [(t, t.dtype, feeds[t].shape) for t in ordered], updates)
            executable = backends.compile(program, self.target, planned=self.passes)
            compiled = CompiledRun(executable.program, executable, self.graph)
            if self.profile is not None:
                label = ", ".join(getattr(t, "name", str(t)) for t in targets) or "(nothing)"
                if updates:
                    label += f" (+ {len(updates)} updates)"
                compiled.profile = self.profile.add_program(
                    label, (time.perf_counter() - start) * 1e3, getattr(compiled.executable, "timings", {}),
                    compiled.executable.kernel_labels())
            if prints:
                compiled = PrintingRun(compiled, sum(isinstance(t, Tensor) for t in targets), prints, self._printed)
            with self._lock:
                self._cache.setdefault(key, compiled)
        return compiled

    def _convert_feeds(self, feed_dict: dict | None) -> dict[Tensor, np.ndarray]:
        if not feed_dict:
            return {}
        if not isinstance(feed_dict, dict):
            raise GraphcError(f"feed_dict must be a dict, got {type(feed_dict).__name__}")
        feeds: dict[Tensor, np.ndarray] = {}
        for key, value in feed_dict.items():
            t = feed_target(self.graph, key)
            feeds[t] = convert_feed(t, value)
        return feeds

    # ------------------------------------------------------------------ state
    def variable_value(self, name: str) -> np.ndarray | None:
        """The current value of variable `name` in this session (None if uninitialized)."""
        value = self._state.variables.get(name)   # a DeviceValue on the cuda backend: copied to the host
        return None if value is None else np.array(value, copy=True)

    def load_variable(self, name: str, value: Any) -> None:
        """Set variable `name` directly, without running graph ops (TF1's Variable.load)."""
        info = self.graph.variable_info(name)
        arr = convert_feed(info.read, value) if info.read is not None else np.asarray(value)
        self._state.variables[name] = aligned_copy(arr)

    # ------------------------------------------------------------------ lifetime
    def _check_open(self) -> None:
        if self._closed:
            raise GraphcError("this session is closed; create a new gc.Session")

    def close(self) -> None:
        self._closed = True
        self._cache.clear()
        self._fast_runs.clear()
        self._state = SessionState()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Session]:
        """Make this the session `Tensor.eval()` and `Node.run()` use."""
        context.push_session(self)
        try:
            yield self
        finally:
            context.pop_session(self)

    def __enter__(self) -> Session:
        graph_ctx, session_ctx = self.graph.as_default(), self.as_default()
        graph_ctx.__enter__()
        session_ctx.__enter__()
        self._contexts.append((graph_ctx, session_ctx))
        return self

    def __exit__(self, *exc: object) -> None:
        graph_ctx, session_ctx = self._contexts.pop()
        session_ctx.__exit__(*exc)
        graph_ctx.__exit__(*exc)
        self.close()

    def __repr__(self) -> str:
        return f"<gc.Session backend={self.backend!r} closed={self._closed}>"


def _flatten(graph: Graph, fetches: Any, targets: list[Fetch]) -> Callable[[list[Any]], Any]:
    """Append the leaves of a fetch structure to `targets`; return a function rebuilding the
    structure from a list of values aligned with `targets`."""
    if isinstance(fetches, (list, tuple)):
        parts = [_flatten(graph, f, targets) for f in fetches]
        if hasattr(fetches, "_fields"):  # namedtuple
            return lambda vals: type(fetches)(*(p(vals) for p in parts))
        kind = type(fetches) if type(fetches) in (list, tuple) else list
        return lambda vals: kind(p(vals) for p in parts)
    if isinstance(fetches, dict):
        parts_d = {k: _flatten(graph, v, targets) for k, v in fetches.items()}
        kind_d = type(fetches)
        return lambda vals: kind_d((k, p(vals)) for k, p in parts_d.items())
    if fetches is None:
        raise GraphcError("None is not a valid fetch")
    if hasattr(fetches, "_graphc_fetch_parts"):   # a composite fetch (a gc.summary Summary): its tensors, then its value
        parts_f = [_flatten(graph, t, targets) for t in fetches._graphc_fetch_parts()]
        return lambda vals: fetches._graphc_fetch_result([p(vals) for p in parts_f])
    try:
        element = graph.as_graph_element(fetches)
    except GraphcError as err:
        raise GraphcError(f"cannot fetch {fetches!r}: {err.message}") from None
    index = len(targets)
    targets.append(element)
    return lambda vals: vals[index]


def _run_key(fetches: Any, feed_dict: dict | None) -> Any:
    """A hashable key for run()'s hot path, or None for fetch structures it does not cache
    (dicts, nested lists)."""
    if type(fetches) is list:
        fetches = tuple(fetches)
    key = (fetches, tuple(feed_dict) if feed_dict else ())
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _fetch_values(targets: Sequence[Fetch], outputs: list[np.ndarray]) -> list[Any]:
    """Values aligned with targets: arrays (NumPy scalars for 0-d, as TF1) and None for ops."""
    out: list[Any] = []
    it = iter(outputs)
    for t in targets:
        if isinstance(t, Tensor):
            v = next(it)
            out.append(v[()] if v.ndim == 0 else v)
        else:
            out.append(None)
    return out


class InteractiveSession(Session):
    """TF1's tf.InteractiveSession: a session that makes itself the default when created, so
    `tensor.eval()` and `op.run()` work without a `with` block (in a notebook, a shell);
    close() ends that."""

    def __init__(self, graph: Graph | None = None, backend: str | None = None, config: Any = None,
                 pipeline: Any = "default", profile: bool = False) -> None:
        super().__init__(graph, backend, config, pipeline, profile)
        context.push_session(self)

    def close(self) -> None:
        context.pop_session(self)
        super().close()

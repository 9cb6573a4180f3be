"""CompiledRun: a Program compiled by a backend, plus what it takes to call it with session
state (feeds, variable values, random counters) and to store the results back atomically.

Session.run and gc.function share this object; it does no graph work when called.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from .errors import FailedPreconditionError
from .program import Program


class SessionState:
    """A session's mutable state: variable values and per-random-node run counters."""

    def __init__(self) -> None:
        self.variables: dict[str, np.ndarray] = {}
        self.rng_runs: dict[str, int] = {}


class CompiledRun:
    """Callable with the fed arrays (in `feed_tensors` order); returns the fetched arrays."""

    def __init__(self, program: Program, executable: Any, graph: Any) -> None:
        self.program = program
        self.executable = executable
        self.feed_tensors = [i.key for i in program.inputs if i.kind == "feed"]
        self._plan = [(i.kind, i.key) for i in program.inputs]
        self._n_outputs = len(program.outputs)
        self._update_vars = [v for v, _ in program.updates]
        self._rng_nodes = [i.key for i in program.inputs if i.kind == "rng"]
        self._graph = graph
        # Which results the executable allocated for this call alone (no copy needed).
        n = len(program.results)
        self._fresh = list(getattr(executable, "fresh_results", [False] * n))
        self.profile: Any = None   # a graphc.profile.ProgramProfile while the session profiles
        # Runs that only feed and fetch fresh arrays skip the state bookkeeping below.
        self._simple = (all(kind == "feed" for kind, _ in self._plan) and not self._update_vars
                        and all(self._fresh[: self._n_outputs]) and len(self._fresh) == self._n_outputs)

    @property
    def variables_read(self) -> list[str]:
        return [key for kind, key in self._plan if kind == "variable"]

    def __call__(self, state: SessionState, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._simple and self.profile is None:
            return self.executable(feeds)
        args: list[Any] = []
        fed = iter(feeds)
        for kind, key in self._plan:
            if kind == "feed":
                args.append(next(fed))
            elif kind == "variable":
                value = state.variables.get(key)
                if value is None:
                    info = self._graph.variable_info(key)
                    raise FailedPreconditionError(
                        f"variable '{key}' is used before it was initialized", source=info.source,
                        hint="run gc.global_variables_initializer() (or v.initializer) in this session first")
                args.append(value)
            else:
                args.append(np.int64(state.rng_runs.get(key, 0)))
        if self.profile is None:
            results = self.executable(args)
        else:
            start = time.perf_counter()
            results = self.executable(args, self.profile)
            self.profile.runs += 1
            self.profile.run_seconds += time.perf_counter() - start
        fresh = self._fresh
        outputs = [r if fresh[i] else _owned(r, args) for i, r in enumerate(results[: self._n_outputs])]
        for i, (var, value) in enumerate(zip(self._update_vars, results[self._n_outputs:]), self._n_outputs):
            # A variable's array belongs to the session alone (never shared with a fetch, a
            # constant or another variable), since the LLVM backend may update it in place.
            state.variables[var] = value if fresh[i] else np.array(value, copy=True)
        for key in self._rng_nodes:
            state.rng_runs[key] = state.rng_runs.get(key, 0) + 1
        return outputs


def _owned(value: np.ndarray, args: Sequence[Any]) -> np.ndarray:
    """A result the caller may keep and modify: never a view of an input or of a constant."""
    if value.flags.owndata and value.flags.writeable and not any(value is a for a in args):
        return value
    return np.array(value, copy=True)


def initial_values(graph: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The initial value of each named variable: every variable's initializer run once, in
    creation order, by the NumPy reference, on a state of its own (no Session: graph files and
    ahead-of-time libraries need the values without running anything else)."""
    from .backends import compile, get_backend
    from .program import build_program

    infos = graph.variables
    program = build_program(graph, [infos[name].initializer for name in infos])
    executable = compile(program, get_backend("numpy"))
    state = SessionState()
    CompiledRun(executable.program, executable, graph)(state, [])
    return {name: np.array(state.variables[name], copy=True) for name in names}

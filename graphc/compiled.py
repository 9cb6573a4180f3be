"""CompiledRun: a Program compiled by a backend, plus what it takes to call it with session
state (feeds, variable values, random counters) and to store the results back atomically.

Session.run and gc.function share this object; it does no graph work when called.
"""
from __future__ import annotations

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

    @property
    def variables_read(self) -> list[str]:
        return [key for kind, key in self._plan if kind == "variable"]

    def __call__(self, state: SessionState, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
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
        results = self.executable(args)
        outputs = [_owned(r, args) for r in results[: self._n_outputs]]
        for var, value in zip(self._update_vars, results[self._n_outputs:]):
            state.variables[var] = _owned(value, args + outputs)  # never shared with a fetch
        for key in self._rng_nodes:
            state.rng_runs[key] = state.rng_runs.get(key, 0) + 1
        return outputs


def _owned(value: np.ndarray, args: Sequence[Any]) -> np.ndarray:
    """A result the caller may keep and modify: never a view of an input or of a constant."""
    if value.flags.owndata and value.flags.writeable and not any(value is a for a in args):
        return value
    return np.array(value, copy=True)

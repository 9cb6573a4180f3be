"""Fuzz cases for `.gcx` files: mutated real graphs (tests/fuzz/gcx_models.py) and what a
mutated graph does when it is loaded and run.

    python -m tests.fuzz.driver gcx --count 10000 --seed 1

`cases(seed, count)` yields (case id, bytes), the same for the same seed in every process.
`run_case(bytes)` loads the file and, when it loads, runs it on the numpy and llvm backends:
initializes the variables, then fetches every output and runs every op of the graph, feeding
small random values to placeholders. A graph is run only when it is small: every tensor,
sub-graphs' included, and every loop, whose iterations must have a bound known before running
(a static trip count or the sequences' lengths), so that a loaded `while True` is not a hang. It returns "ok" or the name of the GraphcError subclass
raised, and lets anything else through, which the driver counts as a failure. It also refuses
outcomes that break graphc's promises even though they are GraphcErrors: a load error that is
not a GraphFileError, an "internal error" (a graphc bug), and a run error that names no node.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterator

import numpy as np

import graphc as gc
from graphc.io import load_graph_bytes
from graphc.ops.loops import static_trip
from tests.fuzz.gcx_function_mutations import mutate_function
from tests.fuzz.gcx_models import model_files
from tests.fuzz.gcx_mutations import MUTATORS as DOCUMENT_MUTATORS
from tests.fuzz.gcx_mutations import WEIGHTS as DOCUMENT_WEIGHTS

MAX_RUN_ELEMENTS = 1 << 22        # a loaded graph whose tensors are bigger is loaded, not run
UNALLOCATABLE_BYTES = 1 << 50     # ... unless they are so big that allocating must fail at once
UNKNOWN_DIM = 2                   # the size assumed for unknown dims when sizing a graph
FED_DIMS = (0, 1, 2, 3)           # the sizes fed for a placeholder's unknown dims (one per run)
BACKENDS = ("numpy", "llvm")
MAX_LOOP_STEPS = 4096             # iterations of all loops, nested ones multiplied, for a graph to run
MUTATORS = {**DOCUMENT_MUTATORS, "function": mutate_function}
WEIGHTS = {**DOCUMENT_WEIGHTS, "function": 0.2}   # drawn for any model; without sub-graphs it mutates the document


def cases(seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    """`count` mutated files; case i depends only on (seed, i)."""
    files = model_files()
    names = sorted(files)
    kinds = list(WEIGHTS)
    weights = np.array([WEIGHTS[k] for k in kinds])
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        model = names[int(rng.integers(0, len(names)))]
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        data = MUTATORS[kind](rng, files[model])
        yield f"{seed}-{i}-{model}-{kind}", data


class BrokenPromise(AssertionError):
    """A GraphcError that breaks what loading and running promise (the driver counts it)."""


def run_case(data: bytes) -> str:
    """Load `data` and run it if it loads: "ok" or the GraphcError subclass's name."""
    try:
        graph = load_graph_bytes(data, "fuzz.gcx")
    except gc.GraphFileError as err:
        _check_message(err, "load")
        return type(err).__name__
    except gc.GraphcError as err:
        raise BrokenPromise(f"loading raised {type(err).__name__}, not GraphFileError: {err}") from err
    if not _small_enough(graph):
        return "ok-not-run"
    label = "ok"
    for backend in BACKENDS:
        try:
            _run(graph, backend, _seed_of(data))
        except gc.GraphcError as err:
            _check_message(err, "run")
            label = type(err).__name__
    return label


def _check_message(err: gc.GraphcError, stage: str) -> None:
    text = str(err)
    if "internal error" in text or "graphc bug" in text:
        raise BrokenPromise(f"{stage}: {text}")
    if stage == "run" and err.node_name is None and not isinstance(err, gc.FeedError):
        raise BrokenPromise(f"run error names no node: {type(err).__name__}: {text}")


def _seed_of(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "little")


def _small_enough(graph: gc.Graph, steps: int = 1) -> bool:
    """Every tensor small enough to run quickly in little memory, or so big that allocating it
    fails at once (which must give ResourceExhaustedError), and every loop bounded: `steps`
    iterations of the enclosing loops times this loop's bound at most MAX_LOOP_STEPS."""
    for node in graph.get_operations():
        for t in node.outputs:
            if t.shape is None:
                continue
            n = 1
            for d in t.shape:
                n *= UNKNOWN_DIM if d is None else d
            if n > MAX_RUN_ELEMENTS and n * t.dtype.itemsize < UNALLOCATABLE_BYTES:
                return False
        inner = steps
        if node.type == "While":
            bound = _loop_bound(node)
            if bound is None or steps * bound > MAX_LOOP_STEPS:
                return False
            inner = steps * max(bound, 1)
        for key in getattr(node.op, "functions", ()):
            fn = node.attrs.get(key)
            if fn is not None and not _small_enough(fn.graph, inner):
                return False
    return True


def _loop_bound(node: gc.Operation) -> int | None:
    """The most iterations the loop can run, when known before running."""
    trip, _, sequences, _ = node.op.split(node.inputs, node.attrs)
    bounds = [static_trip(trip)]
    for q in sequences:
        if q.shape is not None and q.shape:
            bounds.append(max(FED_DIMS) if q.shape[0] is None else q.shape[0])
    known = [b for b in bounds if b is not None]
    return min(known) if known else None


def _feed_value(t: gc.Tensor, rng: np.random.Generator, unknown: int) -> np.ndarray:
    shape = tuple(unknown if d is None else d for d in (t.shape if t.shape is not None else (unknown,)))
    if t.dtype.is_bool:
        return rng.random(shape) < 0.5
    if t.dtype.is_integer:
        return rng.integers(0, 2, size=shape).astype(t.dtype.np)
    return rng.normal(size=shape).astype(t.dtype.np)


def _run(graph: gc.Graph, backend: str, seed: int) -> None:
    """Initialize every variable, then fetch every output and run every op once."""
    rng = np.random.default_rng(seed)
    unknown = FED_DIMS[seed % len(FED_DIMS)]
    nodes = graph.get_operations()
    feeds = {n.outputs[0]: _feed_value(n.outputs[0], rng, unknown) for n in nodes if n.type == "Placeholder"}
    fetches: list[Any] = [t for n in nodes for t in n.outputs if n.type != "Placeholder"]
    fetches += [n for n in nodes if not n.outputs]
    with gc.Session(graph, backend=backend) as sess:
        inits = [info.initializer for info in graph.variables.values() if info.initializer is not None]
        if inits:
            sess.run(inits)
        if fetches:
            sess.run(fetches, feeds)

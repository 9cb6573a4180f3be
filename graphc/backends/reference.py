"""The NumPy reference backend: interprets a Program node by node with each op's reference
semantics. It is the oracle every compiled backend is tested against, so it favours clarity and
strictness over speed: each result is checked against the dtype and shape the IR inferred.
"""
from __future__ import annotations

import time

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import GraphcError, InvalidArgumentError, ResourceExhaustedError, internal_error
from ..ir.node import Node
from ..ops import scalar as sexpr
from ..program import Program
from .target import Target


Kernel = Callable[[list[np.ndarray]], list[np.ndarray]]


class ReferenceExecutable:
    """Runs one Program: call it with the argument arrays in `program.inputs` order; it returns
    the values of `program.results`."""

    def __init__(self, program: Program) -> None:
        self.program = program
        slot: dict[int, int] = {}

        def slot_of(t: Any) -> int:
            return slot.setdefault(id(t), len(slot))

        self.input_slots = [slot_of(i.tensor) for i in program.inputs]
        self.constants: list[tuple[int, np.ndarray]] = []
        self.steps: list[tuple[Node, Kernel, list[int], list[int]]] = []
        for n in program.nodes():
            if n.type == "Placeholder":
                continue
            if n.type == "Const":  # loaded once, not recomputed per run
                self.constants.append((slot_of(n.outputs[0]), n.attrs["value"]))
                continue
            self.steps.append((n, _kernel(n), [slot_of(t) for t in n.inputs], [slot_of(t) for t in n.outputs]))
        self.result_slots = [slot_of(t) for t in program.results]
        self.n_slots = len(slot)
        # Free each intermediate after its last use, so memory stays near the live set.
        keep = set(self.result_slots) | {s for s, _ in self.constants}
        last_use: dict[int, int] = {}
        for i, (_, _, ins, _) in enumerate(self.steps):
            for s in ins:
                last_use[s] = i
        self.frees: list[list[int]] = [[] for _ in self.steps]
        for s, i in last_use.items():
            if s not in keep:
                self.frees[i].append(s)

    def kernel_labels(self) -> list[tuple[str, str, str]]:
        """(name, op type, node name) per interpreted node, for profiles."""
        return [(node.name, node.type, node.name) for node, _, _, _ in self.steps]

    def __call__(self, args: Sequence[np.ndarray], profile: Any = None) -> list[np.ndarray]:
        values: list[Any] = [None] * self.n_slots
        for s, a in zip(self.input_slots, args):
            values[s] = a
        for s, v in self.constants:
            values[s] = v
        with np.errstate(all="ignore"):
            for i, ((node, kernel, ins, outs), frees) in enumerate(zip(self.steps, self.frees)):
                t0 = time.perf_counter() if profile is not None else 0.0
                results = _run_node(node, kernel, [values[s] for s in ins])
                if profile is not None:
                    profile.record(i, time.perf_counter() - t0)
                for s, r in zip(outs, results):
                    values[s] = r
                for s in frees:
                    values[s] = None
        return [values[s] for s in self.result_slots]


def _kernel(node: Node) -> Kernel:
    """The node's reference computation with everything derivable from the node bound once."""
    op, attrs = node.op, node.attrs
    if getattr(op, "functions", ()):
        return _subgraph_kernel(node)
    if op.is_elementwise:
        expr = op.scalar_expr([t.dtype for t in node.inputs], dict(attrs))
        shape = node.outputs[0].shape

        def elementwise(inputs: list[np.ndarray]) -> list[np.ndarray]:
            out = sexpr.evaluate(expr, inputs)
            return [out if out.shape == shape else np.broadcast_to(out, shape).copy()]
        return elementwise

    def general(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = op.reference(inputs, attrs)  # NumPy reductions may return scalars: make arrays
        return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]
    return general


def _subgraph_kernel(node: Node) -> Kernel:
    """A loop or branch: the op runs its sub-graphs, each interpreted by its own executable."""
    executables: dict[int, ReferenceExecutable] = {}
    capacity = node.op.capacity(node.inputs, node.attrs) if hasattr(node.op, "capacity") else None

    def call(fn: Any, args: list[np.ndarray]) -> list[np.ndarray]:
        run = executables.get(id(fn))
        if run is None:
            run = executables[id(fn)] = ReferenceExecutable(fn.program)
        return run(args)

    def loop(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return node.op.run_with(inputs, dict(node.attrs), call, capacity)
    return loop


def _run_node(node: Node, kernel: Kernel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    try:
        results = kernel(inputs)
    except GraphcError as err:
        raise err.attach_node(node.type, node.name, node.source) from None
    except MemoryError:
        shapes = ", ".join(f"{t.dtype.name}{list(t.shape)}" for t in node.outputs)
        raise ResourceExhaustedError(f"out of memory while computing its result(s) {shapes}", op_type=node.type,
                                     node_name=node.name, source=node.source) from None
    except (ValueError, IndexError, TypeError, ArithmeticError) as err:
        raise InvalidArgumentError(f"failed while running: {err}", op_type=node.type,
                                   node_name=node.name, source=node.source) from err
    if len(results) != len(node.outputs):
        raise internal_error(f"{node.type} '{node.name}' returned {len(results)} values, not {len(node.outputs)}")
    for r, t in zip(results, node.outputs):
        if not isinstance(r, np.ndarray) or r.dtype != t.dtype.np or r.shape != t.shape:
            r = np.asarray(r)
            raise internal_error(
                f"{node.type} '{node.name}' produced {r.dtype}{r.shape} but its inferred type is "
                f"{t.dtype.name}{t.shape}")
    return results


class ReferenceTarget(Target):
    """backend="numpy": interprets any program, so it requires no pass."""

    name = "numpy"
    # The oracle interprets programs as written; ask for passes explicitly to check them.
    default_pipeline: tuple[str, ...] = ()

    def build(self, program: Program) -> ReferenceExecutable:
        return ReferenceExecutable(program)

"""Building a Program from the user's graph for one kind of run.

What runs: the nodes the fetches need (through data and control inputs), stopping at fed
tensors: TF1 lets any tensor be fed, which cuts the graph there.

Shapes: the fed values' shapes make every shape concrete; each node is re-inferred with them,
so a mismatch hidden by an unknown dimension is found here, before anything runs, and named by
the user's node and line. Shape arguments computed from shapes (reshape(x, shape(y))) are folded
into attributes.

State: graphc gives stateful ops a sequential meaning. Within one run, reads and assignments of
a variable take effect in the order the user created them (creation order is always consistent
with data and control dependencies). A variable's canonical read is created right after its
initializer, so ordinary uses of `v` see the value from before any training update in the same
run, and `v2 = Variable(v1 * 2)` works under global_variables_initializer(). The builder turns
this into dataflow: each read becomes the variable's latest value, each assignment a new value.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import CompileError, FeedError, ShapeError
from ..ir.dtypes import DType, int64
from ..ir.function import Function
from ..ir.graph import Graph
from ..ir.node import Node
from ..ir.shapes import format_shape, is_fully_defined
from ..ir.tensor import Tensor
from ..ops import get_op
from .program import Program, ProgramInput

_PLACEHOLDER = get_op("Placeholder")


def needed_nodes(roots: Sequence[Node], fed: set[Tensor]) -> list[Node]:
    """Nodes reachable backwards from `roots` without passing through a fed tensor, by id."""
    seen: dict[int, Node] = {}
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen[n.id] = n
        stack.extend(t.node for t in n.inputs if t not in fed)
        stack.extend(n.control_inputs)
    return [seen[i] for i in sorted(seen)]


class _Builder:
    def __init__(self, graph: Graph) -> None:
        self.user = graph
        self.program_graph = Graph(unique_names=False)
        self.inputs: list[ProgramInput] = []
        self.value: dict[Tensor, Tensor] = {}        # user tensor -> program tensor
        self.version: dict[str, Tensor] = {}         # variable -> its current program value
        self.changed: list[str] = []
        self.effects: list[Tensor] = []
        self.functions: dict[tuple, Function] = {}   # (user Function, argument types) -> its program form

    def add_input(self, kind: str, key: Any, dtype: DType, shape: tuple, name: str, source) -> Tensor:
        node = self.program_graph.create_node(
            _PLACEHOLDER, [], {"dtype": dtype, "shape": tuple(shape)}, name, source=source)
        t = node.outputs[0]
        self.inputs.append(ProgramInput(kind, key, t, source))
        return t

    def current(self, var: str, reader: Node) -> Tensor:
        if var not in self.version:
            info = self.user.variable_info(var)
            self.version[var] = self.add_input("variable", var, info.dtype, info.shape, var, reader.source)
        return self.version[var]

    def lower(self, n: Node) -> None:
        op = n.op
        if op.name == "Placeholder":
            shape = format_shape(n.attrs["shape"])
            raise FeedError(
                f"you must feed a value for placeholder '{n.name}' ({n.attrs['dtype']} {shape})",
                op_type=n.type, node_name=n.name, source=n.source)
        if op.name == "PlaceholderWithDefault":
            self.set_value(n.outputs[0], self.value[n.inputs[0]])
        elif op.variable_effect == "read":
            self.set_value(n.outputs[0], self.current(n.attrs["var"], n))
        elif op.variable_effect is not None:
            self.assign(n)
        elif op.name == "NoOp":
            pass
        elif op.name == "RunCounter":   # the counter of draws inside loop bodies: advanced per run
            self.set_value(n.outputs[0], self.add_input("rng", n.name, int64, (), f"{n.name}/counter", n.source))
        elif op.stateful and hasattr(op, "draw") and not n.attrs.get("counter_input"):
            self.copy(n, extra_inputs=[self.add_input("rng", n.name, int64, (), f"{n.name}/counter", n.source)],
                      extra_attrs={"counter_input": True})
        else:
            self.copy(n)
            if op.has_side_effect:
                self.effects.extend(self.value[t] for t in n.outputs if t in self.value)

    def set_value(self, user: Tensor, program: Tensor) -> None:
        self.value.setdefault(user, program)  # a fed output keeps its feed

    def copy(self, n: Node, extra_inputs: Sequence[Tensor] = (), extra_attrs: dict | None = None) -> None:
        inputs = [self.value[t] for t in n.inputs]
        attrs = dict(n.attrs)
        if n.op.shape_inputs and len(inputs) > min(n.op.shape_inputs) and not attrs.get("counter_input"):
            attrs = self.freeze(n, inputs, attrs)
            inputs = [t for i, t in enumerate(inputs) if i not in n.op.shape_inputs]
        attrs.update(extra_attrs or {})
        if getattr(n.op, "functions", ()):
            attrs = self.concrete_functions(n, inputs, attrs)
        new = self.program_graph.create_node(n.op, inputs + list(extra_inputs), attrs, n.name,
                                             source=n.source, exact_name=True)
        for user_t, prog_t in zip(n.outputs, new.outputs):
            self.set_value(user_t, prog_t)

    def concrete_functions(self, n: Node, inputs: list[Tensor], attrs: dict) -> dict:
        """The node's sub-graphs (loop body, branches) as Programs for the concrete types of its
        inputs; a sub-graph used by two nodes with the same types (a loop and the twin its
        gradient made) becomes one Program, so the two nodes can be merged."""
        for key, arg_types in n.op.function_arg_types(inputs, attrs).items():
            fn = attrs[key]
            if fn is None:
                continue
            memo = (id(fn), tuple((d.name, tuple(s)) for d, s in arg_types))
            done = self.functions.get(memo)
            if done is None:
                feeds = [(a, d, tuple(s)) for a, (d, s) in zip(fn.args, arg_types)]
                body = build_program(fn.graph, fn.results, feeds)
                done = self.functions[memo] = Function(fn.name, body.graph, body.input_tensors(), body.outputs,
                                                       program=body, origin=fn.root)
            attrs[key] = done
        return attrs

    def freeze(self, n: Node, inputs: list[Tensor], attrs: dict) -> dict:
        values = [t.static_value for t in inputs]
        frozen = n.op.freeze_shape_inputs(values, attrs)
        if frozen is None:
            raise CompileError(
                "its shape argument depends on values computed at run time; graphc compiles for "
                "static shapes, so shape arguments may only depend on shapes and constants",
                op_type=n.type, node_name=n.name, source=n.source)
        return frozen

    def assign(self, n: Node) -> None:
        var = n.attrs["var"]
        value = self.value[n.inputs[0]]
        effect = n.op.variable_effect
        if effect == "set":
            new = value
        else:
            op = get_op("Add" if effect == "add" else "Sub")
            cur = self.current(var, n)
            new = self.program_graph.create_node(op, [cur, value], {}, n.name, source=n.source).outputs[0]
        self.store(var, new, n)
        self.set_value(n.outputs[0], new)

    def store(self, var: str, new: Tensor, n: Node) -> None:
        info = self.user.variable_info(var)
        if new.dtype != info.dtype:
            raise CompileError(f"the new value of variable '{var}' is {new.dtype.name}, not {info.dtype.name}",
                               op_type=n.type, node_name=n.name, source=n.source)
        if tuple(new.shape) != tuple(info.shape):
            raise ShapeError(
                f"cannot store a value of shape {format_shape(new.shape)} in variable '{var}' of "
                f"shape {format_shape(info.shape)}", op_type=n.type, node_name=n.name, source=n.source)
        self.version[var] = new
        if var not in self.changed:
            self.changed.append(var)


def build_program(
    graph: Graph,
    fetches: Sequence[Tensor | Node],
    feeds: Sequence[tuple[Tensor, DType, tuple[int, ...]]] = (),
    updates: Sequence[tuple[str, Tensor]] = (),
) -> Program:
    """The Program computing `fetches` (tensors, or nodes run for effect) from `feeds`
    (user tensor, dtype, concrete shape), then applying `updates` (Theano style: computed from
    the values of this run, stored at its end)."""
    b = _Builder(graph)
    fed = {t for t, _, _ in feeds}
    for t, dtype, shape in feeds:
        b.value[t] = b.add_input("feed", t, dtype, shape, t.node.name, t.node.source)
    roots = [f.node if isinstance(f, Tensor) else f for f in fetches if not (isinstance(f, Tensor) and f in fed)]
    roots += [t.node for _, t in updates if t not in fed]
    for n in needed_nodes(roots, fed):
        b.lower(n)
    for var, t in updates:
        b.store(var, b.value[t], t.node)
    outputs = [b.value[f] for f in fetches if isinstance(f, Tensor)]
    program = Program(b.program_graph, b.inputs, outputs, [(v, b.version[v]) for v in b.changed], b.effects)
    _check_concrete(program)
    program.log.append(f"built: {len(program.nodes())} nodes from {len(fetches)} fetches")
    return program


def _check_concrete(program: Program) -> None:
    for n in program.nodes():
        for t in n.outputs:
            if not is_fully_defined(t.shape):
                raise CompileError(
                    f"the shape of '{t.name}' is {format_shape(t.shape)} even with every input shape known",
                    op_type=n.type, node_name=n.name, source=n.source)


__all__ = ["build_program", "needed_nodes"]

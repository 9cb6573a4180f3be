"""Sub-graphs owned by a node: a loop's body and condition, a branch of a cond.

A `FuncGraph` is a Graph that a user's Python function (a loop body, a branch) is traced into.
Its arguments are placeholders of its own. A tensor of an enclosing graph that the function
uses (a weight matrix, a sequence the loop indexes) is *captured*: the FuncGraph makes a
placeholder standing for it and records the pair, and the node owning the sub-graph takes the
outer tensor as an extra input. A sub-graph is therefore self-contained: nothing inside it
refers to a tensor of another graph, so it can be built into a program, optimized, compiled,
saved and differentiated on its own, like any graph. Constants are copied instead of captured,
so shapes and folding inside the body still see their values.

A `Function` is the value a node's attribute holds: the graph, its argument tensors in call
order and its result tensors. At the user level the graph is a FuncGraph; inside a compiled
Program it is the body's own Program (`program` is set), whose shapes are all concrete.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphcError
from .graph import Graph
from .tensor import Tensor


class FuncGraph(Graph):
    """A graph a function is traced into, capturing the tensors of enclosing graphs it uses."""

    def __init__(self, outer: Graph, name: str, placeholder_op: Any) -> None:
        super().__init__()
        self.outer = outer
        self.name = name
        self.seed = outer.seed
        self.placeholder_op = placeholder_op   # the IR does not import the ops: the tracer hands it in
        self.captures: dict[Tensor, Tensor] = {}   # outer tensor -> placeholder (or constant) standing for it
        self.captured_order: list[tuple[Tensor, Tensor]] = []   # (tensor of self.outer, placeholder)
        # Set by the tracer (graphc.api.control_flow): a loop body's iteration index, and how a
        # random draw made inside becomes one with an explicit counter (see create_node).
        self.iteration: Tensor | None = None
        self.draws: Any = None
        self.draw_counter: Tensor | None = None   # made by `draws` on first use

    def resolve_input(self, t: Tensor, op_name: str = "") -> Tensor:
        """`t` itself, or the placeholder capturing it when it belongs to an enclosing graph."""
        if t.node.graph is self:
            return t
        return self.capture(t)

    def capture(self, t: Tensor) -> Tensor:
        held = self.captures.get(t)
        if held is not None:
            return held
        outer_t = t
        if t.node.graph is not self.outer:
            if not isinstance(self.outer, FuncGraph) or not self.outer.encloses(t.node.graph):
                raise GraphcError(
                    f"a function traced into '{self.name}' uses tensor '{t.name}' of an unrelated graph",
                    hint="build the loop or branch in the graph its inputs belong to")
            outer_t = self.outer.capture(t)
        if t.node.type == "Const":   # copied, so the body still knows the value
            node = self.create_node(t.node.op, [], dict(t.node.attrs), t.node.name, source=t.node.source)
        else:
            node = self.create_node(self.placeholder_op, [], {"dtype": t.dtype, "shape": t.shape},
                                    f"captured/{t.node.name}", source=t.node.source)
            self.captured_order.append((outer_t, node.outputs[0]))
        self.captures[t] = node.outputs[0]
        return node.outputs[0]

    def encloses(self, graph: Graph) -> bool:
        g: Any = self
        while isinstance(g, FuncGraph):
            g = g.outer
            if g is graph:
                return True
        return False

    def variable_info(self, name: str) -> Any:
        return self.outer.variable_info(name)

    def register_variable(self, info: Any) -> None:
        raise GraphcError(
            f"variable {info.name!r} is created inside a loop body or a branch",
            hint="create variables before the loop (gc.while_loop / gc.scan / gc.cond) and use them inside")

    def create_node(self, op: Any, inputs: Any, attrs: dict[str, Any] | None = None, name: str | None = None,
                    **kwargs: Any) -> Any:
        """As Graph.create_node; a random draw with a state of its own (a run counter the
        session advances) becomes, through `draws`, one whose counter is an input computed
        from the program's run counter and the iteration index, so every iteration and every
        run draws anew and a recomputed iteration draws the same values."""
        if op.stateful and hasattr(op, "draw") and not (attrs or {}).get("counter_input"):
            if self.draws is None:
                raise GraphcError(
                    f"{op.name} inside '{self.name}': random draws inside a loop body or a branch take their "
                    "counter as an input here (as the draws gc.while_loop / gc.scan / gc.cond trace do)",
                    hint="draw the random values before the loop and pass them in as a sequence")
            return self.draws(self, op, list(inputs), dict(attrs or {}), name, kwargs)
        return super().create_node(op, inputs, attrs, name, **kwargs)

    def check_node(self, op: Any) -> None:
        """Ops a sub-graph cannot hold: assignments (random draws: see create_node)."""
        if op.variable_effect in ("set", "add", "sub"):
            raise GraphcError(
                f"{op.name} inside '{self.name}': assigning a variable inside a loop body or a branch is "
                "not supported", hint="return the new value from the loop and assign it after the loop")


@dataclass(eq=False)
class Function:
    """A sub-graph as a node attribute: its graph, argument tensors (placeholders, in call order)
    and result tensors. `program` is set for the optimized, concrete form inside a Program."""

    name: str
    graph: Graph
    args: list[Tensor]
    results: list[Tensor]
    program: Any = field(default=None, repr=False)
    # The user-level Function this one was made from (its program form, or the same body with
    # more results a gradient needs): loops whose bodies share an origin can be merged.
    origin: Any = field(default=None, repr=False)

    @property
    def root(self) -> "Function":
        return self.origin if self.origin is not None else self

    def arg_types(self) -> list[tuple[Any, Any]]:
        return [(t.dtype, t.shape) for t in self.args]

    def result_types(self) -> list[tuple[Any, Any]]:
        return [(t.dtype, t.shape) for t in self.results]

    def __repr__(self) -> str:
        return f"<Function {self.name}: {len(self.args)} args -> {len(self.results)} results>"


def inline(fn: Function, graph: Graph, args: list[Tensor], mapping: dict[Tensor, Tensor] | None = None) -> list[Tensor]:
    """Copy the nodes of `fn` (a user-level Function) into `graph`, its arguments replaced by
    `args`: the tensors standing for its results there. Used by gradients of loops and branches,
    which recompute a body's intermediate values where they need them. `mapping`, when given,
    receives every copied tensor (fn's tensor -> its copy)."""
    if len(args) != len(fn.args):
        raise GraphcError(f"'{fn.name}' takes {len(fn.args)} arguments, got {len(args)}")
    value = copy_nodes(graph, fn.graph, fn.results, dict(zip(fn.args, args)), fn.name)
    if mapping is not None:
        mapping.update(value)
    return [value[t] for t in fn.results]


def copy_nodes(graph: Graph, source: Graph, results: list[Tensor], value: dict[Tensor, Tensor], what: str,
               skip: Any = None) -> dict[Tensor, Tensor]:
    """Copy the nodes of `source` that `results` need (stopping at tensors already in `value`)
    into `graph`, in creation order; returns `value` extended with every copy. A node for which
    skip(node) holds must not be needed (an error if it is)."""
    live: set[int] = set()
    stack = [t.node for t in results if t not in value]
    while stack:
        node = stack.pop()
        if node.id in live:
            continue
        live.add(node.id)
        stack.extend(t.node for t in node.inputs if t not in value)
        stack.extend(c for c in node.control_inputs if c.graph is source)
    for node in source.get_operations():
        if node.id not in live:
            continue
        if node.type == "Placeholder" or (skip is not None and skip(node)):
            raise GraphcError(f"'{what}' needs '{node.name}', which is not one of its arguments")
        copy = graph.create_node(node.op, [value[t] for t in node.inputs], dict(node.attrs),
                                 node.name.rsplit("/", 1)[-1], source=node.source)
        value.update(zip(node.outputs, copy.outputs))
    return value

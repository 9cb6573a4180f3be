"""Reverse-mode symbolic differentiation, graph to graph (TF1's tf.gradients, Theano's grad).

Each op's gradient rule lives with the op's definition (OpDef.grad, set with
`register_gradient`); this module walks the graph. The gradients are ordinary graph tensors in
the same graph (under the "gradients" name scope), so they can be run, compiled, saved and
differentiated again.

Rules: only float tensors carry gradients (integer and bool tensors get none, as in TF1);
StopGradient blocks; gradients over several paths are summed; a variable's gradient is the
sum over all of its reads; an x that the ys do not depend on gets None, or zeros with
unconnected_gradients="zero".
"""
from __future__ import annotations

from typing import Any

from .api import array, gradient_builder, math
from .api.convert import convert_to_tensor
from .api.variables import Variable
from .errors import DTypeError, GraphcError, ShapeError
from .ir.graph import Graph
from .ir.node import Node
from .ir.shapes import compatible, format_shape
from .ir.tensor import Tensor


def _as_list(value: Any) -> tuple[list[Any], bool]:
    if isinstance(value, (list, tuple)):
        return list(value), True
    return [value], False


def _targets(graph: Graph, x: Any) -> list[Tensor]:
    """The tensors standing for x: a tensor itself, or every read of a variable."""
    if isinstance(x, Variable):
        name = x.op.attrs["var"]
        return [n.outputs[0] for n in graph.get_operations()
                if n.op.variable_effect == "read" and n.attrs["var"] == name]
    if isinstance(x, Tensor):
        return [x]
    raise GraphcError(f"gradients can be taken with respect to tensors or variables, not {x!r}")


def _between(ys: list[Tensor], sources: set[Tensor]) -> set[int]:
    """Ids of nodes on a data path from a source tensor to a y."""
    forward: set[int] = set()
    source_nodes = {t.node.id for t in sources}
    graph = ys[0].graph
    for n in graph.get_operations():  # creation order is topological
        if n.id in source_nodes or any(t.node.id in forward for t in n.inputs):
            forward.add(n.id)
    relevant: set[int] = set()
    stack = [y.node for y in ys]
    while stack:
        n = stack.pop()
        if n.id in relevant or n.id not in forward:
            continue
        relevant.add(n.id)
        stack.extend(t.node for t in n.inputs)
    return relevant


def _sum(parts: list[Tensor]) -> Tensor | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else math.add_n(parts)


def gradients(ys: Any, xs: Any, grad_ys: Any = None, unconnected_gradients: str = "none",
              name: str = "gradients") -> list[Tensor | None]:
    """d(sum of ys)/d(x) for each x in xs, as graph tensors (a list aligned with xs).

    grad_ys weights each y (default: ones); unconnected_gradients is "none" or "zero".
    """
    if unconnected_gradients not in ("none", "zero"):
        raise GraphcError(f"unconnected_gradients must be 'none' or 'zero', got {unconnected_gradients!r}")
    ys_list, _ = _as_list(ys)
    xs_list, _ = _as_list(xs)
    ys_list = [convert_to_tensor(y) for y in ys_list]
    if not ys_list:
        raise GraphcError("gradients needs at least one y")
    graph = ys_list[0].graph
    targets = [_targets(graph, x) for x in xs_list]
    sources = {t for ts in targets for t in ts}
    relevant = _between(ys_list, sources)
    nodes = sorted((n for n in graph.get_operations() if n.id in relevant), key=lambda n: -n.id)
    grads: dict[Tensor, list[Tensor]] = {}
    with graph.as_default(), graph.name_scope(name):
        for y, seed in zip(ys_list, _seed_gradients(ys_list, grad_ys, graph)):
            if y.dtype.is_floating and y.node.id in relevant:
                grads.setdefault(y, []).append(seed)
        for node in nodes:
            out_grads = [_sum(grads.get(t, [])) for t in node.outputs]
            if all(g is None for g in out_grads) or node.op.variable_effect == "read":
                continue
            for t, g in zip(node.outputs, out_grads):  # accumulate once; later readers reuse the sum
                if g is not None:
                    grads[t] = [g]
            _backprop(node, out_grads, grads, relevant)
    results: list[Tensor | None] = []
    for x, ts in zip(xs_list, targets):
        parts = [g for t in ts for g in grads.get(t, [])]
        total = _sum(parts)
        if total is None and unconnected_gradients == "zero":
            with graph.as_default():
                total = array.zeros_like(convert_to_tensor(x))
        results.append(total)
    return results


def _seed_gradients(ys: list[Tensor], grad_ys: Any, graph: Graph) -> list[Tensor]:
    if grad_ys is None:
        return [array.ones_like(y) for y in ys]
    given, _ = _as_list(grad_ys)
    if len(given) != len(ys):
        raise GraphcError(f"grad_ys has {len(given)} entries for {len(ys)} ys")
    seeds = []
    with graph.as_default():
        for y, g in zip(ys, given):
            if g is None:
                seeds.append(array.ones_like(y))
                continue
            g = convert_to_tensor(g, dtype=y.dtype) if not isinstance(g, Tensor) else g
            if not compatible(y.shape, g.shape) or g.dtype != y.dtype:
                raise ShapeError(f"grad_ys entry {g.dtype.name}{format_shape(g.shape)} does not match "
                                 f"y '{y.name}' ({y.dtype.name}{format_shape(y.shape)})")
            seeds.append(g)
    return seeds


def _backprop(node: Node, out_grads: list[Tensor | None], grads: dict[Tensor, list[Tensor]],
              relevant: set[int]) -> None:
    """Apply node's gradient rule and add the input gradients to `grads`."""
    wants = [t.dtype.is_floating and t.node.id in relevant for t in node.inputs]
    if not any(wants) or node.type == "StopGradient":
        return
    rule = node.op.grad
    if rule is None:
        raise GraphcError(f"no gradient is defined for {node.type}", op_type=node.type,
                          node_name=node.name, source=node.source,
                          hint="wrap the input in gc.stop_gradient(...) if no gradient should flow here")
    if len(node.outputs) > 1:  # multi-output ops get zeros for outputs nobody differentiates
        out_grads = [g if g is not None else array.zeros_like(t) for g, t in zip(out_grads, node.outputs)]
    with node.graph.name_scope(f"{node.name}_grad"):
        in_grads = rule(gradient_builder, node, *out_grads)
    if len(in_grads) != len(node.inputs):
        raise GraphcError(f"the gradient rule of {node.type} returned {len(in_grads)} values for "
                          f"{len(node.inputs)} inputs (a graphc bug)")
    for t, g, want in zip(node.inputs, in_grads, wants):
        if g is None or not want:
            continue
        g = convert_to_tensor(g)
        if g.dtype != t.dtype:
            raise DTypeError(f"the gradient rule of {node.type} gave a {g.dtype.name} gradient for "
                             f"{t.dtype.name} input '{t.name}' (a graphc bug)")
        if not compatible(t.shape, g.shape):
            raise ShapeError(f"the gradient rule of {node.type} gave shape {format_shape(g.shape)} for "
                             f"input '{t.name}' of shape {format_shape(t.shape)} (a graphc bug)")
        grads.setdefault(t, []).append(g)


def hessians(ys: Any, xs: Any, name: str = "hessians") -> list[Tensor]:
    """The Hessian of sum(ys) with respect to each x, of shape x.shape + x.shape.

    Built row by row (one second gradient per element of x), so meant for small x.
    """
    xs_list, _ = _as_list(xs)
    results = []
    for x in xs_list:
        xt = convert_to_tensor(x)
        if xt.size is None:
            raise ShapeError(f"hessians needs x of fully known shape, got {format_shape(xt.shape)}")
        if xt.size > 4096:
            raise GraphcError(f"hessians builds one gradient per element; {xt.size} elements is too many")
        (g,) = gradients(ys, [x], name=name, unconnected_gradients="zero")
        with xt.graph.as_default():
            flat = array.reshape(g, [-1])
            rows = [gradients(flat[i], [x], name=name, unconnected_gradients="zero")[0] for i in range(xt.size)]
            results.append(array.reshape(array.stack(rows), tuple(xt.shape) * 2))
    return results

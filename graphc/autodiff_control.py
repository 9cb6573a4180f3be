"""Gradients of loops and branches (the While and If ops of graphc/ops/loops.py).

They live above the API, beside graphc.autodiff, because differentiating a loop means
differentiating its body: the rules call `gradients` on sub-graphs.

While, reverse mode: the forward loop is run as its twin with `history` (the same node with one
more output per loop value: the values each iteration started from, stacked; graphc.passes.cse
merges a loop and its twin, so the forward pass runs once). The backward loop runs as many
iterations as the forward one did, in reverse order. Its iteration k takes the loop values
iteration k started from, recomputes the body's intermediate values from them (keeping one copy
of the loop values per iteration, not of every intermediate), and applies the body's
vector-Jacobian product: the gradient of the loop values flows to iteration k - 1, gradients of
captured tensors (weights) are summed over iterations, and gradients of the sequences' elements
are stacked per iteration, like the values a scan produces. The backward loop is itself a While,
so it can be differentiated again.

If: the gradient is an If on the same predicate whose branches are the gradients of the two
branches: only the taken branch's gradient runs.
"""
from __future__ import annotations

from typing import Any

from .api import array, math
from .api.control_flow import _functions, _trace, cond, while_loop
from .api.convert import apply_op
from .autodiff import gradients
from .ir.dtypes import int64
from .ir.function import inline
from .ir.graph import get_default_graph
from .ir.tensor import Tensor
from .ops import register_gradient
from .ops.loops import static_trip


def _float(t: Tensor) -> bool:
    return t.dtype.is_floating


@register_gradient("While")
def _while_grad(build: Any, node: Any, *grads: Tensor) -> list[Tensor | None]:
    attrs = dict(node.attrs)
    n = attrs["n_carries"]
    trip, carries, sequences, captures = node.op.split(node.inputs, attrs)
    body = attrs["body"]
    n_values = len(body.results) - n
    g_final = list(grads[:n])
    g_values = list(grads[n:n + n_values])
    g_history = list(grads[n + n_values + 1:]) if attrs["history"] else []
    # Keep each iteration's loop values when the loop has a bound known while compiling (a
    # constant trip count, or sequences); otherwise recompute them from the initial values.
    keep = attrs["history"] or bool(sequences) or static_trip(trip) is not None
    if keep:
        twin = node if attrs["history"] else apply_op("While", list(node.inputs), {**attrs, "history": True},
                                                      node.name.rsplit("/", 1)[-1] + "_history", graph=node.graph)
        history = list(twin.outputs[n + n_values + 1:])
    else:
        twin, history = node, []
    count = twin.outputs[n + n_values]

    fc = [k for k in range(n) if _float(carries[k])]
    fs = [k for k in range(len(sequences)) if _float(sequences[k])]
    fk = [k for k in range(len(captures)) if _float(captures[k])]
    fv = [v for v in range(n_values) if _float(body.results[n + v])]
    if not (fc or fs or fk):
        return [None] * len(node.inputs)
    graph = node.graph
    init = [g_final[k] for k in fc] + [array.zeros_like(captures[k]) for k in fk]
    seq_inputs = history + [g_values[v] for v in fv] + [g_history[k] for k in fc if g_history] + list(sequences)
    cap_inputs = [count] + list(captures) + ([] if keep else list(carries))
    specs = [(int64, (), "iteration")]
    specs += [(t.dtype, t.shape, f"grad_{i}") for i, t in enumerate(init)]
    specs += [(t.dtype, None if t.shape is None else t.shape[1:], f"at_{i}") for i, t in enumerate(seq_inputs)]
    specs += [(t.dtype, t.shape, f"captured_{i}") for i, t in enumerate(cap_inputs)]

    def step(args: list[Tensor]) -> list[list[Tensor]]:
        j, rest = args[0], args[1:]
        g_c, g_acc = rest[:len(fc)], rest[len(fc):len(init)]
        slices = rest[len(init):len(init) + len(seq_inputs)]
        at_count = rest[len(init) + len(seq_inputs)]
        caps = rest[len(init) + len(seq_inputs) + 1:len(init) + len(seq_inputs) + 1 + len(captures)]
        h = n if keep else 0
        g_y = slices[h:h + len(fv)]
        g_h = slices[h + len(fv):h + len(fv) + (len(fc) if g_history else 0)]
        seq_k = slices[len(slices) - len(sequences):] if sequences else []
        k = math.subtract(math.subtract(at_count, array_one(at_count)), j)
        c_k = slices[:n] if keep else _recompute(body, k, rest[len(rest) - n:], caps)
        outs = inline(body, get_default_graph(), [k, *c_k, *seq_k, *caps])
        ys = [outs[c] for c in fc] + [outs[n + v] for v in fv]
        seeds = list(g_c) + list(g_y)
        xs = [c_k[c] for c in fc] + [seq_k[s] for s in fs] + [caps[c] for c in fk]
        back = gradients(ys, xs, grad_ys=seeds, unconnected_gradients="zero")
        g_prev = back[:len(fc)]
        if g_history:
            g_prev = [math.add(g, h) for g, h in zip(g_prev, g_h)]
        g_seq = back[len(fc):len(fc) + len(fs)]
        g_caps = [math.add(a, g) for a, g in zip(g_acc, back[len(fc) + len(fs):])]
        return [g_prev + g_caps, g_seq]

    with graph.as_default(), graph.name_scope(f"{node.name.rsplit('/', 1)[-1]}_backward"):
        traced = _trace(graph, f"{node.name}_backward/body", specs, step)
        (back_fn,), extra = _functions([traced])
        trip_in = count
        backward = apply_op("While", [trip_in, *init, *seq_inputs, *cap_inputs, *extra],
                            {"cond": None, "body": back_fn, "n_carries": len(init), "n_sequences": len(seq_inputs),
                             "reverse": not attrs["reverse"]}, "While", graph=graph)
    finals = backward.outputs[:len(init)]
    stacked = backward.outputs[len(init):len(init) + len(fs)]
    out: list[Tensor | None] = [None] * len(node.inputs)
    for i, c in enumerate(fc):
        out[1 + c] = finals[i]
    for i, s in enumerate(fs):
        out[1 + n + s] = stacked[i]
    for i, c in enumerate(fk):
        out[1 + n + len(sequences) + c] = finals[len(fc) + i]
    return out


def _recompute(body: Any, k: Tensor, initial: list[Tensor], caps: list[Tensor]) -> list[Tensor]:
    """The loop values iteration k started from: the body run k times from the initial values
    (an inner loop; quadratic in the trip count, used only when no bound is known)."""
    def step(t: Tensor, *values: Tensor) -> list[Tensor]:
        return [t + array_one(t), *inline(body, get_default_graph(), [t, *values, *caps])[:len(values)]]
    start = [constant_zero(k), *initial]
    return list(while_loop(lambda t, *values: math.less(t, k), step, start, return_same_structure=True))[1:]


def constant_zero(like: Tensor) -> Tensor:
    return array.zeros_like(like)


def array_one(like: Tensor) -> Tensor:
    return array.ones_like(like)


@register_gradient("If")
def _if_grad(build: Any, node: Any, *grads: Tensor) -> list[Tensor | None]:
    pred, captures = node.inputs[0], list(node.inputs[1:])
    fk = [k for k, t in enumerate(captures) if _float(t)]
    fo = [o for o, t in enumerate(node.outputs) if _float(t)]
    if not fk or not fo:
        return [None] * len(node.inputs)
    seeds = [grads[o] for o in fo]

    def branch_gradient(fn: Any) -> Any:
        def run() -> list[Tensor]:
            fg = get_default_graph()
            args = [fg.capture(c) for c in captures]
            outs = inline(fn, fg, args)
            local_seeds = [fg.capture(s) for s in seeds]
            back = gradients([outs[o] for o in fo], [args[k] for k in fk], grad_ys=local_seeds,
                             unconnected_gradients="zero")
            return list(back)
        return run

    with node.graph.as_default():
        result = cond(pred, branch_gradient(node.attrs["then_branch"]), branch_gradient(node.attrs["else_branch"]),
                      strict=True, name=f"{node.name.rsplit('/', 1)[-1]}_grad")
    out: list[Tensor | None] = [None] * len(node.inputs)
    for i, k in enumerate(fk):
        out[1 + k] = result[i]
    return out

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
from .api.control import identity
from .api.convert import apply_op
from .autodiff import gradients
from .ir.dtypes import int64
from .ir.function import Function, copy_nodes, inline
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
    fc = [k for k in range(n) if _float(carries[k])]
    fs = [k for k in range(len(sequences)) if _float(sequences[k])]
    fk = [k for k in range(len(captures)) if _float(captures[k])]
    fv = [v for v in range(n_values) if _float(body.results[n + v])]
    if not (fc or fs or fk):
        return [None] * len(node.inputs)
    g_final = list(grads[:n])
    g_values = [grads[n + v] for v in fv]
    g_history = [grads[n + n_values + 1 + k] for k in fc] if attrs["history"] else []
    # Keep each iteration's loop values when the loop has a bound known while compiling (a
    # constant trip count, or sequences); otherwise recompute them from the initial values.
    keep = attrs["history"] or bool(sequences) or static_trip(trip) is not None
    graph = node.graph
    plan = _Backward(node, fc, fs, fk, fv, keep)
    init = [g_final[k] for k in fc] + [array.zeros_like(captures[k]) for k in fk]
    with graph.as_default(), graph.name_scope(f"{node.name.rsplit('/', 1)[-1]}_backward"):
        first = plan.trace(graph, init, g_values, g_history, residuals=[])
        residuals = plan.residuals(first) if keep and not attrs["history"] else []
        if keep:
            extended = body if not residuals else Function(
                f"{body.name}+residuals", body.graph, body.args, body.results + [r for r, _ in residuals], origin=body.root)
            twin = node if attrs["history"] else apply_op(
                "While", list(node.inputs), {**attrs, "body": extended, "history": True},
                node.name.rsplit("/", 1)[-1] + "_history", graph=graph)
            twin_values = len(twin.attrs["body"].results) - n
            count = twin.outputs[n + twin_values]
            history = list(twin.outputs[n + twin_values + 1:])
            stacked_residuals = list(twin.outputs[n + n_values:n + twin_values])
        else:
            count, history, stacked_residuals = node.outputs[n + n_values], [], []
        traced = plan.retrace(graph, first, residuals) if residuals else first
        seq_inputs = history + stacked_residuals + g_values + g_history + list(sequences)
        cap_inputs = [count] + list(captures) + ([] if keep else list(carries))
        (back_fn,), extra = _functions([traced])
        backward = apply_op("While", [count, *init, *seq_inputs, *cap_inputs, *extra],
                            {"cond": None, "body": back_fn, "n_carries": len(init), "n_sequences": len(seq_inputs),
                             "reverse": not attrs["reverse"]}, "While", graph=graph)
    finals = list(backward.outputs[:len(init)])
    stacked = backward.outputs[len(init):len(init) + len(fs)]
    products = list(backward.outputs[len(init) + len(fs):len(backward.outputs) - 1])
    with graph.as_default(), graph.name_scope(f"{node.name.rsplit('/', 1)[-1]}_weights"):
        for i, terms in plan.hoisted:   # sum over iterations of A_t^T G_t = one GEMM over all rows
            total = None
            for _ in range(terms):
                a, g = products[0], products[1]
                products = products[2:]
                rows_a = array.reshape(a, [-1, a.shape[-1]])
                rows_g = array.reshape(g, [-1, g.shape[-1]])
                term = math.matmul(rows_a, rows_g, transpose_a=True)
                total = term if total is None else math.add(total, term)
            finals[len(fc) + i] = total
    out: list[Tensor | None] = [None] * len(node.inputs)
    for i, c in enumerate(fc):
        out[1 + c] = finals[i]
    for i, q in enumerate(fs):
        out[1 + n + q] = stacked[i]
    for i, c in enumerate(fk):
        out[1 + n + len(sequences) + c] = finals[len(fc) + i]
    return out


def _products(g: Tensor) -> list[tuple[Tensor, Tensor]] | None:
    """g as a sum of products A^T @ G of matrices (the gradient of a weight a body multiplies
    by), as (A, G) pairs; None when it is anything else. Summed over iterations, such terms
    are one matrix product over all iterations' rows, computed after the backward loop instead
    of a small product and an accumulation per iteration."""
    node = g.node
    if node.type == "MatMul":
        a, b = node.inputs
        if (node.attrs["transpose_a"] and not node.attrs["transpose_b"] and a.shape is not None and b.shape is not None
                and len(a.shape) == 2 and len(b.shape) == 2 and None not in a.shape and None not in b.shape):
            return [(a, b)]
        return None
    if node.type in ("Add", "AddN") and all(t.shape == g.shape for t in node.inputs):
        parts = [_products(t) for t in node.inputs]
        if all(p is not None for p in parts):
            return [pair for p in parts for pair in p]
    return None


class _Backward:
    """The backward loop's body: iteration j handles forward iteration k = count - 1 - j; it
    recomputes that iteration's body from the loop values it started from, then applies the
    body's vector-Jacobian product. With `residuals`, the values of the recomputed body the
    product needs come from the forward loop instead (stacked per iteration)."""

    def __init__(self, node: Any, fc: list[int], fs: list[int], fk: list[int], fv: list[int], keep: bool) -> None:
        self.node, self.fc, self.fs, self.fk, self.fv, self.keep = node, fc, fs, fk, fv, keep
        attrs = node.attrs
        self.n = attrs["n_carries"]
        _, self.carries, self.sequences, self.captures = node.op.split(node.inputs, attrs)
        self.body = attrs["body"]
        self.recomputed: dict[Tensor, Tensor] = {}   # body tensor -> its copy in the traced body
        self.copies: set[int] = set()                 # ids of the nodes of that copy
        self.hoisted: list[tuple[int, int]] = []      # (weight, its products) summed after the loop

    def specs(self, init: list[Tensor], slices: list[tuple[Any, Any]], caps: list[Tensor]) -> list[tuple[Any, Any, str]]:
        out = [(int64, (), "iteration")]
        out += [(t.dtype, t.shape, f"grad_{i}") for i, t in enumerate(init)]
        out += [(d, s, f"at_{i}") for i, (d, s) in enumerate(slices)]
        out += [(t.dtype, t.shape, f"captured_{i}") for i, t in enumerate(caps)]
        return out

    def trace(self, graph: Any, init: list[Tensor], g_values: list[Tensor], g_history: list[Tensor],
              residuals: list[Any]) -> Any:
        n, fc, fs, fk = self.n, self.fc, self.fs, self.fk
        history_types = [(a.dtype, a.shape) for a in self.body.args[1:1 + n]] if self.keep else []
        row = [(t.dtype, None if t.shape is None else t.shape[1:]) for t in g_values + g_history + self.sequences]
        caps = [self.node.inputs[0]] + self.captures + ([] if self.keep else self.carries)
        caps[0] = caps[0] if caps[0].dtype is int64 else caps[0]
        specs = self.specs(init, history_types + row, caps)
        specs[1 + len(init) + len(history_types) + len(row)] = (int64, (), "count")

        def step(args: list[Tensor]) -> list[list[Tensor]]:
            j, rest = args[0], args[1:]
            g_c, g_acc = rest[:len(fc)], rest[len(fc):len(init)]
            slices = rest[len(init):len(init) + len(history_types) + len(row)]
            tail = rest[len(init) + len(slices):]
            at_count, caps_k = tail[0], tail[1:1 + len(self.captures)]
            h = len(history_types)
            g_y = slices[h:h + len(g_values)]
            g_h = slices[h + len(g_values):h + len(g_values) + len(g_history)]
            seq_k = slices[len(slices) - len(self.sequences):] if self.sequences else []
            k = math.subtract(math.subtract(at_count, array_one(at_count)), j)
            c_k = slices[:n] if self.keep else _recompute(self.body, k, tail[len(tail) - n:], caps_k)
            if not self.keep:   # partial derivatives: the weights' path through the recomputation is not one
                caps_k = [identity(c) for c in caps_k]
            before = get_default_graph().version
            outs = inline(self.body, get_default_graph(), [k, *c_k, *seq_k, *caps_k], self.recomputed)
            self.copies = {node.id for node in get_default_graph().get_operations()[before:]}
            ys = [outs[c] for c in fc] + [outs[n + v] for v in self.fv]
            xs = [c_k[c] for c in fc] + [seq_k[q] for q in fs] + [caps_k[c] for c in fk]
            back = gradients(ys, xs, grad_ys=list(g_c) + list(g_y), unconnected_gradients="zero")
            g_prev = back[:len(fc)]
            if g_h:
                g_prev = [math.add(g, hh) for g, hh in zip(g_prev, g_h)]
            g_seq = back[len(fc):len(fc) + len(fs)]
            g_caps, self.hoisted, products = [], [], []
            for i, (acc, g) in enumerate(zip(g_acc, back[len(fc) + len(fs):])):
                terms = _products(g)
                if terms is None:
                    g_caps.append(math.add(acc, g))
                    continue
                g_caps.append(acc)   # unchanged: the sum over iterations is one product after the loop
                self.hoisted.append((i, len(terms)))
                products += [x for pair in terms for x in pair]
            return [g_prev + g_caps, g_seq + products]

        self.layout = (len(init), len(history_types))
        return _trace(graph, f"{self.node.name}_backward/body", specs, step)

    def residuals(self, traced: Any) -> list[tuple[Tensor, Tensor]]:
        """(body tensor, its copy) for each recomputed value the rest of the backward body
        reads: what the forward loop can stack instead (constants are copied, not stacked)."""
        copy_to_body = {id(c): b for b, c in self.recomputed.items()}
        found: dict[int, tuple[Tensor, Tensor]] = {}
        for node in traced.graph.get_operations():
            if node.id in self.copies:
                continue
            for t in node.inputs:
                if t.node.id in self.copies and t.node.type != "Const" and id(t) in copy_to_body:
                    found.setdefault(id(t), (copy_to_body[id(t)], t))
        return list(found.values())

    def retrace(self, graph: Any, first: Any, residuals: list[tuple[Tensor, Tensor]]) -> Any:
        """The backward body again, reading the residuals as rows of sequences instead of
        recomputing them (copies of `first`'s nodes but the recomputed ones)."""
        n_init, n_history = self.layout
        args1 = first.args
        insert_at = 1 + n_init + n_history
        specs = [(t.dtype, t.shape, t.node.name) for t in args1]
        residual_specs = [(c.dtype, c.shape, f"residual_{i}") for i, (_, c) in enumerate(residuals)]
        specs = specs[:insert_at] + residual_specs + specs[insert_at:]
        copies = self.copies

        def step(args: list[Tensor]) -> list[Tensor]:
            value = dict(zip(args1[:insert_at], args[:insert_at]))
            value.update(zip(args1[insert_at:], args[insert_at + len(residuals):]))
            value.update({c: a for (_, c), a in zip(residuals, args[insert_at:insert_at + len(residuals)])})
            copied = copy_nodes(get_default_graph(), first.graph, first.results, value, "the backward loop",
                                skip=lambda node: node.id in copies and node.type != "Const")
            return [copied[t] for t in first.results]

        return _trace(graph, f"{self.node.name}_backward/body", specs, step)


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

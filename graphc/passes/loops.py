"""Loop restructuring (the "loops" pass): what a loop can do without, and what it can do once.

Runs on the program that owns the loops while their bodies are still as built (run_pipeline
optimizes bodies later, just before fusion) and after a first CSE merged each loop with the twin
its gradient made, so it sees which of a loop's outputs anybody reads. For each While node:

1. Its count is folded: a counted loop (no condition) whose trip count and sequence lengths are
   known runs a known number of iterations. (The backward loop of a gradient takes that count
   as its trip count.)
2. What nobody reads goes: stacked values no node uses; loop values whose final value and
   history nobody reads and that no kept result needs. A loop value the body passes through
   unchanged becomes a captured value (its final value is its initial value).
3. Products are narrowed: when only some of the column blocks of a product (`Split` of a
   MatMul's output) are used, and its right operand does not change in the loop, the body
   multiplies by those columns only. (The backward loop of an RNN computes the gradient of
   concat([x_t, h]) and keeps only h's part when nobody asks for x's gradient.)
4. Products of a concatenation are split: concat([x_t, h]) @ W = x_t @ W[:d] + h @ W[d:] when
   x_t comes from a sequence and W does not change in the loop...
5. ...so that hoisting can take x_t @ W[:d] out: values that do not change in the loop are
   computed once before it and captured; products of a sequence's element by a matrix that
   does not change (an RNN's input projection, and elementwise work on it) become one product
   of the whole sequence before the loop, which the loop then walks as a new sequence.

A loop the pass changes gets new body (and condition) Functions with no origin: they are
different functions from the ones the user wrote, so later CSE never merges them as twins.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ir.function import Function
from ..ir.graph import Graph
from ..ir.node import Node
from ..ir.tensor import Tensor
from ..ops import get_op
from ..program import Program, ProgramInput
from ..program.from_graph import needed_nodes
from .rewriter import Rewriter, copy_node

INVARIANT, VARYING = "invariant", "varying"   # classes of body tensors; ("seq", k) for sequence k's rows
# Ops that can be computed before a loop: they cannot fail (no index checks), so computing them
# when the loop runs no iteration changes nothing. Elementwise ops are hoistable too.
HOISTABLE = frozenset({"MatMul", "StridedSlice", "Reshape", "Transpose", "BroadcastTo", "ExpandDims", "Squeeze",
                       "Concat", "Split", "Sum", "Prod", "Mean", "Max", "Min", "LogSumExp", "Identity", "Fill",
                       "Const"})


def restructure_loops(program: Program) -> Program:
    """The pass: repeated while it changes something (pruning a backward loop frees outputs of
    the forward loop before it). Logs one line."""
    log, total = list(program.log), 0
    for _ in range(4):
        changed: list[bool] = []
        program = _restructure_once(program, changed)
        total += len(changed)
        if not changed:
            break
    out = program.derive(program.outputs, program.updates, program.effects)
    out.log = log + [f"loops: {total} loop rewrites" if total else "loops: nothing"]
    return out


def _restructure_once(program: Program, changed: list[bool]) -> Program:
    live = program.nodes()
    if not any(n.type == "While" for n in live):
        return program
    used: set[Tensor] = set(program.results) | set(program.effects)
    for n in live:
        used.update(n.inputs)

    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        if node.type != "While" or node.attrs["body"].program is None:
            return None
        out = _LoopRewrite(rw, node, inputs, [t in used for t in node.outputs]).run()
        if out is not None:
            changed.append(True)
        return out

    return Rewriter(program, "loops").run(rule)


# ----------------------------------------------------------------------------------- helpers
def _placeholder(graph: Graph, dtype: Any, shape: Any, name: str) -> Tensor:
    return graph.create_node(get_op("Placeholder"), [], {"dtype": dtype, "shape": tuple(shape)}, name,
                             exact_name=True).outputs[0]


def _live_nodes(results: Sequence[Tensor], stop: set[Tensor] = frozenset()) -> list[Node]:
    """The nodes `results` need, stopping at `stop`, in creation order."""
    return needed_nodes([t.node for t in results if t not in stop], set(stop))


def _program(graph: Graph, args: list[Tensor], results: list[Tensor], effects: list[Tensor], note: str) -> Program:
    return Program(graph, [ProgramInput("feed", a, a) for a in args], results, [], effects, [note])


def _slice_spec(axis: int, lo: int, hi: int) -> tuple:
    return (("slice", None, None, None),) * axis + (("slice", lo, hi, 1), ("ellipsis",))


class _LoopRewrite:
    """One While node: decide what changes, build the new body and the new node."""

    def __init__(self, rw: Rewriter, node: Node, inputs: list[Tensor], used: list[bool]) -> None:
        self.rw, self.node, self.inputs, self.used = rw, node, inputs, used
        a = node.attrs
        self.n, self.m = a["n_carries"], a["n_sequences"]
        self.body: Program = a["body"].program
        self.cond: Program | None = a["cond"].program if a["cond"] is not None else None
        self.v = len(self.body.outputs) - self.n
        self.trip, self.carries, self.sequences, self.captures = node.op.split(inputs, a)
        self.count_index = self.n + self.v

    # ------------------------------------------------------------------ the whole rewrite
    def run(self) -> list[Tensor] | None:
        a = self.node.attrs
        count_const = self._folded_count()
        keep_carry, identity, keep_value = self._prune()
        changed = not (all(keep_carry) and not any(identity) and all(keep_value) and count_const is None)
        body_args = self.body.input_tensors()
        n, m = self.n, self.m
        # the new argument list: i, kept carries, sequences, captures, passed-through carries
        carry_ix = [k for k in range(n) if keep_carry[k] and not identity[k]]
        ident_ix = [k for k in range(n) if identity[k] and self._carry_needed_as_value(k, keep_carry, keep_value)]
        old_args = ([body_args[0]] + [body_args[1 + k] for k in carry_ix] + body_args[1 + n:1 + n + m]
                    + body_args[1 + n + m:] + [body_args[1 + k] for k in ident_ix])
        results = ([self.body.outputs[k] for k in carry_ix]
                   + [self.body.outputs[n + j] for j in range(self.v) if keep_value[j]])
        new_carries = [self.carries[k] for k in carry_ix]
        new_captures = list(self.captures) + [self.carries[k] for k in ident_ix]
        sequences = list(self.sequences)
        # copy the body, with the local rewrites (narrowing, splitting products)
        graph, value, new_args = self._fresh(old_args)
        classes = {t: c for t, c in zip(new_args, self._arg_classes(len(carry_ix), m, len(new_captures)))}
        local = _LocalRewrites(graph, classes, self.body, results, split_products=self.cond is None)
        new_results = [local.copy(t, value) for t in results]
        new_effects = [local.copy(t, value) for t in self.body.effects]
        changed = changed or local.fired > 0
        # hoisting out of the loop
        hoist = _Hoisting(self.rw, self.node, classes, sequences, new_captures, new_args, len(carry_ix), m)
        hoisted = hoist.plan(new_results + new_effects) if self.cond is None else []
        if not (changed or hoisted):
            return None
        graph2, args2, results2, effects2 = hoist.rebuild(graph, new_args, new_results, new_effects, hoisted)
        sequences, new_captures = hoist.sequences, hoist.captures
        n2, m2 = len(carry_ix), len(sequences)
        body = _program(graph2, args2, results2, effects2, f"loops: restructured from {len(body_args)} arguments")
        new_body = Function(a["body"].name, graph2, args2, results2, program=body)
        new_cond = a["cond"]   # loops with a condition keep their arguments (see _prune)
        attrs = dict(a, body=new_body, cond=new_cond, n_carries=n2, n_sequences=m2)
        history_ix = carry_ix if a["history"] else []
        node = self.rw.graph.create_node(self.node.op, [self.trip] + new_carries + sequences + new_captures, attrs,
                                         self.node.name, source=self.node.source, exact_name=True)
        outs = node.outputs
        mapped: list[Tensor | None] = [None] * len(self.node.outputs)
        for pos, k in enumerate(carry_ix):
            mapped[k] = outs[pos]
        for k in range(n):
            if identity[k]:
                mapped[k] = self.carries[k]
        pos = n2
        for j in range(self.v):
            if keep_value[j]:
                mapped[n + j] = outs[pos]
                pos += 1
        mapped[self.count_index] = count_const if count_const is not None else outs[pos]
        for hpos, k in enumerate(history_ix):
            mapped[self.count_index + 1 + k] = outs[pos + 1 + hpos]
        return [t if t is not None else old for t, old in zip(mapped, self.node.outputs)]

    # ------------------------------------------------------------------ 1 and 2: count, pruning
    def _folded_count(self) -> Tensor | None:
        """The count as a constant when the loop has no condition and its bound is known."""
        if self.node.attrs["cond"] is not None or not self.used[self.count_index]:
            return None
        capacity = self.node.op.capacity(self.inputs, self.node.attrs)
        if capacity is None or self.trip.static_value is None:
            return None
        return self.rw.constant(capacity, self.trip.dtype, self.node)

    def _prune(self) -> tuple[list[bool], list[bool], list[bool]]:
        """(carries kept, carries the body passes through unchanged, stacked values kept)."""
        n, a = self.n, self.node.attrs
        body_args = self.body.input_tensors()
        history_used = ([self.used[self.count_index + 1 + k] for k in range(n)] if a["history"] else [False] * n)
        keep_value = [self.used[n + j] for j in range(self.v)]
        identity = [self.body.outputs[k] is body_args[1 + k] and not history_used[k] for k in range(n)]
        keep = [self.used[k] or history_used[k] for k in range(n)]
        if self.cond is not None or a["history"]:
            # a condition reads the loop values, and history outputs exist for every loop value:
            # such loops keep their arguments as they are
            return [True] * n, [False] * n, keep_value
        while True:
            roots = ([self.body.outputs[k] for k in range(n) if keep[k] and not identity[k]]
                     + [self.body.outputs[n + j] for j in range(self.v) if keep_value[j]] + self.body.effects)
            deps = _arg_uses(roots, body_args)
            grown = [keep[k] or ((1 + k) in deps) for k in range(n)]
            if grown == keep:
                break
            keep = grown
        return keep, identity, keep_value

    def _carry_needed_as_value(self, k: int, keep: list[bool], keep_value: list[bool]) -> bool:
        n = self.n
        roots = ([self.body.outputs[j] for j in range(n) if keep[j]]
                 + [self.body.outputs[n + j] for j in range(self.v) if keep_value[j]] + self.body.effects)
        return (1 + k) in _arg_uses(roots, self.body.input_tensors())

    # ------------------------------------------------------------------ new programs
    def _fresh(self, old_args: list[Tensor]) -> tuple[Graph, dict[Tensor, Tensor], list[Tensor]]:
        graph = Graph(unique_names=False)
        value: dict[Tensor, Tensor] = {}
        new_args = []
        for t in old_args:
            new = _placeholder(graph, t.dtype, t.shape, t.node.name)
            value[t] = new
            new_args.append(new)
        return graph, value, new_args

    @staticmethod
    def _arg_classes(n: int, m: int, c: int) -> list[Any]:
        return [VARYING] + [VARYING] * n + [("seq", q) for q in range(m)] + [INVARIANT] * c


def _arg_uses(roots: Sequence[Tensor], args: Sequence[Tensor]) -> set[int]:
    """Positions of `args` that `roots` depend on."""
    position = {t: i for i, t in enumerate(args)}
    found: set[int] = set()
    for t in roots:
        if t in position:
            found.add(position[t])
    for node in _live_nodes(roots, set(args)):
        for t in node.inputs:
            if t in position:
                found.add(position[t])
    return found


def _class_of(node: Node, input_classes: list[Any]) -> Any:
    """A node's class from its inputs': varying if any input varies; rows of one sequence if it
    maps such rows by an op hoisting can batch; invariant if all inputs are."""
    if (node.op.stateful or node.op.has_side_effect or getattr(node.op, "functions", ())
            or not (node.op.is_elementwise or node.type in HOISTABLE)):
        return VARYING
    if VARYING in input_classes:
        return VARYING
    seqs = {c for c in input_classes if c != INVARIANT}
    if not seqs:
        return INVARIANT
    if len(seqs) > 1 or len(node.outputs) != 1:
        return VARYING
    out = node.outputs[0]
    rank = len(out.shape)
    if node.type == "MatMul":
        a, b = node.inputs
        ok = (input_classes[1] == INVARIANT and input_classes[0] != INVARIANT and len(a.shape) == 2
              and len(b.shape) == 2 and not node.attrs["transpose_a"])
        return seqs.pop() if ok else VARYING
    if node.op.is_elementwise:
        for t, c in zip(node.inputs, input_classes):
            if (c == INVARIANT and len(t.shape) > rank) or (c != INVARIANT and len(t.shape) != rank):
                return VARYING
        return seqs.pop()
    return VARYING


class _LocalRewrites:
    """Copies the body into a new graph, narrowing products whose column blocks are partly
    unused and splitting products of concatenations (steps 3 and 4), and records each new
    tensor's class (invariant, varying, rows of a sequence)."""

    def __init__(self, graph: Graph, classes: dict[Tensor, Any], body: Program, results: list[Tensor],
                 split_products: bool) -> None:
        self.graph, self.classes, self.fired = graph, classes, 0
        self.split_products = split_products   # only where hoisting follows (two products instead of one)
        self.uses: dict[Tensor, int] = {}
        self.split_used: dict[int, set[int]] = {}
        for node in _live_nodes(list(results) + list(body.effects), set(body.input_tensors())):
            for t in node.inputs:
                self.uses[t] = self.uses.get(t, 0) + 1
                if t.node.type == "Split":
                    self.split_used.setdefault(t.node.id, set()).add(t.index)
        for t in list(results) + list(body.effects):
            self.uses[t] = self.uses.get(t, 0) + 1
            self.split_used.setdefault(t.node.id, set()).add(t.index)

    def copy(self, root: Tensor, value: dict[Tensor, Tensor]) -> Tensor:
        for node in _live_nodes([root], set(value)):
            if node.outputs[0] in value:
                continue
            inputs = [value[t] for t in node.inputs]
            outs = self._rewrite(node, inputs, value)
            if outs is None:
                outs = list(copy_node(self.graph, node, inputs).outputs)
                cls = _class_of(node, [self.classes[t] for t in inputs])
                for t in outs:
                    self.classes[t] = cls
            value.update(zip(node.outputs, outs))
        return value[root]

    def emit(self, op: str, inputs: list[Tensor], attrs: dict[str, Any], like: Node) -> Tensor:
        node = self.graph.create_node(get_op(op), inputs, attrs, like.name, source=like.source, exact_name=True)
        self.classes[node.outputs[0]] = _class_of(node, [self.classes[t] for t in inputs])
        return node.outputs[0]

    def _rewrite(self, node: Node, inputs: list[Tensor], value: dict[Tensor, Tensor]) -> list[Tensor] | None:
        if node.type == "Split":
            return self._narrow(node, inputs)
        if node.type == "MatMul" and self.split_products:
            return self._split_concat(node, inputs)
        return None

    def _narrow(self, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        """Split(a @ W, columns) with some parts unused -> (a @ W[:, used columns]) split."""
        prod = node.inputs[0]
        if len(inputs) != 1 or prod.node.type != "MatMul" or self.uses.get(prod, 0) != 1:
            return None
        mm = inputs[0].node
        if mm.type != "MatMul" or self.classes.get(mm.inputs[1]) != INVARIANT or len(prod.shape) != 2:
            return None
        axis = node.attrs["axis"] % 2
        if axis != 1:
            return None
        used = self.split_used.get(node.id, set())
        sizes = [t.shape[1] for t in node.outputs]
        if not used or len(used) == len(sizes):
            return None
        first, last = min(used), max(used)
        lo, hi = sum(sizes[:first]), sum(sizes[:last + 1])
        a, w = mm.inputs
        tb = mm.attrs["transpose_b"]
        w_part = self.emit("StridedSlice", [w], {"spec": _slice_spec(0 if tb else 1, lo, hi)}, mm)
        narrow = self.emit("MatMul", [a, w_part], dict(mm.attrs), mm)
        kept = sizes[first:last + 1]
        if len(kept) == 1:
            parts = [narrow]
        else:
            split = self.graph.create_node(get_op("Split"), [narrow], {"axis": 1, "num_split": None,
                                                                       "size_splits": tuple(kept)},
                                           node.name, source=node.source, exact_name=True)
            parts = list(split.outputs)
            for t in parts:
                self.classes[t] = self.classes[narrow]
        self.fired += 1
        outs: list[Tensor] = []
        for k, t in enumerate(node.outputs):
            outs.append(parts[k - first] if first <= k <= last else t)   # unused parts stay unmapped
        return outs

    def _split_concat(self, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        """concat([x_t, h], 1) @ W -> x_t @ W[:d] + h @ W[d:], when some parts are rows of a
        sequence (hoistable) and others vary, and W does not change in the loop."""
        a, w = inputs
        cat = a.node
        if (cat.type != "Concat" or self.classes.get(w) != INVARIANT or node.attrs["transpose_a"]
                or len(a.shape) != 2 or len(w.shape) != 2 or cat.attrs["axis"] % 2 != 1):
            return None
        parts = list(cat.inputs)
        kinds = [self.classes[p] != VARYING and self.classes[p] != INVARIANT for p in parts]
        if all(kinds) or not any(kinds):
            return None
        runs: list[tuple[bool, list[Tensor]]] = []
        for p, k in zip(parts, kinds):
            if runs and runs[-1][0] == k:
                runs[-1][1].append(p)
            else:
                runs.append((k, [p]))
        tb = node.attrs["transpose_b"]
        total: Tensor | None = None
        lo = 0
        for _, group in runs:
            width = sum(p.shape[1] for p in group)
            piece = group[0] if len(group) == 1 else self.emit("Concat", group, {"axis": 1}, cat)
            w_part = self.emit("StridedSlice", [w], {"spec": _slice_spec(1 if tb else 0, lo, lo + width)}, node)
            prod = self.emit("MatMul", [piece, w_part], dict(node.attrs), node)
            total = prod if total is None else self.emit("Add", [total, prod], {}, node)
            lo += width
        self.fired += 1
        return [total]


class _Hoisting:
    """Step 5: values that do not change in the loop, and sequence maps with a product in them,
    computed before the loop."""

    def __init__(self, rw: Rewriter, node: Node, classes: dict[Tensor, Any], sequences: list[Tensor],
                 captures: list[Tensor], args: list[Tensor], n: int, m: int) -> None:
        self.rw, self.node, self.classes = rw, node, classes
        self.sequences, self.captures = list(sequences), list(captures)
        self.args, self.n, self.m = args, n, m
        self.outer: dict[Tensor, Tensor] = {}      # body tensor -> the outer tensor (stacked rows for sequences)
        for q in range(m):
            self.outer[args[1 + n + q]] = sequences[q]
        for c, t in enumerate(captures):
            self.outer[args[1 + n + m + c]] = t
        self.has_product: dict[Tensor, bool] = {}
        self.reads_capture: dict[Tensor, bool] = {t: True for t in args[1 + n + m:]}
        self.added_sequences: list[Tensor] = []
        self.added_captures: list[Tensor] = []

    def plan(self, roots: list[Tensor]) -> list[Tensor]:
        """Body tensors to compute before the loop: boundary sequence maps with a product in
        them, then values that do not change and that the rest of the body reads."""
        nodes = _live_nodes(roots, set(self.args))
        for node in nodes:
            for t in node.outputs:
                self.has_product[t] = node.type == "MatMul" or any(self.has_product.get(i, False) for i in node.inputs)
                self.reads_capture[t] = any(self.reads_capture.get(i, False) for i in node.inputs)
        readers: dict[Tensor, list[Any]] = {}
        for node in nodes:
            for t in node.inputs:
                readers.setdefault(t, []).append(self.classes[node.outputs[0]])
        for t in roots:
            readers.setdefault(t, []).append(VARYING)
        seq_roots = [t for t in readers if isinstance(self.classes.get(t), tuple) and t.node.type != "Placeholder"
                     and self.has_product.get(t) and any(c == VARYING for c in readers[t])]
        stop = set(self.args) | set(seq_roots)
        rest = _live_nodes(roots, stop)
        readers2: dict[Tensor, list[Any]] = {t: [VARYING] for t in roots}
        for node in rest:
            for t in node.inputs:
                readers2.setdefault(t, []).append(self.classes[node.outputs[0]])
        inv_roots = [t for t in readers2 if self.classes.get(t) == INVARIANT and t.node.type != "Placeholder"
                     and self.reads_capture.get(t) and any(c != INVARIANT for c in readers2[t])]
        return seq_roots + inv_roots

    def rebuild(self, graph: Graph, args: list[Tensor], results: list[Tensor], effects: list[Tensor],
                hoisted: list[Tensor]) -> tuple[Graph, list[Tensor], list[Tensor], list[Tensor]]:
        new_graph = Graph(unique_names=False)
        value: dict[Tensor, Tensor] = {}
        new_args = [_placeholder(new_graph, t.dtype, t.shape, t.node.name) for t in args]
        value.update(zip(args, new_args))
        seq_args, cap_args = [], []
        for t in hoisted:
            outer = self._outer(t)
            name = f"hoisted/{t.node.name}"
            if isinstance(self.classes[t], tuple):
                self.added_sequences.append(outer)
                seq_args.append(_placeholder(new_graph, t.dtype, t.shape, name))
                value[t] = seq_args[-1]
            else:
                self.added_captures.append(outer)
                cap_args.append(_placeholder(new_graph, t.dtype, t.shape, name))
                value[t] = cap_args[-1]
        for node in _live_nodes(results + effects, set(value)):
            new = copy_node(new_graph, node, [value[t] for t in node.inputs])
            value.update(zip(node.outputs, new.outputs))
        n, m = self.n, self.m
        ordered = new_args[:1 + n + m] + seq_args + new_args[1 + n + m:] + cap_args
        self.sequences = self.sequences + self.added_sequences
        self.captures = self.captures + self.added_captures
        return new_graph, ordered, [value[t] for t in results], [value[t] for t in effects]

    def _outer(self, root: Tensor) -> Tensor:
        """The outer tensor for body tensor `root`: its value (invariant) or its rows stacked
        (a sequence map), built node by node before the loop. The new nodes are named
        "LOOP/hoisted/NODE" and keep the body node's source line."""
        graph = self.rw.graph
        for node in _live_nodes([root], set(self.outer)):
            inputs = [self.outer[i] for i in node.inputs]
            name = f"{self.node.name}/hoisted/{node.name}"

            def emit(op: str, args: list[Tensor], attrs: dict[str, Any], name: str = name, like: Node = node) -> Tensor:
                return graph.create_node(get_op(op), args, attrs, name, source=like.source).outputs[0]

            if node.type == "MatMul" and isinstance(self.classes[node.outputs[0]], tuple):
                rows = inputs[0]
                length, batch, depth = rows.shape
                prod = emit("MatMul", [emit("Reshape", [rows], {"shape": (length * batch, depth)}), inputs[1]],
                            dict(node.attrs))
                outs = [emit("Reshape", [prod], {"shape": (length, batch, prod.shape[1])})]
            else:
                same = not isinstance(self.classes[node.outputs[0]], tuple)
                types = [(o.dtype, o.shape) for o in node.outputs] if same else None
                outs = list(graph.create_node(node.op, inputs, dict(node.attrs), name, source=node.source,
                                              output_types=types).outputs)
            self.outer.update(zip(node.outputs, outs))
        return self.outer[root]

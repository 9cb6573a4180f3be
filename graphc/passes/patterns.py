"""Rewrite rules as data: named patterns over the program graph, in the spirit of PyTensor's
PatternNodeRewriter.

A rule says what it matches and what it builds:

    Rule("log(1+exp(x)) -> softplus(x)",
         Op("Log", Op("Add", 1, Op("Exp", "x"))),
         Op("Softplus", "x"))

- a pattern is an `Op(type, *input patterns, attrs=..., bind=name)`, a variable name (a str:
  any tensor; the same name twice must be the same tensor) or a number (a constant tensor all of
  whose elements equal it); `...` as the last input pattern lets a node have more inputs (an
  optional shape tensor); Add, Mul and the other commutative ops match their two inputs either
  way round;
- the result is a template of the same shape (`Op` nodes to create, variable names, numbers
  for constants, attributes given as values or as functions of the match), or a function
  `(rewriter, node, match) -> tensor or None` for rewrites no template can say;
- `when(rewriter, match)` may refuse a match.

rules_pass(name, rules) makes a Program -> Program pass from a table: each node is tried
against the rules for its op type, in table order; the first that matches and builds a result
with exactly the node's dtype and shape replaces it, and its name is counted in the pass's log
line (which gc.debugprint shows).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

from ..ir.node import Node
from ..ir.tensor import Tensor
from ..program import Program
from .rewriter import Rewriter, is_scalar, same_type

COMMUTATIVE = frozenset({"Add", "Mul", "Maximum", "Minimum", "Equal", "NotEqual", "LogicalAnd", "LogicalOr"})


@dataclass(frozen=True)
class Op:
    """A node of type `type` whose inputs match `inputs`. In a pattern, `attrs` values must be
    equal to the node's (or, when callable, return true for the node's value) and `bind` names
    the matched node. In a template, `attrs` gives the new node's attributes: values, functions
    of the match, or one function of the match returning them all."""

    type: str
    inputs: tuple[Any, ...] = ()
    attrs: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] = field(default_factory=dict)
    bind: str | None = None

    def __init__(self, type: str, *inputs: Any, attrs: Any = None, bind: str | None = None) -> None:
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "attrs", attrs if callable(attrs) else dict(attrs or {}))
        object.__setattr__(self, "bind", bind)

    def __str__(self) -> str:
        return f"{self.type}({', '.join(map(str, self.inputs))})"


Pattern = Union[Op, str, int, float]
Match = dict[str, Any]        # variable name -> Tensor, bind name -> Node
Builder = Callable[[Rewriter, Node, Match], Union[Tensor, None]]


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Op
    result: Union[Pattern, Builder]
    when: Callable[[Rewriter, Match], bool] | None = None


# --------------------------------------------------------------------------- matching
def match(pattern: Pattern, t: Tensor, bound: Match) -> Match | None:
    """The bindings under which `t` matches `pattern` (extending `bound`), or None."""
    if isinstance(pattern, str):
        if pattern in bound:
            return bound if bound[pattern] is t else None
        return {**bound, pattern: t}
    if isinstance(pattern, (int, float)):
        return bound if is_scalar(t, pattern) else None
    return match_node(pattern, t.node, list(t.node.inputs), bound)


def match_node(pattern: Op, node: Node, inputs: list[Tensor], bound: Match) -> Match | None:
    """Match `node` (whose current inputs are `inputs`) against an Op pattern."""
    if node.type != pattern.type:
        return None
    wanted = pattern.inputs
    open_ended = bool(wanted) and wanted[-1] is Ellipsis   # `...`: more inputs may follow
    if open_ended:
        wanted = wanted[:-1]
    if len(inputs) < len(wanted) or (not open_ended and len(inputs) != len(wanted)):
        return None
    inputs = inputs[:len(wanted)]
    for key, want in pattern.attrs.items():
        have = node.attrs.get(key)
        if not (want(have) if callable(want) else have == want):
            return None
    if pattern.bind is not None:
        bound = {**bound, pattern.bind: node}
    orders = [inputs]
    if node.type in COMMUTATIVE and len(inputs) == 2:
        orders.append(inputs[::-1])
    for order in orders:
        result: Match | None = bound
        for sub, t in zip(wanted, order):
            result = match(sub, t, result)
            if result is None:
                break
        if result is not None:
            return result
    return None


# --------------------------------------------------------------------------- building
def build(template: Pattern, rw: Rewriter, node: Node, m: Match) -> Tensor:
    """Create the template's nodes (named and located like `node`)."""
    if isinstance(template, str):
        return m[template]
    if isinstance(template, (int, float)):
        return rw.constant(template, node.outputs[0].dtype, node)
    inputs = [build(sub, rw, node, m) for sub in template.inputs]
    if callable(template.attrs):
        attrs = template.attrs(m)
    else:
        attrs = {k: (v(m) if callable(v) else v) for k, v in template.attrs.items()}
    return rw.emit(template.type, inputs, attrs, node)


def apply(rule: Rule, rw: Rewriter, node: Node, inputs: list[Tensor]) -> Tensor | None:
    """The rule's replacement for `node`, or None when it does not match or would change the
    node's dtype or shape."""
    m = match_node(rule.pattern, node, inputs, {})
    if m is None or (rule.when is not None and not rule.when(rw, m)):
        return None
    out = rule.result(rw, node, m) if callable(rule.result) else build(rule.result, rw, node, m)
    if out is None or not same_type(out, node.outputs[0]):
        return None
    return out


def rules_pass(name: str, rules: list[Rule], options: dict[str, Any] | None = None) -> Callable[[Program], Program]:
    """A pass applying `rules` (see the module docstring); `options` are visible to rules as
    rewriter.options."""
    by_type: dict[str, list[Rule]] = {}
    for rule in rules:
        by_type.setdefault(rule.pattern.type, []).append(rule)

    def run(program: Program) -> Program:
        def visit(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
            for rule in by_type.get(node.type, ()):
                out = apply(rule, rw, node, inputs)
                if out is not None:
                    rw.note(rule.name)
                    return [out]
            return None

        rewriter = Rewriter(program, name)
        rewriter.options.update(options or {})
        return rewriter.run(visit)

    run.__doc__ = f"The {name} rules: " + "; ".join(r.name for r in rules)
    return run

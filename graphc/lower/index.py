"""Integer index expressions over loop variables: how a kernel finds an element.

Broadcasts, transposes, slices, reshapes of non-contiguous data, padding, tiling and pooling
windows are all index maps, so none of them copies data. Expressions are built through helpers
that fold constants and keep affine forms (sum of coef * var + const) recognizable, because
the code generator emits unit-stride loads for affine maps and the loop vectorizer then does
the rest.

Ops: "var" (loop variable `value`), "const", "add", "mul", "floordiv", "mod", "min", "max",
"lt", "ge", "eq", "and" (conditions are 0/1), "select" (cond, a, b), and "load" (an int
value read from kernel slot `value`, for gathers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=True)
class IExpr:
    op: str
    args: tuple["IExpr", ...] = ()
    value: int = 0

    def __add__(self, other: Any) -> "IExpr":
        return add(self, other)

    __radd__ = __add__

    def __mul__(self, other: Any) -> "IExpr":
        return mul(self, other)

    __rmul__ = __mul__

    def __sub__(self, other: Any) -> "IExpr":
        return add(self, mul(as_iexpr(other), -1))

    def __rsub__(self, other: Any) -> "IExpr":
        return add(as_iexpr(other), mul(self, -1))

    def __floordiv__(self, other: int) -> "IExpr":
        return floordiv(self, other)

    def __mod__(self, other: int) -> "IExpr":
        return mod(self, other)

    def __repr__(self) -> str:
        if self.op == "var":
            return f"i{self.value}"
        if self.op == "const":
            return str(self.value)
        if self.op == "load":
            return f"load{self.value}"
        return f"{self.op}({', '.join(map(repr, self.args))})"


def var(axis: int) -> IExpr:
    return IExpr("var", (), axis)


def const(value: int) -> IExpr:
    return IExpr("const", (), int(value))


def load(slot: int) -> IExpr:
    return IExpr("load", (), slot)


def as_iexpr(value: Any) -> IExpr:
    return value if isinstance(value, IExpr) else const(value)


def is_const(e: IExpr, value: int | None = None) -> bool:
    return e.op == "const" and (value is None or e.value == value)


# --------------------------------------------------------------------------- affine forms
Affine = tuple[dict[int, int], int]


def affine(e: IExpr) -> Affine | None:
    """(coefficient per loop variable, constant) when e is affine, else None."""
    if e.op == "const":
        return {}, e.value
    if e.op == "var":
        return {e.value: 1}, 0
    if e.op == "add":
        parts = [affine(a) for a in e.args]
        if any(p is None for p in parts):
            return None
        coeffs: dict[int, int] = {}
        total = 0
        for c, k in parts:  # type: ignore[misc]
            for v, m in c.items():
                coeffs[v] = coeffs.get(v, 0) + m
            total += k
        return {v: m for v, m in coeffs.items() if m}, total
    if e.op == "mul" and is_const(e.args[1]):
        inner = affine(e.args[0])
        if inner is None:
            return None
        k = e.args[1].value
        return {v: m * k for v, m in inner[0].items() if m * k}, inner[1] * k
    return None


def from_affine(coeffs: dict[int, int], constant: int) -> IExpr:
    terms = [var(v) if m == 1 else IExpr("mul", (var(v), const(m))) for v, m in sorted(coeffs.items()) if m]
    if constant or not terms:
        terms.append(const(constant))
    expr = terms[0]
    for t in terms[1:]:
        expr = IExpr("add", (expr, t))
    return expr


# --------------------------------------------------------------------------- builders
def add(a: Any, b: Any) -> IExpr:
    a, b = as_iexpr(a), as_iexpr(b)
    fa, fb = affine(a), affine(b)
    if fa is not None and fb is not None:
        coeffs = dict(fa[0])
        for v, m in fb[0].items():
            coeffs[v] = coeffs.get(v, 0) + m
        return from_affine(coeffs, fa[1] + fb[1])
    if is_const(b, 0):
        return a
    if is_const(a, 0):
        return b
    return IExpr("add", (a, b))


def mul(a: Any, k: Any) -> IExpr:
    a, k = as_iexpr(a), as_iexpr(k)
    if is_const(a) and not is_const(k):
        a, k = k, a
    if not is_const(k):
        return IExpr("mul", (a, k))
    if k.value == 0:
        return const(0)
    if k.value == 1:
        return a
    fa = affine(a)
    if fa is not None:
        return from_affine({v: m * k.value for v, m in fa[0].items()}, fa[1] * k.value)
    return IExpr("mul", (a, k))


def floordiv(a: Any, k: int) -> IExpr:
    a = as_iexpr(a)
    if k == 1:
        return a
    if is_const(a):
        return const(a.value // k)
    return IExpr("floordiv", (a, const(k)))


def mod(a: Any, k: int) -> IExpr:
    a = as_iexpr(a)
    if k == 1:
        return const(0)
    if is_const(a):
        return const(a.value % k)
    return IExpr("mod", (a, const(k)))


def minimum(a: Any, b: Any) -> IExpr:
    return IExpr("min", (as_iexpr(a), as_iexpr(b)))


def maximum(a: Any, b: Any) -> IExpr:
    return IExpr("max", (as_iexpr(a), as_iexpr(b)))


def less(a: Any, b: Any) -> IExpr:
    a, b = as_iexpr(a), as_iexpr(b)
    if is_const(a) and is_const(b):
        return const(int(a.value < b.value))
    return IExpr("lt", (a, b))


def greater_equal(a: Any, b: Any) -> IExpr:
    a, b = as_iexpr(a), as_iexpr(b)
    if is_const(a) and is_const(b):
        return const(int(a.value >= b.value))
    return IExpr("ge", (a, b))


def equal(a: Any, b: Any) -> IExpr:
    a, b = as_iexpr(a), as_iexpr(b)
    if is_const(a) and is_const(b):
        return const(int(a.value == b.value))
    return IExpr("eq", (a, b))


def logical_and(*conds: IExpr | None) -> IExpr | None:
    """The conjunction of the given conditions (None means always true)."""
    parts = [c for c in conds if c is not None and not is_const(c, 1)]
    if any(is_const(c, 0) for c in parts):
        return const(0)
    if not parts:
        return None
    expr = parts[0]
    for c in parts[1:]:
        expr = IExpr("and", (expr, c))
    return expr


def select(cond: IExpr, a: Any, b: Any) -> IExpr:
    return IExpr("select", (cond, as_iexpr(a), as_iexpr(b)))


def in_range(e: IExpr, lo: int, hi: int) -> IExpr | None:
    """lo <= e < hi, or None when that always holds for e's loop ranges (checked by the caller)."""
    return logical_and(greater_equal(e, lo), less(e, hi))


def variables(e: IExpr) -> set[int]:
    """The loop variables an expression uses."""
    if e.op == "var":
        return {e.value}
    out: set[int] = set()
    for a in e.args:
        out |= variables(a)
    return out


def substitute(e: IExpr, mapping: dict[int, IExpr]) -> IExpr:
    """e with loop variables replaced (re-simplified through the builders)."""
    if e.op == "var":
        return mapping.get(e.value, e)
    if e.op in ("const", "load"):
        return e
    args = [substitute(a, mapping) for a in e.args]
    builders = {"add": add, "mul": mul, "floordiv": lambda a, b: floordiv(a, b.value),
                "mod": lambda a, b: mod(a, b.value), "min": minimum, "max": maximum, "lt": less,
                "ge": greater_equal, "eq": equal, "and": lambda a, b: logical_and(a, b) or const(1),
                "select": select}
    return builders[e.op](*args)

"""Scalar expressions: the body of every elementwise op, defined once for all backends.

An elementwise op is a function from scalars to a scalar, written with the primitives below
(`exp`, `select`, `+`, ...). From that one expression graphc derives the op's output dtype (each
primitive resolves its operand types exactly as the matching NumPy ufunc does, inserting explicit
casts), its NumPy reference semantics (`evaluate`), and, in later layers, the LLVM and CUDA code
(each renderer maps the same primitive names). Adding an elementwise op never touches a backend
unless it needs a new primitive.

After construction every operand of a primitive already has the primitive's loop dtype, so a
renderer never has to think about promotion.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DTypeError
from ..ir.dtypes import DType, as_dtype, bool_, float_result, from_numpy, promote, widen


class SExpr:
    """A node of a scalar expression tree, typed with a graphc dtype."""

    __slots__ = ("prim", "args", "dtype", "value", "_key")

    def __init__(self, prim: str, args: tuple["SExpr", ...], dtype: DType, value: Any = None) -> None:
        self.prim = prim          # "arg", "const", or a primitive name
        self.args = args
        self.dtype = dtype
        self.value = value        # arg index for "arg", the Python scalar for "const"
        self._key: Any = None

    @property
    def key(self) -> str:
        """Structural identity, for merging equal subexpressions inside a kernel: a digest of the
        primitive, dtype, value and the arguments' keys, equal for equal expressions built apart.
        A fixed-size string, not a nested tuple: a fused expression shares subexpressions, and a
        nested tuple's hash and repr walk every path through it (exponential in the depth)."""
        if self._key is None:
            _compute_keys(self)
        return self._key

    def __repr__(self) -> str:
        if self.prim == "arg":
            return f"x{self.value}:{self.dtype.name}"
        if self.prim == "const":
            return f"{self.value!r}:{self.dtype.name}"
        return f"{self.prim}({', '.join(map(repr, self.args))})"

    # Operators so that op bodies read like math. Comparisons build expressions too.
    def __add__(self, o): return call("add", self, o)
    def __radd__(self, o): return call("add", o, self)
    def __sub__(self, o): return call("sub", self, o)
    def __rsub__(self, o): return call("sub", o, self)
    def __mul__(self, o): return call("mul", self, o)
    def __rmul__(self, o): return call("mul", o, self)
    def __truediv__(self, o): return call("div", self, o)
    def __rtruediv__(self, o): return call("div", o, self)
    def __pow__(self, o): return call("pow", self, o)
    def __neg__(self): return call("neg", self)
    def __lt__(self, o): return call("lt", self, o)
    def __le__(self, o): return call("le", self, o)
    def __gt__(self, o): return call("gt", self, o)
    def __ge__(self, o): return call("ge", self, o)


def _compute_keys(root: SExpr) -> None:
    """Fill `_key` for `root` and every argument below it that has none, children first; a loop,
    not recursion, since a fused expression can be thousands of levels deep."""
    stack = [root]
    while stack:
        e = stack[-1]
        pending = [a for a in e.args if a._key is None]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        if e._key is None:
            value = e.value.hex() if isinstance(e.value, float) else repr(e.value)
            text = "|".join((e.prim, e.dtype.name, value, *(a._key for a in e.args)))
            e._key = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def arg(index: int, dtype: DType) -> SExpr:
    return SExpr("arg", (), dtype, index)


def const(value: Any, dtype: DType) -> SExpr:
    """A typed constant; the value is stored as the Python scalar of that dtype."""
    value = np.asarray(value, dtype=dtype.np).item()
    return SExpr("const", (), dtype, value)


# --------------------------------------------------------------------------- primitives
@dataclass(frozen=True)
class Primitive:
    """A scalar operation every backend can render; `numpy` is its reference meaning."""

    name: str
    arity: int
    numpy: Callable[..., np.ndarray]
    resolve: Callable[[tuple[DType, ...]], tuple[tuple[DType, ...], DType]]
    doc: str = ""


PRIMITIVES: dict[str, Primitive] = {}


def _ufunc_rule(ufunc: np.ufunc) -> Callable:
    def resolve(dtypes: tuple[DType, ...]) -> tuple[tuple[DType, ...], DType]:
        try:
            loop = ufunc.resolve_dtypes(tuple(d.np for d in dtypes) + (None,) * ufunc.nout)
        except (TypeError, np.exceptions.DTypePromotionError) as err:
            names = ", ".join(d.name for d in dtypes)
            raise DTypeError(f"{ufunc.__name__} is not defined for ({names}): {err}") from None
        ins = tuple(widen(d) for d in loop[: ufunc.nin])
        return ins, widen(loop[ufunc.nin])
    return resolve


def _float_rule(dtypes: tuple[DType, ...]) -> tuple[tuple[DType, ...], DType]:
    out = float_result(promote(*dtypes))
    return (out,) * len(dtypes), out


def _bool_rule(dtypes: tuple[DType, ...]) -> tuple[tuple[DType, ...], DType]:
    for d in dtypes:
        if not d.is_bool:
            raise DTypeError(
                f"logical operations take bool tensors, got {d.name}",
                hint="compare first, e.g. gc.logical_and(x > 0, y > 0)",
            )
    return dtypes, bool_


def _select_rule(dtypes: tuple[DType, ...]) -> tuple[tuple[DType, ...], DType]:
    cond, a, b = dtypes
    if not cond.is_bool:
        raise DTypeError(f"the condition of where/select must be bool, got {cond.name}")
    out = promote(a, b)
    return (bool_, out, out), out


def _int_power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer power with NumPy's wrap-around, and a defined result for negative exponents.

    a ** -n truncates toward zero like integer division: 1 for a == 1, +-1 for a == -1, else 0.
    """
    negative = b < 0
    if not np.any(negative):
        return np.power(a, b)
    r = np.power(a, np.where(negative, 0, b))
    odd = (b % 2) != 0
    r_neg = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0))
    return np.where(negative, r_neg, r).astype(r.dtype)


def _power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return _int_power(a, b)
    return np.power(a, b)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def _erf(x: np.ndarray) -> np.ndarray:
    return _erf64(x.astype(np.float64)).astype(x.dtype, copy=False)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    return (1 / np.sqrt(x)).astype(x.dtype, copy=False)


def _define(name: str, arity: int, numpy_fn: Callable, resolve: Callable, doc: str = "") -> None:
    PRIMITIVES[name] = Primitive(name, arity, numpy_fn, resolve, doc)


for _name, _ufunc in [
    ("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.true_divide),
    ("floordiv", np.floor_divide), ("mod", np.remainder), ("max", np.maximum),
    ("min", np.minimum), ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
    ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal),
]:
    _define(_name, 2, _ufunc, _ufunc_rule(_ufunc))
_define("pow", 2, _power, _ufunc_rule(np.power), "integer ** negative truncates toward zero")
for _name, _ufunc in [
    ("neg", np.negative), ("abs", np.absolute), ("sign", np.sign), ("square", np.square),
    ("exp", np.exp), ("expm1", np.expm1), ("log", np.log), ("log1p", np.log1p),
    ("sqrt", np.sqrt), ("tanh", np.tanh), ("sin", np.sin), ("cos", np.cos),
    ("floor", np.floor), ("ceil", np.ceil), ("round", np.rint),
    ("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite),
]:
    _define(_name, 1, _ufunc, _ufunc_rule(_ufunc))
_define("sigmoid", 1, _sigmoid, _float_rule, "1/(1+exp(-x)), stable for large |x|")
_define("rsqrt", 1, _rsqrt, _float_rule, "1/sqrt(x)")
_define("erf", 1, _erf, _float_rule, "the error function")
_define("and", 2, np.logical_and, _bool_rule)
_define("or", 2, np.logical_or, _bool_rule)
_define("xor", 2, np.logical_xor, _bool_rule)
_define("not", 1, np.logical_not, _bool_rule)
_define("select", 3, np.where, _select_rule, "select(c, a, b): a where c else b")


# --------------------------------------------------------------------------- construction
def _as_operand(value: Any, strong: Sequence[SExpr]) -> SExpr:
    """Python scalars are weak (NEP 50): they take their type from the strong operands."""
    if isinstance(value, SExpr):
        return value
    if not strong:
        raise DTypeError(f"a scalar expression needs at least one typed operand, got {value!r}")
    dtype = widen(np.result_type(*(s.dtype.np for s in strong), value))
    return const(value, dtype)


def cast(x: SExpr, dtype: Any) -> SExpr:
    dtype = as_dtype(dtype)
    if x.dtype is dtype:
        return x
    if x.prim == "const":
        return const(x.value, dtype)
    return SExpr("cast", (x,), dtype)


def call(name: str, *operands: Any) -> SExpr:
    """Apply primitive `name`, promoting operands like the matching NumPy ufunc."""
    prim = PRIMITIVES[name]
    if len(operands) != prim.arity:
        raise TypeError(f"primitive {name} takes {prim.arity} operands, got {len(operands)}")
    typed_start = 1 if name == "select" else 0  # select's condition does not type the values
    strong = [o for o in operands[typed_start:] if isinstance(o, SExpr)]
    typed: list[SExpr] = []
    for i, o in enumerate(operands):
        if isinstance(o, SExpr):
            typed.append(o)
        elif i < typed_start:
            typed.append(const(o, bool_))
        else:
            typed.append(_as_operand(o, strong))
    loop_in, out = prim.resolve(tuple(a.dtype for a in typed))
    return SExpr(name, tuple(cast(a, d) for a, d in zip(typed, loop_in)), out)


def _unary(name: str) -> Callable[[Any], SExpr]:
    return lambda x: call(name, x)


def _binary(name: str) -> Callable[[Any, Any], SExpr]:
    return lambda a, b: call(name, a, b)


exp, expm1, log, log1p, sqrt, rsqrt = map(_unary, ["exp", "expm1", "log", "log1p", "sqrt", "rsqrt"])
tanh, sigmoid, sin, cos, erf = map(_unary, ["tanh", "sigmoid", "sin", "cos", "erf"])
floor, ceil, round_, sign, square = map(_unary, ["floor", "ceil", "round", "sign", "square"])
abs_, neg, logical_not = _unary("abs"), _unary("neg"), _unary("not")
isnan, isinf, isfinite = _unary("isnan"), _unary("isinf"), _unary("isfinite")
maximum, minimum, floordiv, mod, power = map(_binary, ["max", "min", "floordiv", "mod", "pow"])
equal, not_equal = _binary("eq"), _binary("ne")
logical_and, logical_or, logical_xor = _binary("and"), _binary("or"), _binary("xor")


def select(cond: Any, a: Any, b: Any) -> SExpr:
    return call("select", cond, a, b)


# --------------------------------------------------------------------------- reference
def evaluate(expr: SExpr, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Evaluate with NumPy over (broadcasting) arrays: the reference meaning of the expression."""
    memo: dict[int, np.ndarray] = {}

    def ev(e: SExpr) -> np.ndarray:
        got = memo.get(id(e))
        if got is not None:
            return got
        if e.prim == "arg":
            v = np.asarray(inputs[e.value])
        elif e.prim == "const":
            v = np.asarray(e.value, dtype=e.dtype.np)
        elif e.prim == "cast":
            v = ev(e.args[0]).astype(e.dtype.np)
        else:
            v = PRIMITIVES[e.prim].numpy(*(ev(a) for a in e.args))
            v = np.asarray(v).astype(e.dtype.np, copy=False)
        memo[id(e)] = v
        return v

    return ev(expr)  # callers run under np.errstate(all="ignore"): NaN and inf are valid results


def nodes_of(expr: SExpr) -> list[SExpr]:
    """Every distinct subexpression, operands before users."""
    seen: dict[int, SExpr] = {}
    order: list[SExpr] = []

    def visit(e: SExpr) -> None:
        if id(e) in seen:
            return
        seen[id(e)] = e
        for a in e.args:
            visit(a)
        order.append(e)

    visit(expr)
    return order


__all__ = ["SExpr", "Primitive", "PRIMITIVES", "arg", "const", "cast", "call", "select", "evaluate",
           "nodes_of", "from_numpy"]

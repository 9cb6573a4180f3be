"""Rendering kernel expressions (scalar SExprs and integer index IExprs) as CUDA C.

Each expression node becomes one `const T vN = ...;` line in the current scope, memoized per
node, so shared subexpressions are computed once. Every primitive keeps NumPy's meaning, as in
graphc.codegen.llvm_scalar: the helpers with NumPy semantics (wrapping integer arithmetic,
division by zero, x86 float-to-int conversion, NaN-propagating maximum) live in
kernels/cuda/graphc_cuda.cuh.

Transcendentals are CUDA's device functions, compiled without -use_fast_math. Their maximum
error in ulp, as the CUDA C++ Programming Guide documents it for full-range float32 (float64 in
parentheses): exp 2 (1), expm1 1 (1), log 1 (1), log1p 1 (1), tanh 2 (1), sin / cos 2 (2),
erf 2 (2), pow 4 (2), sqrt 0 (0, IEEE), rsqrt 2 (1), division 0 (IEEE); sigmoid is built from
exp and one IEEE division (about 3). benchmarks/cuda_ulp.py measures them on a device.
"""
from __future__ import annotations

import math
from typing import Callable

from ..ir.dtypes import DType
from ..lower import index as iexpr
from ..ops.scalar import SExpr

C_TYPES = {"bool": "bool", "int32": "int", "int64": "i64", "float32": "float", "float64": "double"}
MEMORY_TYPES = {"bool": "unsigned char", "int32": "int", "int64": "i64", "float32": "float", "float64": "double"}
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
# Unary float functions: (float32 name, float64 name)
_UNARY = {"exp": ("expf", "exp"), "expm1": ("expm1f", "expm1"), "log": ("logf", "log"),
          "log1p": ("log1pf", "log1p"), "tanh": ("tanhf", "tanh"), "sin": ("sinf", "sin"),
          "cos": ("cosf", "cos"), "erf": ("erff", "erf"), "sqrt": ("sqrtf", "sqrt"),
          "rsqrt": ("rsqrtf", "rsqrt"), "floor": ("floorf", "floor"), "ceil": ("ceilf", "ceil"),
          "round": ("rintf", "rint"), "abs": ("fabsf", "fabs")}


def c_type(dtype: DType) -> str:
    return C_TYPES[dtype.name]


def memory_type(dtype: DType) -> str:
    return MEMORY_TYPES[dtype.name]


def literal(value: object, dtype: DType) -> str:
    """A C literal of `value` in `dtype` (inf and NaN spelled portably)."""
    if dtype.is_bool:
        return "true" if value else "false"
    if dtype.is_floating:
        v = float(value)  # type: ignore[arg-type]
        suffix = "f" if dtype.name == "float32" else ""
        if math.isnan(v):
            return f"(({c_type(dtype)})NAN)"
        if math.isinf(v):
            return f"(({c_type(dtype)}){'-' if v < 0 else ''}INFINITY)"
        return f"{v.hex()}{suffix}" if v != int(v) or abs(v) > 2 ** 53 else f"{v!r}{suffix}"
    v = int(value)  # type: ignore[call-overload]
    if dtype.name == "int64":
        if v == -(1 << 63):
            return "((i64)0x8000000000000000ull)"
        return f"{v}LL"
    if v == -(1 << 31):
        return "((int)0x80000000u)"
    return str(v)


class Scope:
    """Lines of code in one C block, with the expressions already computed there."""

    def __init__(self, indent: int, counter: list[int]) -> None:
        self.lines: list[str] = []
        self.indent = indent
        self.counter = counter   # shared across scopes: names stay unique in the kernel

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def fresh(self, prefix: str = "v") -> str:
        self.counter[0] += 1
        return f"{prefix}{self.counter[0]}"

    def define(self, ctype: str, expr: str, prefix: str = "v") -> str:
        name = self.fresh(prefix)
        self.emit(f"const {ctype} {name} = {expr};")
        return name


class IndexRenderer:
    """IExpr -> C expression names of type `itype`, given loop variables, int loads of slots and
    argmax positions of accumulators."""

    def __init__(self, scope: Scope, itype: str, loop_vars: dict[int, str], load_int: Callable[[int], str],
                 acc_int: Callable[[int], str]) -> None:
        self.scope, self.itype = scope, itype
        self.vars, self.load_int, self.acc_int = loop_vars, load_int, acc_int
        self.memo: dict[iexpr.IExpr, str] = {}

    def render(self, e: iexpr.IExpr) -> str:
        got = self.memo.get(e)
        if got is None:
            got = self.memo[e] = self._render(e)
        return got

    def _render(self, e: iexpr.IExpr) -> str:
        op, t = e.op, self.itype
        if op == "const":
            return f"(({t}){e.value}LL)"
        if op == "var":
            return self.vars[e.value]
        if op == "load":
            return f"(({t}){self.load_int(e.value)})"
        if op == "acc":
            return f"(({t}){self.acc_int(e.value)})"
        a = [self.render(x) for x in e.args]
        if op == "add":
            expr = f"{a[0]} + {a[1]}"
        elif op == "mul":
            expr = f"{a[0]} * {a[1]}"
        elif op == "floordiv":
            expr = f"gc_idx_floordiv<{t}>({a[0]}, {a[1]})"
        elif op == "mod":
            expr = f"gc_idx_mod<{t}>({a[0]}, {a[1]})"
        elif op == "min":
            expr = f"({a[0]} < {a[1]} ? {a[0]} : {a[1]})"
        elif op == "max":
            expr = f"({a[0]} > {a[1]} ? {a[0]} : {a[1]})"
        elif op in ("lt", "ge", "eq"):
            expr = f"({t})({a[0]} {dict(lt='<', ge='>=', eq='==')[op]} {a[1]})"
        elif op == "and":
            expr = f"({a[0]} & {a[1]})"
        elif op == "select":
            expr = f"({a[0]} != 0 ? {a[1]} : {a[2]})"
        else:
            raise AssertionError(f"unknown index op {op}")
        return self.scope.define(t, expr, "x")

    def condition(self, e: iexpr.IExpr | None) -> str | None:
        return None if e is None else f"({self.render(e)} != 0)"


class ScalarRenderer:
    """SExpr -> C names inside one scope (memoized per expression node)."""

    def __init__(self, scope: Scope, load: Callable[[int], str], acc: Callable[[int], str],
                 index: IndexRenderer) -> None:
        self.scope, self.load, self.acc, self.index = scope, load, acc, index
        self.memo: dict[int, str] = {}

    def render(self, e: SExpr) -> str:
        got = self.memo.get(id(e))
        if got is None:
            got = self.memo[id(e)] = self._render(e)
        return got

    def _render(self, e: SExpr) -> str:
        p = e.prim
        if p == "const":
            return literal(e.value, e.dtype)
        if p == "arg":
            return self.load(e.value)
        if p == "acc":
            return self.acc(e.value)
        if p == "index":
            return self.scope.define("i64", f"(i64){self.index.render(e.value)}")
        if p == "cast":
            return self.scope.define(c_type(e.dtype), cast(self.render(e.args[0]), e.args[0].dtype, e.dtype))
        if p.startswith("philox"):
            return self.scope.define(c_type(e.dtype), self.philox(e))
        args = [self.render(a) for a in e.args]
        in_dtype = e.args[0].dtype if e.args else e.dtype
        if p == "select":
            in_dtype = e.args[1].dtype
        return self.scope.define(c_type(e.dtype), primitive(p, args, in_dtype))

    def philox(self, e: SExpr) -> str:
        k0, k1, flat_expr = e.value
        run = self.render(e.args[0])
        flat = f"(u64){self.index.render(flat_expr)}"
        key = f"{k0}u, {k1}u"
        if e.prim == "philox_uniform":
            if e.dtype.name == "float32":
                return f"gc_uniform_f32({flat}, (u64){run}, {key})"
            return f"gc_uniform_f64({flat}, (u64){run}, {key})"
        z = f"gc_normal_f64({flat}, (u64){run}, {key})"
        return z if e.dtype.name == "float64" else f"(float){z}"


def cast(v: str, src: DType, dst: DType) -> str:
    if src is dst:
        return v
    if dst.is_bool:
        return f"({v} != 0)"
    if src.is_bool:
        return f"({c_type(dst)})({v} ? 1 : 0)"
    if src.is_floating and dst.is_integer:
        return f"gc_ftoi<{c_type(dst)}, {c_type(src)}>({v})"
    return f"({c_type(dst)}){v}"


# Each primitive's CUDA C rendering, by the kind of its loop dtype ("float", "int" or "bool";
# "any" serves every kind the row does not name): render(operands, C type, is float64).
Render = Callable[[list[str], str, bool], str]


def _fn(name: str) -> Render:
    """CUDA's float32 / float64 device function of that primitive (table _UNARY)."""
    return lambda a, t, f64: f"{_UNARY[name][f64]}({a[0]})"


def _infix(sign: str) -> Render:
    return lambda a, t, f64: f"{a[0]} {sign} {a[1]}"


def _helper(name: str) -> Render:
    """A NumPy-exact helper of graphc_cuda.cuh, templated on the C type."""
    return lambda a, t, f64: f"{name}<{t}>({', '.join(a)})"


def _compare(sign: str) -> dict[str, Render]:
    row: dict[str, Render] = {"any": lambda a, t, f64: f"({a[0]} {sign} {a[1]})"}
    if sign not in ("==", "!="):
        row["bool"] = lambda a, t, f64: f"((int){a[0]} {sign} (int){a[1]})"
    return row


def _float_class(which: str) -> dict[str, Render]:
    checks = {"isnan": lambda a, t, f64: f"({a[0]} != {a[0]})",
              "isinf": lambda a, t, f64: f"({_UNARY['abs'][f64]}({a[0]}) == (({t})INFINITY))",
              "isfinite": lambda a, t, f64: f"({_UNARY['abs'][f64]}({a[0]}) < (({t})INFINITY))"}
    constant = "true" if which == "isfinite" else "false"
    return {"float": checks[which], "any": lambda a, t, f64: constant}


_IDENTITY: Render = lambda a, t, f64: a[0]   # noqa: E731 - a table entry

PRIMITIVES: dict[str, dict[str, Render]] = {
    "add": {"float": _infix("+"), "bool": lambda a, t, f64: f"({a[0]} | {a[1]})", "int": _helper("gc_add")},
    "sub": {"float": _infix("-"), "bool": lambda a, t, f64: f"({a[0]} != {a[1]})", "int": _helper("gc_sub")},
    "mul": {"float": _infix("*"), "bool": lambda a, t, f64: f"({a[0]} & {a[1]})", "int": _helper("gc_mul")},
    "div": {"any": _infix("/")},
    "floordiv": {"float": _helper("gc_ffloordiv"), "any": _helper("gc_ifloordiv")},
    "mod": {"float": _helper("gc_fmod_floor"), "any": _helper("gc_imod")},
    "pow": {"float": lambda a, t, f64: f"{'pow' if f64 else 'powf'}({a[0]}, {a[1]})", "any": _helper("gc_ipow")},
    "max": {"bool": lambda a, t, f64: f"({a[0]} | {a[1]})", "any": lambda a, t, f64: f"gc_max({a[0]}, {a[1]})"},
    "min": {"bool": lambda a, t, f64: f"({a[0]} & {a[1]})", "any": lambda a, t, f64: f"gc_min({a[0]}, {a[1]})"},
    "neg": {"float": lambda a, t, f64: f"-{a[0]}", "bool": _IDENTITY, "int": _helper("gc_neg")},
    "abs": {"float": _fn("abs"), "bool": _IDENTITY, "int": _helper("gc_iabs")},
    "sign": {"float": _helper("gc_fsign"), "any": lambda a, t, f64: f"({t})(({a[0]} > 0) - ({a[0]} < 0))"},
    "square": {"float": lambda a, t, f64: f"{a[0]} * {a[0]}", "bool": _IDENTITY,
               "int": lambda a, t, f64: f"gc_mul<{t}>({a[0]}, {a[0]})"},
    "floor": {"float": _fn("floor"), "any": _IDENTITY},
    "ceil": {"float": _fn("ceil"), "any": _IDENTITY},
    "round": {"float": _fn("round"), "any": _IDENTITY},
    "sigmoid": {"float": lambda a, t, f64: f"gc_sigmoid({a[0]})"},
    **{name: {"float": _fn(name)} for name in ("exp", "expm1", "log", "log1p", "tanh", "sin", "cos", "erf", "sqrt",
                                                "rsqrt")},
    **{name: _compare(sign) for name, sign in _CMP.items()},
    "and": {"any": lambda a, t, f64: f"({a[0]} && {a[1]})"},
    "or": {"any": lambda a, t, f64: f"({a[0]} || {a[1]})"},
    "xor": {"any": lambda a, t, f64: f"({a[0]} != {a[1]})"},
    "not": {"any": lambda a, t, f64: f"(!{a[0]})"},
    "select": {"any": lambda a, t, f64: f"({a[0]} ? {a[1]} : {a[2]})"},
    **{name: _float_class(name) for name in ("isnan", "isinf", "isfinite")},
}


def primitive(p: str, a: list[str], dtype: DType) -> str:
    """A primitive of graphc.ops.scalar over operands of loop dtype `dtype`."""
    kind = "float" if dtype.is_floating else ("bool" if dtype.is_bool else "int")
    row = PRIMITIVES.get(p)
    render = None if row is None else row.get(kind, row.get("any"))
    if render is None:
        raise AssertionError(f"no CUDA rendering for primitive {p} on {dtype.name}")
    return render(a, c_type(dtype), dtype.name == "float64")

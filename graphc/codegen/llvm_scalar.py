"""Rendering kernel expressions (scalar SExprs and integer index IExprs) as LLVM IR.

Every primitive keeps NumPy's meaning exactly: integer division and remainder by zero give 0,
INT_MIN // -1 wraps, floats convert to ints like x86 (NaN and out-of-range give INT_MIN), max
and min propagate NaN, comparisons with NaN are false except !=. Transcendental functions come
from graphc.codegen.llvm_math as inlinable IR, never from libm, so loops stay vectorizable.
"""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from ..ir.dtypes import DType
from ..lower import index as I
from ..ops.scalar import SExpr
from . import llvm_types as T
from .llvm_math_adapter import math_call

_FCMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


class IndexEmitter:
    """IExpr -> i64 values, given loop variables, slot loads and accumulator values."""

    def __init__(self, builder: ir.IRBuilder, loop_vars: dict[int, ir.Value],
                 load_int: Callable[[int], ir.Value], acc_int: Callable[[int], ir.Value]) -> None:
        self.b = builder
        self.vars = loop_vars
        self.load_int = load_int
        self.acc_int = acc_int
        self.memo: dict[I.IExpr, ir.Value] = {}

    def emit(self, e: I.IExpr) -> ir.Value:
        got = self.memo.get(e)
        if got is None:
            got = self.memo[e] = self._emit(e)
        return got

    def _emit(self, e: I.IExpr) -> ir.Value:
        b = self.b
        op = e.op
        if op == "const":
            return ir.Constant(T.I64, e.value)
        if op == "var":
            return self.vars[e.value]
        if op == "load":
            return self.load_int(e.value)
        if op == "acc":
            return self.acc_int(e.value)
        args = [self.emit(a) for a in e.args]
        if op == "add":
            return b.add(args[0], args[1], flags=["nsw"])
        if op == "mul":
            return b.mul(args[0], args[1], flags=["nsw"])
        if op in ("floordiv", "mod"):
            return floor_divmod(b, args[0], args[1], op)
        if op == "min":
            return b.select(b.icmp_signed("<", args[0], args[1]), args[0], args[1])
        if op == "max":
            return b.select(b.icmp_signed(">", args[0], args[1]), args[0], args[1])
        if op in ("lt", "ge", "eq"):
            sign = {"lt": "<", "ge": ">=", "eq": "=="}[op]
            return b.zext(b.icmp_signed(sign, args[0], args[1]), T.I64)
        if op == "and":
            return b.and_(args[0], args[1])
        if op == "select":
            return b.select(b.icmp_signed("!=", args[0], ir.Constant(T.I64, 0)), args[1], args[2])
        raise AssertionError(f"unknown index op {op}")

    def condition(self, e: I.IExpr | None) -> ir.Value | None:
        if e is None:
            return None
        return self.b.icmp_signed("!=", self.emit(e), ir.Constant(T.I64, 0))


def floor_divmod(b: ir.IRBuilder, a: ir.Value, d: ir.Value, which: str) -> ir.Value:
    """Floor division or modulo of i64 values by a positive divisor (Python semantics)."""
    q = b.sdiv(a, d)
    r = b.srem(a, d)
    adjust = b.and_(b.icmp_signed("!=", r, ir.Constant(T.I64, 0)), b.icmp_signed("<", r, ir.Constant(T.I64, 0)))
    if which == "floordiv":
        return b.select(adjust, b.sub(q, ir.Constant(T.I64, 1)), q)
    return b.select(adjust, b.add(r, d), r)


class ScalarEmitter:
    """SExpr -> LLVM values inside one basic-block context (memoized per expression node)."""

    def __init__(self, builder: ir.IRBuilder, load: Callable[[int], ir.Value], acc: Callable[[int], ir.Value],
                 index: IndexEmitter, extra: Callable[[SExpr, "ScalarEmitter"], ir.Value] | None = None) -> None:
        self.b = builder
        self.module = builder.module
        self.load = load
        self.acc = acc
        self.index = index
        self.extra = extra
        self.memo: dict[int, ir.Value] = {}

    def emit(self, e: SExpr) -> ir.Value:
        got = self.memo.get(id(e))
        if got is None:
            got = self.memo[id(e)] = self._emit(e)
        return got

    def _emit(self, e: SExpr) -> ir.Value:
        p = e.prim
        if p == "const":
            return T.constant(e.dtype, e.value)
        if p == "arg":
            return self.load(e.value)
        if p == "acc":
            return self.acc(e.value)
        if p == "index":
            return self.index.emit(e.value)
        if p == "cast":
            return cast(self.b, self.emit(e.args[0]), e.args[0].dtype, e.dtype)
        if self.extra is not None and p.startswith("philox"):
            return self.extra(e, self)
        args = [self.emit(a) for a in e.args]
        in_dtype = e.args[0].dtype if e.args else e.dtype
        return primitive(self.b, p, args, in_dtype, e.dtype)


def cast(b: ir.IRBuilder, v: ir.Value, src: DType, dst: DType) -> ir.Value:
    if src is dst:
        return v
    st, dt = T.value_type(src), T.value_type(dst)
    if dst.is_bool:
        if src.is_floating:
            return b.fcmp_unordered("!=", v, ir.Constant(st, 0.0))
        return b.icmp_signed("!=", v, ir.Constant(st, 0))
    if src.is_bool:
        return b.uitofp(v, dt) if dst.is_floating else b.zext(v, dt)
    if src.is_integer and dst.is_integer:
        return b.sext(v, dt) if dst.itemsize > src.itemsize else b.trunc(v, dt)
    if src.is_integer:
        return b.sitofp(v, dt)
    if dst.is_floating:
        return b.fpext(v, dt) if dst.itemsize > src.itemsize else b.fptrunc(v, dt)
    # float -> int, as x86 converts: NaN and out-of-range values give the most negative int
    bits = dst.itemsize * 8
    lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1)
    inside = b.and_(b.fcmp_ordered(">=", v, ir.Constant(st, lo)), b.fcmp_ordered("<", v, ir.Constant(st, hi)))
    safe = b.select(inside, v, ir.Constant(st, 0.0))
    return b.select(inside, b.fptosi(safe, dt), ir.Constant(dt, -(1 << (bits - 1))))


def _intr(b: ir.IRBuilder, name: str, t: ir.Type, args: list[ir.Value]) -> ir.Value:
    fn = T.intrinsic(b.module, f"llvm.{name}.{T.suffix(t)}", t, [a.type for a in args])
    return b.call(fn, args)


def primitive(b: ir.IRBuilder, p: str, a: list[ir.Value], dtype: DType, out: DType) -> ir.Value:
    """A primitive of graphc.ops.scalar over operands of (loop) dtype `dtype`."""
    t = T.value_type(dtype)
    fl, boolean = dtype.is_floating, dtype.is_bool
    if p == "add":
        return b.fadd(a[0], a[1]) if fl else (b.or_(a[0], a[1]) if boolean else b.add(a[0], a[1]))
    if p == "sub":
        return b.fsub(a[0], a[1]) if fl else b.sub(a[0], a[1])
    if p == "mul":
        return b.fmul(a[0], a[1]) if fl else (b.and_(a[0], a[1]) if boolean else b.mul(a[0], a[1]))
    if p == "div":
        return b.fdiv(a[0], a[1])
    if p in ("floordiv", "mod"):
        return float_divmod(b, a[0], a[1], p) if fl else int_divmod(b, a[0], a[1], p, t)
    if p == "pow":
        return math_call(b, "pow", dtype, a) if fl else int_pow(b, a[0], a[1], t)
    if p in ("max", "min"):
        if fl:
            return _intr(b, "maximum" if p == "max" else "minimum", t, a)
        if boolean:
            return b.or_(a[0], a[1]) if p == "max" else b.and_(a[0], a[1])
        return b.select(b.icmp_signed(">" if p == "max" else "<", a[0], a[1]), a[0], a[1])
    if p == "neg":
        return b.fneg(a[0]) if fl else b.sub(ir.Constant(t, 0), a[0])
    if p == "abs":
        if fl:
            return _intr(b, "fabs", t, a)
        return a[0] if boolean else b.select(b.icmp_signed("<", a[0], ir.Constant(t, 0)), b.sub(ir.Constant(t, 0), a[0]), a[0])
    if p == "sign":
        zero = ir.Constant(t, 0.0 if fl else 0)
        one, minus = ir.Constant(t, 1.0 if fl else 1), ir.Constant(t, -1.0 if fl else -1)
        if fl:
            return b.select(b.fcmp_ordered(">", a[0], zero), one, b.select(b.fcmp_ordered("<", a[0], zero), minus, a[0]))
        return b.select(b.icmp_signed(">", a[0], zero), one, b.select(b.icmp_signed("<", a[0], zero), minus, zero))
    if p == "square":
        return b.fmul(a[0], a[0]) if fl else (a[0] if boolean else b.mul(a[0], a[0]))
    if p == "sqrt":
        return _intr(b, "sqrt", t, a)
    if p in ("floor", "ceil", "round"):
        if not fl:
            return a[0]
        return _intr(b, {"floor": "floor", "ceil": "ceil", "round": "roundeven"}[p], t, a)
    if p in ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "sin", "cos", "erf", "rsqrt"):
        return math_call(b, p, dtype, a)
    if p in _FCMP:
        if fl:
            return b.fcmp_unordered("!=", a[0], a[1]) if p == "ne" else b.fcmp_ordered(_FCMP[p], a[0], a[1])
        if boolean:
            return b.icmp_unsigned(_FCMP[p], a[0], a[1])
        return b.icmp_signed(_FCMP[p], a[0], a[1])
    if p == "and":
        return b.and_(a[0], a[1])
    if p == "or":
        return b.or_(a[0], a[1])
    if p == "xor":
        return b.xor(a[0], a[1])
    if p == "not":
        return b.xor(a[0], ir.Constant(T.I1, 1))
    if p == "select":
        return b.select(a[0], a[1], a[2])
    if p in ("isnan", "isinf", "isfinite"):
        if not fl:
            return ir.Constant(T.I1, int(p == "isfinite"))
        if p == "isnan":
            return b.fcmp_unordered("uno", a[0], a[0])
        magnitude = _intr(b, "fabs", t, a)
        inf = ir.Constant(t, float("inf"))
        return b.fcmp_ordered("==", magnitude, inf) if p == "isinf" else b.fcmp_ordered("!=", magnitude, inf)
    raise AssertionError(f"no LLVM rendering for primitive {p}")


def int_divmod(b: ir.IRBuilder, x: ir.Value, y: ir.Value, which: str, t: ir.Type) -> ir.Value:
    """NumPy integer floor division / remainder: by zero gives 0; INT_MIN // -1 wraps."""
    zero, one, minus = ir.Constant(t, 0), ir.Constant(t, 1), ir.Constant(t, -1)
    by_zero = b.icmp_signed("==", y, zero)
    overflow = b.and_(b.icmp_signed("==", y, minus), b.icmp_signed("==", x, ir.Constant(t, -(1 << (t.width - 1)))))
    safe = b.select(b.or_(by_zero, overflow), one, y)
    q = b.sdiv(x, safe)
    r = b.srem(x, safe)
    adjust = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("!=", b.icmp_signed("<", r, zero), b.icmp_signed("<", y, zero)))
    if which == "floordiv":
        q = b.select(adjust, b.sub(q, one), q)
        q = b.select(overflow, x, q)
        return b.select(by_zero, zero, q)
    r = b.select(adjust, b.add(r, y), r)
    return b.select(b.or_(by_zero, overflow), zero, r)


def float_divmod(b: ir.IRBuilder, x: ir.Value, y: ir.Value, which: str) -> ir.Value:
    """NumPy's npy_divmod for floats (fmod-based, so that x == q * y + r as closely as can be)."""
    t = x.type
    zero = ir.Constant(t, 0.0)
    mod = b.frem(x, y)
    flip = b.and_(b.fcmp_ordered("!=", mod, zero),
                  b.icmp_unsigned("!=", b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod, zero)))
    mod_adj = b.select(flip, b.fadd(mod, y), mod)
    if which == "mod":
        signed_zero = _intr(b, "copysign", t, [zero, y])
        result = b.select(b.fcmp_ordered("==", mod, zero), signed_zero, mod_adj)
        return b.select(b.fcmp_ordered("==", y, zero), mod, result)
    div = b.fdiv(b.fsub(x, mod), y)
    div = b.select(flip, b.fsub(div, ir.Constant(t, 1.0)), div)
    floordiv = _intr(b, "floor", t, [div])
    floordiv = b.select(b.fcmp_ordered(">", b.fsub(div, floordiv), ir.Constant(t, 0.5)),
                        b.fadd(floordiv, ir.Constant(t, 1.0)), floordiv)
    floordiv = b.select(b.fcmp_ordered("==", div, zero), _intr(b, "copysign", t, [zero, b.fdiv(x, y)]), floordiv)
    return b.select(b.fcmp_ordered("==", y, zero), b.fdiv(x, y), floordiv)


def int_pow(b: ir.IRBuilder, x: ir.Value, y: ir.Value, t: ir.Type) -> ir.Value:
    """x ** y for ints by squaring (wrapping like NumPy); negative y truncates toward zero."""
    fn_name = f"graphc_ipow_{T.suffix(t)}"
    module = b.module
    fn = module.globals.get(fn_name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(t, [t, t]), name=fn_name)
        fn.linkage = "internal"
        base, exp = fn.args
        entry = fn.append_basic_block("entry")
        loop = fn.append_basic_block("loop")
        done = fn.append_basic_block("done")
        fb = ir.IRBuilder(entry)
        zero, one = ir.Constant(t, 0), ir.Constant(t, 1)
        negative = fb.icmp_signed("<", exp, zero)
        # negative exponents: 1 for base 1, +-1 for base -1, else 0
        is_one = fb.icmp_signed("==", base, one)
        is_minus = fb.icmp_signed("==", base, ir.Constant(t, -1))
        odd_exp = fb.icmp_signed("!=", fb.and_(exp, one), zero)
        neg_value = fb.select(is_one, one, fb.select(is_minus, fb.select(odd_exp, ir.Constant(t, -1), one), zero))
        fb.cbranch(negative, done, loop)
        lb = ir.IRBuilder(loop)
        acc = lb.phi(t)
        cur = lb.phi(t)
        e = lb.phi(t)
        odd = lb.icmp_signed("!=", lb.and_(e, one), zero)
        acc_next = lb.select(odd, lb.mul(acc, cur), acc)
        cur_next = lb.mul(cur, cur)
        e_next = lb.ashr(e, one)
        acc.add_incoming(one, entry)
        cur.add_incoming(base, entry)
        e.add_incoming(exp, entry)
        acc.add_incoming(acc_next, loop)
        cur.add_incoming(cur_next, loop)
        e.add_incoming(e_next, loop)
        lb.cbranch(lb.icmp_signed("!=", e_next, zero), loop, done)
        db = ir.IRBuilder(done)
        result = db.phi(t)
        result.add_incoming(neg_value, entry)
        result.add_incoming(acc_next, loop)
        db.ret(result)
    return b.call(fn, [x, y])


"""IR-building helpers shared by the vectorizable math kernels (see ``llvm_math``).

An :class:`Emitter` wraps an ``llvmlite.ir.IRBuilder`` for one floating-point format and offers the
handful of operations the kernels are written in: arithmetic, ``fma``, comparisons and ``select``,
bit casts to the same-width integer, a branch-free round-to-integer and power-of-two scaling.
Everything it emits is straight-line code made of plain instructions and LLVM intrinsics that lower
to instructions on every x86-64 (``fma`` only when the target has it; otherwise a multiply and an
add, with Dekker's splitting for exact products), so the loop vectorizer can widen a loop that calls
an inlined kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

F32, F64 = ir.FloatType(), ir.DoubleType()
I1, I32, I64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)


@dataclass(frozen=True)
class Format:
    """Bit layout of an IEEE binary format."""

    ty: ir.Type
    ity: ir.IntType
    bits: int
    mant: int  # explicit mantissa bits
    bias: int
    suffix: str


FORMATS = {"f32": Format(F32, I32, 32, 23, 127, "f32"), "f64": Format(F64, I64, 64, 52, 1023, "f64")}


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type], suffix: str) -> ir.Function:
    """Declare (once) the overloaded intrinsic ``llvm.<name>.<suffix>``."""
    full = f"llvm.{name}.{suffix}"
    if full in module.globals:
        return module.globals[full]
    return ir.Function(module, ir.FunctionType(ret, args), name=full)


class Emitter:
    """Straight-line IR for one float format; all values are scalars (the vectorizer widens them)."""

    def __init__(self, builder: ir.IRBuilder, kind: str, fma: bool) -> None:
        self.b = builder
        self.fmt = FORMATS[kind]
        self.ty, self.ity = self.fmt.ty, self.fmt.ity
        self.has_fma = fma

    def other(self, kind: str) -> Emitter:
        """An emitter for another format on the same builder (f32 kernels that work in double)."""
        return Emitter(self.b, kind, self.has_fma)

    # -- constants -------------------------------------------------------------------------------
    def __call__(self, value: float) -> ir.Constant:
        return ir.Constant(self.ty, float(value))

    def i(self, value: int) -> ir.Constant:
        return ir.Constant(self.ity, value)

    # -- float arithmetic ------------------------------------------------------------------------
    def add(self, a, b):
        return self.b.fadd(a, b)

    def sub(self, a, b):
        return self.b.fsub(a, b)

    def mul(self, a, b):
        return self.b.fmul(a, b)

    def div(self, a, b):
        return self.b.fdiv(a, b)

    def neg(self, a):
        return self.b.fneg(a)

    def _call(self, name: str, *args):
        fn = intrinsic(self.b.module, name, self.ty, [self.ty] * len(args), self.fmt.suffix)
        return self.b.call(fn, list(args))

    def fma(self, a, b, c):
        """a*b + c, fused when the target has FMA (one rounding), else two roundings."""
        if self.has_fma:
            return self._call("fma", a, b, c)
        return self.add(self.mul(a, b), c)

    def abs(self, a):
        return self._call("fabs", a)

    def copysign(self, mag, sign):
        return self._call("copysign", mag, sign)

    def sqrt(self, a):
        return self._call("sqrt", a)

    def horner(self, x, coeffs):
        """coeffs[0] + x*(coeffs[1] + x*(...)), with fused steps."""
        acc = self(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self(c))
        return acc

    def two_prod(self, a, b):
        """(p, e) with p = fl(a*b) and p + e == a*b exactly."""
        p = self.mul(a, b)
        if self.has_fma:
            return p, self.fma(a, b, self.neg(p))
        ah, al = self._split(a)
        bh, bl = self._split(b)
        e = self.add(self.add(self.add(self.sub(self.mul(ah, bh), p), self.mul(ah, bl)), self.mul(al, bh)),
                     self.mul(al, bl))
        return p, e

    def _split(self, a):
        """Veltkamp split of a into hi + lo halves (for Dekker's product without FMA)."""
        c = self.mul(a, self(2.0 ** ((self.fmt.mant + 2) // 2) + 1))
        hi = self.sub(c, self.sub(c, a))
        return hi, self.sub(a, hi)

    def two_sum(self, a, b):
        """(s, e) with s = fl(a+b) and s + e == a+b exactly (Knuth, no magnitude precondition)."""
        s = self.add(a, b)
        bv = self.sub(s, a)
        av = self.sub(s, bv)
        return s, self.add(self.sub(a, av), self.sub(b, bv))

    def fast_two_sum(self, a, b):
        """(s, e) with s + e == a+b exactly, valid when |a| >= |b| (or a == 0)."""
        s = self.add(a, b)
        return s, self.sub(b, self.sub(s, a))

    # -- comparisons and selection ---------------------------------------------------------------
    def cmp(self, op: str, a, b):
        """Ordered comparison: false whenever an operand is NaN."""
        return self.b.fcmp_ordered(op, a, b)

    def sel(self, cond, a, b):
        return self.b.select(cond, a, b)

    def clamp(self, x, lo: float, hi: float):
        """Clamp x into [lo, hi] with selects that let NaN through (minnum would drop it)."""
        x = self.sel(self.cmp("<", x, self(lo)), self(lo), x)
        return self.sel(self.cmp(">", x, self(hi)), self(hi), x)

    def and_(self, a, b):
        return self.b.and_(a, b)

    def or_(self, a, b):
        return self.b.or_(a, b)

    def not_(self, a):
        return self.b.not_(a)

    # -- integers and bits -----------------------------------------------------------------------
    def bits(self, x):
        return self.b.bitcast(x, self.ity)

    def from_bits(self, n):
        return self.b.bitcast(n, self.ty)

    def rint(self, x):
        """Round to nearest even as (float, int) by adding 1.5*2**mant; valid for |x| < 2**(mant-1).

        Cheaper than a float-to-int conversion and needs no SSE4.1 ``round``; the integer is read
        from the low mantissa bits of the biased sum.
        """
        magic = self(1.5 * 2.0 ** self.fmt.mant)
        t = self.add(x, magic)
        return self.sub(t, magic), self.b.sub(self.bits(t), self.bits(magic))

    def rint_scale(self, x, factor: float, offset: int = 0, halves: bool = False):
        """n = rint(x * factor) as (n, code): n as a float, and a code from which ``pow2_code``
        makes 2**(n + offset), or ``ldexp_code`` scales by 2**n in two halves.

        The product and the rounding constant are one fused operation (with FMA, n is the
        integer nearest the exact product). The code is the bit pattern of that rounding sum:
        the magic constant's low bits carry the exponent bias (+ offset; twice the bias for
        halves), and the bits that a shift by mant drops are the constant's own, so 2**(n +
        offset) is one shift instead of a subtraction, an addition and a shift. Valid for
        |x * factor| < 2**(mant-2) and n + offset + bias in [1, 2*bias].
        """
        low = 2 * self.fmt.bias if halves else self.fmt.bias + offset
        magic = self(1.5 * 2.0 ** self.fmt.mant + low)
        t = self.fma(x, self(factor), magic)
        return self.sub(t, magic), self.bits(t)

    def pow2(self, n):
        """2**n for an integer n in the normal exponent range."""
        return self.from_bits(self.b.shl(self.b.add(n, self.i(self.fmt.bias)), self.i(self.fmt.mant)))

    def pow2_code(self, code):
        """2**(n + offset) from a ``rint_scale`` code (n + offset in the normal exponent range)."""
        return self.from_bits(self.b.shl(code, self.i(self.fmt.mant)))

    def ldexp_code(self, x, code, one_plus: bool = False):
        """x * 2**n (or (1 + x) * 2**n) from a ``rint_scale(..., halves=True)`` code, for |n| up
        to about twice the exponent bias: 2**floor(n/2) and 2**ceil(n/2) are both normal, so
        results overflow to inf and underflow gradually through the subnormals (the last
        multiplication is the only rounding besides 1 + x's) without a branch. The constant's
        low bits are 2*bias, so half the code carries bias + floor(n/2) and the code minus that
        half carries bias + ceil(n/2). With one_plus the addition is fused into the first
        scaling (exact, so the same result for one operation less)."""
        half = self.b.lshr(code, self.i(1))
        first = self.from_bits(self.b.shl(half, self.i(self.fmt.mant)))
        second = self.from_bits(self.b.shl(self.b.sub(code, half), self.i(self.fmt.mant)))
        scaled = self.fma(x, first, first) if one_plus else self.mul(x, first)
        return self.mul(scaled, second)

    def frexp_sqrt2(self, x):
        """Split finite positive normal x as 2**k * m with m in [sqrt(1/2), sqrt(2)); returns (m, k)."""
        fmt = self.fmt
        off = self.bits(self(0.7071067811865476 if fmt.bits == 64 else 0.70710677))
        ix = self.b.sub(self.bits(x), off)
        k = self.b.ashr(ix, self.i(fmt.mant))
        m = self.b.add(self.b.and_(ix, self.i((1 << fmt.mant) - 1)), off)
        return self.from_bits(m), k

    def itof(self, n):
        return self.b.sitofp(n, self.ty)

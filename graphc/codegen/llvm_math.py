"""Vectorizable math library for graphc's LLVM CPU backend.

``math_function(module, name, dtype)`` adds (once per module) an ``alwaysinline`` internal function
``graphc_<name>_<f32|f64>`` written in pure IR arithmetic: range reduction and minimax polynomials,
bit casts for exponent manipulation and ``select`` for the special cases, with no branches and no
calls other than intrinsics that lower to instructions. After inlining, the loop vectorizer turns a
loop over an array into SIMD code (a libm call in a hot loop blocks vectorization: ~30x slower).

Algorithms (coefficients from ``llvm_math_fit``):

* exp, expm1, tanh, sigmoid (``llvm_math_exp``): x = n*ln2 + r, minimax for e**r - 1, two-step
  2**n scaling (natural overflow and gradual underflow); tanh = m/(m+2) with m = expm1(2|x|)
  (f32: m from a one-sided reduction that never cancels, one formula for the whole range);
  sigmoid = 1/(1+e) or e/(1+e) with e = exp(-|x|), both scaled by 2**64 so that e needs one
  scaling and tiny results are rounded once.
* log, log1p (``llvm_math_log``): x = 2**k * (1+f), sqrt(1/2) <= 1+f < sqrt(2); f32: polynomial in
  f; f64: atanh series in s = f/(2+f) (fdlibm layout). log1p adds the rounding error of 1+x.
* pow (``llvm_math_pow``): f32 in double with short log/exp polynomials; f64 via a double-double
  log (~2**-68) and a double-double-argument exp; C99 special cases by selects.
* sin, cos (``llvm_math_trig``): f32: Cody-Waite with 3 parts of pi/2 below 2**17, Payne-Hanek on
  64-bit integers (a 96-bit window of 2/pi chosen by selects) above, for the whole finite range;
  f64: double-double Cody-Waite, accurate for |x| < 2**50; beyond that the f64 kernels return NaN.
* erf (``llvm_math_erf``): x*P(x**2) for |x| < 1, 1 - exp(-x**2)*R(x) for 1 <= |x| < 4 (f32) / 6 (f64).
* rsqrt: 1/sqrt(x) (two correctly rounded operations).

Max error in ulp of the exact result (round-to-nearest is 0.5). float32 unary functions: measured
exhaustively over all 2**32 inputs against the float64 value; float32 pow and all float64 functions:
max over ~12 million random samples (every binade, active ranges, special values, exact integer
powers) against np.longdouble (64-bit mantissa; erf from a positive-term series). "tested" is the
bound tests/codegen/test_llvm_math.py asserts on its fixed-seed samples. Special values (NaN, +-inf,
+-0 with their signs) match NumPy exactly.

==========  ========  ==========  ========  ==========
function    f32 max   f32 tested  f64 max   f64 tested
==========  ========  ==========  ========  ==========
exp         1.014     1.02        0.975     1.0
expm1       1.087     1.1         1.069     1.1
log         0.834     0.84        0.833     0.85
log1p       0.901     0.91        0.817     0.85
tanh        2.419     2.43        1.425     1.5
sigmoid     2.402     2.41        1.439     1.5
sin         1.582     1.59        0.743     0.8   (f64: |x| < 2**50)
cos         1.585     1.59        0.748     0.8   (f64: |x| < 2**50)
erf         1.450     1.46        1.316     1.35
rsqrt       1.490     1.5         1.490     1.5
pow         0.505     0.52        0.765     0.8
==========  ========  ==========  ========  ==========

Without FMA (baseline x86-64) the tests allow +0.5 ulp (f32) / +1 ulp (f64) over these (measured
worst: tanh 2.44 ulp in f32, erf 1.99 in f64).

FMA: kernels use ``llvm.fma`` when the target has FMA (the host is probed unless ``fma=`` is given);
otherwise a multiply and an add (and Dekker's exact product), which keeps every x86-64 free of libm
calls at a small accuracy cost.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Callable

import numpy as np
from llvmlite import ir

from . import llvm_math_exp as _exp
from .llvm_math_base import F32, F64, I64, Emitter

DTYPES = {"float32": ("f32", F32), "float64": ("f64", F64)}
UNARY = ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "sin", "cos", "erf", "rsqrt")
BINARY = ("pow",)


def _kernels() -> dict[str, Callable]:
    from . import llvm_math_erf, llvm_math_log, llvm_math_pow, llvm_math_trig

    return {"exp": _exp.exp, "expm1": _exp.expm1, "tanh": _exp.tanh, "sigmoid": _exp.sigmoid,
            "log": llvm_math_log.log, "log1p": llvm_math_log.log1p, "pow": llvm_math_pow.pow,
            "sin": llvm_math_trig.sin, "cos": llvm_math_trig.cos, "erf": llvm_math_erf.erf,
            "rsqrt": llvm_math_erf.rsqrt}


@lru_cache(maxsize=1)
def host_has_fma() -> bool:
    import llvmlite.binding as llvm

    return bool(llvm.get_host_cpu_features().get("fma", False))


def math_function(module: ir.Module, name: str, dtype: str, *, fma: bool | None = None) -> ir.Function:
    """The IR function ``graphc_<name>_<f32|f64>`` of ``module``, created on first use.

    ``name`` is one of UNARY (T -> T) or BINARY (pow: (T, T) -> T); ``dtype`` is "float32" or
    "float64". ``fma`` says whether the target has fused multiply-add (default: the host's).
    """
    if dtype not in DTYPES:
        raise ValueError(f"math_function: unsupported dtype {dtype!r}")
    if name not in UNARY + BINARY:
        raise ValueError(f"math_function: unknown function {name!r}")
    kind, ty = DTYPES[dtype]
    fname = f"graphc_{name}_{kind}"
    if fname in module.globals:
        return module.globals[fname]
    nargs = 2 if name in BINARY else 1
    fn = ir.Function(module, ir.FunctionType(ty, [ty] * nargs), name=fname)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    em = Emitter(builder, kind, host_has_fma() if fma is None else fma)
    builder.ret(_kernels()[name](em, *fn.args))
    return fn


# -- test/benchmark harness ------------------------------------------------------------------------

class ElementwiseLoop:
    """A JIT-compiled ``apply(x[, y], out, n)`` loop over one math function (for tests/benchmarks).

    ``optimized_ir`` holds the IR of the module after the O3 pipeline, ``asm`` the machine code.
    """

    def __init__(self, name: str, dtype: str, fma: bool | None = None, cpu: str | None = None,
                 features: str | None = None) -> None:
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.name, self.dtype, self.nargs = name, np.dtype(dtype), 2 if name in BINARY else 1
        target = llvm.Target.from_default_triple()
        self._tm = target.create_target_machine(
            cpu=llvm.get_host_cpu_name() if cpu is None else cpu,
            features=llvm.get_host_cpu_features().flatten() if features is None else features,
            opt=3, jit=True)
        module = self._build(name, dtype, fma)
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pb = llvm.create_pass_builder(self._tm, pto)
        pb.getModulePassManager().run(mod, pb)
        self.optimized_ir = str(mod)
        self.asm = self._tm.emit_assembly(mod)
        self._engine = llvm.create_mcjit_compiler(mod, self._tm)
        self._engine.finalize_object()
        addr = self._engine.get_function_address("apply")
        ptr = ctypes.c_void_p
        self._fn = ctypes.CFUNCTYPE(None, *([ptr] * (self.nargs + 1)), ctypes.c_int64)(addr)

    def _build(self, name: str, dtype: str, fma: bool | None) -> ir.Module:
        module = ir.Module(name=f"graphc_math_{name}_{dtype}")
        module.triple = self._tm.triple
        module.data_layout = str(self._tm.target_data)
        kernel = math_function(module, name, dtype, fma=fma)
        ty, ptr = DTYPES[dtype][1], ir.PointerType()
        apply = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * (self.nargs + 1) + [I64]), "apply")
        for arg in apply.args[:-1]:
            arg.add_attribute("noalias")
        n = apply.args[-1]
        entry, loop, done = (apply.append_basic_block(s) for s in ("entry", "loop", "done"))
        b = ir.IRBuilder(entry)
        b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
        b.position_at_end(loop)
        i = b.phi(I64)
        i.add_incoming(ir.Constant(I64, 0), entry)
        args = [b.load(b.gep(p, [i], inbounds=True, source_etype=ty), typ=ty) for p in apply.args[:self.nargs]]
        b.store(b.call(kernel, args), b.gep(apply.args[self.nargs], [i], inbounds=True, source_etype=ty))
        nxt = b.add(i, ir.Constant(I64, 1), flags=["nuw", "nsw"])
        i.add_incoming(nxt, loop)
        b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
        b.position_at_end(done)
        b.ret_void()
        return module

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        if len(arrays) != self.nargs:
            raise TypeError(f"{self.name} takes {self.nargs} array(s)")
        ins = [np.ascontiguousarray(a, dtype=self.dtype) for a in arrays]
        if self.nargs == 2:
            ins = [np.ascontiguousarray(a) for a in np.broadcast_arrays(*ins)]
        out = np.empty_like(ins[0])
        self._fn(*[a.ctypes.data for a in ins], out.ctypes.data, out.size)
        return out


def compile_elementwise_loop(name: str, dtype: str, **options) -> ElementwiseLoop:
    """JIT-compile a loop applying ``name`` elementwise (test/benchmark helper, see ElementwiseLoop)."""
    return ElementwiseLoop(name, dtype, **options)

"""Rendering a HostCall (graphc.lower.kernel): one call of the runtime's host-call entry
(HOST_CALL_SYMBOL) with the kind, argument, dtype and element count as constants, the source
and destination buffers, and the call's key as a constant C string, so the compiled module
holds everything the runtime needs (a module from the disk cache works as it is). A nonzero
result sets the error code HOST_CALL_FAILED; later kernels then do nothing."""
from __future__ import annotations

from llvmlite import ir

from ..lower.kernel import HOST_CALL_FAILED, HOST_CALL_SYMBOL, HOST_DTYPES, HOST_KINDS, HostCall
from . import llvm_types
from .llvm_loops import define_entry

I64, I8P = llvm_types.I64, llvm_types.I8P


def host_call_symbol(module: ir.Module) -> ir.Function:
    fn = module.globals.get(HOST_CALL_SYMBOL)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(I64, [I64, I64, I64, I64, I8P, I8P, I8P]), name=HOST_CALL_SYMBOL)
    return fn


def _key_string(module: ir.Module, name: str, key: str) -> ir.GlobalVariable:
    data = bytearray(key.encode("utf-8")) + b"\0"
    g = ir.GlobalVariable(module, ir.ArrayType(llvm_types.I8, len(data)), name=f"{name}_key")
    g.global_constant = True
    g.linkage = "internal"
    g.initializer = ir.Constant(ir.ArrayType(llvm_types.I8, len(data)), data)
    return g


def render_host_call(module: ir.Module, name: str, k: HostCall) -> ir.Function:
    key = _key_string(module, name, k.key)

    def body(b, fn, pointers, error, start, end):
        const = lambda v: ir.Constant(I64, v)   # noqa: E731
        null = ir.Constant(I8P, None)
        data = k.src if k.src is not None else k.dst
        args = [const(HOST_KINDS.index(k.kind)), const(k.argument), const(HOST_DTYPES.index(data.dtype.name)),
                const(data.size), b.bitcast(pointers[k.src.id], I8P) if k.src is not None else null,
                b.bitcast(pointers[k.dst.id], I8P) if k.dst is not None else null, b.bitcast(key, I8P)]
        result = b.call(host_call_symbol(module), args)
        with b.if_then(b.icmp_signed("!=", result, const(0)), likely=False):
            b.store(const(HOST_CALL_FAILED), error)

    return define_entry(module, name, [b for b in (k.src, k.dst) if b is not None], body, skip_on_error=True)

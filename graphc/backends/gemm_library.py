"""graphc's own GEMM for JIT programs: each block function (a dtype and a pair of transposes,
graphc.codegen.llvm_gemm_own; a dtype's direct convolution, graphc.codegen.llvm_conv_direct,
its 1x1 convolution, graphc.codegen.llvm_pointwise; a dtype and tap geometry's depthwise
convolution, graphc.codegen.llvm_depthwise)
compiled once per machine, kept in the disk cache, and loaded once per process into the engine
every program is loaded into, where programs' calls to graphc_gemm_f32_nn and the like resolve.

Why not in each program's module: a block function takes about half a second to compile, and
a program's parts compiled side by side (graphc.codegen.llvm_split) would each have compiled
their own copy; that cost would have been paid by every program with a product in it.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from llvmlite import binding as llvm
from llvmlite import ir

from ..codegen.llvm_conv_direct import conv_block_function, conv_symbol
from ..codegen.llvm_depthwise import depthwise_block_function, depthwise_symbol
from ..codegen.llvm_gemm_own import block_symbol, gemm_block_function
from ..codegen.llvm_pointwise import pointwise_block_function, pointwise_symbol
from ..lower.kernel import GemmCall, KernelProgram, walk_kernels
from ..runtime import cache, jit

FORMAT = "graphc-gemm-1"
_lock = threading.Lock()
_loaded: set[str] = set()


def load_blocks(kp: KernelProgram, code_digest: str) -> None:
    """Make every block function kp's generated GEMMs and direct convolutions call resolvable
    (before kp's code loads)."""
    for g in walk_kernels(kp.kernels):
        if isinstance(g, GemmCall) and g.depthwise is not None:
            d = g.depthwise
            symbol = depthwise_symbol(g.c.dtype.name, d.taps, d.strides, d.dilations, d.combiner)
            _load(symbol, lambda module, symbol=symbol: depthwise_block_function(module, symbol), code_digest)
        elif isinstance(g, GemmCall) and g.window is not None:
            width = g.window.panel_bytes
            _load(conv_symbol(g.c.dtype.name, width),
                  lambda module, name=g.c.dtype.name, width=width: conv_block_function(module, name, panel_bytes=width),
                  code_digest)
        elif isinstance(g, GemmCall) and g.pointwise:
            _load(pointwise_symbol(g.c.dtype.name),
                  lambda module, name=g.c.dtype.name: pointwise_block_function(module, name), code_digest)
        elif isinstance(g, GemmCall) and g.generated:
            _load(block_symbol(g.c.dtype.name, g.transpose_a, g.transpose_b),
                  lambda module, g=g: gemm_block_function(module, g.c.dtype.name, g.transpose_a, g.transpose_b),
                  code_digest)


def _load(symbol: str, define: Callable[[ir.Module], Any], code_digest: str) -> None:
    with _lock:
        if symbol in _loaded:
            return
        about = f"{FORMAT}; {symbol}; code generator {code_digest}; {jit.host_description()}"
        key = cache.key_of(about)
        code = b"" if jit.is_loaded(key) else cache.load(key, section="runtime", about=about)
        if code is None:
            module = ir.Module(name=symbol)
            define(module)
            code = jit.compile_object(str(module))
            cache.store(key, code, section="runtime", about=about)
        loader = jit.load_object(key, code)
        llvm.add_symbol(symbol, loader.address(symbol))
        _loaded.add(symbol)

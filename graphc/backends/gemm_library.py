"""graphc's own GEMM for JIT programs: each block function (a dtype and a pair of transposes,
graphc.codegen.llvm_gemm_own) compiled once per machine, kept in the disk cache, and loaded
once per process into the engine every program is loaded into, where programs' calls to
graphc_gemm_f32_nn and the like resolve.

Why not in each program's module: a block function takes about half a second to compile, and
a program's parts compiled side by side (graphc.codegen.llvm_split) would each have compiled
their own copy; that cost would have been paid by every program with a product in it.
"""
from __future__ import annotations

import threading

from llvmlite import binding as llvm
from llvmlite import ir

from ..codegen.llvm_gemm_own import block_symbol, gemm_block_function
from ..lower.kernel import GemmCall, KernelProgram, walk_kernels
from ..runtime import cache, jit

FORMAT = "graphc-gemm-1"
_lock = threading.Lock()
_loaded: set[str] = set()


def load_blocks(kp: KernelProgram, code_digest: str) -> None:
    """Make every block function kp's generated GEMMs call resolvable (before kp's code loads)."""
    for g in walk_kernels(kp.kernels):
        if isinstance(g, GemmCall) and g.generated:
            _load(g.c.dtype.name, g.transpose_a, g.transpose_b, code_digest)


def _load(dtype_name: str, transpose_a: bool, transpose_b: bool, code_digest: str) -> None:
    symbol = block_symbol(dtype_name, transpose_a, transpose_b)
    with _lock:
        if symbol in _loaded:
            return
        about = f"{FORMAT}; {symbol}; code generator {code_digest}; {jit.host_description()}"
        key = cache.key_of(about)
        code = b"" if jit.is_loaded(key) else cache.load(key, section="runtime", about=about)
        if code is None:
            module = ir.Module(name=symbol)
            gemm_block_function(module, dtype_name, transpose_a, transpose_b)
            code = jit.compile_object(str(module))
            cache.store(key, code, section="runtime", about=about)
        loader = jit.load_object(key, code)
        llvm.add_symbol(symbol, loader.address(symbol))
        _loaded.add(symbol)

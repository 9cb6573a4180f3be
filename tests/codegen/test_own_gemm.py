"""graphc's own GEMM (graphc.codegen.llvm_gemm_own): every layout, edge and blocking gives
NumPy's product, called directly on one block and through the compiler (GRAPHC_GEMM=generated,
and in AOT libraries, which use it always)."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
from llvmlite import ir

import graphc as gc
from graphc.codegen import llvm_gemm_own
from graphc.codegen.llvm_gemm_own import MIN_A_BLOCK_ROWS, blocking, gemm_block_function, host_vector_bytes
from graphc.lower.kernel import GemmCall
from graphc.runtime import jit



def _block_entry(dtype: str, transpose_a: bool, transpose_b: bool, vector_bytes: int | None, tag: str = ""):
    """A ctypes callable of the block function, compiled alone (vector_bytes None: the JIT's,
    for the host)."""
    # one engine holds every object in the process: each entry needs a symbol of its own
    symbol = f"own_gemm_test_{dtype}_{transpose_a:d}{transpose_b:d}_{vector_bytes}{tag}"
    module = ir.Module(name=symbol)
    block = gemm_block_function(module, dtype, transpose_a, transpose_b, vector_bytes)
    block.linkage = "internal"   # the process-wide copy (graphc.backends.gemm_library) has its name
    entry = ir.Function(module, block.function_type, name=symbol)
    b = ir.IRBuilder(entry.append_basic_block())
    b.call(block, entry.args)
    b.ret_void()
    loader = jit.load_object(symbol, b"" if jit.is_loaded(symbol) else jit.compile_object(str(module)))
    proto = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 3, *[ctypes.c_int64] * 6)
    return proto(loader.address(symbol))


def _operands(rng, m, n, k, transpose_a, transpose_b, dtype):
    a = rng.normal(size=(k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.normal(size=(n, k) if transpose_b else (k, n)).astype(dtype)
    return a, b, (a.T if transpose_a else a) @ (b.T if transpose_b else b)


# every dtype and pair of transposes on the AVX blocking (32-byte vectors); the SSE and AVX-512
# blockings (other tile sizes and cache blocks) on two of them (each case is a compile)
CASES = [(32, dtype, ta, tb) for dtype in ("float32", "float64") for ta in (False, True) for tb in (False, True)] + \
    [(vb, dtype, ta, ta) for vb in (16, 64) for dtype, ta in (("float32", False), ("float64", True))]


@pytest.mark.parametrize("vector_bytes, dtype, transpose_a, transpose_b", CASES)
def test_block_matches_numpy_across_every_blocking_edge(vector_bytes, dtype, transpose_a, transpose_b):
    """Shapes that leave partial micro-tiles, that cross the KC, MC and NC block edges, and a
    row-major A read in place and packed (with AVX-512's 12-row tiles, a small A is read in
    place by tiles of 8 rows, the rest of its rows packed)."""
    bl = blocking(dtype, vector_bytes)
    block = _block_entry(dtype, transpose_a, transpose_b, vector_bytes)
    rng = np.random.default_rng(vector_bytes)
    shapes = [(1, 1, 1), (bl.mr - 1, bl.nr + 1, 3), (bl.mr, bl.nr, bl.kc + 1),
              (bl.mc + 5, bl.nc + 3, 2 * bl.kc + 7), (2, 2 * bl.nc + 1, 5),
              (2 * bl.mr + 1, bl.nr + 5, 2100),   # rows of A over 8 KB apart: packed, not read in place
              (35, 2 * bl.nr + 1, 64)]   # a small A: several in-place tiles (of 8 rows with AVX-512) and a rest
    for m, n, k in shapes:
        a, b, want = _operands(rng, m, n, k, transpose_a, transpose_b, dtype)
        # C is written inside a wider matrix: ldc > n, and the columns past n stay untouched
        c = np.full((m, n + 3), 7.0, dtype)
        block(a.ctypes.data, b.ctypes.data, c.ctypes.data, m, n, k, a.shape[1], b.shape[1], n + 3)
        tol = 2e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(c[:, :n], want, rtol=tol, atol=tol * np.sqrt(k) * 4, err_msg=f"{m}x{n}x{k}")
        assert (c[:, n:] == 7.0).all()


def test_wider_panels_for_a_larger_l1(monkeypatch):
    """The JIT's block is blocked for the host's L1 (llvm_gemm_own.blocking): a 48 KB L1 gives
    float32 panels of 256 steps, while float64 keeps its own (wider ones would leave A blocks
    under MIN_A_BLOCK_ROWS); the block so blocked matches NumPy across its edges."""
    assert llvm_gemm_own.host_l1_data_bytes() is None or llvm_gemm_own.host_l1_data_bytes() >= 8 << 10
    wide = blocking("float32", 64, 48 << 10)
    assert wide.kc == 2 * blocking("float32", 64).kc and wide.mc >= MIN_A_BLOCK_ROWS
    assert blocking("float64", 64, 48 << 10) == blocking("float64", 64)
    monkeypatch.setattr(llvm_gemm_own, "host_l1_data_bytes", lambda: 48 << 10)
    bl = blocking("float32", host_vector_bytes(), 48 << 10)
    block = _block_entry("float32", False, True, None, "_l1_48k")
    rng = np.random.default_rng(7)
    for m, n, k in [(bl.mc + 5, bl.nc + 3, 2 * bl.kc + 7), (35, 2 * bl.nr + 1, bl.kc + 1)]:
        a, b, want = _operands(rng, m, n, k, False, True, "float32")
        c = np.zeros((m, n), np.float32)
        block(a.ctypes.data, b.ctypes.data, c.ctypes.data, m, n, k, a.shape[1], b.shape[1], n)
        np.testing.assert_allclose(c, want, rtol=2e-5, atol=2e-5 * np.sqrt(k) * 4, err_msg=f"{m}x{n}x{k}")


def test_empty_reduction_writes_zeros():
    block = _block_entry("float32", False, False, 32)
    a, b = np.zeros((4, 0), np.float32), np.zeros((0, 5), np.float32)
    c = np.full((4, 5), 3.0, np.float32)
    block(a.ctypes.data, b.ctypes.data, c.ctypes.data, 4, 5, 0, 0, 5, 5)
    assert (c == 0).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_matmuls_use_it_and_match_the_numpy_backend(dtype, monkeypatch):
    """GRAPHC_GEMM=generated: batched, broadcast and transposed products, and a gradient."""
    monkeypatch.setenv("GRAPHC_GEMM", "generated")
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 37, 70)).astype(dtype)
    w = rng.normal(size=(70, 45)).astype(dtype)
    x = gc.placeholder(getattr(gc, dtype), a.shape)
    v = gc.Variable(w)
    y = gc.matmul(x, v)
    z = gc.matmul(y, y, transpose_b=True)
    loss = gc.reduce_sum(z * z)
    grad = gc.gradients(loss, [v])[0]
    fetches = [z, grad]
    got = gc.function([x], fetches, backend="llvm")
    reference = gc.function([x], fetches, backend="numpy")
    mine = got(a)
    gemms = [k for k in got._last.executable.kp.kernels if isinstance(k, GemmCall)]
    assert gemms and all(k.generated for k in gemms)
    tol = 1e-4 if dtype == "float32" else 1e-10
    for value, want in zip(mine, reference(a)):
        np.testing.assert_allclose(value, want, rtol=tol, atol=tol * np.abs(want).max())
    np.testing.assert_allclose(mine[0], (a @ w) @ np.swapaxes(a @ w, -1, -2), rtol=tol * 10, atol=tol)


def test_convolution_uses_it_in_gemm_form(monkeypatch):
    monkeypatch.setenv("GRAPHC_GEMM", "generated")
    monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")   # the GEMM form, not the direct kernel
    rng = np.random.default_rng(4)
    image = rng.normal(size=(2, 9, 9, 5)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 5, 7)).astype(np.float32)
    x = gc.placeholder(gc.float32, image.shape)
    y = gc.nn.conv2d(x, gc.constant(kernel), strides=[1, 1, 1, 1], padding="SAME")
    got = gc.function([x], y, backend="llvm")
    out = got(image)
    assert any(isinstance(k, GemmCall) and k.generated for k in got._last.executable.kp.kernels)
    np.testing.assert_allclose(out, gc.function([x], y, backend="numpy")(image), rtol=1e-4, atol=1e-4)


def test_programs_share_one_compiled_block_function(monkeypatch, tmp_path):
    """The JIT compiles a block function once per process (and machine), not once per program."""
    from graphc.backends import gemm_library
    monkeypatch.setenv("GRAPHC_GEMM", "generated")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(gemm_library, "_loaded", set())
    built = []
    real = gemm_library.gemm_block_function
    monkeypatch.setattr(gemm_library, "gemm_block_function",
                        lambda module, *args, **kwargs: (built.append(args), real(module, *args, **kwargs))[1])
    rng = np.random.default_rng(5)
    for m, k, n in [(40, 50, 60), (70, 30, 20)]:
        a, b = rng.normal(size=(m, k)), rng.normal(size=(n, k))
        x, y = gc.placeholder(gc.float64, a.shape), gc.placeholder(gc.float64, b.shape)
        f = gc.function([x, y], gc.matmul(x, y, transpose_b=True), backend="llvm")
        np.testing.assert_allclose(f(a, b), a @ b.T, rtol=1e-12, atol=1e-12)
        assert [k.generated for k in f._last.executable.kp.kernels if isinstance(k, GemmCall)] == [True]
    assert len(built) <= 1 and gemm_library._loaded == {"graphc_gemm_f64_nt"}

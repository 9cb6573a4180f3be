"""graphc's own GEMM, generated as LLVM IR: C = op(A) @ op(B) on one block of C, packed and
register-blocked the way BLIS and OpenBLAS do it, so that code which cannot call a BLAS (an AOT
library, which depends on libc alone) and products a BLAS call does badly get a fast GEMM.

Why this shape (the BLIS loop nest, Van Zee and van de Geijn 2015):
- the micro-kernel keeps an MR x NR tile of C in vector registers (MR rows of two vectors each:
  12 accumulators with 16 registers, 24 with 32), and for each step p of the reduction loads
  two vectors of B and broadcasts MR elements of A: 2 MR fused multiply-adds per 2 loads + MR
  broadcasts, so the FMA units, not memory, set the pace;
- B is packed in KC x NR micro-panels (one fits in L1 while every A micro-panel streams past
  it), contiguous in the order the micro-kernel reads them and zero-padded to whole tiles;
- a row-major A whose rows are less than IN_PLACE_MAX_ROW_BYTES apart is read where it is (MR
  rows, one element of each per step), as the small-matrix kernels of BLIS do: packing it costs
  about as much as the arithmetic on 64 x 64 products. Not with AVX-512's 12-row tiles, whose
  twelve streams of A ran at 0.51-0.79 of OpenBLAS in place (IN_PLACE_MAX_TILE_ROWS). Only the rows of a last partial tile are
  packed (zero-padded), so no read goes past A. Rows further apart, and a transposed A, are
  packed in MC x KC blocks: read in place, their elements fall in few L1 sets (a transposed A
  at lda = 1024 ran at 0.42-0.50 of OpenBLAS, a 2048-wide A at 0.78-0.83; packed, 0.9-1.0);
- only the store of a partial tile of C goes through a small buffer;
- the packed blocks live on the stack (at most PACK_BYTES), so a call allocates nothing, needs
  no libc and is safe on any thread.

The vector width is the host's (host_vector_bytes), or the one an AOT library's target CPU
has (graphc.backends.aot: x86-64 levels by name, 16 bytes for other CPUs and triples).

The caller (graphc.codegen.llvm_gemm) cuts C into blocks the thread pool runs in parallel; one
block function is defined per (dtype, transposes) in a module and shared by every product.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from llvmlite import binding as llvm
from llvmlite import ir

from . import llvm_types
from .llvm_loops import counted_loop

I64 = llvm_types.I64
L1_PANEL_BYTES = 16 << 10   # a KC x NR micro-panel of B: half of a 32 KB L1 (or 2/3 of the host's, see blocking)
L2_BLOCK_BYTES = 128 << 10  # an MC x KC block of A (rows per block: MC)
PACK_BYTES = 384 << 10      # stack for the packed blocks of A and B together
IN_PLACE_MAX_ROW_BYTES = 8 << 10   # a row-major A is read in place when its rows are closer than this
# ... and when a micro-tile reads at most this many rows of it: the AVX-512 tiles' 12 rows in
# place ran at 0.51-0.79 of OpenBLAS on products of 256-1024 (an AVX-512 Xeon, 48 KB L1), packed
# at 0.94-1.16 (benchmarks/own_gemm.py); the AVX2 tiles' 6 rows keep the in-place reads that
# measured faster on small products there
IN_PLACE_MAX_TILE_ROWS = 8
# ... and with taller tiles (AVX-512's 12 rows), a small A (at most this many bytes: it stays in
# L1 while the tiles read it) is read in place by tiles of IN_PLACE_MAX_TILE_ROWS rows: packing
# a 64 x 64 A cost a quarter of the product's time (a batch of 16 such products ran at 0.70 of
# OpenBLAS), and 12 rows read in place ran slower still (0.52: twelve row pointers)
SMALL_A_BYTES = 32 << 10
MIN_A_BLOCK_ROWS = 96       # rows of an A block at least, for a wider B panel (see blocking)
UNROLL = 4                  # reduction steps per iteration of the micro-kernel's loop


@dataclass(frozen=True)
class Blocking:
    """Register and cache blocking for one dtype on one vector width."""

    lanes: int  # elements per vector register
    mr: int     # rows of a micro-tile (broadcast elements of A)
    nr: int     # columns of a micro-tile (two vectors of B)
    kc: int     # reduction steps per packed panel
    mc: int     # rows of A per packed block
    nc: int     # columns of B per packed block

    @property
    def vectors(self) -> int:
        return self.nr // self.lanes


@lru_cache(maxsize=None)
def host_l1_data_bytes() -> int | None:
    """The host's L1 data cache per core, from Linux's sysfs; None where it does not say."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(root)):
            with open(f"{root}/{index}/level") as level, open(f"{root}/{index}/type") as kind:
                if level.read().strip() != "1" or kind.read().strip() not in ("Data", "Unified"):
                    continue
            with open(f"{root}/{index}/size") as size:
                text = size.read().strip().upper()
            return int(text[:-1]) << 10 if text.endswith("K") else int(text)
    except (OSError, ValueError):
        return None
    return None


@lru_cache(maxsize=None)
def host_vector_bytes() -> int:
    """Bytes per vector register on this CPU (64 with AVX-512, 32 with AVX, else 16)."""
    features = llvm.get_host_cpu_features()
    if features.get("avx512f"):
        return 64
    if features.get("avx"):
        return 32
    return 16


def settings_tag(*settings: object) -> str:
    """A short digest of the settings a block function is generated with, for its symbol: sessions
    built under different settings in one process (benchmarks/ab.py) then each call their own,
    where one name would resolve to whichever was compiled first."""
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:8]


def _element(dtype_name: str) -> tuple[ir.Type, int]:
    """The LLVM type and byte size of a float32 / float64 element."""
    return (llvm_types.F32, 4) if dtype_name == "float32" else (llvm_types.F64, 8)


def blocking(dtype_name: str, vector_bytes: int, l1_bytes: int | None = None) -> Blocking:
    """The tile and block sizes for a dtype on `vector_bytes`-wide vectors: as many rows as the
    registers hold accumulators for (16 registers without AVX-512, 32 with it), a B micro-panel
    of L1_PANEL_BYTES (or, given the L1 data cache it runs with, 2/3 of it where that is more
    and the A block still has MIN_A_BLOCK_ROWS rows: the panel and one A micro-panel then fill
    L1), an A block of L2_BLOCK_BYTES, and B blocks filling what is left of PACK_BYTES. On the
    AVX-512 VM's 48 KB L1, float32 panels of 32 KB (256 steps; C is read and written once per
    panel of steps, half as often) against 16 KB, OpenBLAS / own in two alternating runs of
    own_gemm.py: B transposed 0.86-0.88 -> 0.94-0.96 at 1024, 0.81-0.83 -> 0.85-0.86 at 2048;
    plain 0.84 -> 0.86-0.89 at 2048; A transposed 0.88-0.90 -> 0.84-0.87 at 2048, the rest
    within 0.02. float64's would leave A blocks of 60 rows, and a 64 x 64 product then ran as
    two blocks (0.80 of OpenBLAS, against 0.99)."""
    size = _element(dtype_name)[1]
    lanes = max(1, vector_bytes // size)
    registers = 32 if vector_bytes >= 64 else 16
    vectors = 2
    mr = min(12, (registers - vectors - 1) // vectors)   # accumulators + B vectors + one broadcast
    nr = vectors * lanes
    steps = lambda panel: max(64, min(384, panel // (nr * size)))   # noqa: E731
    kc = steps(L1_PANEL_BYTES)
    wide = steps(l1_bytes * 2 // 3) if l1_bytes else 0
    if wide > kc and L2_BLOCK_BYTES // (wide * size) >= MIN_A_BLOCK_ROWS:
        kc = wide
    mc = max(mr, (L2_BLOCK_BYTES // (kc * size)) // mr * mr)
    nc = max(nr, ((PACK_BYTES - mc * kc * size) // (kc * size)) // nr * nr)
    return Blocking(lanes, mr, nr, kc, mc, nc)


def _const(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


def _function(module: ir.Module, name: str, args: list[ir.Type]) -> tuple[ir.Function, ir.IRBuilder]:
    fn = ir.Function(module, ir.FunctionType(llvm_types.VOID, args), name=name)
    fn.linkage = "internal"
    # one call does a whole tile or panel: inlining gains nothing and cost compile time
    fn.attributes.add("noinline")
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))


# --------------------------------------------------------------------------- packing
def _pack(module: ir.Module, t: ir.Type, width: int, along_panel: bool) -> ir.Function:
    """pack(dst, src, count, kc, stride): panels of `width` lines of the source, each stored as
    kc steps of `width` contiguous elements, dst[panel][p][w] = line (panel * width + w) at step
    p, zero past `count` lines. The source holds line q, step p at src[q * stride + p] when
    `along_panel` is false (lines contiguous: rows of A, columns of a transposed B) and at
    src[p * stride + q] when it is true (steps contiguous across lines: columns of B, rows of
    a transposed A)."""
    name = f"gc_gemm_pack_{llvm_types.suffix(t)}_{width}_{'q' if along_panel else 'p'}"
    if name in module.globals:
        return module.globals[name]
    p_t = t.as_pointer()
    fn, b = _function(module, name, [p_t, p_t, I64, I64, I64])
    # optsize: LLVM's unroller tripled this function's compile time for no measured gain
    fn.attributes.add("optsize")
    dst, src, count, kc, stride = fn.args
    for arg in (dst, src):
        arg.add_attribute("noalias")
    zero, w_const = ir.Constant(t, 0.0), _const(width)
    panels = b.sdiv(b.add(count, _const(width - 1)), w_const)

    def one_step(panel: ir.Value, p: ir.Value, partial: bool) -> None:
        """dst[panel][p][0:width] from line panel * width + w, step p."""
        first = b.mul(panel, w_const)
        lines = _min(b, w_const, b.sub(count, first))
        row = b.add(b.mul(panel, b.mul(kc, w_const)), b.mul(p, w_const))
        for w in range(width):
            q = b.add(first, _const(w))
            at = b.add(b.mul(p, stride), q) if along_panel else b.add(b.mul(q, stride), p)
            if partial:   # lines past `count` are zeros; the select keeps the load in bounds
                inside = b.icmp_signed("<", _const(w), lines)
                value = b.select(inside, b.load(b.gep(src, [b.select(inside, at, _const(0))])), zero)
            else:
                value = b.load(b.gep(src, [at]))
            b.store(value, b.gep(dst, [b.add(row, _const(w))]))

    def whole_or_partial(panel: ir.Value, p: ir.Value) -> None:
        full = b.icmp_signed("<=", b.mul(b.add(panel, _const(1)), w_const), count)
        with b.if_else(full, likely=True) as (whole, part):
            with whole:
                one_step(panel, p, False)
            with part:
                one_step(panel, p, True)

    # The source is read in its own order, each source row once and contiguously: by step
    # (then across panels) when steps are rows of the source, by line (then step) otherwise.
    if along_panel:
        counted_loop(b, fn, _const(0), kc, _const(1),
                     lambda p: counted_loop(b, fn, _const(0), panels, _const(1),
                                            lambda panel: whole_or_partial(panel, p), name="pack.panel"),
                     name="pack.p")
    else:
        counted_loop(b, fn, _const(0), panels, _const(1),
                     lambda panel: counted_loop(b, fn, _const(0), kc, _const(1),
                                                lambda p: whole_or_partial(panel, p), name="pack.p"),
                     name="pack.panel")
    b.ret_void()
    return fn


# --------------------------------------------------------------------------- micro-kernel
def reduction_loops(b: ir.IRBuilder, fn: ir.Function, count: ir.Value, unroll: int, acc: list[ir.Value],
                    step: Callable[[ir.Value, list[ir.Value]], list[ir.Value]], label: str,
                    each_iteration: Callable[[ir.Value], None] | None = None) -> list[ir.Value]:
    """acc after step(p, acc) for p in [0, count): `unroll` steps per iteration, then the rest
    one by one; the accumulators (vectors) stay in phis, so in registers. each_iteration(p), where
    given, is emitted once in each unrolled iteration (steps p .. p + unroll - 1)."""
    def loop(lo: ir.Value, hi: ir.Value, stride: int, acc: list[ir.Value], name: str) -> list[ir.Value]:
        pre = b.block
        head, body, done = (fn.append_basic_block(f"{name}.{part}") for part in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        p = b.phi(I64)
        p.add_incoming(lo, pre)
        phis = []
        for value in acc:
            phi = b.phi(value.type)
            phi.add_incoming(value, pre)
            phis.append(phi)
        b.cbranch(b.icmp_signed("<", p, hi), body, done)
        b.position_at_end(body)
        current: list[ir.Value] = phis
        if each_iteration is not None and stride > 1:
            each_iteration(p)
        for u in range(stride):
            current = step(b.add(p, _const(u)), current)
        p.add_incoming(b.add(p, _const(stride)), b.block)
        for phi, value in zip(phis, current):
            phi.add_incoming(value, b.block)
        b.branch(head)
        b.position_at_end(done)
        return phis

    whole = b.mul(b.sdiv(count, _const(unroll)), _const(unroll))
    acc = loop(_const(0), whole, unroll, acc, f"{label}.unrolled")
    return loop(whole, count, 1, acc, f"{label}.rest")


def _micro(module: ir.Module, t: ir.Type, size: int, bl: Blocking, a_layout: str = "packed") -> ir.Function:
    """micro(kc, a, lda, b, c, ldc, rows, cols, add): the MR x NR tile C[rows, cols] = (C +)
    sum over kc steps of an A micro-panel column times a packed B micro-panel row. A is packed
    (`a_layout` "packed": element i of step p at a[p * MR + i]) or read in place from a
    row-major A ("rows": a[i * lda + p]); in place, the tile must have all MR rows (a partial
    one would read past A)."""
    name = f"gc_gemm_micro_{llvm_types.suffix(t)}_{bl.mr}x{bl.nr}_{a_layout}"
    if name in module.globals:
        return module.globals[name]
    p_t = t.as_pointer()
    vec = ir.VectorType(t, bl.lanes)
    fn, b = _function(module, name, [I64, p_t, I64, p_t, p_t, I64, I64, I64, llvm_types.I1])
    kc, ap, lda, bp, c, ldc, rows, cols, add = fn.args
    for arg in (ap, bp, c):
        arg.add_attribute("noalias")
    tile = b.alloca(t, size=_const(bl.mr * bl.nr))   # a partial tile's sums (in the entry block: static)
    fma = llvm_types.intrinsic(module, f"llvm.fmuladd.v{bl.lanes}{llvm_types.suffix(t)}", vec, [vec, vec, vec])
    undef = ir.Constant(vec, ir.Undefined)
    splat_mask = ir.Constant(ir.VectorType(llvm_types.I32, bl.lanes), [0] * bl.lanes)
    zero_vec = ir.Constant(vec, [0.0] * bl.lanes)

    if a_layout == "rows":
        a_rows = [b.gep(ap, [b.mul(_const(i), lda)]) for i in range(bl.mr)]

    def a_element(i: int, p: ir.Value) -> ir.Value:
        if a_layout == "packed":
            return b.gep(ap, [b.add(b.mul(p, _const(bl.mr)), _const(i))])
        return b.gep(a_rows[i], [p])

    def step(p: ir.Value, acc: list[ir.Value]) -> list[ir.Value]:
        """One reduction step: acc[i][v] += a[p][i] * b[p][v]."""
        b_row = b.mul(p, _const(bl.nr))
        b_vecs = []
        for v in range(bl.vectors):
            ptr = b.bitcast(b.gep(bp, [b.add(b_row, _const(v * bl.lanes))]), vec.as_pointer())
            b_vecs.append(b.load(ptr, align=size))
        out = []
        for i in range(bl.mr):
            a = b.load(a_element(i, p))
            splat = b.shuffle_vector(b.insert_element(undef, a, ir.Constant(llvm_types.I32, 0)), undef, splat_mask)
            for v in range(bl.vectors):
                out.append(b.call(fma, [splat, b_vecs[v], acc[i * bl.vectors + v]]))
        return out

    acc = reduction_loops(b, fn, kc, UNROLL, [zero_vec] * (bl.mr * bl.vectors), step, "micro")

    full = b.and_(b.icmp_signed("==", rows, _const(bl.mr)), b.icmp_signed("==", cols, _const(bl.nr)))
    with b.if_else(full, likely=True) as (then, otherwise):
        with then:
            for i in range(bl.mr):
                for v in range(bl.vectors):
                    at = b.add(b.mul(_const(i), ldc), _const(v * bl.lanes))
                    ptr = b.bitcast(b.gep(c, [at]), vec.as_pointer())
                    value = acc[i * bl.vectors + v]
                    old = b.select(add, b.load(ptr, align=size), zero_vec)
                    b.store(b.fadd(old, value), ptr, align=size)
        with otherwise:
            # a partial tile at the right or bottom edge: through the tile on the stack
            for i in range(bl.mr):
                for v in range(bl.vectors):
                    ptr = b.bitcast(b.gep(tile, [_const(i * bl.nr + v * bl.lanes)]), vec.as_pointer())
                    b.store(acc[i * bl.vectors + v], ptr, align=size)

            def one_row(i: ir.Value) -> None:
                def one_column(j: ir.Value) -> None:
                    target = b.gep(c, [b.add(b.mul(i, ldc), j)])
                    value = b.load(b.gep(tile, [b.add(b.mul(i, _const(bl.nr)), j)]))
                    old = b.select(add, b.load(target), ir.Constant(t, 0.0))
                    b.store(b.fadd(old, value), target)

                counted_loop(b, fn, _const(0), cols, _const(1), one_column, name="edge.j")

            counted_loop(b, fn, _const(0), rows, _const(1), one_row, name="edge.i")
    b.ret_void()
    return fn


# --------------------------------------------------------------------------- block
BLOCK_PREFIX = "graphc_gemm_"


def block_symbol(dtype_name: str, transpose_a: bool, transpose_b: bool) -> str:
    """The block function's name: graphc_gemm_f32_nt and so on."""
    return f"{BLOCK_PREFIX}{'f32' if dtype_name == 'float32' else 'f64'}_{'t' if transpose_a else 'n'}" \
           f"{'t' if transpose_b else 'n'}"


def _block_type(dtype_name: str) -> ir.FunctionType:
    p_t = _element(dtype_name)[0].as_pointer()
    return ir.FunctionType(llvm_types.VOID, [p_t, p_t, p_t] + [I64] * 6)


def declare_block(module: ir.Module, dtype_name: str, transpose_a: bool, transpose_b: bool) -> ir.Function:
    """The module's declaration of a block function, which a kernel calls. The JIT resolves it to
    the process-wide copy (graphc.backends.gemm_library: compiled once, not per program); an AOT
    library defines it in its own module (define_declared_blocks)."""
    name = block_symbol(dtype_name, transpose_a, transpose_b)
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, _block_type(dtype_name), name=name)


def define_if_declared(module: ir.Module, symbol: str, define: Callable[[], object]) -> None:
    """Where the module declares `symbol` and nothing defines it, define() it there, with
    internal linkage: an AOT library carries its own block functions (the GEMM's, the direct
    and pointwise convolutions')."""
    fn = module.globals.get(symbol)
    if fn is not None and fn.is_declaration:
        define()
        fn.linkage = "internal"


def define_declared_blocks(module: ir.Module, vector_bytes: int | None = None) -> None:
    """Define, with internal linkage, every block function the module declares (an AOT library
    carries its own GEMM)."""
    for dtype_name in ("float32", "float64"):
        for ta in (False, True):
            for tb in (False, True):
                define_if_declared(module, block_symbol(dtype_name, ta, tb),
                                   lambda d=dtype_name, ta=ta, tb=tb: gemm_block_function(module, d, ta, tb, vector_bytes))


def gemm_block_function(module: ir.Module, dtype_name: str, transpose_a: bool, transpose_b: bool,
                        vector_bytes: int | None = None) -> ir.Function:
    """block(a, b, c, m, n, k, lda, ldb, ldc): C[m, n] (row stride ldc) = op(A) @ op(B), where
    op(A)[r, p] is a[r * lda + p] (transposed: a[p * lda + r]) and op(B)[p, j] is b[p * ldb + j]
    (transposed: b[j * ldb + p]), defined (external) under block_symbol(), filling in the
    module's declaration if it has one."""
    # the JIT's block (no vector width given) is blocked for the host's L1; an AOT library's
    # for any CPU of its target
    bl = blocking(dtype_name, vector_bytes or host_vector_bytes(), host_l1_data_bytes() if vector_bytes is None else None)
    t, size = _element(dtype_name)
    fn = declare_block(module, dtype_name, transpose_a, transpose_b)
    if not fn.is_declaration:
        return fn
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    a, bm, c, m, n, k, lda, ldb, ldc = fn.args
    for arg in (a, bm, c):
        arg.add_attribute("noalias")
    # a row-major A with rows less than IN_PLACE_MAX_ROW_BYTES apart is read in place (`direct`),
    # by micro-kernels of at most IN_PLACE_MAX_TILE_ROWS rows: the blocking's own where its tiles
    # are that short, else shorter ones for a small A (SMALL_A_BYTES)
    in_rows = bl if bl.mr <= IN_PLACE_MAX_TILE_ROWS else \
        Blocking(bl.lanes, IN_PLACE_MAX_TILE_ROWS, bl.nr, bl.kc, bl.mc, bl.nc)
    in_place = None if transpose_a else _micro(module, t, size, in_rows, "rows")
    # 64-byte aligned packed blocks on this thread's stack
    a_pack = b.alloca(t, size=_const(bl.mc * bl.kc))
    a_pack.align = 64
    b_pack = b.alloca(t, size=_const(bl.kc * bl.nc))
    b_pack.align = 64
    pack_a = _pack(module, t, bl.mr, along_panel=transpose_a)
    direct = ir.Constant(llvm_types.I1, 0) if in_place is None else \
        b.icmp_signed("<", b.mul(lda, _const(size)), _const(IN_PLACE_MAX_ROW_BYTES))
    if in_place is not None and in_rows is not bl:
        direct = b.and_(direct, b.icmp_signed("<=", b.mul(b.mul(m, lda), _const(size)), _const(SMALL_A_BYTES)))
    pack_b = _pack(module, t, bl.nr, along_panel=not transpose_b)
    micro = _micro(module, t, size, bl)
    # rows per tile: the in-place tiles' where A is read in place, else the packed ones'
    tile_rows = b.select(direct, _const(in_rows.mr), _const(bl.mr)) if in_place is not None else _const(bl.mr)

    with b.if_then(b.icmp_signed("==", k, _const(0)), likely=False):
        # an empty reduction: C is zeros
        def zero_row(i: ir.Value) -> None:
            counted_loop(b, fn, _const(0), n, _const(1),
                         lambda j: b.store(ir.Constant(t, 0.0), b.gep(c, [b.add(b.mul(i, ldc), j)])), name="zero.j")

        counted_loop(b, fn, _const(0), m, _const(1), zero_row, name="zero.i")

    def a_at(row: ir.Value, step: ir.Value) -> ir.Value:
        return b.gep(a, [b.add(b.mul(step, lda), row) if transpose_a else b.add(b.mul(row, lda), step)])

    def b_at(step: ir.Value, col: ir.Value) -> ir.Value:
        return b.gep(bm, [b.add(b.mul(col, ldb), step) if transpose_b else b.add(b.mul(step, ldb), col)])

    def columns_block(jc: ir.Value) -> None:
        nc = _min(b, _const(bl.nc), b.sub(n, jc))

        def depth_block(pc: ir.Value) -> None:
            kc = _min(b, _const(bl.kc), b.sub(k, pc))
            b.call(pack_b, [b_pack, b_at(pc, jc), nc, kc, ldb])
            later = b.icmp_signed("!=", pc, _const(0))   # add to C after the first depth block

            def rows_block(ic: ir.Value) -> None:
                mc = _min(b, _const(bl.mc), b.sub(m, ic))
                # read in place: only the rows of a last partial tile are packed (into one panel)
                whole = b.mul(b.sdiv(mc, tile_rows), tile_rows)
                packed_from = b.select(direct, whole, _const(0))
                b.call(pack_a, [a_pack, a_at(b.add(ic, packed_from), pc), b.sub(mc, packed_from), kc, lda])

                def micro_column(jr: ir.Value) -> None:
                    cols = _min(b, _const(bl.nr), b.sub(nc, jr))
                    b_panel = b.gep(b_pack, [b.mul(jr, kc)])

                    def micro_row(ir_: ir.Value) -> None:
                        rows = _min(b, tile_rows, b.sub(mc, ir_))
                        tile = b.gep(c, [b.add(b.mul(b.add(ic, ir_), ldc), b.add(jc, jr))])
                        rest = [b_panel, tile, ldc, rows, cols, later]
                        packed = b.gep(a_pack, [b.mul(b.sub(ir_, packed_from), kc)])
                        if in_place is None:
                            b.call(micro, [kc, packed, lda] + rest)
                            return
                        read_in_place = b.and_(direct, b.icmp_signed("==", rows, tile_rows))
                        with b.if_else(read_in_place, likely=True) as (full, part):
                            with full:
                                b.call(in_place, [kc, a_at(b.add(ic, ir_), pc), lda] + rest)
                            with part:
                                b.call(micro, [kc, packed, lda] + rest)

                    counted_loop(b, fn, _const(0), mc, tile_rows, micro_row, name="ir")

                counted_loop(b, fn, _const(0), nc, _const(bl.nr), micro_column, name="jr")

            counted_loop(b, fn, _const(0), m, _const(bl.mc), rows_block, name="ic")

        counted_loop(b, fn, _const(0), k, _const(bl.kc), depth_block, name="pc")

    counted_loop(b, fn, _const(0), n, _const(bl.nc), columns_block, name="jc")
    b.ret_void()
    return fn

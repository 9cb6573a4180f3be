"""A 1x1 convolution over planar (NCHW) images, generated as LLVM IR: C[r, p] = sum over s of
W[r, s] * X[s, p] on one block of C, the filter packed at compile time (graphc.lower.conv_pointwise
says when it is used).

Why not OpenBLAS: mobilenet_v2's and efficientnet_b0's 1x1 convolutions (three quarters of their
time) have a short reduction (16-1152 input channels) against 49-12,544 pixels. OpenBLAS packs
the filter and X on every call (the filter cold, from memory, in a model), and the epilogue then
read its large blocks of C back from L2; onnxruntime ran these layers 1.3-1.9x faster inside
the model. Here:
- a tile of C is MR output channels x NR pixels (NR = VECTORS vectors), MR x VECTORS
  accumulators in registers (MR = 12 with AVX-512's 32 registers, 6 with 16); each reduction
  step loads the tile's VECTORS vectors of pixels and broadcasts the MR weights of step s from
  the packed filter ([ceil(m / 12)][k][12], the same on every CPU, so a panel's weights are
  one contiguous stream, zero past m);
- a block walks its pixels in chunks of NR; each chunk of X (k x NR elements, rows of X a
  plane apart) is first packed into one contiguous, aligned stream on the stack (at most
  PACK_BYTES: the lowering leaves longer reductions to BLAS), which every MR-row tile of the
  block then reads: unpacked, a 7 x 7 plane's rows are 196 bytes apart, and each step's vectors
  straddled cache lines (the kernel at 1.3-1.5x OpenBLAS's time; packed, 0.9-1.2);
- a last partial chunk is packed zero-padded and stored through lane masks; one of at most a
  vector (7 x 7 = 3 x 16 + 1 pixels) runs tiles of one vector and PANEL_ROWS rows, half the
  work of a two-vector tile; rows past m are computed from the zero padding and not stored;
- in whole chunks, the rows left over past the whole tiles (16 = 12 + 4 output channels, 32 =
  24 + 8) run as a tile of 4 or 8 rows instead of a whole tile's 12 (SHORT_ROWS): in
  mobilenet_v2 at one thread (profiled) [32 -> 16] at 112 x 112 190 -> 147 us, the [* -> 32]
  and [* -> 64] projections 92-96 -> 81-87; the model's 1x1 convolutions 5.0 -> 4.8 ms.

One function per dtype, compiled once per process like the own GEMM's blocks
(graphc.backends.gemm_library), or defined in an AOT library's module.
"""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from ..lower.conv_pointwise import PACK_BYTES, PANEL_ROWS
from . import llvm_types
from .llvm_gemm_own import (_const, _element, _function, _min, define_if_declared, host_vector_bytes, reduction_loops,
                             settings_tag)
from .llvm_loops import counted_loop

I64 = llvm_types.I64
I32 = llvm_types.I32
VECTORS = 2           # vectors of pixels per tile
UNROLL = 4            # reduction steps per iteration of the tile's loop
POINTWISE_PREFIX = "graphc_pointwise_"
# rows left over past the whole tiles of a block (16 output channels: 12 + 4) run as a tile of
# the least of these heights that holds them, instead of a whole tile's work (empty: whole
# tiles only)
SHORT_ROWS = (4, 8)


def tile_rows(vector_bytes: int | None = None) -> int:
    """MR: output channels per tile, as many as the registers hold accumulators for next to
    the pixel vectors and one broadcast (16 registers without AVX-512, 32 with it), and a
    divisor of PANEL_ROWS (the packed filter's panels are the same on every CPU)."""
    registers = 32 if (vector_bytes or host_vector_bytes()) >= 64 else 16
    mr = min(PANEL_ROWS, (registers - VECTORS - 1) // VECTORS)
    while PANEL_ROWS % mr:
        mr -= 1
    return mr


def tile_pixels(dtype_name: str, vector_bytes: int | None = None) -> int:
    """NR: pixels per tile (VECTORS vectors)."""
    return VECTORS * max(1, (vector_bytes or host_vector_bytes()) // _element(dtype_name)[1])


def pointwise_symbol(dtype_name: str) -> str:
    """The block function's name: its dtype and a tag of the settings it is generated with."""
    tag = settings_tag(PANEL_ROWS, PACK_BYTES, VECTORS, UNROLL, SHORT_ROWS)
    return f"{POINTWISE_PREFIX}{'f32' if dtype_name == 'float32' else 'f64'}_{tag}"


def _pointwise_type(dtype_name: str) -> ir.FunctionType:
    p_t = _element(dtype_name)[0].as_pointer()
    # w, x, c, k, rows, cols, ldx, ldc
    return ir.FunctionType(llvm_types.VOID, [p_t, p_t, p_t] + [I64] * 5)


def declare_pointwise(module: ir.Module, dtype_name: str) -> ir.Function:
    """The module's declaration of the block function (resolved like the own GEMM's blocks)."""
    name = pointwise_symbol(dtype_name)
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, _pointwise_type(dtype_name), name=name)


def pointwise_block_function(module: ir.Module, dtype_name: str, vector_bytes: int | None = None) -> ir.Function:
    """pointwise(w, x, c, k, rows, cols, ldx, ldc): for rows [0, rows) (their packed panels
    start at w) and pixels [0, cols) (from x and c), c[r * ldc + p] = sum over s < k of
    w[r // PANEL_ROWS][s][r % PANEL_ROWS] * x[s * ldx + p]."""
    fn = declare_pointwise(module, dtype_name)
    if not fn.is_declaration:
        return fn
    t, size = _element(dtype_name)
    vector_bytes = vector_bytes or host_vector_bytes()
    lanes = max(1, vector_bytes // size)
    mr, nr = tile_rows(vector_bytes), tile_pixels(dtype_name, vector_bytes)
    full_tile = _tile_function(module, t, size, lanes, mr, masked=False)
    partial_tile = _tile_function(module, t, size, lanes, mr, masked=True)
    narrow_tile = _tile_function(module, t, size, lanes, PANEL_ROWS, masked=True, vectors=1)
    short_tiles = [(height, _tile_function(module, t, size, lanes, height, masked=False))
                   for height in sorted(SHORT_ROWS) if height < mr]
    pack_whole = _pack_function(module, t, size, lanes, masked=False)
    pack_part = _pack_function(module, t, size, lanes, masked=True)
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    w, x, c, k, rows, cols, ldx, ldc = fn.args
    for arg in (w, x, c):
        arg.add_attribute("noalias")
    packed = b.alloca(t, size=_const(PACK_BYTES // size), name="packed")
    packed.align = 64

    def chunk(first: ir.Value) -> None:
        pixels = _min(b, _const(nr), b.sub(cols, first))
        whole = b.icmp_signed("==", pixels, _const(nr))
        source = b.gep(x, [first])
        with b.if_else(whole, likely=True) as (then, otherwise):
            with then:
                b.call(pack_whole, [packed, source, k, ldx, pixels])
            with otherwise:
                b.call(pack_part, [packed, source, k, ldx, pixels])

        def tiles(function: ir.Function, height: int) -> Callable[[ir.Value], None]:
            def tile(r0: ir.Value) -> None:
                panel = b.mul(b.sdiv(r0, _const(PANEL_ROWS)), b.mul(k, _const(PANEL_ROWS)))
                b.call(function, [b.gep(w, [b.add(panel, b.srem(r0, _const(PANEL_ROWS)))]), packed,
                                  b.gep(c, [b.add(b.mul(r0, ldc), first)]), k, _const(nr), ldc,
                                  _min(b, _const(height), b.sub(rows, r0)), pixels])
            return tile

        with b.if_else(whole, likely=True) as (then, otherwise):
            with then:
                # whole tiles, then the rows left over in a tile of their own height (a whole
                # tile where no short one holds them)
                full_rows = b.mul(b.sdiv(rows, _const(mr)), _const(mr))
                counted_loop(b, fn, _const(0), full_rows, _const(mr), tiles(full_tile, mr), name="tile")
                rest = b.sub(rows, full_rows)

                def left_over(options: list[tuple[int, ir.Function]]) -> None:
                    if not options:
                        tiles(full_tile, mr)(full_rows)
                        return
                    height, function = options[0]
                    with b.if_else(b.icmp_signed("<=", rest, _const(height))) as (fits, taller):
                        with fits:
                            tiles(function, height)(full_rows)
                        with taller:
                            left_over(options[1:])

                with b.if_then(b.icmp_signed(">", rest, _const(0))):
                    left_over(short_tiles)
            with otherwise:   # a last chunk of one vector or less: tiles of one vector, twice the rows
                with b.if_else(b.icmp_signed("<=", pixels, _const(lanes))) as (narrow, wide):
                    with narrow:
                        counted_loop(b, fn, _const(0), rows, _const(PANEL_ROWS), tiles(narrow_tile, PANEL_ROWS),
                                     name="narrow")
                    with wide:
                        counted_loop(b, fn, _const(0), rows, _const(mr), tiles(partial_tile, mr), name="partial")

    counted_loop(b, fn, _const(0), cols, _const(nr), chunk, name="chunk")
    b.ret_void()
    return fn


def _tile_function(module: ir.Module, t: ir.Type, size: int, lanes: int, mr: int, masked: bool,
                   vectors: int = VECTORS) -> ir.Function:
    """tile(w, x, c, k, ldx, ldc, rows, pixels): one tile of `mr` rows x `vectors` vectors of
    pixels (rows < `rows` are stored; with `masked`, only the first `pixels` lanes are stored: x
    is then a zero-padded packed chunk)."""
    name = f"gc_pointwise_tile_{llvm_types.suffix(t)}_{mr}x{vectors}x{lanes}{'_masked' if masked else ''}"
    if name in module.globals:
        return module.globals[name]
    p_t = t.as_pointer()
    vec = ir.VectorType(t, lanes)
    fn, b = _function(module, name, [p_t, p_t, p_t, I64, I64, I64, I64, I64])
    w, x, c, k, ldx, ldc, rows, pixels = fn.args
    for arg in (w, x, c):
        arg.add_attribute("noalias")
    sfx = llvm_types.suffix(t)
    fma = llvm_types.intrinsic(module, f"llvm.fmuladd.v{lanes}{sfx}", vec, [vec, vec, vec])
    mask_t = ir.VectorType(llvm_types.I1, lanes)
    undef = ir.Constant(vec, ir.Undefined)
    splat_mask = ir.Constant(ir.VectorType(I32, lanes), [0] * lanes)
    zero_vec = ir.Constant(vec, [0.0] * lanes)
    masks: list[ir.Value] = []
    if masked:
        store_m = llvm_types.intrinsic(module, f"llvm.masked.store.v{lanes}{sfx}.p0", llvm_types.VOID,
                                       [vec, vec.as_pointer(), I32, mask_t])
        masks = _lane_masks(b, lanes, pixels, vectors)

    def vector_at(row_start: ir.Value, v: int) -> ir.Value:
        return b.bitcast(b.gep(row_start, [_const(v * lanes)]), vec.as_pointer())

    def step(s: ir.Value, acc: list[ir.Value]) -> list[ir.Value]:
        """acc[i][v] += w[s][i] * x[s, v * lanes:(v + 1) * lanes] (w: the tile's first row in
        its panel, PANEL_ROWS weights per step)."""
        row = b.gep(x, [b.mul(s, ldx)])
        xs = [b.load(vector_at(row, v), align=size) for v in range(vectors)]
        weights = b.gep(w, [b.mul(s, _const(PANEL_ROWS))])
        out = []
        for i in range(mr):
            value = b.load(b.gep(weights, [_const(i)]))
            splat = b.shuffle_vector(b.insert_element(undef, value, ir.Constant(I32, 0)), undef, splat_mask)
            for v in range(vectors):
                out.append(b.call(fma, [splat, xs[v], acc[i * vectors + v]]))
        return out

    acc = reduction_loops(b, fn, k, UNROLL, [zero_vec] * (mr * vectors), step, "pointwise")
    for i in range(mr):
        def store_row(i: int = i) -> None:
            row = b.gep(c, [b.mul(_const(i), ldc)])
            for v in range(vectors):
                if masked:
                    b.call(store_m, [acc[i * vectors + v], vector_at(row, v), ir.Constant(I32, size), masks[v]])
                else:
                    b.store(acc[i * vectors + v], vector_at(row, v), align=size)
        if i == 0:
            store_row()
        else:
            with b.if_then(b.icmp_signed("<", _const(i), rows), likely=True):
                store_row()
    b.ret_void()
    return fn


def _lane_masks(b: ir.IRBuilder, lanes: int, pixels: ir.Value, vectors: int = VECTORS) -> list[ir.Value]:
    """One mask per vector of a tile: lane l of vector v is on where v * lanes + l < pixels."""
    ids_t = ir.VectorType(I64, lanes)
    limit = b.shuffle_vector(b.insert_element(ir.Constant(ids_t, ir.Undefined), pixels, ir.Constant(I32, 0)),
                             ir.Constant(ids_t, ir.Undefined), ir.Constant(ir.VectorType(I32, lanes), [0] * lanes))
    return [b.icmp_signed("<", ir.Constant(ids_t, [v * lanes + i for i in range(lanes)]), limit) for v in range(vectors)]


def _pack_function(module: ir.Module, t: ir.Type, size: int, lanes: int, masked: bool) -> ir.Function:
    """pack(dst, x, k, ldx, pixels): dst[s][0:NR] = x[s * ldx:s * ldx + NR] for s < k, lanes at
    or past `pixels` zero (with `masked`; else the chunk is whole). One pass over the chunk,
    which every tile of the block's rows then reads as one contiguous, aligned stream."""
    name = f"gc_pointwise_pack_{llvm_types.suffix(t)}_{VECTORS}x{lanes}{'_masked' if masked else ''}"
    if name in module.globals:
        return module.globals[name]
    p_t = t.as_pointer()
    vec = ir.VectorType(t, lanes)
    fn, b = _function(module, name, [p_t, p_t, I64, I64, I64])
    dst, x, k, ldx, pixels = fn.args
    for arg in (dst, x):
        arg.add_attribute("noalias")
    mask_t = ir.VectorType(llvm_types.I1, lanes)
    load_m = llvm_types.intrinsic(module, f"llvm.masked.load.v{lanes}{llvm_types.suffix(t)}.p0", vec,
                                  [vec.as_pointer(), I32, mask_t, vec])
    masks = _lane_masks(b, lanes, pixels) if masked else []
    zero_vec = ir.Constant(vec, [0.0] * lanes)

    def step(s: ir.Value) -> None:
        row, out = b.gep(x, [b.mul(s, ldx)]), b.gep(dst, [b.mul(s, _const(VECTORS * lanes))])
        for v in range(VECTORS):
            at = b.bitcast(b.gep(row, [_const(v * lanes)]), vec.as_pointer())
            value = b.call(load_m, [at, ir.Constant(I32, size), masks[v], zero_vec]) if masked else b.load(at, align=size)
            b.store(value, b.bitcast(b.gep(out, [_const(v * lanes)]), vec.as_pointer()), align=size * lanes)

    counted_loop(b, fn, _const(0), k, _const(1), step, name="pack")
    b.ret_void()
    return fn


def define_declared_pointwise(module: ir.Module, vector_bytes: int | None = None) -> None:
    """Define, with internal linkage, each pointwise block function the module declares (an AOT
    library carries its own)."""
    for dtype_name in ("float32", "float64"):
        define_if_declared(module, pointwise_symbol(dtype_name),
                           lambda d=dtype_name: pointwise_block_function(module, d, vector_bytes))

"""A 1x1 convolution over planar (NCHW) images, generated as LLVM IR: C[r, p] = sum over s of
W[r, s] * X[s, p] on one block of C, the filter packed at compile time and the image read
where it lies (graphc.lower.conv_pointwise says when it is used).

Why not OpenBLAS: mobilenet_v2's and efficientnet_b0's 1x1 convolutions (three quarters of their
time) have a short reduction (16-960 input channels) and a long row of pixels, and OpenBLAS
packs X for every call and then runs its AVX2 kernel (OPENBLAS_CORETYPE=Haswell on these
machines); onnxruntime ran the same layers 1.3-1.9x faster inside the model. Here:
- a tile of C is MR output channels x NR pixels (NR = VECTORS vectors), MR x VECTORS
  accumulators in registers (MR = 12 with AVX-512's 32 registers, 6 with 16); each reduction
  step loads the tile's VECTORS vectors of pixels from row s of X (contiguous in NCHW: no
  packing, consecutive steps a row apart) and broadcasts the MR weights of step s from the
  packed filter ([ceil(m / 12)][k][12], the same on every CPU, so a panel's weights are one
  contiguous stream, zero past m);
- a block walks its pixels in chunks of NR and, for each chunk, every MR-row tile of its rows,
  so the chunk of X (k x NR elements) is read from L1/L2 by every tile after the first;
- a last partial chunk of pixels loads and stores through lane masks; rows past m are
  computed from the zero padding and not stored.

One function per dtype, compiled once per process like the own GEMM's blocks
(graphc.backends.gemm_library), or defined in an AOT library's module.
"""
from __future__ import annotations

from llvmlite import ir

from ..lower.conv_pointwise import PANEL_ROWS
from . import llvm_types
from .llvm_gemm_own import _const, _element, _function, _min, host_vector_bytes, reduction_loops
from .llvm_loops import counted_loop

I64 = llvm_types.I64
I32 = llvm_types.I32
VECTORS = 2           # vectors of pixels per tile
UNROLL = 4            # reduction steps per iteration of the tile's loop
POINTWISE_PREFIX = "graphc_pointwise_"


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
    return f"{POINTWISE_PREFIX}{'f32' if dtype_name == 'float32' else 'f64'}"


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
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    w, x, c, k, rows, cols, ldx, ldc = fn.args
    for arg in (w, x, c):
        arg.add_attribute("noalias")

    def chunk(first: ir.Value) -> None:
        pixels = _min(b, _const(nr), b.sub(cols, first))

        def tile(r0: ir.Value) -> None:
            panel = b.mul(b.sdiv(r0, _const(PANEL_ROWS)), b.mul(k, _const(PANEL_ROWS)))
            args = [b.gep(w, [b.add(panel, b.srem(r0, _const(PANEL_ROWS)))]), b.gep(x, [first]),
                    b.gep(c, [b.add(b.mul(r0, ldc), first)]), k, ldx, ldc, _min(b, _const(mr), b.sub(rows, r0)), pixels]
            with b.if_else(b.icmp_signed("==", pixels, _const(nr)), likely=True) as (whole, part):
                with whole:
                    b.call(full_tile, args)
                with part:
                    b.call(partial_tile, args)

        counted_loop(b, fn, _const(0), rows, _const(mr), tile, name="tile")

    counted_loop(b, fn, _const(0), cols, _const(nr), chunk, name="chunk")
    b.ret_void()
    return fn


def _tile_function(module: ir.Module, t: ir.Type, size: int, lanes: int, mr: int, masked: bool) -> ir.Function:
    """tile(w, x, c, k, ldx, ldc, rows, pixels): one MR x NR tile (rows < MR are stored; with
    `masked`, only the first `pixels` lanes are read and stored)."""
    name = f"gc_pointwise_tile_{llvm_types.suffix(t)}_{mr}x{VECTORS}x{lanes}{'_masked' if masked else ''}"
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
        load_m = llvm_types.intrinsic(module, f"llvm.masked.load.v{lanes}{sfx}.p0", vec,
                                      [vec.as_pointer(), I32, mask_t, vec])
        store_m = llvm_types.intrinsic(module, f"llvm.masked.store.v{lanes}{sfx}.p0", llvm_types.VOID,
                                       [vec, vec.as_pointer(), I32, mask_t])
        lane_ids = [ir.Constant(ir.VectorType(I64, lanes), [v * lanes + i for i in range(lanes)]) for v in range(VECTORS)]
        limit = b.shuffle_vector(b.insert_element(ir.Constant(ir.VectorType(I64, lanes), ir.Undefined), pixels,
                                                  ir.Constant(I32, 0)),
                                 ir.Constant(ir.VectorType(I64, lanes), ir.Undefined), splat_mask)
        masks = [b.icmp_signed("<", ids, limit) for ids in lane_ids]

    def vector_at(row_start: ir.Value, v: int) -> ir.Value:
        return b.bitcast(b.gep(row_start, [_const(v * lanes)]), vec.as_pointer())

    def step(s: ir.Value, acc: list[ir.Value]) -> list[ir.Value]:
        """acc[i][v] += w[s][i] * x[s, v * lanes:(v + 1) * lanes] (w: the tile's first row in
        its panel, PANEL_ROWS weights per step)."""
        row = b.gep(x, [b.mul(s, ldx)])
        if masked:
            xs = [b.call(load_m, [vector_at(row, v), ir.Constant(I32, size), masks[v], zero_vec]) for v in range(VECTORS)]
        else:
            xs = [b.load(vector_at(row, v), align=size) for v in range(VECTORS)]
        weights = b.gep(w, [b.mul(s, _const(PANEL_ROWS))])
        out = []
        for i in range(mr):
            value = b.load(b.gep(weights, [_const(i)]))
            splat = b.shuffle_vector(b.insert_element(undef, value, ir.Constant(I32, 0)), undef, splat_mask)
            for v in range(VECTORS):
                out.append(b.call(fma, [splat, xs[v], acc[i * VECTORS + v]]))
        return out

    acc = reduction_loops(b, fn, k, UNROLL, [zero_vec] * (mr * VECTORS), step, "pointwise")
    for i in range(mr):
        def store_row(i: int = i) -> None:
            row = b.gep(c, [b.mul(_const(i), ldc)])
            for v in range(VECTORS):
                if masked:
                    b.call(store_m, [acc[i * VECTORS + v], vector_at(row, v), ir.Constant(I32, size), masks[v]])
                else:
                    b.store(acc[i * VECTORS + v], vector_at(row, v), align=size)
        if i == 0:
            store_row()
        else:
            with b.if_then(b.icmp_signed("<", _const(i), rows), likely=True):
                store_row()
    b.ret_void()
    return fn


def define_declared_pointwise(module: ir.Module, vector_bytes: int | None = None) -> None:
    """Define, with internal linkage, each pointwise block function the module declares (an AOT
    library carries its own)."""
    for dtype_name in ("float32", "float64"):
        fn = module.globals.get(pointwise_symbol(dtype_name))
        if fn is not None and fn.is_declaration:
            pointwise_block_function(module, dtype_name, vector_bytes)
            fn.linkage = "internal"

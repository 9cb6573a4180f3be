"""A direct convolution, generated as LLVM IR: one block of an NCHW convolution's output computed
from the padded input and a packed filter, with no patch matrix (graphc.lower.conv_direct says
when it is used and how its operands are laid out).

Why: as patches + BLAS, resnet18's 3x3 convolutions spent 15-20% of their time writing and
reading the patch matrix, and OpenBLAS then packed it again; onnxruntime's direct kernels ran
them 1.3-1.6x faster. This is the GEMM micro-kernel of graphc.codegen.llvm_gemm_own with the
patch matrix read where it lies:
- a tile of C is MR output pixels x TC output channels, TC = two vectors (32 float32 with
  AVX-512, 16 with AVX2, 8 with SSE2), held in MR * 2 vector registers; the filter's panels
  hold CB = 32 float32 channels, so a narrower target runs each panel as CB / TC parts. With
  AVX-512, tiles of one vector (16 channels, 8 accumulators: the panels were 64 bytes then)
  were load-bound: resnet18's convolutions took 1.09-1.12x the time of two-vector tiles;
- each reduction step s (a tap and an input channel) loads the filter's TC channels for s as
  vectors (the filter is packed [channel panels][steps][CB], so a part of a panel is one
  stream with a stride of CB elements) and broadcasts the MR input values under the tile's
  pixels: pixel p's window starts at base(p) = (p // ow) * row_step + (p % ow) * col_step in
  the padded image, and step s is at
  koff[s] from it (a table made at compile time: (i * dh * wp + j * dw) * ci + channel for the
  channels-last padded input graphc.lower.conv_direct makes), so any stride, dilation and
  padding is the same loop;
- C holds output channel r of pixel p at c[r * ldc + p * ldp]: NCHW (ldp = 1) stores the tile
  transposed, each pixel's TC channels to TC rows, one scalar store per element against
  K * MR * TC / lanes fused multiply-adds (K >= 27 where it is used); channels-last (ldc = 1,
  NHWC) stores each pixel's TC channels as whole vectors.
The last tile of a block reads its missing pixels at the last pixel (in bounds) and does not
store them; a last panel of channels is zero-padded in the packed filter and its missing rows
are not stored.

One function per dtype, compiled once per process like the own GEMM's blocks
(graphc.backends.gemm_library), or defined in an AOT library's module.
"""
from __future__ import annotations

from llvmlite import ir

from ..lower.conv_direct import panel_channels
from . import llvm_types
from .llvm_gemm_own import _const, _element, _function, _min, define_if_declared, host_vector_bytes, reduction_loops
from .llvm_loops import counted_loop

I64 = llvm_types.I64
MAX_PIXELS = 8        # pixels per tile at most (more registers would make longer partial tiles)
TILE_VECTORS = 2      # vectors of output channels per tile at most
UNROLL = 8            # reduction steps per iteration of the tile's loop
CONV_PREFIX = "graphc_conv_"


def tile_channels(dtype_name: str, vector_bytes: int) -> int:
    """TC: output channels per tile, at most two vectors (the packed filter's panels hold CB >= TC
    channels; a narrower target runs a panel as CB / TC tiles' worth of channels)."""
    size = _element(dtype_name)[1]
    lanes = max(1, vector_bytes // size)
    return min(panel_channels(size), TILE_VECTORS * lanes)


def tile_pixels(dtype_name: str, vector_bytes: int) -> int:
    """MR: as many pixels as the registers hold accumulators for, next to the filter's vectors
    and one broadcast (16 registers without AVX-512, 32 with it)."""
    size = _element(dtype_name)[1]
    lanes = max(1, vector_bytes // size)
    vectors = max(1, tile_channels(dtype_name, vector_bytes) // lanes)
    registers = 32 if vector_bytes >= 64 else 16
    return max(1, min(MAX_PIXELS, (registers - vectors - 1) // vectors))


def conv_symbol(dtype_name: str) -> str:
    return f"{CONV_PREFIX}{'f32' if dtype_name == 'float32' else 'f64'}"


def _conv_type(dtype_name: str) -> ir.FunctionType:
    p_t = _element(dtype_name)[0].as_pointer()
    # w, x, koff, c, ldc, ldp, k, rows, p0, cols, ow, row_step, col_step
    return ir.FunctionType(llvm_types.VOID, [p_t, p_t, I64.as_pointer(), p_t] + [I64] * 9)


def declare_conv(module: ir.Module, dtype_name: str) -> ir.Function:
    """The module's declaration of the block function (resolved like the own GEMM's blocks)."""
    name = conv_symbol(dtype_name)
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, _conv_type(dtype_name), name=name)


def conv_block_function(module: ir.Module, dtype_name: str, vector_bytes: int | None = None) -> ir.Function:
    """conv(w, x, koff, c, ldc, ldp, k, rows, p0, cols, ow, row_step, col_step): for output
    channels [0, rows) of the block (its packed filter panels start at w) and pixels
    [p0, p0 + cols), c[r * ldc + p * ldp] = sum over steps s < k of w[r // CB][s][r % CB] *
    x[base(p) + koff[s]]."""
    fn = declare_conv(module, dtype_name)
    if not fn.is_declaration:
        return fn
    t, size = _element(dtype_name)
    vector_bytes = vector_bytes or host_vector_bytes()
    cb = panel_channels(size)
    tc = tile_channels(dtype_name, vector_bytes)
    lanes = min(tc, max(1, vector_bytes // size))
    vectors = tc // lanes
    mr = tile_pixels(dtype_name, vector_bytes)
    tile_fn = _tile_function(module, t, size, cb, tc, lanes, vectors, mr)
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    w, x, koff, c, ldc, ldp, k, rows, p0, cols, ow, row_step, col_step = fn.args
    for arg in (w, x, koff, c):
        arg.add_attribute("noalias")
    end = b.add(p0, cols)
    last = b.sub(end, _const(1))

    def panel(first_row: ir.Value) -> None:
        w_panel = b.gep(w, [b.mul(b.sdiv(first_row, _const(cb)), b.mul(k, _const(cb)))])
        for part in range(cb // tc):   # the panel's channels, TC at a time
            part_row = b.add(first_row, _const(part * tc))
            with b.if_then(b.icmp_signed("<", part_row, rows), likely=part == 0):
                part_rows = _min(b, _const(tc), b.sub(rows, part_row))
                w_part = b.gep(w_panel, [_const(part * tc)])
                c_part = b.gep(c, [b.mul(part_row, ldc)])

                def tile(first: ir.Value) -> None:
                    pixels = _min(b, _const(mr), b.sub(end, first))
                    bases = []
                    for i in range(mr):
                        p = _min(b, b.add(first, _const(i)), last)   # a missing pixel reads the last one
                        bases.append(b.add(b.mul(b.sdiv(p, ow), row_step), b.mul(b.srem(p, ow), col_step)))
                    b.call(tile_fn, [w_part, x, koff, b.gep(c_part, [b.mul(first, ldp)]), ldc, ldp, k, part_rows,
                                     pixels] + bases)

                counted_loop(b, fn, p0, end, _const(mr), tile, name=f"tile{part}")

    counted_loop(b, fn, _const(0), rows, _const(cb), panel, name="panel")
    b.ret_void()
    return fn


def _tile_function(module: ir.Module, t: ir.Type, size: int, cb: int, tc: int, lanes: int, vectors: int,
                   mr: int) -> ir.Function:
    """tile(w, x, koff, c, ldc, ldp, k, rows, pixels, base_0 .. base_{MR-1}): one MR x TC tile
    (the filter's steps CB elements apart)."""
    name = f"gc_conv_tile_{llvm_types.suffix(t)}_{mr}x{tc}_{cb}_{lanes}"
    if name in module.globals:
        return module.globals[name]
    p_t = t.as_pointer()
    vec = ir.VectorType(t, lanes)
    fn, b = _function(module, name, [p_t, p_t, I64.as_pointer(), p_t, I64, I64, I64, I64, I64] + [I64] * mr)
    w, x, koff, c, ldc, ldp, k, rows, pixels = fn.args[:9]
    bases = fn.args[9:]
    for arg in (w, x, koff, c):
        arg.add_attribute("noalias")
    fma = llvm_types.intrinsic(module, f"llvm.fmuladd.v{lanes}{llvm_types.suffix(t)}", vec, [vec, vec, vec])
    undef = ir.Constant(vec, ir.Undefined)
    splat_mask = ir.Constant(ir.VectorType(llvm_types.I32, lanes), [0] * lanes)
    zero_vec = ir.Constant(vec, [0.0] * lanes)
    windows = [b.gep(x, [base]) for base in bases]

    def step(s: ir.Value, acc: list[ir.Value]) -> list[ir.Value]:
        """acc[i][v] += x[base_i + koff[s]] * w[s][v * lanes:(v + 1) * lanes]."""
        off = b.load(b.gep(koff, [s]))
        row = b.mul(s, _const(cb))
        w_vecs = [b.load(b.bitcast(b.gep(w, [b.add(row, _const(v * lanes))]), vec.as_pointer()), align=size)
                  for v in range(vectors)]
        out = []
        for i in range(mr):
            value = b.load(b.gep(windows[i], [off]))
            splat = b.shuffle_vector(b.insert_element(undef, value, ir.Constant(llvm_types.I32, 0)), undef, splat_mask)
            for v in range(vectors):
                out.append(b.call(fma, [splat, w_vecs[v], acc[i * vectors + v]]))
        return out

    acc = reduction_loops(b, fn, k, UNROLL, [zero_vec] * (mr * vectors), step, "conv")

    def store(i: int, v: int, lane: int) -> None:
        row = v * lanes + lane
        value = b.extract_element(acc[i * vectors + v], ir.Constant(llvm_types.I32, lane))
        b.store(value, b.gep(c, [b.add(b.mul(_const(row), ldc), b.mul(_const(i), ldp))]))

    full = b.and_(b.icmp_signed("==", rows, _const(tc)), b.icmp_signed("==", pixels, _const(mr)))
    with b.if_else(full, likely=True) as (then, otherwise):
        with then:
            with b.if_else(b.icmp_signed("==", ldc, _const(1))) as (channels_last, transposed):
                with channels_last:   # each pixel's TC channels are adjacent: whole vectors
                    for i in range(mr):
                        for v in range(vectors):
                            at = b.gep(c, [b.add(b.mul(_const(i), ldp), _const(v * lanes))])
                            b.store(acc[i * vectors + v], b.bitcast(at, vec.as_pointer()), align=size)
                with transposed:
                    for v in range(vectors):
                        for lane in range(lanes):
                            for i in range(mr):
                                store(i, v, lane)
        with otherwise:
            for i in range(mr):
                with b.if_then(b.icmp_signed("<", _const(i), pixels)):
                    for v in range(vectors):
                        for lane in range(lanes):
                            with b.if_then(b.icmp_signed("<", _const(v * lanes + lane), rows)):
                                store(i, v, lane)
    b.ret_void()
    return fn


def define_declared_conv(module: ir.Module, vector_bytes: int | None = None) -> None:
    """Define, with internal linkage, each direct convolution the module declares (an AOT
    library carries its own)."""
    for dtype_name in ("float32", "float64"):
        define_if_declared(module, conv_symbol(dtype_name),
                           lambda d=dtype_name: conv_block_function(module, d, vector_bytes))

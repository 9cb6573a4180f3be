"""A depthwise convolution over planar (NCHW) images, generated as LLVM IR: each channel's plane
convolved with its own kh x kw taps, straight from the unpadded input (graphc.lower.conv_depthwise
says when it is used).

Why: as loop kernels, mobilenet_v2's and efficientnet_b0's depthwise convolutions took two or
three passes over their planes (a padded copy, the convolution, and for narrow planes a pass
compacting rows computed over the padded width), plus an epilogue pass where it could not be
fused; these layers read and write more than they compute (9 or 25 multiply-adds per element),
so each pass cost about as much as the convolution. Here one pass reads the input and writes
the output, and the block's epilogue (bias, clip, swish) runs on it while it is in cache.
Three forms of a plane:
- by rows: a vector holds L consecutive output columns of one row (L = 16 float32 with
  AVX-512); tap (i, j) reads input row y * sh + i * dh - pt at columns x * sw + j * dw - pl.
  With stride 1 that is one unaligned load; with stride 2, tap columns j and j + 1 are the
  even and odd lanes of the same two loads (one shuffle each; two loads per tap measured 1.2-1.4x
  the time). Vectors whose taps all fall inside the plane (most of a wide plane) use plain
  loads; those at a border load through lane masks (the padding reads as 0 and is never
  touched; rows outside the plane are skipped), so no padded copy is made. The masks of each
  column of vectors are made once per call (made per vector, narrow planes ran 1.3x as long);
  rows outer and columns inner (a column of vectors at a time, wide planes ran 1.45x as long);
- two output rows a vector (stride 2 into rows of at most L / 2 columns): _row_pairs_function;
- flattened (stride 1, the output as wide as the input, graphc.lower.conv_depthwise.flattened):
  vectors of L consecutive pixels of the plane, across rows, each tap one load through a lane
  mask from a table made at compile time. A 7 x 7 plane is 4 vectors where its rows were 7
  (mobilenet_v2's 960-channel layers 55 -> 36 us in the model, one thread; 14 x 14 73 -> 60).
The taps' weights are splat once per channel and stay in registers over the plane.

One function per dtype and tap geometry (kh, kw, strides, dilations: unrolled), compiled once
per process like the own GEMM's blocks (graphc.backends.gemm_library), or defined in an AOT
library's module; plane sizes, padding and the flattened form's table are arguments.
"""
from __future__ import annotations

import re

from llvmlite import ir

from . import llvm_types
from .llvm_gemm_own import _const, _element, _function, define_if_declared, host_vector_bytes
from .llvm_loops import counted_loop

I64 = llvm_types.I64
I32 = llvm_types.I32
DEPTHWISE_PREFIX = "graphc_depthwise_"
MAXPOOL_PREFIX = "graphc_maxpool_"
PAIRED_LOADS = True
ROW_PAIRS = True   # stride 2 into rows of at most half a vector: two output rows a vector (see _row_pairs_function)
_SYMBOL = re.compile(r"graphc_(depthwise|maxpool)_(f32|f64)_(\d+)x(\d+)_s(\d+)x(\d+)_d(\d+)x(\d+)$")


def depthwise_symbol(dtype_name: str, taps: tuple[int, int], strides: tuple[int, int],
                     dilations: tuple[int, int], combiner: str = "sum") -> str:
    """The block function's name: what it computes (a depthwise convolution, or a max pool with
    combiner "max"), its dtype and tap geometry, which its code is unrolled for."""
    kind = "f32" if dtype_name == "float32" else "f64"
    prefix = MAXPOOL_PREFIX if combiner == "max" else DEPTHWISE_PREFIX
    return f"{prefix}{kind}_{taps[0]}x{taps[1]}_s{strides[0]}x{strides[1]}_d{dilations[0]}x{dilations[1]}"


def _depthwise_type(dtype_name: str) -> ir.FunctionType:
    p_t = _element(dtype_name)[0].as_pointer()
    # w, x, c, channels, h, wd, oh, ow, pt, pl, ldw, flat masks (or null), their stride
    return ir.FunctionType(llvm_types.VOID, [p_t, p_t, p_t] + [I64] * 8 + [llvm_types.I8P, I64])


def declare_depthwise(module: ir.Module, symbol: str) -> ir.Function:
    """The module's declaration of a block function (resolved like the own GEMM's blocks)."""
    fn = module.globals.get(symbol)
    if fn is not None:
        return fn
    dtype_name = "float32" if _SYMBOL.match(symbol).group(2) == "f32" else "float64"
    return ir.Function(module, _depthwise_type(dtype_name), name=symbol)


def depthwise_block_function(module: ir.Module, symbol: str, vector_bytes: int | None = None) -> ir.Function:
    """depthwise(w, x, c, channels, h, wd, oh, ow, pt, pl, ldw, flat, flat_stride): for each
    channel q < channels, c[q * oh * ow + y * ow + x] = sum over taps (i, j) of
    w[(i * kw + j) * ldw + q] * x[q * h * wd + (y * sh + i * dh - pt) * wd + x * sw + j * dw - pl],
    the taps outside the plane counting 0; flattened where `flat` (the lane-mask table, rows
    flat_stride apart) is not null."""
    fn = declare_depthwise(module, symbol)
    if not fn.is_declaration:
        return fn
    what, kind, kh, kw, sh, sw, dh, dw = _SYMBOL.match(symbol).groups()
    kh, kw, sh, sw, dh, dw = (int(v) for v in (kh, kw, sh, sw, dh, dw))
    if sw not in (1, 2):
        raise ValueError(f"depthwise block function: column stride {sw} (1 or 2 only)")
    t, size = _element("float32" if kind == "f32" else "float64")
    lanes = max(1, (vector_bytes or host_vector_bytes()) // size)
    vec = ir.VectorType(t, lanes)
    mask_t = ir.VectorType(llvm_types.I1, lanes)
    ids_t = ir.VectorType(I32, lanes)
    sfx = llvm_types.suffix(t)
    combine = _Combiner(module, what, vec, sfx)
    load_m = llvm_types.intrinsic(module, f"llvm.masked.load.v{lanes}{sfx}.p0", vec,
                                  [vec.as_pointer(), I32, mask_t, vec])
    store_m = llvm_types.intrinsic(module, f"llvm.masked.store.v{lanes}{sfx}.p0", llvm_types.VOID,
                                   [vec, vec.as_pointer(), I32, mask_t])
    kit = (vec, mask_t, ids_t, combine, load_m, store_m)
    plane_fn = _plane_function(module, symbol, t, size, lanes, (kh, kw, sh, sw, dh, dw), kit)
    flat_fn = _flat_function(module, symbol, t, size, lanes, (kh, kw, dh, dw), kit) if (sh, sw) == (1, 1) else None
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    w, x, c, channels, h, wd, oh, ow, pt, pl, ldw, flat, flat_stride = fn.args
    for arg in (w, x, c):
        arg.add_attribute("noalias")
    if flat_fn is not None:
        with b.if_then(b.icmp_unsigned("!=", flat, ir.Constant(llvm_types.I8P, None)), likely=False):
            def flat_channel(q: ir.Value) -> None:
                b.call(flat_fn, [b.gep(w, [q]), b.gep(x, [b.mul(q, b.mul(h, wd))]), b.gep(c, [b.mul(q, b.mul(oh, ow))]),
                                 b.mul(oh, ow), wd, pt, pl, ldw, flat, flat_stride])

            counted_loop(b, fn, _const(0), channels, _const(1), flat_channel, name="flat_channel")
            b.ret_void()
    # the lane masks of every column of vectors (which input lanes lie inside a row, per tap
    # column and part), made once for the block's planes: all of a plane's vectors are at its
    # border where it is narrow, and masks made per vector cost a third of their time
    bits_t = ir.IntType(lanes)
    per_column = kw * sw
    columns = b.sdiv(b.add(ow, _const(lanes - 1)), _const(lanes))
    table = b.alloca(bits_t, size=b.mul(columns, _const(per_column)), name="masks")
    lane_ids = ir.Constant(ids_t, list(range(lanes)))
    wd_lanes = _splat(b, b.trunc(wd, I32), ids_t)

    def column_masks(v: ir.Value) -> None:
        left = b.sub(b.mul(v, _const(lanes * sw)), pl)
        for j in range(kw):
            for part in range(sw):
                first = b.trunc(b.add(left, _const(j * dw + part * lanes)), I32)
                pos = b.add(_splat(b, first, ids_t), lane_ids)
                inside = b.and_(b.icmp_signed(">=", pos, ir.Constant(ids_t, [0] * lanes)), b.icmp_signed("<", pos, wd_lanes))
                b.store(b.bitcast(inside, bits_t), b.gep(table, [b.add(b.mul(v, _const(per_column)), _const(j * sw + part))]))

    counted_loop(b, fn, _const(0), columns, _const(1), column_masks, name="masks")

    pairs_fn = (_row_pairs_function(module, symbol, t, size, lanes, (kh, kw, sh, dh), kit)
                if sw == 2 and dw == 1 and ROW_PAIRS else None)

    def channel(q: ir.Value) -> None:
        args = [b.gep(w, [q]), b.gep(x, [b.mul(q, b.mul(h, wd))]), b.gep(c, [b.mul(q, b.mul(oh, ow))]),
                h, wd, oh, ow, pt, pl, ldw, table]
        if pairs_fn is None:
            b.call(plane_fn, args)
            return
        with b.if_else(b.icmp_signed("<=", ow, _const(lanes // 2))) as (narrow, wide):
            with narrow:
                b.call(pairs_fn, args)
            with wide:
                b.call(plane_fn, args)

    counted_loop(b, fn, _const(0), channels, _const(1), channel, name="channel")
    b.ret_void()
    return fn


def _splat(b: ir.IRBuilder, value: ir.Value, vtype: ir.VectorType) -> ir.Value:
    """`value` in every lane of a vector of type `vtype`."""
    one = b.insert_element(ir.Constant(vtype, ir.Undefined), value, ir.Constant(I32, 0))
    return b.shuffle_vector(one, ir.Constant(vtype, ir.Undefined), ir.Constant(ir.VectorType(I32, vtype.count), [0] * vtype.count))


def _tap_weights(b: ir.IRBuilder, w: ir.Value, ldw: ir.Value, kh: int, kw: int, vec: ir.VectorType,
                 combine: _Combiner) -> list[list[ir.Value | None]]:
    """One channel's taps, each splat over a vector: tap (i, j) at w[(i * kw + j) * ldw] (None
    for a pool, which has no weights)."""
    if not combine.weighted:
        return [[None] * kw for _ in range(kh)]
    return [[_splat(b, b.load(b.gep(w, [b.mul(_const(i * kw + j), ldw)])), vec) for j in range(kw)] for i in range(kh)]


class _Combiner:
    """How a tap's vector joins the window's running value: a depthwise convolution's
    multiply-add with the tap's weight from 0, or a max pool's maximum from -inf (graphc's
    maximum: the running value where it compares greater, else the tap, NaN where either is
    NaN, as the loop kernels' max pools compute it). Masked loads read `fill` outside the plane.
    The maximum is a compare and select (the tap where it is NaN) and a select keeping a NaN
    running value: three instructions, where the loop kernels' form (a NaN sum where either is
    NaN) took five; squeezenet1_1's 13 x 13 pool 51 -> 47-48 us, the same bits."""

    def __init__(self, module: ir.Module, what: str, vec: ir.VectorType, sfx: str) -> None:
        self.weighted = what == "depthwise"
        self.fill = ir.Constant(vec, [0.0 if self.weighted else float("-inf")] * vec.count)
        if self.weighted:
            self.fma = llvm_types.intrinsic(module, f"llvm.fmuladd.v{vec.count}{sfx}", vec, [vec, vec, vec])

    def __call__(self, b: ir.IRBuilder, value: ir.Value, weight: ir.Value | None, total: ir.Value) -> ir.Value:
        if self.weighted:
            return b.call(self.fma, [value, weight, total])
        # the tap where it is NaN (the comparison fails), the running value where it is NaN
        kept = b.select(b.fcmp_ordered(">", total, value), total, value)
        return b.select(b.fcmp_unordered("uno", total, total), total, kept)


def _plane_entry(module: ir.Module, name: str, t: ir.Type, lanes: int) -> tuple[ir.Function, ir.IRBuilder]:
    """A plane function (by rows, or two output rows a vector): (w, x, c, h, wd, oh, ow, pt, pl,
    ldw, masks), the row mode's table of lane masks last."""
    p_t = t.as_pointer()
    fn, b = _function(module, name, [p_t, p_t, p_t] + [I64] * 7 + [ir.IntType(lanes).as_pointer()])
    for arg in fn.args[:3]:
        arg.add_attribute("noalias")
    return fn, b


def _plane_function(module: ir.Module, symbol: str, t: ir.Type, size: int, lanes: int,
                    geometry: tuple[int, ...], kit: tuple) -> ir.Function:
    """plane(w, x, c, h, wd, oh, ow, pt, pl, ldw, masks): one channel's plane (see
    depthwise_block_function), row by row (column by column, each column of vectors read the
    input's rows a vector apart, and wide planes ran 1.45x as long)."""
    kh, kw, sh, sw, dh, dw = geometry
    vec, mask_t, ids_t, combine, load_m, store_m = kit
    fn, b = _plane_entry(module, f"{symbol}_plane", t, lanes)
    w, x, c, h, wd, oh, ow, pt, pl, ldw, table = fn.args
    fill = combine.fill
    lane_ids = ir.Constant(ids_t, list(range(lanes)))
    every_other = ir.Constant(ir.VectorType(I32, lanes), [2 * lane for lane in range(lanes)])
    odd_lanes = ir.Constant(ir.VectorType(I32, lanes), [2 * lane + 1 for lane in range(lanes)])

    weights = _tap_weights(b, w, ldw, kh, kw, vec, combine)

    def vector_at(base: ir.Value, offset: ir.Value) -> ir.Value:
        return b.bitcast(b.gep(base, [offset]), vec.as_pointer())

    def taps(starts: list[ir.Value], left: ir.Value, row_ok: list[ir.Value] | None, column: ir.Value) -> ir.Value:
        """The vector's sums; with row_ok (a vector at the plane's border), each tap row only
        where it lies inside the plane (a branch), each read through the mask of the lanes
        inside the row."""
        total = fill
        masks = []
        if row_ok is not None:
            first = b.mul(column, _const(kw * sw))
            masks = [[b.bitcast(b.load(b.gep(table, [b.add(first, _const(j * sw + part))])), mask_t)
                      for part in range(sw)] for j in range(kw)]
        for i in range(kh):
            if row_ok is not None:
                before = b.block
                inside_bb, after_bb = fn.append_basic_block(f"taprow{i}"), fn.append_basic_block(f"taprow{i}.end")
                b.cbranch(row_ok[i], inside_bb, after_bb)
                b.position_at_end(inside_bb)
            summed = total
            loaded: dict[int, list[ir.Value]] = {}

            def parts_at(j: int) -> list[ir.Value]:
                """The sw vectors from tap column j's first input column on."""
                if j not in loaded:
                    parts = []
                    for part in range(sw):
                        at = vector_at(starts[i], b.add(left, _const(j * dw + part * lanes)))
                        if row_ok is None:
                            parts.append(b.load(at, align=size))
                        else:
                            parts.append(b.call(load_m, [at, ir.Constant(I32, size), masks[j][part], fill]))
                    loaded[j] = parts
                return loaded[j]

            for j in range(kw):
                if sw == 1:
                    value = parts_at(j)[0]
                elif dw == 1 and PAIRED_LOADS:   # tap columns j and j + 1 from the same two vectors
                    pair = parts_at(j - j % 2)
                    value = b.shuffle_vector(pair[0], pair[1], every_other if j % 2 == 0 else odd_lanes)
                else:
                    pair = parts_at(j)
                    value = b.shuffle_vector(pair[0], pair[1], every_other)
                summed = combine(b, value, weights[i][j], summed)
            if row_ok is None:
                total = summed
            else:
                inside_end = b.block
                b.branch(after_bb)
                b.position_at_end(after_bb)
                merged = b.phi(vec)
                merged.add_incoming(total, before)
                merged.add_incoming(summed, inside_end)
                total = merged
        return total

    def row(y: ir.Value) -> None:
        top = b.sub(b.mul(y, _const(sh)), pt)                 # input row of tap row 0
        rows = [b.add(top, _const(i * dh)) for i in range(kh)]
        starts = [b.gep(x, [b.mul(r, wd)]) for r in rows]
        out_row = b.gep(c, [b.mul(y, ow)])
        rows_inside = b.and_(b.icmp_signed(">=", top, _const(0)), b.icmp_signed("<", rows[-1], h))
        row_ok = [b.and_(b.icmp_signed(">=", r, _const(0)), b.icmp_signed("<", r, h)) for r in rows]

        def vector(x0: ir.Value) -> None:
            left = b.sub(b.mul(x0, _const(sw)), pl)                 # input column of lane 0, tap column 0
            # the last input column any load reads (stride 2: the second vector's last lane)
            right = b.add(left, _const(lanes * sw - 1 + (kw - 1) * dw))
            inside = b.and_(rows_inside, b.and_(b.and_(b.icmp_signed(">=", left, _const(0)), b.icmp_signed("<", right, wd)),
                                                b.icmp_signed("<=", b.add(x0, _const(lanes)), ow)))
            at = vector_at(out_row, x0)
            column = b.sdiv(x0, _const(lanes))
            with b.if_else(inside, likely=True) as (plain, border):
                with plain:
                    b.store(taps(starts, left, None, column), at, align=size)
                with border:
                    stored = b.icmp_signed("<", lane_ids, _splat(b, b.trunc(b.sub(ow, x0), I32), ids_t))
                    b.call(store_m, [taps(starts, left, row_ok, column), at, ir.Constant(I32, size), stored])

        counted_loop(b, fn, _const(0), ow, _const(lanes), vector, name="vector")

    counted_loop(b, fn, _const(0), oh, _const(1), row, name="row")
    b.ret_void()
    return fn


def _row_pairs_function(module: ir.Module, symbol: str, t: ir.Type, size: int, lanes: int,
                        geometry: tuple[int, ...], kit: tuple) -> ir.Function:
    """pairs(w, x, c, h, wd, oh, ow, pt, pl, ldw, masks): one channel's plane with a column
    stride of 2 into output rows of at most L / 2 columns (14 x 14 -> 7 x 7), two output rows a
    vector: lanes [0, L / 2) row y, lanes [L / 2, L) row y + 1. Tap columns j and j + 1 of both
    rows come from one load of each row's input and one shuffle (the even or odd lanes of each);
    by rows, such a plane ran a vector of 7 useful lanes per output row and two loads per pair of
    tap columns. mobilenet_v2's [576] 14 x 14 -> 7 x 7 in the model (profiled, one thread): 49
    -> 37 us; alone 49 -> 35. With 5 x 5 taps (efficientnet_b0's [672]) no change (109 -> 113
    alone, 125 either way in the model)."""
    kh, kw, sh, dh = geometry
    vec, mask_t, ids_t, combine, load_m, store_m = kit
    bits_t = ir.IntType(lanes)
    half = lanes // 2
    fn, b = _plane_entry(module, f"{symbol}_pairs", t, lanes)
    w, x, c, h, wd, oh, ow, pt, pl, ldw, table = fn.args
    fill = combine.fill
    lane_ids = ir.Constant(ids_t, list(range(lanes)))
    shuffles = [ir.Constant(ir.VectorType(I32, lanes), [2 * q + odd for q in range(half)] + [lanes + 2 * q + odd for q in range(half)])
                for odd in (0, 1)]

    weights = _tap_weights(b, w, ldw, kh, kw, vec, combine)
    # the first column of vectors' masks (row mode's table, tap column e, first part): input
    # columns e - pl + l inside the row
    column_bits = [b.load(b.gep(table, [_const(e * 2)])) for e in range(kw)]
    none = ir.Constant(bits_t, 0)
    ow32 = b.trunc(ow, I32)
    first_row = b.icmp_signed("<", lane_ids, _splat(b, ow32, ids_t))
    second_row = b.and_(b.icmp_signed(">=", lane_ids, ir.Constant(ids_t, [half] * lanes)),
                        b.icmp_signed("<", lane_ids, _splat(b, b.add(ow32, ir.Constant(I32, half)), ids_t)))

    def pair(y: ir.Value) -> None:
        second = b.icmp_signed("<", b.add(y, _const(1)), oh)
        total = fill
        for i in range(kh):
            rows = [b.add(b.sub(b.mul(b.add(y, _const(r)), _const(sh)), pt), _const(i * dh)) for r in (0, 1)]
            ok = [b.and_(b.icmp_signed(">=", r, _const(0)), b.icmp_signed("<", r, h)) for r in rows]
            ok[1] = b.and_(ok[1], second)
            starts = [b.gep(x, [b.sub(b.mul(r, wd), pl)]) for r in rows]
            for e in range(0, kw, 2):
                loaded = []
                for r in (0, 1):
                    mask = b.bitcast(b.select(ok[r], column_bits[e], none), mask_t)
                    at = b.bitcast(b.gep(starts[r], [_const(e)]), vec.as_pointer())
                    loaded.append(b.call(load_m, [at, ir.Constant(I32, size), mask, fill]))
                for j in (e, e + 1):
                    if j < kw:
                        value = b.shuffle_vector(loaded[0], loaded[1], shuffles[j % 2])
                        total = combine(b, value, weights[i][j], total)
        out = b.gep(c, [b.mul(y, ow)])
        b.call(store_m, [total, b.bitcast(out, vec.as_pointer()), ir.Constant(I32, size), first_row])
        with b.if_then(second):   # row y + 1 from lane L / 2 on: its first column at lane L / 2
            at = b.gep(out, [b.sub(ow, _const(half))])
            b.call(store_m, [total, b.bitcast(at, vec.as_pointer()), ir.Constant(I32, size), second_row])

    counted_loop(b, fn, _const(0), oh, _const(2), pair, name="pair")
    b.ret_void()
    return fn


def _flat_function(module: ir.Module, symbol: str, t: ir.Type, size: int, lanes: int,
                   geometry: tuple[int, ...], kit: tuple) -> ir.Function:
    """flat(w, x, c, pixels, wd, pt, pl, ldw, masks, stride): one channel's plane, stride 1, the
    output as wide as the input, as whole vectors of its pixels: output pixel q reads input
    q + (i * dh - pt) * wd + j * dw - pl at tap (i, j), through the lane mask the table gives
    (masks[(i * kw + j) * stride + q], made at compile time). A plane of 7 x 7 is 4 vectors
    where rows of 7 were 7."""
    kh, kw, dh, dw = geometry
    vec, mask_t, ids_t, combine, load_m, store_m = kit
    p_t = t.as_pointer()
    fn, b = _function(module, f"{symbol}_flat", [p_t, p_t, p_t] + [I64] * 5 + [llvm_types.I8P, I64])
    w, x, c, pixels, wd, pt, pl, ldw, masks, stride = fn.args
    for arg in (w, x, c, masks):
        arg.add_attribute("noalias")
    fill = combine.fill
    bytes_t = ir.VectorType(llvm_types.I8, lanes)
    lane_ids = ir.Constant(ids_t, list(range(lanes)))

    weights = _tap_weights(b, w, ldw, kh, kw, vec, combine)

    def vector(q: ir.Value) -> None:
        total = fill
        for i in range(kh):
            for j in range(kw):
                row = b.gep(masks, [b.add(b.mul(_const(i * kw + j), stride), q)])
                mask = b.icmp_unsigned("!=", b.load(b.bitcast(row, bytes_t.as_pointer()), align=1),
                                       ir.Constant(bytes_t, [0] * lanes))
                offset = b.add(b.mul(b.sub(_const(i * dh), pt), wd), b.sub(_const(j * dw), pl))
                at = b.bitcast(b.gep(x, [b.add(q, offset)]), vec.as_pointer())
                total = combine(b, b.call(load_m, [at, ir.Constant(I32, size), mask, fill]), weights[i][j], total)
        stored = b.icmp_signed("<", lane_ids, _splat(b, b.trunc(b.sub(pixels, q), I32), ids_t))
        b.call(store_m, [total, b.bitcast(b.gep(c, [q]), vec.as_pointer()), ir.Constant(I32, size), stored])

    counted_loop(b, fn, _const(0), pixels, _const(lanes), vector, name="flat")
    b.ret_void()
    return fn


def define_declared_depthwise(module: ir.Module, vector_bytes: int | None = None) -> None:
    """Define, with internal linkage, each depthwise block function the module declares (an AOT
    library carries its own)."""
    for name in [g.name for g in module.globals.values() if isinstance(g, ir.Function) and _SYMBOL.match(g.name)]:
        define_if_declared(module, name, lambda name=name: depthwise_block_function(module, name, vector_bytes))

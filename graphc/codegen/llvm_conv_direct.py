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
  were load-bound: resnet18's convolutions took 1.09-1.12x the time of two-vector tiles.
  A convolution whose output channels fill panels of 64 (graphc.lower.conv_direct.wide_panels:
  resnet's, vgg's) calls a block function of its own with such panels: with AVX-512 its tiles
  are 6 pixels x 4 vectors, each broadcast feeding four multiply-adds (resnet18 0.97 of its
  time); narrower targets run a wide panel as more parts;
- each reduction step s (a tap and an input channel) loads the filter's TC channels for s as
  vectors (the filter is packed [channel panels][steps][CB], so a part of a panel is one
  stream with a stride of CB elements) and broadcasts the MR input values under the tile's
  pixels: pixel p's window starts at base(p) = (p // ow) * row_step + (p % ow) * col_step in
  the padded image, and step s is at
  koff[s] from it (a table made at compile time: (i * dh * wp + j * dw) * ci + channel for the
  channels-last padded input graphc.lower.conv_direct makes), so any stride, dilation and
  padding is the same loop;
- C holds output channel r of pixel p at c[r * ldc + p * ldp]: NCHW (ldp = 1) stores the tile
  transposed, each channel's MR pixels as one store after a transposition in registers
  (transpose_plan: log2(MR) stages of two-input shuffles) where MR is a power of two dividing
  the lanes, else one scalar store per element (element by element, the stores took a third of
  the stem convolution's time: 3 -> 32 channels, 27 steps; in registers it runs in 0.84 of
  the time, resnet18's 56 x 56 layer in 0.97); channels-last (ldc = 1, NHWC) stores each
  pixel's TC channels as whole vectors.
- a group of GROUP_TILES tiles takes the panel's steps a chunk (CHUNK_BYTES of filter) at a
  time, each tile's sums kept in scratch between chunks: the chunk is read from memory once
  and then from L1 by the group's other tiles, where a whole panel (resnet18's last layer:
  4608 steps, 590 KB) was read from memory by the first tile of each panel and from L2 by the
  others. In a model the weights are cold (each convolution's were last read a whole forward
  pass ago), so while a group works through one chunk, each of its tiles prefetches its share
  (1 / GROUP_TILES) of the next chunk to L2 (SPREAD_PREFETCH; after a panel's last chunk, the
  next panel's first): the filter streams in at the rate the tiles use it. Before, the group's
  leading tile prefetched its own lines 64 steps ahead, asking in one tile's time for what the
  group uses in eight; spread, resnet18's convolutions took 0.90-0.91 of their time at one
  thread (profiled in the model, processes alternating), and against onnxruntime at two threads
  resnet18 went from 1.08-1.11 to 1.05-1.10 (four alternating pairs of processes). The steps
  are cut into round(k / chunk) even chunks (BALANCED_CHUNKS, a multiple of UNROLL steps each),
  not full chunks and a rest: resnet18's stem (147 steps) ran a chunk of 128 and one of 19, the
  tiles' sums going through scratch in between; as one chunk it ran in 0.82-0.87 of its time at
  one thread, 0.89-0.93 at two (profiled in the model, processes alternating), and the 576-step
  layers as 4 x 144 in 0.96-0.98 at one thread;
- a block's last tile, when it has fewer than MR pixels, runs as tiles of power-of-two widths
  (7 = 4 + 2 + 1; with one width, 7x7 images ran 8 tiles' work for 7 tiles' worth of pixels).
  Only the full tile prefetches. The block function compiles in 0.65 s (0.38 s before the
  chunks; 1.8 s with a tile function for every width, each with two loops).
A last panel of channels is zero-padded in the packed filter and its missing rows are not
stored.

One function per dtype, compiled once per process like the own GEMM's blocks
(graphc.backends.gemm_library), or defined in an AOT library's module.
"""
from __future__ import annotations

from llvmlite import ir

from ..lower.conv_direct import PANEL_BYTES, PANEL_WIDTHS, panel_channels
from . import llvm_types
from .llvm_gemm_own import (_const, _element, _function, _min, define_if_declared, host_vector_bytes, reduction_loops,
                             settings_tag)
from .llvm_loops import counted_loop, opaque

I64 = llvm_types.I64
MAX_PIXELS = 8        # pixels per tile at most (more registers would make longer partial tiles)
TILE_VECTORS = 2      # vectors of output channels per tile at most
UNROLL = 8            # reduction steps per iteration of the tile's loop
CHUNK_BYTES = 16384   # bytes of a filter panel's steps a group of tiles takes in turn (in L1)
BALANCED_CHUNKS = True   # the steps cut into round(k / chunk) even chunks (False: chunks of CHUNK_BYTES and a rest)
GROUP_TILES = 8       # tiles of a group: their sums wait in scratch between chunks
TRANSPOSE_IN_REGISTERS = True   # NCHW tiles stored after a transposition in registers (see above)
# each full tile of a group prefetches its share (1 / GROUP_TILES) of the filter's next chunk to L2
SPREAD_PREFETCH = True
WINDOWS_BY_STEPPING = True   # a tile's window bases stepped from its first pixel's (False: a division each)
CONV_PREFIX = "graphc_conv_"
# bits of a tile call's flags: its chunk of steps is the first (sums start at zero), the last
# (sums go to C)
FIRST_CHUNK, LAST_CHUNK = 1, 2


def tile_channels(dtype_name: str, vector_bytes: int, panel_bytes: int = PANEL_BYTES) -> int:
    """TC: output channels per tile, at most TILE_VECTORS vectors per PANEL_BYTES of panel where
    the target has 32 vector registers, else TILE_VECTORS (the packed filter's panels hold CB >=
    TC channels; a narrower target runs a panel as CB / TC tiles' worth of channels)."""
    size = _element(dtype_name)[1]
    lanes = max(1, vector_bytes // size)
    vectors = TILE_VECTORS * max(1, panel_bytes // PANEL_BYTES) if vector_bytes >= 64 else TILE_VECTORS
    return min(panel_channels(size, panel_bytes), vectors * lanes)


def tile_pixels(dtype_name: str, vector_bytes: int, panel_bytes: int = PANEL_BYTES) -> int:
    """MR: as many pixels as the registers hold accumulators for, next to the filter's vectors
    and one broadcast (16 registers without AVX-512, 32 with it)."""
    size = _element(dtype_name)[1]
    lanes = max(1, vector_bytes // size)
    vectors = max(1, tile_channels(dtype_name, vector_bytes, panel_bytes) // lanes)
    registers = 32 if vector_bytes >= 64 else 16
    return max(1, min(MAX_PIXELS, (registers - vectors - 1) // vectors))


def conv_symbol(dtype_name: str, panel_bytes: int = PANEL_BYTES) -> str:
    """The block function's name: its dtype, panel width and a tag of the settings it is
    generated with."""
    tag = settings_tag(panel_bytes, MAX_PIXELS, TILE_VECTORS, UNROLL, CHUNK_BYTES, BALANCED_CHUNKS,
                       GROUP_TILES, TRANSPOSE_IN_REGISTERS, SPREAD_PREFETCH, WINDOWS_BY_STEPPING)
    return f"{CONV_PREFIX}{'f32' if dtype_name == 'float32' else 'f64'}_{tag}"


def _conv_type(dtype_name: str) -> ir.FunctionType:
    p_t = _element(dtype_name)[0].as_pointer()
    # w, x, koff, c, ldc, ldp, k, rows, p0, cols, ow, row_step, col_step
    return ir.FunctionType(llvm_types.VOID, [p_t, p_t, I64.as_pointer(), p_t] + [I64] * 9)


def declare_conv(module: ir.Module, dtype_name: str, panel_bytes: int = PANEL_BYTES) -> ir.Function:
    """The module's declaration of the block function (resolved like the own GEMM's blocks)."""
    name = conv_symbol(dtype_name, panel_bytes)
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, _conv_type(dtype_name), name=name)


def conv_block_function(module: ir.Module, dtype_name: str, vector_bytes: int | None = None,
                        panel_bytes: int = PANEL_BYTES) -> ir.Function:
    """conv(w, x, koff, c, ldc, ldp, k, rows, p0, cols, ow, row_step, col_step): for output
    channels [0, rows) of the block (its packed filter panels start at w) and pixels
    [p0, p0 + cols), c[r * ldc + p * ldp] = sum over steps s < k of w[r // CB][s][r % CB] *
    x[base(p) + koff[s]]."""
    fn = declare_conv(module, dtype_name, panel_bytes)
    if not fn.is_declaration:
        return fn
    t, size = _element(dtype_name)
    vector_bytes = vector_bytes or host_vector_bytes()
    cb = panel_channels(size, panel_bytes)
    tc = tile_channels(dtype_name, vector_bytes, panel_bytes)
    lanes = min(tc, max(1, vector_bytes // size))
    vectors = tc // lanes
    mr = tile_pixels(dtype_name, vector_bytes, panel_bytes)
    # a partial tile (a block's last) computes only its pixels, as tiles of power-of-two widths
    # (7 = 4 + 2 + 1): one function per width kept the block's compile time at 0.5 s, not 1.8
    full_fn = _tile_function(module, t, size, cb, tc, lanes, vectors, mr, SPREAD_PREFETCH)
    part_fns = {n: _tile_function(module, t, size, cb, tc, lanes, vectors, n, False) for n in _partial_widths(mr)}
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    w, x, koff, c, ldc, ldp, k, rows, p0, cols, ow, row_step, col_step = fn.args
    for arg in (w, x, koff, c):
        arg.add_attribute("noalias")
    end = b.add(p0, cols)
    chunk = max(UNROLL, CHUNK_BYTES // (cb * size) // UNROLL * UNROLL)
    if BALANCED_CHUNKS:   # k in round(k / chunk) even chunks, a multiple of UNROLL steps each
        pieces = b.sdiv(b.add(k, _const(chunk // 2)), _const(chunk))
        pieces = b.select(b.icmp_signed("<", pieces, _const(1)), _const(1), pieces)
        even = b.sdiv(b.add(k, b.sub(pieces, _const(1))), pieces)
        chunk = b.mul(b.sdiv(b.add(even, _const(UNROLL - 1)), _const(UNROLL)), _const(UNROLL))
    else:
        chunk = _const(chunk)
    group = GROUP_TILES * mr
    scratch = b.alloca(t, size=group * tc)
    scratch.align = 64

    def panel(first_row: ir.Value) -> None:
        w_panel = b.gep(w, [b.mul(b.sdiv(first_row, _const(cb)), b.mul(k, _const(cb)))])
        for part in range(cb // tc):   # the panel's channels, TC at a time
            part_row = b.add(first_row, _const(part * tc))
            with b.if_then(b.icmp_signed("<", part_row, rows), likely=part == 0):
                part_rows = _min(b, _const(tc), b.sub(rows, part_row))
                w_part = b.gep(w_panel, [_const(part * tc)])
                c_part = b.gep(c, [b.mul(part_row, ldc)])

                def pixel_group(g0: ir.Value) -> None:
                    g_end = _min(b, b.add(g0, _const(group)), end)

                    def steps(s0: ir.Value) -> None:
                        count = _min(b, chunk, b.sub(k, s0))
                        flags = b.or_(b.select(b.icmp_signed("==", s0, _const(0)), _const(FIRST_CHUNK), _const(0)),
                                      b.select(b.icmp_signed("==", b.add(s0, count), k), _const(LAST_CHUNK), _const(0)))
                        w_steps = b.gep(w_part, [b.mul(s0, _const(cb))])
                        koff_steps = b.gep(koff, [s0])

                        # tile i of the group prefetches part i of the next chunk (the next
                        # panel's first, after the last: the panels are adjacent)
                        share = b.mul(count, _const(cb // GROUP_TILES))
                        # past the last panel's last chunk lies no filter (perhaps no mapped
                        # page): the last chunk's tiles prefetch their own chunk instead
                        more = b.or_(b.icmp_signed("<", b.add(s0, count), k),
                                     b.icmp_signed("<", b.add(first_row, _const(cb)), rows))
                        next_chunk = b.select(more, b.mul(count, _const(cb)), _const(0))

                        def tile(first: ir.Value) -> None:
                            pixels = _min(b, _const(mr), b.sub(g_end, first))
                            ahead = b.add(next_chunk, b.mul(b.sdiv(b.sub(first, g0), _const(mr)), share))
                            bases = _window_bases(b, first, mr, ow, row_step, col_step)
                            c_tile = b.gep(c_part, [b.mul(first, ldp)])
                            sums = b.gep(scratch, [b.mul(b.sub(first, g0), _const(tc))])
                            done = fn.append_basic_block("tile.done")
                            full = fn.append_basic_block("tile.full")
                            switch = b.switch(pixels, full)
                            b.position_at_end(full)
                            # the pixel count stays opaque: seen as a constant, LLVM scheduled the
                            # full tile's loop differently (all broadcasts first), 1.2x slower
                            b.call(full_fn, [w_steps, x, koff_steps, c_tile, ldc, ldp, count, part_rows,
                                             opaque(b, _const(mr)), sums, flags, ahead] + bases)
                            b.branch(done)
                            for n in range(1, mr):
                                case = fn.append_basic_block(f"tile.{n}")
                                switch.add_case(ir.Constant(I64, n), case)
                                b.position_at_end(case)
                                at = 0
                                for width in _split(n, part_fns):
                                    b.call(part_fns[width], [w_steps, x, koff_steps, b.gep(c_tile, [b.mul(_const(at), ldp)]),
                                                             ldc, ldp, count, part_rows, opaque(b, _const(width)),
                                                             b.gep(sums, [_const(at * tc)]), flags, ahead]
                                           + bases[at:at + width])
                                    at += width
                                b.branch(done)
                            b.position_at_end(done)

                        counted_loop(b, fn, g0, g_end, _const(mr), tile, name=f"tile{part}")

                    counted_loop(b, fn, _const(0), k, chunk, steps, name=f"chunk{part}")

                counted_loop(b, fn, p0, end, _const(group), pixel_group, name=f"group{part}")

    counted_loop(b, fn, _const(0), rows, _const(cb), panel, name="panel")
    b.ret_void()
    return fn


def _window_bases(b: ir.IRBuilder, first: ir.Value, mr: int, ow: ir.Value, row_step: ir.Value,
                  col_step: ir.Value) -> list[ir.Value]:
    """base(p) for the tile's pixels first .. first + MR - 1: one division for the first pixel's
    row and column, then each next pixel one column on, wrapping to the next row at ow."""
    if not WINDOWS_BY_STEPPING:
        return [b.add(b.mul(b.sdiv(p, ow), row_step), b.mul(b.srem(p, ow), col_step))
                for p in (b.add(first, _const(i)) for i in range(mr))]
    row, col = b.sdiv(first, ow), b.srem(first, ow)
    base = b.add(b.mul(row, row_step), b.mul(col, col_step))
    # from the last column of a row to the first of the next: one row on, ow - 1 columns back
    wrap_step = b.sub(row_step, b.mul(b.sub(ow, _const(1)), col_step))
    bases = [base]
    for _ in range(1, mr):
        col = b.add(col, _const(1))
        wraps = b.icmp_signed("==", col, ow)
        base = b.add(base, b.select(wraps, wrap_step, col_step))
        col = b.select(wraps, _const(0), col)
        bases.append(base)
    return bases


def _partial_widths(mr: int) -> list[int]:
    """The tile widths a partial tile is made of: the powers of two below MR."""
    return [1 << e for e in range(mr.bit_length()) if 1 << e < mr]


def _split(pixels: int, widths: dict) -> list[int]:
    """`pixels` as a sum of the available widths, widest first."""
    out = []
    for width in sorted(widths, reverse=True):
        while pixels >= width:
            out.append(width)
            pixels -= width
    return out


def _tile_function(module: ir.Module, t: ir.Type, size: int, cb: int, tc: int, lanes: int, vectors: int,
                   mr: int, spread: bool) -> ir.Function:
    """tile(w, x, koff, c, ldc, ldp, k, rows, pixels, sums, flags, ahead, base_0 .. base_{MR-1}):
    k steps of one MR x TC tile (the filter's steps CB elements apart). Its sums start at zero
    where flags has FIRST_CHUNK, else from `sums` (MR x TC, each pixel's channels adjacent); they
    go to C where flags has LAST_CHUNK, else back to `sums`. With `spread`, it prefetches
    k * CB / GROUP_TILES elements of filter from w[ahead] on (its share of the next chunk)."""
    name = f"gc_conv_tile_{llvm_types.suffix(t)}_{mr}x{tc}_{cb}_{lanes}{'_spread' if spread else ''}"
    if name in module.globals:
        return module.globals[name]
    p_t = t.as_pointer()
    vec = ir.VectorType(t, lanes)
    fn, b = _function(module, name, [p_t, p_t, I64.as_pointer(), p_t, I64, I64, I64, I64, I64, p_t, I64, I64]
                      + [I64] * mr)
    w, x, koff, c, ldc, ldp, k, rows, pixels, sums, flags, ahead = fn.args[:12]
    bases = fn.args[12:]
    for arg in (w, x, koff, c, sums):
        arg.add_attribute("noalias")
    fma = llvm_types.intrinsic(module, f"llvm.fmuladd.v{lanes}{llvm_types.suffix(t)}", vec, [vec, vec, vec])
    undef = ir.Constant(vec, ir.Undefined)
    splat_mask = ir.Constant(ir.VectorType(llvm_types.I32, lanes), [0] * lanes)
    zero_vec = ir.Constant(vec, [0.0] * lanes)
    windows = [b.gep(x, [base]) for base in bases]

    prefetch = llvm_types.intrinsic(module, "llvm.prefetch.p0", llvm_types.VOID,
                                    [llvm_types.I8P, llvm_types.I32, llvm_types.I32, llvm_types.I32])

    def prefetch_to_l2(at: ir.Value) -> None:
        read, to_l2, data = (ir.Constant(llvm_types.I32, v) for v in (0, 2, 1))
        b.call(prefetch, [b.bitcast(at, llvm_types.I8P), read, to_l2, data])

    def prefetch_share(p: ir.Value) -> None:
        """The lines of this tile's share of the next chunk that steps p .. p + UNROLL - 1 cover
        (CB / GROUP_TILES elements a step). Addressed from w: as a pointer argument of its own,
        the same prefetches ran the kernel 1.35x slower."""
        per_step = cb // GROUP_TILES
        for line in range(0, UNROLL * per_step * size, 64):
            prefetch_to_l2(b.gep(w, [b.add(b.add(ahead, b.mul(p, _const(per_step))), _const(line // size))]))

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

    def sums_at(i: int, v: int) -> ir.Value:
        return b.bitcast(b.gep(sums, [_const(i * tc + v * lanes)]), vec.as_pointer())

    first_chunk = b.icmp_signed("!=", b.and_(flags, _const(FIRST_CHUNK)), _const(0))
    with b.if_else(first_chunk, likely=True) as (fresh, resumed):
        with fresh:
            fresh_block = b.block
        with resumed:
            kept = [b.load(sums_at(i, v), align=size) for i in range(mr) for v in range(vectors)]
            resumed_block = b.block
    start = []
    for value in kept:
        phi = b.phi(vec)
        phi.add_incoming(zero_vec, fresh_block)
        phi.add_incoming(value, resumed_block)
        start.append(phi)
    acc = reduction_loops(b, fn, k, UNROLL, start, step, "conv", prefetch_share if spread else None)
    with b.if_then(b.icmp_signed("==", b.and_(flags, _const(LAST_CHUNK)), _const(0)), likely=False):
        for i in range(mr):
            for v in range(vectors):
                b.store(acc[i * vectors + v], sums_at(i, v), align=size)
        b.ret_void()

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
                    if TRANSPOSE_IN_REGISTERS and _power_of_two(mr) and lanes % mr == 0 and mr > 1:
                        for v in range(vectors):
                            _store_transposed(b, [acc[i * vectors + v] for i in range(mr)], c, ldc, v * lanes, t, size)
                    else:
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


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def transpose_plan(pixels: int, lanes: int) -> list[list[tuple[int, int, list[int]]]]:
    """The shuffles that turn `pixels` vectors of `lanes` channels (vector p: pixel p, lane c:
    channel c) into `pixels` vectors of lanes / pixels channels x all pixels (vector j: channels
    [j * g, (j + 1) * g), lane (c - j * g) * pixels + p), g = lanes / pixels: one list per stage,
    each entry (first input, second input, the mask over their lanes side by side) making the
    next stage's vector of that index. Each stage merges pairs of vectors holding adjacent pixel
    ranges, halving their channels: log2(pixels) stages of `pixels` two-input shuffles."""
    # labels[v] = the (pixel, channel) each lane of vector v holds
    labels = [[(p, c) for c in range(lanes)] for p in range(pixels)]
    # vector index -> (pixel block, channel part) at the current stage
    layout = [(p, 0) for p in range(pixels)]
    stages = []
    width = 1   # pixels per vector
    while width < pixels:
        by_place = {place: v for v, place in enumerate(layout)}
        stage, new_labels, new_layout = [], [], []
        parts = lanes // width   # channels per vector now
        for block in range(pixels // (2 * width)):
            for part in range(width):   # the block's vectors, each a part of the channels
                first, second = by_place[(2 * block, part)], by_place[(2 * block + 1, part)]
                pool = labels[first] + labels[second]
                channels = sorted({c for _, c in labels[first]})
                for half in range(2):
                    chosen = channels[half * parts // 2:(half + 1) * parts // 2]
                    want = [(p, c) for c in chosen for p in range(2 * block * width, (2 * block + 2) * width)]
                    stage.append((first, second, [pool.index(label) for label in want]))
                    new_labels.append(want)
                    new_layout.append((block, 2 * part + half))
        stages.append(stage)
        labels, layout = new_labels, new_layout
        width *= 2
    return stages


def _store_transposed(b: ir.IRBuilder, vectors: list[ir.Value], c: ir.Value, ldc: ir.Value, first_row: int,
                      t: ir.Type, size: int) -> None:
    """C[first_row + r, 0:P] = channel r of the P pixel vectors (NCHW: each channel's pixels are
    adjacent): the tile transposed in registers (transpose_plan), then one store of P elements
    per channel, where element-wise stores of the transposed tile cost a third of the stem
    convolution's time (3 -> 32 channels, 27 steps)."""
    pixels, lanes = len(vectors), vectors[0].type.count
    current = list(vectors)
    for stage in transpose_plan(pixels, lanes):
        current = [b.shuffle_vector(current[first], current[second],
                                    ir.Constant(ir.VectorType(llvm_types.I32, len(mask)), mask))
                   for first, second, mask in stage]
    group = lanes // pixels
    row_t = ir.VectorType(t, pixels)
    for j, vec in enumerate(current):
        for g in range(group):
            part = b.shuffle_vector(vec, ir.Constant(vec.type, ir.Undefined),
                                    ir.Constant(ir.VectorType(llvm_types.I32, pixels),
                                                list(range(g * pixels, (g + 1) * pixels))))
            at = b.gep(c, [b.mul(_const(first_row + j * group + g), ldc)])
            b.store(part, b.bitcast(at, row_t.as_pointer()), align=size)


def define_declared_conv(module: ir.Module, vector_bytes: int | None = None) -> None:
    """Define, with internal linkage, each direct convolution the module declares (an AOT
    library carries its own)."""
    for dtype_name in ("float32", "float64"):
        for panel_bytes in PANEL_WIDTHS:
            define_if_declared(module, conv_symbol(dtype_name, panel_bytes),
                               lambda d=dtype_name, w=panel_bytes: conv_block_function(module, d, vector_bytes, w))

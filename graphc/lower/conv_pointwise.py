"""1x1 convolutions over planar (NCHW) images as a kernel of graphc's own: the product
out[co, p] = F[co, ci] @ x[ci, p] of each image, with F packed at compile time
(graphc.codegen.llvm_pointwise renders it; GemmCall.pointwise marks it).

Why: in mobilenet_v2 and efficientnet_b0 these convolutions are three quarters of the time, with
16-1152 input channels against 49-12,544 pixels. OpenBLAS packs the filter (from memory: a
model's weights are cold) and x on every call, and its blocks of C were large enough that the
epilogue (bias, clip, swish) read them back from L2; onnxruntime ran these layers 1.3-1.9x
faster in the model. Here the filter is packed once, and the blocks are small
(BLOCK_ELEMENTS of C), so the epilogue runs on C while it is in L1. In-process A/B at one
thread: mobilenet_v2 0.89-0.95 of its time with planes of 14 x 14 and up, 0.92-0.945 of that
again with the 7 x 7 ones; efficientnet_b0 0.94-0.97, then 0.91-0.96.

Where: LLVM targets (Lowering.direct_conv; GRAPHC_DIRECT_CONV=0 turns it off with the direct
convolution), NCHW, a 1x1 unpadded stride-1 convolution, a constant filter (an imported
model's weights), at least MIN_PIXELS pixels per image, at most MAX_CHANNELS input channels.
Planes of at most graphc.lower.conv_direct.POINTWISE_MAX_PIXELS pixels (7 x 7, and the 1 x 1
planes of efficientnet_b0's squeeze-and-excite convolutions) run as direct kernels instead
(conv_direct.pointwise_direct, tried first). Everything else keeps the GEMM form
(graphc.lower.conv_gemm).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.node import Node
from . import conv_gemm
from .conv_gemm import conv_shape, image_layout
from .kernel import GemmCall
from .library_table import stored

PANEL_ROWS = 12          # output channels per panel of the packed filter (a multiple of every MR)
MIN_PIXELS = 16          # pixels per image below which the tiles would be mostly empty lanes
BLOCK_ELEMENTS = 16384   # elements of C per block at most (64 KB of float32), so the epilogue hits L1/L2
PACK_BYTES = 256 << 10   # the kernel's stack for one packed chunk of pixels (input channels x 128 bytes)
# blocks of whole planes (a range of output channels each) where a product has enough rows and
# such a block has at most ROW_BLOCK_ELEMENTS elements (see pointwise_blocks); False: the
# column-first cut alone, to measure the difference
CHANNEL_BLOCKS = True
ROW_BLOCK_ELEMENTS = 1 << 18   # 1 MB of float32: the block's epilogue still reads C from L2
# blocks of channels only for reductions of at most this many steps (an expansion ahead of a
# depthwise convolution); a projection's chunk of pixels is large, and each block packs it again
CHANNEL_BLOCK_MAX_K = 256
MIN_BLOCKS = 8           # blocks per product at least, where it has SPLIT_WORK multiply-adds
SPLIT_WORK = 1 << 20
# a product whose reduction is at least as long as its rows (a projection) and that has at least
# this many blocks of columns is cut into columns only: each row block packs its chunks of
# pixels again (1 << 30: rows cut too, as for every product)
COLUMN_ONLY_BLOCKS = 4
MAX_CHANNELS = PACK_BYTES // 128   # input channels whose chunk fits (two 64-byte vectors per channel)


def packed_rows(weights: np.ndarray) -> np.ndarray:
    """F[co, ci] as [ceil(co / PANEL_ROWS)][ci][PANEL_ROWS], zero past co: a panel's weights for
    one reduction step are adjacent, and a panel is one contiguous stream."""
    co, ci = weights.shape
    panels = -(-co // PANEL_ROWS)
    out = np.zeros((panels * PANEL_ROWS, ci), weights.dtype)
    out[:co] = weights
    return np.ascontiguousarray(out.reshape(panels, PANEL_ROWS, ci).transpose(0, 2, 1))


def conv2d_pointwise(lw: Any, node: Node) -> bool:
    """Lower an NCHW 1x1 convolution with a constant filter as the pointwise kernel; False
    (nothing emitted) where it does not apply."""
    if not lw.direct_conv or not conv_gemm.eligible(lw, node):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    fb = lw.buffer_of.get(f)   # a constant has its buffer from the start
    if s.fmt != "NCHW" or not s.pointwise or s.oh * s.ow < MIN_PIXELS or s.ci > MAX_CHANNELS or fb is None \
            or fb.kind != "const" or fb.value is None:
        return False
    weights = packed_rows(np.asarray(fb.value).reshape(s.ci, s.co).T)
    a = lw.new_buffer(f"{node.name}/filter_rows", fb.dtype, weights.shape, kind="const", value=weights)
    ohw = s.oh * s.ow
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, stored(lw, node, x), lw.buffer_of[out], s.co, ohw,
                               s.ci, False, False, (s.n,), (0,), (s.ci * ohw,), node,
                               layout=image_layout(s.fmt), pointwise=True))
    return True


def pointwise_blocks(m: int, n: int, k: int) -> tuple[int, int]:
    """(rows, columns) of C per block: rows whole panels, columns whole tiles of 32 pixels (or
    all of them); where the product is worth splitting, at least MIN_BLOCKS blocks, so that
    every thread gets work.

    With MIN_BLOCKS panels of rows or more, a block is a range of output channels over the whole
    plane (at most ROW_BLOCK_ELEMENTS): the pool then gives each thread a range of channels, as
    it does for the depthwise convolution's kernels that read this output next (split over
    channels), so each thread finds its channels in its own core's cache. Cut into columns
    first, each thread had every channel of half the pixels, and the depthwise kernels read half
    their input from the other core. In-process A/B (benchmarks/ab.py, CHANNEL_BLOCKS False
    against True): mobilenet_v2 0.964 at 2 threads and 0.979 at 1, efficientnet_b0 0.934 at 2;
    in the other order (True against False, which favours the side built second) at 2 threads
    1/1.013 and 1/1.034. Against onnxruntime at 2 threads, separate processes alternating with
    the build before: mobilenet_v2 1.304-1.305 -> 1.272-1.306, efficientnet_b0 1.152-1.165 ->
    1.129-1.132.
    Not with more than CHANNEL_BLOCK_MAX_K input channels: every block packs its chunks of
    pixels again (k x 32 elements each), and a projection such as mobilenet_v2's [576 -> 96] at
    14 x 14 was cut into 8 blocks of one panel, each packing all of x (in the profiled model
    298 -> 184 us; onnxruntime 149). Projections read by a pointwise convolution next, not by
    a depthwise one, so their channels gain nothing from staying on one core. In-process A/B
    (1 << 30 against 256): mobilenet_v2 0.948 at 1 thread, 0.971 at 2; efficientnet_b0 0.975
    and 0.985.
    Otherwise at most BLOCK_ELEMENTS (the epilogue hits L1), columns first (a 7 x 7 plane is
    one block of 49 columns: its rows are cut instead, each block packing its chunks of pixels
    again). A projection (k >= m) with COLUMN_ONLY_BLOCKS blocks of columns or more keeps all
    its rows in each block: cut into two blocks of rows as well, to make MIN_BLOCKS, each chunk
    of pixels was packed twice. [384 -> 64] at 14 x 14 alone: 86 -> 68-72 us at one thread,
    50-52 -> 47-48 at two; in-process A/B (COLUMN_ONLY_BLOCKS 1 << 30 against 4, both ways):
    mobilenet_v2 0.987 and 1/1.024 at two threads, 0.989 at one; efficientnet_b0 0.998 and
    1/0.997 at two, 0.986 at one."""
    channel_rows = max(PANEL_ROWS, m // MIN_BLOCKS // PANEL_ROWS * PANEL_ROWS)
    if (CHANNEL_BLOCKS and k <= CHANNEL_BLOCK_MAX_K and m >= MIN_BLOCKS * PANEL_ROWS and m * n * k >= SPLIT_WORK
            and channel_rows * n <= ROW_BLOCK_ELEMENTS):
        return channel_rows, n
    cols = n if n <= 64 else max(32, min(n, (BLOCK_ELEMENTS // max(m, 1)) // 32 * 32))
    rows = min(m, max(PANEL_ROWS, (BLOCK_ELEMENTS // cols) // PANEL_ROWS * PANEL_ROWS))
    column_blocks, row_blocks = -(-n // cols), -(-m // rows)
    if m * n * k >= SPLIT_WORK and column_blocks * row_blocks < MIN_BLOCKS:
        if column_blocks < MIN_BLOCKS and n > 32:
            cols = max(32, -(-(-(-n // MIN_BLOCKS)) // 32) * 32)
            column_blocks = -(-n // cols)
        if k >= m and column_blocks >= COLUMN_ONLY_BLOCKS and m * cols <= BLOCK_ELEMENTS:
            return m, cols
        want = -(-MIN_BLOCKS // column_blocks)
        rows = min(rows, max(PANEL_ROWS, -(-(-(-m // want)) // PANEL_ROWS) * PANEL_ROWS))
    # rows cut evenly: [96 -> 576] at 14 x 14 was cut 504 + 72, and its two threads' shares
    # came out 1.8 : 1 (two threads ran it 1.40x as fast as one; cut 288 + 288, 1.57x)
    row_blocks = -(-m // rows)
    return min(rows, -(-(-(-m // row_blocks)) // PANEL_ROWS) * PANEL_ROWS), cols

"""Products with a constant right operand (a dense layer's weights at inference: a transformer's
projections, an NHWC model's 1x1 convolutions) as direct kernels: y[t, :] = x[t, :] @ W with W
packed once, at compile time, in panels of output features (graphc.lower.conv_direct's filter
layout), and x read where it lies: row t of x is a "pixel" whose window starts at t * k, and
reduction step s is s further on (graphc.codegen.llvm_conv_direct renders it).

Why: a BLAS call packs its right operand on every call (the weights, cold in a model: 1 MB for
a [256, 1024] layer), and OpenBLAS ran transformer_encoder's [128, 256] @ [256, 1024] at about
110 GFLOP/s on one core inside the model, where onnxruntime, whose MLAS packs constant weights
once, ran 1.25-1.4x faster. The direct kernel keeps a chunk of a panel in L1 for a group of
8-row tiles and prefetches the next.

Where: LLVM targets with direct kernels (Lowering.direct_conv), float32 / float64, x not
transposed and contiguous (its rows, over any batch axes, follow each other), W a 2-D
constant (transposed or not), at least MIN_ROWS rows (fewer, a matrix-vector product, keep the
reduction loop that streams W once) and MIN_WEIGHTS weights.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir.dtypes import int64
from ..ir.node import Node
from .conv_direct import packed_filter
from .gemm_epilogue import GemmLayout
from .kernel import ConvWindows, GemmCall
from .library_table import stored

MATMUL_DIRECT = True   # False: such products keep the BLAS form (an A/B switch, benchmarks/ab.py)
MIN_ROWS = 8
MIN_WEIGHTS = 1 << 14


def matmul_direct(lw: Any, node: Node, a: Any, b: Any, batch: tuple[int, ...], m: int, k: int, n: int,
                  ta: bool, tb: bool) -> bool:
    """Lower a @ b, b a 2-D constant, as a direct kernel over all of a's rows; False (nothing
    emitted) where it does not apply."""
    fb = lw.buffer_of.get(b)
    if not MATMUL_DIRECT or not lw.direct_conv or ta or b.ndim != 2 or a.ndim < 2 or fb is None \
            or fb.kind != "const" or fb.value is None or a in lw.buffer_of and lw.buffer_of[a].kind == "const":
        return False
    rows = math.prod(batch) * m
    if rows < MIN_ROWS or k * n < MIN_WEIGHTS:
        return False
    out = node.outputs[0]
    weights = np.asarray(fb.value)
    weights = weights.T if tb else weights                   # [k, n]
    packed = packed_filter(weights.reshape(1, 1, k, n), fb.dtype.itemsize)
    panels = lw.new_buffer(f"{node.name}/weight_panels", fb.dtype, packed.shape, kind="const", value=packed)
    steps = np.arange(k, dtype=np.int64)
    koff = lw.new_buffer(f"{node.name}/row_steps", int64, steps.shape, kind="const", value=steps)
    x = stored(lw, node, a)
    rank = len(out.shape)
    layout = GemmLayout((), (rank - 1,), tuple(range(rank - 1)))   # rows: features; columns: a's rows
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", panels, x, lw.buffer_of[out], n, rows, k, False, False,
                               (1,), (0,), (rows * k,), node, layout=layout,
                               window=ConvWindows(koff, rows, 0, k, channels_last=True)))
    return True


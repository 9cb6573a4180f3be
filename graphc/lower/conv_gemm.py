"""Convolution as GEMM: the forward pass and both gradients as one GEMM each, around patch
matrices (im2col) built by ordinary loop kernels.

Why: a direct convolution loop does one multiply-add per loaded pair and reuses nothing from
registers or cache, so it runs at 1-2 GFLOP/s; the same work as a GEMM runs in the BLAS kernel
(packed, register-blocked, split over graphc's pool in blocks of C) at tens of GFLOP/s. The
patch matrix costs one pass of kh*kw copies of the input, small against the GEMM.

Layouts are chosen so that no operand needs a transposed copy (the filter is HWIO, so it is a
[kh*kw*ci, co] matrix as stored):
- NHWC: patches [n, oh, ow, kh, kw, ci] = P[n*oh*ow, K]; out = P @ F is [n*oh*ow, co] as stored.
- NCHW: patches [n, kh, kw, ci, oh, ow] = P[n][K, oh*ow]; out[n] = F^T @ P[n] is [co, oh*ow].
- the input gradient multiplies into patch form (dP = dY @ F^T, or F @ dY[n]) and col2im sums
  the taps back onto the input (the transposed window map, a reduction over kh, kw);
- the filter gradient is P^T @ dY (NHWC) or P' @ dY'^T with patches [kh, kw, ci, n, oh, ow]
  and dY as [co, n, oh*ow] (NCHW).
A 1x1 convolution with stride 1 and no padding needs no patches at all. Patches larger than
PATCH_BYTES are built and multiplied a batch chunk at a time, so that they are still in cache
when the GEMM reads them (forward, input gradient, and the NHWC filter gradient, whose chunks
each make a partial gradient that one small kernel sums).

Taken wherever matmuls are GEMMs (lw.blas: a BLAS call or graphc's own GEMM in the JIT and
AOT libraries, the CUDA backend's GEMM), for float32 / float64 and groups == 1; grouped and
depthwise convolutions keep the direct loops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir.dtypes import float32, float64
from ..ir.node import Node
from . import index as iexpr
from .conv_geometry import backward_tap, hwc, layout, pads
from .gemm_epilogue import GemmLayout
from .kernel import GemmCall
from .library_table import copy_into, kernel_builder, stored

# patches above this are built a batch chunk at a time: 4 MB measured best for the small CNN on
# 2 cores with 1 MB L2 each and a 32 MB L3 (forward 12-17% and training step 3-6% faster than
# one 14 MB chunk; 1 MB chunks were as slow as one: too many small GEMMs)
PATCH_BYTES = 4 << 20
FILTER_PATCH_BYTES = 512 << 20  # the filter gradient needs the whole batch's patches at once


@dataclass(frozen=True)
class ConvShape:
    """A convolution's sizes: input (n, h, w, ci), output (oh, ow, co), taps, strides, dilations, pads."""

    fmt: str
    n: int
    h: int
    w: int
    ci: int
    oh: int
    ow: int
    co: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int

    @property
    def k(self) -> int:
        """The GEMM's reduction length: taps x input channels."""
        return self.kh * self.kw * self.ci

    @property
    def pointwise(self) -> bool:
        """A 1x1, stride-1, unpadded convolution: the input is already the patch matrix."""
        return (self.kh, self.kw, self.sh, self.sw, self.pt, self.pl) == (1, 1, 1, 1, 0, 0) and \
            (self.oh, self.ow) == (self.h, self.w)

    def sizes(self, n: int) -> dict[str, int]:
        return {"n": n, "oh": self.oh, "ow": self.ow, "kh": self.kh, "kw": self.kw, "ci": self.ci}


def conv_shape(node: Node, x_shape: tuple, out_shape: tuple, f_shape: tuple) -> ConvShape:
    fmt = node.attrs["data_format"]
    n, h, w, ci = hwc(x_shape, fmt)
    _, oh, ow, co = hwc(out_shape, fmt)
    kh, kw = f_shape[0], f_shape[1]
    pt, pl = pads(node.attrs, (h, w), (kh, kw))
    (sh, sw), (dh, dw) = node.attrs["strides"], node.attrs["dilations"]
    return ConvShape(fmt, n, h, w, ci, oh, ow, co, kh, kw, sh, sw, dh, dw, pt, pl)


def eligible(lw: Any, node: Node) -> bool:
    """Whether a convolution can be a product: GEMMs available, no groups, one float dtype."""
    dtypes = {t.dtype for t in (*node.inputs[:2], node.outputs[0])}
    return bool(lw.blas) and node.attrs.get("groups", 1) == 1 and len(dtypes) == 1 and \
        dtypes.pop() in (float32, float64)


def _gemm(lw: Any, node: Node, a, b, c, m: int, n: int, k: int, ta: bool = False, tb: bool = False,
          batch: tuple[int, ...] = (), a_stride: int = 0, b_stride: int = 0,
          offsets: tuple[int, int, int] = (0, 0, 0), layout: GemmLayout | None = None) -> None:
    lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a, b, c, m, n, k, ta, tb, batch,
                               (a_stride,) * len(batch), (b_stride,) * len(batch), node, offsets,
                               lw.generated_gemm, layout))


def image_layout(fmt: str, n0: int = 0, rows_per_image: int = 0) -> GemmLayout:
    """How the C of an image-shaped product lies over [n, h, w, c] (NHWC: rows n x h x w from
    image n0 on, columns c) or [n, c, h, w] (NCHW: one product per image from n0, rows c,
    columns h x w)."""
    if fmt == "NHWC":
        return GemmLayout((), (0, 1, 2), (3,), (), n0 * rows_per_image)
    return GemmLayout((0,), (1,), (2, 3), (n0,))


# a filter-shaped C [kh, kw, ci, co]: rows kh x kw x ci, columns co
FILTER_LAYOUT = GemmLayout((), (0, 1, 2), (3,))


def filter_rows(lw: Any, node: Node, fb, s: ConvShape) -> tuple[Any, bool]:
    """The NCHW forward's A operand: (buffer, transposed). A constant HWIO filter becomes a
    constant [co, kh*kw*ci] matrix at compile time, so A is not transposed; OpenBLAS runs the
    product faster that way, most where C has few columns (single-threaded blocks of
    [512, 4608] @ [4608, 49]: 54-55 GFLOP/s against 40-44 with A transposed; other resnet18
    shapes equal or better). A filter that is a variable stays [K, co], read transposed (a copy
    per call would cost as much as it saves)."""
    if fb.kind != "const" or fb.value is None:
        return fb, True
    rows = np.ascontiguousarray(np.asarray(fb.value).reshape(s.k, s.co).T)
    return lw.new_buffer(f"{node.name}/filter_rows", fb.dtype, rows.shape, kind="const", value=rows), False


def _clamped(pos, ok):
    """pos where it is valid, 0 elsewhere (so a masked read never forms a wild address)."""
    return pos if ok is None else iexpr.select(ok, pos, 0)


def padded_size(s: ConvShape) -> tuple[int, int]:
    """(height, width) of the input with its padding written out: every window inside."""
    return (max(s.pt + s.h, (s.oh - 1) * s.sh + (s.kh - 1) * s.dh + 1),
            max(s.pl + s.w, (s.ow - 1) * s.sw + (s.kw - 1) * s.dw + 1))


def read_inside(kb: Any, x, s: ConvShape, vn, ih, iw, vc) -> Any:
    """x (in s's data format) at input position (ih, iw), 0 where that falls outside it."""
    okh, okw = iexpr.in_range(ih, 0, s.h), iexpr.in_range(iw, 0, s.w)
    return kb.read(x, layout(s.fmt, vn, _clamped(ih, okh), _clamped(iw, okw), vc), iexpr.logical_and(okh, okw), 0)


def padded_input(lw: Any, node: Node, x, s: ConvShape) -> Any:
    """x with its zero padding written out (x's own buffer when the windows never leave it): the
    windows' reads become plain affine loads, which vectorize, instead of a bounds test and a
    select per tap. One pass over x, small against what reads it kh * kw times."""
    hp, wp = padded_size(s)
    if (s.pt, s.pl, hp, wp) == (0, 0, s.h, s.w):
        return stored(lw, node, x)
    buf = lw.new_buffer(f"{node.name}/padded", x.dtype, layout(s.fmt, s.n, hp, wp, s.ci))
    kb = kernel_builder(lw, node, buf.shape)
    vn, vh, vw, vc = kb.vars if s.fmt == "NHWC" else (kb.vars[0], kb.vars[2], kb.vars[3], kb.vars[1])
    kb.store(buf, kb.vars, read_inside(kb, x, s, vn, iexpr.add(vh, -s.pt), iexpr.add(vw, -s.pl), vc))
    kb.finish()
    return buf


def window_load(kb: Any, padded, s: ConvShape, vn, voh, vow, vkh, vkw, vc) -> Any:
    """The padded input under tap (vkh, vkw) of output position (voh, vow)."""
    return kb.load(padded, layout(s.fmt, vn, iexpr.add(iexpr.mul(voh, s.sh), iexpr.mul(vkh, s.dh)),
                                  iexpr.add(iexpr.mul(vow, s.sw), iexpr.mul(vkw, s.dw)), vc))


def _patches(lw: Any, node: Node, padded, s: ConvShape, order: tuple[str, ...], n0: int, nc: int) -> Any:
    """A new buffer of the patches of images [n0, n0 + nc) of the padded input, its axes in
    `order` (names of n, oh, ow, kh, kw, ci)."""
    sizes = s.sizes(nc)
    buf = lw.new_buffer(f"{node.name}/patches", padded.dtype, tuple(sizes[a] for a in order))
    kb = kernel_builder(lw, node, buf.shape)
    v = dict(zip(order, kb.vars))
    kb.store(buf, kb.vars, window_load(kb, padded, s, iexpr.add(v["n"], n0), v["oh"], v["ow"], v["kh"], v["kw"],
                                       v["ci"]))
    kb.finish()
    return buf


def _chunks(s: ConvShape, itemsize: int) -> list[tuple[int, int]]:
    """(first image, images) per chunk, each chunk's patches at most PATCH_BYTES (one image at least)."""
    per_image = max(1, s.k * s.oh * s.ow * itemsize)
    step = max(1, min(s.n, PATCH_BYTES // per_image))
    return [(n0, min(step, s.n - n0)) for n0 in range(0, s.n, step)]


def conv2d_as_gemm(lw: Any, node: Node) -> bool:
    """Lower a Conv2D as patches + GEMM; False (nothing emitted) where it does not apply."""
    if not eligible(lw, node):
        return False
    x, f = node.inputs
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(out.shape), tuple(f.shape))
    fb, ob = stored(lw, node, f), lw.buffer_of[out]
    ohw = s.oh * s.ow
    if s.pointwise:
        xb = stored(lw, node, x)
        if s.fmt == "NHWC":
            _gemm(lw, node, xb, fb, ob, s.n * ohw, s.co, s.ci, layout=image_layout(s.fmt))
        else:
            a, ta = filter_rows(lw, node, fb, s)
            _gemm(lw, node, a, xb, ob, s.co, ohw, s.ci, ta=ta, batch=(s.n,), b_stride=s.ci * ohw,
                  layout=image_layout(s.fmt))
        return True
    padded = padded_input(lw, node, x, s)
    if s.fmt == "NCHW":
        fb, ta = filter_rows(lw, node, fb, s)
    for n0, nc in _chunks(s, x.dtype.itemsize):
        if s.fmt == "NHWC":
            p = _patches(lw, node, padded, s, ("n", "oh", "ow", "kh", "kw", "ci"), n0, nc)
            _gemm(lw, node, p, fb, ob, nc * ohw, s.co, s.k, offsets=(0, 0, n0 * ohw * s.co),
                  layout=image_layout(s.fmt, n0, ohw))
        else:
            p = _patches(lw, node, padded, s, ("n", "kh", "kw", "ci", "oh", "ow"), n0, nc)
            _gemm(lw, node, fb, p, ob, s.co, ohw, s.k, ta=ta, batch=(nc,), b_stride=s.k * ohw,
                  offsets=(0, 0, n0 * s.co * ohw), layout=image_layout(s.fmt, n0))
    return True


def conv2d_backprop_input_as_gemm(lw: Any, node: Node) -> bool:
    """dX of a convolution: dY times the filter into patch form, then col2im; False where it
    does not apply."""
    if not eligible(lw, node):
        return False
    f, g = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    s = conv_shape(node, tuple(out.shape), tuple(g.shape), tuple(f.shape))
    fb, gb, ob = stored(lw, node, f), stored(lw, node, g), lw.buffer_of[out]
    ohw = s.oh * s.ow
    if s.pointwise:
        if s.fmt == "NHWC":
            _gemm(lw, node, gb, fb, ob, s.n * ohw, s.ci, s.co, tb=True, layout=image_layout(s.fmt))
        else:
            _gemm(lw, node, fb, gb, ob, s.ci, ohw, s.co, batch=(s.n,), b_stride=s.co * ohw,
                  layout=image_layout(s.fmt))
        return True
    for n0, nc in _chunks(s, out.dtype.itemsize):
        if s.fmt == "NHWC":
            order = ("n", "oh", "ow", "kh", "kw", "ci")
            dp = lw.new_buffer(f"{node.name}/patch_grads", out.dtype, (nc, s.oh, s.ow, s.kh, s.kw, s.ci))
            _gemm(lw, node, gb, fb, dp, nc * ohw, s.k, s.co, tb=True, offsets=(n0 * ohw * s.co, 0, 0))
        else:
            order = ("n", "kh", "kw", "ci", "oh", "ow")
            dp = lw.new_buffer(f"{node.name}/patch_grads", out.dtype, (nc, s.kh, s.kw, s.ci, s.oh, s.ow))
            _gemm(lw, node, fb, gb, dp, s.k, ohw, s.co, batch=(nc,), b_stride=s.co * ohw,
                  offsets=(0, n0 * s.co * ohw, 0))
        _col2im(lw, node, dp, order, ob, s, n0, nc)
    return True


def _col2im(lw: Any, node: Node, dp, order: tuple[str, ...], ob, s: ConvShape, n0: int, nc: int) -> None:
    """ob's images [n0, n0 + nc) = the sum, over taps, of the patch gradients that read each
    input position (the transposed window map)."""
    space = layout(s.fmt, nc, s.h, s.w, s.ci) + (s.kh, s.kw)
    kb = kernel_builder(lw, node, space, reduced=(4, 5))
    if s.fmt == "NHWC":
        vn, vh, vw, vci = kb.vars[:4]
    else:
        vn, vci, vh, vw = kb.vars[:4]
    vkh, vkw = kb.vars[4], kb.vars[5]
    yh, okh = backward_tap(vh, vkh, s.sh, s.dh, s.pt, s.oh)
    yw, okw = backward_tap(vw, vkw, s.sw, s.dw, s.pl, s.ow)
    ok = iexpr.logical_and(okh, okw)
    v = {"n": vn, "oh": _clamped(yh, okh), "ow": _clamped(yw, okw), "kh": vkh, "kw": vkw, "ci": vci}
    at = tuple(v[a] for a in order)
    value = kb.load(dp, at, ok, 0)
    acc = kb.accumulate("sum", value, ob.dtype)
    kb.store(ob, layout(s.fmt, iexpr.add(vn, n0), vh, vw, vci), acc)
    kb.finish()


def conv2d_backprop_filter_as_gemm(lw: Any, node: Node) -> bool:
    """dF of a convolution: patches^T times dY, one GEMM over the whole batch; False where it
    does not apply (or the batch's patches would not fit FILTER_PATCH_BYTES)."""
    if not eligible(lw, node):
        return False
    x, g = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    s = conv_shape(node, tuple(x.shape), tuple(g.shape), tuple(out.shape))
    ohw = s.oh * s.ow
    if s.k * s.n * ohw * x.dtype.itemsize > FILTER_PATCH_BYTES:
        return False
    gb, ob = stored(lw, node, g), lw.buffer_of[out]
    if s.fmt == "NHWC":
        nhwc = ("n", "oh", "ow", "kh", "kw", "ci")
        chunks = _chunks(s, x.dtype.itemsize)
        if s.pointwise or len(chunks) == 1:
            p = stored(lw, node, x) if s.pointwise else \
                _patches(lw, node, padded_input(lw, node, x, s), s, nhwc, 0, s.n)
            _gemm(lw, node, p, gb, ob, s.k, s.co, s.n * ohw, ta=True, layout=FILTER_LAYOUT)
        else:
            _filter_gradient_by_chunks(lw, node, padded_input(lw, node, x, s), gb, ob, s, chunks)
        return True
    if s.pointwise and s.n == 1:
        p = stored(lw, node, x)
    else:
        p = _patches(lw, node, padded_input(lw, node, x, s), s, ("kh", "kw", "ci", "n", "oh", "ow"), 0, s.n)
    if s.n > 1:   # dY as [co, n, oh*ow], so that the batch is part of the GEMM's reduction
        gt = lw.new_buffer(f"{node.name}/grad_by_channel", g.dtype, (s.co, s.n, s.oh, s.ow))
        copy_into(lw, node, g, gt, gt.shape, lambda v: v, src_index=lambda v: (v[1], v[0], v[2], v[3]))
        gb = gt
    _gemm(lw, node, p, gb, ob, s.k, s.co, s.n * ohw, tb=True, layout=FILTER_LAYOUT)
    return True


def _filter_gradient_by_chunks(lw: Any, node: Node, padded, gb, ob, s: ConvShape, chunks: list[tuple[int, int]]) -> None:
    """NHWC dF = sum over batch chunks of patches(chunk)^T @ dY(chunk): each chunk's patches are
    built and multiplied while they are in cache (the whole batch's patches went through
    memory twice), into a partial filter gradient of its own, which one small kernel sums."""
    ohw = s.oh * s.ow
    partial = lw.new_buffer(f"{node.name}/filter_partials", ob.dtype, (len(chunks), s.k, s.co))
    for j, (n0, nc) in enumerate(chunks):
        p = _patches(lw, node, padded, s, ("n", "oh", "ow", "kh", "kw", "ci"), n0, nc)
        _gemm(lw, node, p, gb, partial, s.k, s.co, nc * ohw, ta=True, offsets=(0, n0 * ohw * s.co, j * s.k * s.co))
    kb = kernel_builder(lw, node, (s.k, s.co, len(chunks)), reduced=(2,))
    vk, vc, vj = kb.vars
    kb.store(ob, (vk, vc), kb.accumulate("sum", kb.load(partial, (vj, vk, vc)), ob.dtype))
    kb.finish()

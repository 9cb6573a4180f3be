"""Import rules for image-model layers built from graphc's ops: LRN, InstanceNormalization and
ConvTranspose.

- LRN (AlexNet, GoogLeNet): y = x / (bias + alpha / size * sum of x^2 over `size` neighbouring
  channels)^beta; the window [c - (size-1)//2, c + ceil((size-1)/2)] is a sum of `size`
  shifted slices of the zero-padded squares (size <= MAX_LRN_SIZE).
- InstanceNormalization: each (sample, channel) normalized over its spatial axes, then scaled.
- ConvTranspose (1-D and 2-D, NCHW): graphc's Conv2DBackpropInput (the gradient of a
  convolution with respect to its input: a transposed convolution) computes the full output
  s * (n - 1) + (k - 1) * d + 1; pads, output_padding, output_shape and auto_pad then crop it or
  extend it with zeros, exactly as ONNX's reference does. Groups split the channels.
"""
from __future__ import annotations

from typing import Any

from ...api import array as array_ops
from ...api import math as math_ops
from ...api.convert import apply1
from ...ir.tensor import Tensor
from .checks import ints, known_shape, one_of, rank_of
from .import_rules import rule

MAX_LRN_SIZE = 256   # channels a window may span (one slice node each)


@rule("LRN")
def _lrn(ctx, node, ins, attrs):
    x = ins[0]
    if rank_of(ctx, x) < 3:
        raise ctx.error(f"input 0 has rank {x.ndim}; LRN needs (N, C, spatial...)")
    size = int(attrs["size"])
    if not 1 <= size <= MAX_LRN_SIZE:
        raise ctx.error(f"attribute 'size' is {size}; graphc imports 1 to {MAX_LRN_SIZE}")
    channels = x.shape[1]
    if channels is None:
        raise ctx.error("LRN needs the number of channels (dimension 1) known")
    alpha, beta, bias = float(attrs.get("alpha", 1e-4)), float(attrs.get("beta", 0.75)), float(attrs.get("bias", 1.0))
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    squares = array_ops.pad(math_ops.square(x), [[0, 0], [before, after]] + [[0, 0]] * (x.ndim - 2))
    total = None
    for k in range(size):
        part = array_ops.getitem(squares, (slice(None), slice(k, k + channels)))
        total = part if total is None else math_ops.add(total, part)
    scale = math_ops.add(math_ops.multiply(total, ctx.scalar_like(alpha / size, x)), ctx.scalar_like(bias, x))
    return [math_ops.divide(x, math_ops.pow(scale, ctx.scalar_like(beta, x)))]


@rule("InstanceNormalization")
def _instance_norm(ctx, node, ins, attrs):
    x, scale, bias = ins
    if rank_of(ctx, x) < 3:
        raise ctx.error(f"input 0 has rank {x.ndim}; InstanceNormalization needs (N, C, spatial...)")
    for k, t in ((1, scale), (2, bias)):
        if t.shape is None or len(t.shape) != 1 or None not in (t.shape[0], x.shape[1]) and t.shape[0] != x.shape[1]:
            raise ctx.error(f"input {k} has shape {t.shape}; expected ({x.shape[1]},), one value per channel")
    axes = list(range(2, x.ndim))
    eps = float(attrs.get("epsilon", 1e-5))
    mean = math_ops.reduce_mean(x, axis=axes, keepdims=True)
    centered = math_ops.subtract(x, mean)
    var = math_ops.reduce_mean(math_ops.square(centered), axis=axes, keepdims=True)
    shape = [1, -1] + [1] * (x.ndim - 2)
    y = math_ops.multiply(centered, math_ops.rsqrt(math_ops.add(var, ctx.scalar_like(eps, var))))
    return [math_ops.add(math_ops.multiply(y, array_ops.reshape(scale, shape)), array_ops.reshape(bias, shape))]


@rule("ConvTranspose")
def _conv_transpose(ctx, node, ins, attrs):
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    rank = rank_of(ctx, x)
    if rank not in (3, 4):
        raise ctx.error(f"graphc imports 1-D and 2-D transposed convolutions (inputs of rank 3 or 4), got rank {rank}")
    nd = rank - 2
    wshape = known_shape(ctx, w, "input 1 (the weights)")
    spatial = [x.shape[2 + i] for i in range(nd)]
    if len(wshape) != rank or None in spatial:
        raise ctx.error(f"the weights {list(wshape)} and the input {x.shape} must have the same rank and known "
                        f"spatial sizes")
    group = int(attrs.get("group", 1))
    if group < 1 or wshape[0] % group or x.shape[1] not in (None, wshape[0]):
        raise ctx.error(f"attribute 'group' is {group}: the input's {x.shape[1]} channels and the weights' shape "
                        f"{list(wshape)} (in, out/group, ...) do not fit it")
    kernel = ints(ctx, attrs.get("kernel_shape", wshape[2:]), "attribute 'kernel_shape'", count=nd, lo=1, hi=1 << 31)
    if list(kernel) != list(wshape[2:]):
        raise ctx.error(f"attribute 'kernel_shape' is {list(kernel)}; the weights' spatial shape is {list(wshape[2:])}")
    strides = ints(ctx, attrs.get("strides", [1] * nd), "attribute 'strides'", count=nd, lo=1, hi=1 << 20)
    dilations = ints(ctx, attrs.get("dilations", [1] * nd), "attribute 'dilations'", count=nd, lo=1, hi=1 << 20)
    extra = ints(ctx, attrs.get("output_padding", [0] * nd), "attribute 'output_padding'", count=nd, lo=0, hi=1 << 20)
    auto = one_of(ctx, attrs.get("auto_pad", "NOTSET"), "attribute 'auto_pad'",
                  ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"))
    full = [strides[i] * (spatial[i] - 1) + (kernel[i] - 1) * dilations[i] + 1 for i in range(nd)]
    begin, size = _placement(ctx, attrs, auto, nd, spatial, strides, full, extra)
    # the full transposed convolution of each group, as 2-D NCHW
    x4 = array_ops.expand_dims(x, 2) if nd == 1 else x
    w4 = array_ops.expand_dims(w, 2) if nd == 1 else w
    full4 = ([1] if nd == 1 else []) + full
    s4, d4 = ([1] if nd == 1 else []) + list(strides), ([1] if nd == 1 else []) + list(dilations)
    filters = array_ops.transpose(w4, [2, 3, 1, 0])   # (in, out/g, kh, kw) -> HWIO with I = out/g, O = in
    xs = array_ops.split(x4, group, axis=1) if group > 1 else [x4]
    fs = array_ops.split(filters, group, axis=3) if group > 1 else [filters]
    out_channels = wshape[1]
    parts = []
    for xg, fg in zip(xs, fs):
        batch = xg.shape[0] if xg.shape[0] is not None else array_ops.shape(xg)[0]
        target = array_ops.stack([batch, out_channels, *full4]) if not isinstance(batch, int) else \
            [batch, out_channels, *full4]
        conv_attrs = {"strides": tuple(s4), "padding": "VALID", "data_format": "NCHW", "dilations": tuple(d4)}
        if isinstance(target, list):
            parts.append(apply1("Conv2DBackpropInput", [fg, xg], dict(conv_attrs, shape=tuple(target))))
        else:
            parts.append(apply1("Conv2DBackpropInput", [fg, xg, target], conv_attrs))
    y = parts[0] if len(parts) == 1 else array_ops.concat(parts, axis=1)
    if nd == 1:
        y = array_ops.squeeze(y, [2])
    y = _place(y, begin, size, full)
    if bias is not None:
        if bias.shape is None or len(bias.shape) != 1 or bias.shape[0] not in (None, out_channels * group):
            raise ctx.error(f"input 2 (the bias) has shape {bias.shape}; expected ({out_channels * group},)")
        y = math_ops.add(y, array_ops.reshape(bias, [1, -1] + [1] * nd))
    return [y]


def _placement(ctx, attrs: dict[str, Any], auto: str, nd: int, spatial: list[int], strides: list[int],
               full: list[int], extra: list[int]) -> tuple[list[int], list[int]]:
    """(offset of the output in the full result, output size) per spatial axis, as ONNX's
    reference computes them from pads / auto_pad / output_shape / output_padding."""
    shape = attrs.get("output_shape")
    if shape is not None:
        shape = ints(ctx, shape[-nd:], "attribute 'output_shape'", count=nd, lo=1, hi=1 << 31)
    pads = attrs.get("pads")
    if pads is None and auto not in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
    if pads is not None:
        pads = ints(ctx, pads, "attribute 'pads'", count=2 * nd, lo=0, hi=1 << 31)
        size = list(shape) if shape is not None else [full[i] + extra[i] - pads[i] - pads[i + nd] for i in range(nd)]
        return [pads[i] for i in range(nd)], size
    size = list(shape) if shape is not None else [spatial[i] * strides[i] for i in range(nd)]
    total = [full[i] + extra[i] - size[i] for i in range(nd)]
    begin = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
    return begin, size


def _place(y: Tensor, begin: list[int], size: list[int], full: list[int]) -> Tensor:
    """The window [begin, begin + size) of y's spatial axes, zeros where it leaves y."""
    nd = len(full)
    pad = [[0, 0], [0, 0]] + [[max(0, -begin[i]), max(0, begin[i] + size[i] - full[i])] for i in range(nd)]
    if any(p != [0, 0] for p in pad):
        y = array_ops.pad(y, pad)
    start = [max(0, begin[i]) for i in range(nd)]
    if start != [0] * nd or [start[i] + size[i] for i in range(nd)] != [y.shape[2 + i] for i in range(nd)]:
        y = array_ops.getitem(y, (slice(None), slice(None), *[slice(start[i], start[i] + size[i]) for i in range(nd)]))
    return y

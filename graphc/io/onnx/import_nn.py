"""Import rules for the softmax family, convolution, pooling and normalization.

ONNX's NCHW layout is graphc's NCHW data format; OIHW weights are transposed to graphc's HWIO
filters. 1-D convolutions and pools run as 2-D ones over a height of 1. Explicit pads that
graphc's SAME / VALID cannot express become an explicit pad (with -inf for max pooling) before
a VALID window; average pooling then divides by the count of elements each window covers.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...api import array as array_ops
from ...api.convert import constant
from ...api import math as math_ops
from ...api import nn as nn_ops
from ...ir.dtypes import float64
from ...ir.tensor import Tensor
from ...ops.conv import window_output
from .checks import axis as check_axis
from .checks import ints, known_shape, one_of, rank_of
from .import_rules import ImportContext, rule

_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
MAX_WINDOW = 4096  # kernel elements a pool built from slices may have (one graph node each)


# ----------------------------------------------------------------------------- softmax family
@rule("Softmax", "LogSoftmax", "Hardmax")
def _softmax(ctx, node, ins, attrs):
    x = ins[0]
    rank = rank_of(ctx, x)
    if rank == 0:
        raise ctx.error("input 0 is a scalar; softmax needs an axis")
    if ctx.opset >= 13:
        axis = check_axis(ctx, int(attrs.get("axis", -1)), rank, "attribute 'axis'")
        if node.op_type == "Hardmax" and x.shape[axis] is None:
            raise ctx.error(f"Hardmax needs the size of axis {axis}, which is not known")
        return [_softmax_along(node.op_type, x, axis)]
    # before opset 13: coerce to 2-D at `axis` (rows = the dims before it), softmax each row
    axis = check_axis(ctx, int(attrs.get("axis", 1)), rank, "attribute 'axis'")
    if node.op_type == "Hardmax" and any(d is None for d in x.shape[axis:]):
        raise ctx.error("Hardmax before opset 13 needs the sizes of the axes it flattens")
    dims = array_ops.shape(x)
    outer = math_ops.reduce_prod(array_ops.getitem(dims, slice(0, axis))) if axis else 1
    flat = array_ops.reshape(x, [outer, -1])
    depth = int(np.prod(x.shape[axis:], dtype=np.int64)) if node.op_type == "Hardmax" else None
    return [array_ops.reshape(_softmax_along(node.op_type, flat, -1, depth), dims)]


def _softmax_along(op: str, x: Tensor, axis: int, depth: int | None = None) -> Tensor:
    if op == "Softmax":
        return nn_ops.softmax(x, axis=axis)
    if op == "LogSoftmax":
        return nn_ops.log_softmax(x, axis=axis)
    rank = x.ndim
    axis %= rank
    first = math_ops.argmax(x, axis=axis)
    hot = array_ops.one_hot(first, depth if depth is not None else x.shape[axis], axis=axis, dtype=x.dtype)
    return hot


# ----------------------------------------------------------------------------- helpers
def _spatial_rank(ctx: ImportContext, x: Tensor) -> int:
    if x.ndim is None:
        raise ctx.error("input 0 must have a known rank")
    if x.ndim not in (3, 4):
        raise ctx.error(f"graphc imports 1-D and 2-D convolutions and pools (inputs of rank 3 or 4), got rank "
                        f"{x.ndim}")
    return x.ndim - 2


def _as_2d(x: Tensor) -> Tensor:
    return array_ops.expand_dims(x, 2)  # (N, C, L) -> (N, C, 1, L)


def _pairs(ctx: ImportContext, x: Tensor, attrs: dict[str, Any], kernel: list[int], strides: list[int],
           dilations: list[int]) -> Any:
    """graphc padding: 'SAME', 'VALID' or ((top, bottom), (left, right)) for 2-D."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return "VALID"
    if auto == "SAME_UPPER":
        return "SAME"
    if auto == "SAME_LOWER":
        pairs = []
        for i in range(2):
            n = x.shape[2 + i]
            if n is None:
                raise ctx.error("auto_pad SAME_LOWER needs known spatial sizes")
            _, (lo, hi) = window_output(n, kernel[i], strides[i], dilations[i], "SAME")
            pairs.append((hi, lo))  # the odd pixel goes first
        return tuple(pairs)
    pads = list(attrs.get("pads", [0] * 4))
    pairs = ((pads[0], pads[2]), (pads[1], pads[3]))
    return "VALID" if pairs == ((0, 0), (0, 0)) else pairs


def check_window(ctx: ImportContext, x: Tensor, attrs: dict[str, Any], kernel: list[int],
                 field: str = "attribute 'kernel_shape'") -> None:
    """Window attributes that fit the input: one positive kernel size, stride and dilation per
    spatial axis, 2 non-negative pads per axis, a known auto_pad, and windows that fit the
    padded input where its size is known."""
    rank = rank_of(ctx, x)
    nd = rank - 2
    if nd < 1:
        raise ctx.error(f"input 0 has rank {rank}; a window op needs (N, C, spatial...) inputs")
    ints(ctx, kernel, field, count=nd, lo=1, hi=1 << 31)
    ints(ctx, attrs.get("strides", [1] * nd), "attribute 'strides'", count=nd, lo=1, hi=1 << 31)
    dil = ints(ctx, attrs.get("dilations", [1] * nd), "attribute 'dilations'", count=nd, lo=1, hi=1 << 31)
    pads = ints(ctx, attrs.get("pads", [0] * 2 * nd), "attribute 'pads'", count=2 * nd, lo=0, hi=1 << 31)
    auto = one_of(ctx, attrs.get("auto_pad", "NOTSET"), "attribute 'auto_pad'", _AUTO_PAD)
    for i in range(nd):
        n = x.shape[2 + i]
        eff = (kernel[i] - 1) * dil[i] + 1
        room = n + (pads[i] + pads[i + nd] if auto == "NOTSET" else 0) if n is not None else None
        if room is not None and auto in ("NOTSET", "VALID") and eff > room:
            raise ctx.error(f"the window of spatial axis {i} spans {eff} (kernel {kernel[i]}, dilation {dil[i]}), "
                            f"more than the {room} the padded input has")


def _window_attrs(ctx, x: Tensor, attrs: dict[str, Any], kernel: list[int]):
    """(x as 4-D, kernel, strides, dilations, attrs with 2-D pads) for a 1-D or 2-D node."""
    one_d = _spatial_rank(ctx, x) == 1
    strides = list(attrs.get("strides", [1] * len(kernel)))
    dilations = list(attrs.get("dilations", [1] * len(kernel)))
    if one_d:
        x = _as_2d(x)
        kernel, strides, dilations = [1] + kernel, [1] + strides, [1] + dilations
        if "pads" in attrs:
            attrs = dict(attrs, pads=[0, attrs["pads"][0], 0, attrs["pads"][1]])
    return x, one_d, kernel, strides, dilations, attrs


# ----------------------------------------------------------------------------- convolution
@rule("Conv")
def _conv(ctx, node, ins, attrs):
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    if x.ndim == 5:
        return [_conv3d(ctx, x, w, bias, attrs)]
    _spatial_rank(ctx, x)
    wshape = known_shape(ctx, w, "input 1 (the weights)")
    if len(wshape) != x.ndim:
        raise ctx.error(f"input 1 (the weights) has rank {len(wshape)}; input 0 has rank {x.ndim}")
    kernel = list(attrs.get("kernel_shape", wshape[2:]))
    if kernel != list(wshape[2:]):
        raise ctx.error(f"attribute 'kernel_shape' is {kernel}; the weights' spatial shape is {list(wshape[2:])}")
    check_window(ctx, x, attrs, kernel, "input 1 (the weights' spatial shape)")
    group = int(attrs.get("group", 1))
    channels = x.shape[1]
    if group < 1 or wshape[0] % group or (channels is not None and channels != wshape[1] * group):
        raise ctx.error(f"attribute 'group' is {group}: the input's {channels} channels and the weights' shape "
                        f"{list(wshape)} (out, in/group, ...) do not fit it")
    if bias is not None and (bias.shape is None or len(bias.shape) != 1 or bias.shape[0] not in (None, wshape[0])):
        raise ctx.error(f"input 2 (the bias) has shape {bias.shape}; expected ({wshape[0]},)")
    x4, one_d, kernel, strides, dilations, attrs = _window_attrs(ctx, x, attrs, kernel)
    w4 = _as_2d(w) if one_d else w
    padding = _pairs(ctx, x4, attrs, kernel, strides, dilations)
    filters = array_ops.transpose(w4, [2, 3, 1, 0])  # OIHW -> HWIO
    # grouped and depthwise convolutions are one op (groups), whatever the number of groups
    y = nn_ops.conv2d(x4, filters, strides=strides, padding=_explicit(padding), data_format="NCHW",
                      dilations=dilations, groups=group)
    if bias is not None:
        y = math_ops.add(y, array_ops.reshape(bias, [1, -1, 1, 1]))
    return [array_ops.squeeze(y, [2]) if one_d else y]


def _explicit(padding: Any) -> Any:
    return padding if isinstance(padding, str) else [[0, 0], [0, 0], list(padding[0]), list(padding[1])]


def _conv3d(ctx: ImportContext, x: Tensor, w: Tensor, bias: Tensor | None, attrs: dict[str, Any]) -> Tensor:
    """A 3-D convolution as kd 2-D ones: the (padded) depth axis moves into the batch, each
    depth tap i of the kernel convolves every depth slice in 2-D, and output depth t sums tap
    i's result at depth t * stride + i * dilation. O(kd) nodes, whatever the depth."""
    wshape = known_shape(ctx, w, "input 1 (the weights)")
    if len(wshape) != 5:
        raise ctx.error(f"input 1 (the weights) has rank {len(wshape)}; a 3-D convolution takes rank 5")
    kernel = list(attrs.get("kernel_shape", wshape[2:]))
    if kernel != list(wshape[2:]):
        raise ctx.error(f"attribute 'kernel_shape' is {kernel}; the weights' spatial shape is {list(wshape[2:])}")
    check_window(ctx, x, attrs, kernel, "input 1 (the weights' spatial shape)")
    if None in x.shape[1:]:
        raise ctx.error(f"a 3-D convolution needs the input's channels and spatial sizes known, got {x.shape}")
    group = int(attrs.get("group", 1))
    if group < 1 or wshape[0] % group or x.shape[1] != wshape[1] * group:
        raise ctx.error(f"attribute 'group' is {group}: the input's {x.shape[1]} channels and the weights' shape "
                        f"{list(wshape)} (out, in/group, ...) do not fit it")
    strides = list(attrs.get("strides", [1] * 3))
    dilations = list(attrs.get("dilations", [1] * 3))
    auto = attrs.get("auto_pad", "NOTSET")
    pads = [list(p) for p in zip(attrs.get("pads", [0] * 6)[:3], attrs.get("pads", [0] * 6)[3:])]
    if auto != "NOTSET":
        for i in range(3):
            _, (lo, hi) = window_output(x.shape[2 + i], kernel[i], strides[i], dilations[i],
                                        "VALID" if auto == "VALID" else "SAME")
            pads[i] = [hi, lo] if auto == "SAME_LOWER" else [lo, hi]
    padded = array_ops.pad(x, [[0, 0], [0, 0], pads[0], [0, 0], [0, 0]]) if pads[0] != [0, 0] else x
    depth = x.shape[2] + sum(pads[0])
    out_depth = (depth - ((kernel[0] - 1) * dilations[0] + 1)) // strides[0] + 1
    n = x.shape[0] if x.shape[0] is not None else array_ops.shape(x)[0]
    slices = array_ops.reshape(array_ops.transpose(padded, [0, 2, 1, 3, 4]), [-1, x.shape[1], x.shape[3], x.shape[4]])
    plane = [[0, 0], [0, 0], pads[1], pads[2]]
    total = None
    for i in range(kernel[0]):
        filters = array_ops.transpose(array_ops.getitem(w, (slice(None), slice(None), i)), [2, 3, 1, 0])
        if group == 1:
            y = nn_ops.conv2d(slices, filters, strides=strides[1:], padding=plane, data_format="NCHW",
                              dilations=dilations[1:])
        else:
            y = array_ops.concat([nn_ops.conv2d(a, f, strides=strides[1:], padding=plane, data_format="NCHW",
                                                dilations=dilations[1:])
                                  for a, f in zip(array_ops.split(slices, group, axis=1),
                                                  array_ops.split(filters, group, axis=3))], axis=1)
        y = array_ops.reshape(y, [n if isinstance(n, int) else -1, depth, wshape[0], y.shape[2], y.shape[3]])
        start = i * dilations[0]
        y = array_ops.getitem(y, (slice(None), slice(start, start + strides[0] * (out_depth - 1) + 1, strides[0])))
        total = y if total is None else math_ops.add(total, y)
    out = array_ops.transpose(total, [0, 2, 1, 3, 4])
    if bias is not None:
        out = math_ops.add(out, array_ops.reshape(bias, [1, -1, 1, 1, 1]))
    return out


# ----------------------------------------------------------------------------- pooling
def _ceil_extra(n: int | None, k: int, s: int, before: int, after: int, ceil_mode: bool) -> int:
    """Extra padding at the end so that ceil_mode's last window exists (it must start inside
    the input or the leading padding)."""
    if not ceil_mode or n is None:
        return 0
    span = n + before + after - k
    out = -(-span // s) + 1
    if (out - 1) * s >= n + before:
        out -= 1
    return max((out - 1) * s + k - (n + before + after), 0)


@rule("MaxPool", "AveragePool")
def _pool(ctx, node, ins, attrs):
    x = ins[0]
    if len(node.output) > 1 and node.output[1]:
        raise ctx.error("the Indices output of MaxPool is not supported")
    if not x.dtype.is_floating:  # graphc pools floats; integers up to 2**53 are exact in float64
        y, = _pool(ctx, node, [math_ops.cast(x, float64)] + list(ins[1:]), attrs)
        return [math_ops.cast(y, x.dtype)]
    kernel = list(attrs["kernel_shape"])
    check_window(ctx, x, attrs, kernel)
    dilated = any(d != 1 for d in attrs.get("dilations", [1]))
    if x.ndim is None or x.ndim == 5 or (dilated and node.op_type != "MaxPool"):   # a max pool dilates natively
        return [pool_by_slices(ctx, node.op_type, x, attrs)]
    x4, one_d, kernel, strides, dilations, attrs = _window_attrs(ctx, x, attrs, kernel)
    padding = _pairs(ctx, x4, attrs, kernel, strides, dilations)
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    is_max = node.op_type == "MaxPool"
    include_pad = bool(attrs.get("count_include_pad", 0))
    if isinstance(padding, str) and not ceil_mode and (padding == "VALID" or is_max or not include_pad):
        if is_max:
            y = nn_ops.max_pool2d(x4, kernel, strides, padding, data_format="NCHW", dilations=dilations)
        else:
            y = nn_ops.avg_pool2d(x4, kernel, strides, padding, data_format="NCHW")
        return [array_ops.squeeze(y, [2]) if one_d else y]
    if isinstance(padding, str):  # SAME with count_include_pad or ceil_mode: make it explicit
        pairs = []
        for i in range(2):
            n = x4.shape[2 + i]
            if n is None:
                raise ctx.error("this pooling needs known spatial sizes")
            pairs.append((0, 0) if padding == "VALID" else
                         window_output(n, kernel[i], strides[i], dilations[i], "SAME")[1])
        padding = tuple(pairs)
    span = [(kernel[i] - 1) * dilations[i] + 1 for i in range(2)]   # a dilated window's extent
    extra = [_ceil_extra(x4.shape[2 + i], span[i], strides[i], padding[i][0], padding[i][1], ceil_mode)
             for i in range(2)]
    total = [[0, 0], [0, 0]] + [[padding[i][0], padding[i][1] + extra[i]] for i in range(2)]
    if is_max:
        explicit = tuple(tuple(total[2 + i]) for i in range(2))
        if all(p < span[i] for i in range(2) for p in explicit[i]):   # the pool pads itself, no copy
            y = nn_ops.max_pool2d(x4, kernel, strides, explicit, data_format="NCHW", dilations=dilations)
        else:
            lowest = -np.inf if x.dtype.is_floating else x.dtype.min
            padded = array_ops.pad(x4, total, constant_values=lowest)
            y = nn_ops.max_pool2d(padded, kernel, strides, "VALID", data_format="NCHW", dilations=dilations)
    else:
        summed = nn_ops.avg_pool2d(array_ops.pad(x4, total), kernel, strides, "VALID", data_format="NCHW")
        ones = _count_ones(x4)
        if include_pad:
            ones = array_ops.pad(ones, [[0, 0], [0, 0], list(padding[0]), list(padding[1])], constant_values=1)
            counted = [[0, 0], [0, 0], [0, extra[0]], [0, extra[1]]]
        else:
            counted = total
        count = nn_ops.avg_pool2d(array_ops.pad(ones, counted), kernel, strides, "VALID", data_format="NCHW")
        y = math_ops.divide(summed, count)
    return [array_ops.squeeze(y, [2]) if one_d else y]


@rule("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, node, ins, attrs):
    x = ins[0]
    if x.ndim is None or x.ndim < 3:
        raise ctx.error("input 0 must have a known rank >= 3 for global pooling")
    fn = math_ops.reduce_mean if node.op_type == "GlobalAveragePool" else math_ops.reduce_max
    return [fn(x, axis=list(range(2, x.ndim)), keepdims=True)]


# ----------------------------------------------------------------------------- normalization
@rule("BatchNormalization")
def _batch_norm(ctx, node, ins, attrs):
    """Inference form with the given statistics; training_mode=1 normalizes with the batch's
    own mean and (biased) variance and also returns the updated running statistics."""
    x, scale, bias, mean, var = ins[:5]
    if rank_of(ctx, x) < 2:
        raise ctx.error(f"input 0 has rank {x.ndim}; BatchNormalization needs (N, C, ...)")
    for k, t in enumerate(ins[1:5], 1):
        if t.shape is None or len(t.shape) != 1 or None not in (t.shape[0], x.shape[1]) and t.shape[0] != x.shape[1]:
            raise ctx.error(f"input {k} has shape {t.shape}; expected ({x.shape[1]},), one value per channel")
    shape = [1, -1] + [1] * (x.ndim - 2)
    eps = float(attrs.get("epsilon", 1e-5))
    outputs = []
    if attrs.get("training_mode", 0):
        axes = [0] + list(range(2, x.ndim))
        batch_mean = math_ops.reduce_mean(x, axis=axes)
        batch_var = math_ops.reduce_mean(
            math_ops.square(math_ops.subtract(x, array_ops.reshape(batch_mean, shape))), axis=axes
        )
        momentum = float(attrs.get("momentum", 0.9))
        outputs = [
            math_ops.add(
                math_ops.multiply(mean, ctx.scalar_like(momentum, mean)),
                math_ops.multiply(batch_mean, ctx.scalar_like(1 - momentum, mean)),
            ),
            math_ops.add(
                math_ops.multiply(var, ctx.scalar_like(momentum, var)),
                math_ops.multiply(batch_var, ctx.scalar_like(1 - momentum, var)),
            ),
        ]
        mean, var = batch_mean, batch_var
    inv = math_ops.rsqrt(math_ops.add(array_ops.reshape(var, shape), ctx.scalar_like(eps, var)))
    y = math_ops.add(
        math_ops.multiply(
            math_ops.multiply(math_ops.subtract(x, array_ops.reshape(mean, shape)), inv),
            array_ops.reshape(scale, shape),
        ),
        array_ops.reshape(bias, shape),
    )
    return [y] + outputs


@rule("LayerNormalization")
def _layer_norm(ctx, node, ins, attrs):
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    axis = check_axis(ctx, int(attrs.get("axis", -1)), rank_of(ctx, x), "attribute 'axis'")
    axes = list(range(axis, x.ndim))
    eps = float(attrs.get("epsilon", 1e-5))
    mean = math_ops.reduce_mean(x, axis=axes, keepdims=True)
    centered = math_ops.subtract(x, mean)
    var = math_ops.reduce_mean(math_ops.square(centered), axis=axes, keepdims=True)
    inv = math_ops.rsqrt(math_ops.add(var, ctx.scalar_like(eps, var)))
    y = math_ops.multiply(math_ops.multiply(centered, inv), scale)
    if bias is not None:
        y = math_ops.add(y, bias)
    return [y, mean, inv][: max(1, len([o for o in node.output if o]))]


def _count_ones(x: Tensor) -> Tensor:
    """The ones an average pool pads and pools to count each window's elements. The count
    depends on the pixel only: one plane of them, a constant the compiler folds, broadcast over
    batch and channels (as ones_like(x), inception_v3's counts were a pad and a pool of every
    channel on every call); ones_like(x) where a spatial size is unknown."""
    plane = tuple(x.shape[2:])
    return constant(np.ones((1, 1) + plane, x.dtype.np)) if None not in plane else array_ops.ones_like(x)


def pool_by_slices(ctx: ImportContext, op: str, x: Tensor, attrs: dict[str, Any]) -> Tensor:
    """Pooling of any spatial rank, dilation, padding and ceil_mode as the max (or sum) of one
    strided slice per kernel offset; needs known spatial sizes. Used where graphc's own 2-D
    pools do not fit (3-D, dilated)."""
    import itertools

    if x.shape is None or any(d is None for d in x.shape[2:]):
        raise ctx.error("this pooling needs known spatial sizes")
    if not x.dtype.is_floating:
        return math_ops.cast(pool_by_slices(ctx, op, math_ops.cast(x, float64), attrs), x.dtype)
    spatial = list(x.shape[2:])
    nd = len(spatial)
    kernel = list(attrs["kernel_shape"])
    if int(np.prod(kernel, dtype=object)) > MAX_WINDOW:
        raise ctx.error(
            f"attribute 'kernel_shape' is {kernel}; graphc builds this pooling from one slice per "
            f"window element and takes at most {MAX_WINDOW}"
        )
    strides = list(attrs.get("strides", [1] * nd))
    dil = list(attrs.get("dilations", [1] * nd))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for n, e, st in zip(spatial, eff, strides):
            total = max((-(-n // st) - 1) * st + e - n, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
    elif auto == "VALID":
        pads = [(0, 0)] * nd
    else:
        flat = list(attrs.get("pads", [0] * 2 * nd))
        pads = [(flat[i], flat[i + nd]) for i in range(nd)]
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    outs, extra = [], []
    for n, e, st, (lo, hi) in zip(spatial, eff, strides, pads):
        span = n + lo + hi - e
        out = (-(-span // st) if ceil_mode else span // st) + 1
        if ceil_mode and (out - 1) * st >= n + lo:
            out -= 1
        outs.append(out)
        extra.append(max((out - 1) * st + e - (n + lo + hi), 0))
    is_max = op == "MaxPool"
    fill = -np.inf if is_max else 0.0
    full = [[0, 0], [0, 0]] + [[lo, hi + ex] for (lo, hi), ex in zip(pads, extra)]
    xp = array_ops.pad(x, full, constant_values=fill)
    if attrs.get("count_include_pad", 0):
        ones = array_ops.pad(_count_ones(x), [[0, 0], [0, 0]] + [list(p) for p in pads], constant_values=1)
        ones = array_ops.pad(ones, [[0, 0], [0, 0]] + [[0, ex] for ex in extra])
    else:
        ones = array_ops.pad(_count_ones(x), full)

    def window(t: Tensor, offset: tuple[int, ...]) -> Tensor:
        key = (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + (m - 1) * st + 1, st) for o, d, m, st in zip(offset, dil, outs, strides)
        )
        return array_ops.getitem(t, key)

    total = count = None
    for offset in itertools.product(*(range(k) for k in kernel)):
        part = window(xp, offset)
        total = part if total is None else (math_ops.maximum(total, part) if is_max else math_ops.add(total, part))
        if not is_max:
            w = window(ones, offset)
            count = w if count is None else math_ops.add(count, w)
    return total if is_max else math_ops.divide(total, count)

"""Import rule for ONNX Resize (and the older Upsample): every mode (nearest, linear, cubic),
coordinate transformation, nearest rounding, antialias, exclude_outside, tf_crop_and_resize
with its extrapolation value, sizes or scales, axes and keep_aspect_ratio_policy.

ONNX's resize is separable: its reference interpolates along the last axis first, then each
axis before it, and each 1-D step is linear in the data (a dot product of coefficients with
edge-padded neighbours), plus a constant where tf_crop_and_resize samples outside the input.
Shapes are static, so each resized axis becomes a constant matrix M [out, in] (and, for
tf_crop_and_resize, a mask of the outputs that take the extrapolation value), computed here
with the reference's formulas; the graph applies it as a product along that axis, or as a
gather when every row of M picks one input (nearest), so values pass exactly.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...api import array as array_ops
from ...api import math as math_ops
from .checks import one_of, rank_of
from .import_rules import ImportContext, rule

MODES = ("nearest", "linear", "cubic")
TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_crop_and_resize")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
MAX_MATRIX = 1 << 24   # entries of one axis's interpolation matrix


# ----------------------------------------------------------------------------- coefficients
def _nearest(ratio: float, mode: str) -> list[float]:
    if float(ratio).is_integer():
        return [0.0, 1.0]
    return {"round_prefer_floor": [ratio <= 0.5, ratio > 0.5], "round_prefer_ceil": [ratio < 0.5, ratio >= 0.5],
            "floor": [1, 0], "ceil": [0, 1]}[mode]


def _linear(ratio: float, scale: float, antialias: bool) -> list[float]:
    if not antialias:
        return [1 - ratio, ratio]
    scale = min(scale, 1.0)
    start = int(math.floor(-1 / scale) + 1)
    args = (np.arange(start, start + 2 - 2 * start) - ratio) * scale
    coeffs = np.clip(1 - np.abs(args), 0, 1)
    return list(coeffs / coeffs.sum())


def _cubic(ratio: float, scale: float, a: float, antialias: bool) -> list[float]:
    if not antialias:
        r, q = ratio, 1 - ratio
        return [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                ((a + 2) * r - (a + 3)) * r * r + 1,
                ((a + 2) * q - (a + 3)) * q * q + 1,
                ((a * (q + 1) - 5 * a) * (q + 1) + 8 * a) * (q + 1) - 4 * a]
    scale = min(scale, 1.0)

    def weight(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x * x + 1
        return a * x ** 3 - 5 * a * x * x + 8 * a * x - 4 * a if x < 2 else 0.0

    start = int(math.floor(-2 / scale) + 1)
    coeffs = np.array([weight(scale * (i - ratio)) for i in range(start, 2 - start)])
    return list(coeffs / coeffs.sum())


def _original(x: int, scale: float, n_in: int, n_out: int, transform: str, roi: tuple[float, float]) -> float:
    """The input coordinate output position x samples (ONNX's coordinate_transformation_mode)."""
    width = scale * n_in
    if transform == "align_corners":
        return 0.0 if width == 1 else x * (n_in - 1) / (width - 1)
    if transform == "asymmetric":
        return x / scale
    if transform == "tf_crop_and_resize":
        if width == 1:
            return (roi[1] - roi[0]) * (n_in - 1) / 2 + roi[0] * (n_in - 1)
        return x * (roi[1] - roi[0]) * (n_in - 1) / (width - 1) + roi[0] * (n_in - 1)
    if transform == "pytorch_half_pixel":
        return -0.5 if width == 1 else (x + 0.5) / scale - 0.5
    if transform == "half_pixel":
        return (x + 0.5) / scale - 0.5
    adjustment = n_out / width   # half_pixel_symmetric
    return n_in / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5


def axis_matrix(n_in: int, n_out: int, scale: float, how: dict[str, Any], roi: tuple[float, float]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(M [n_out, n_in], outside [n_out] bool): output x = M @ input, or the extrapolation value
    where `outside` (tf_crop_and_resize sampling outside the input)."""
    m = np.zeros((n_out, n_in), np.float64)
    outside = np.zeros(n_out, bool)
    for x in range(n_out):
        x_ori = _original(x, scale, n_in, n_out, how["transform"], roi)
        if how["transform"] == "tf_crop_and_resize" and (x_ori < 0 or x_ori > n_in - 1):
            outside[x] = True
            continue
        base = math.floor(x_ori)
        ratio = 1.0 if float(x_ori).is_integer() else x_ori - base
        if how["mode"] == "nearest":
            coeffs = _nearest(ratio, how["nearest"])
        elif how["mode"] == "linear":
            coeffs = _linear(ratio, scale, how["antialias"])
        else:
            coeffs = _cubic(ratio, scale, how["a"], how["antialias"])
        n = len(coeffs)
        # the n nearest indexes to x_ori, the smaller first on ties (the reference's choice)
        start = int(x_ori) - n // 2 if float(x_ori).is_integer() else base - n // 2 + 1
        idx = np.arange(start, start + n)
        coeffs = np.asarray(coeffs, np.float64)
        if how["exclude_outside"]:
            coeffs = np.where((idx >= 0) & (idx < n_in), coeffs, 0.0)
            total = coeffs.sum()
            coeffs = coeffs / total if total else coeffs
        np.add.at(m[x], np.clip(idx, 0, n_in - 1), coeffs)   # edge padding: clamp
    return m, outside


# ----------------------------------------------------------------------------- the rule
@rule("Resize", "Upsample", static=(1, 2, 3))
def _resize(ctx, node, ins, attrs):
    x = ins[0]
    rank = rank_of(ctx, x)
    if x.shape is None or None in x.shape:
        raise ctx.error(f"input 0 has shape {x.shape}; Resize needs every size known (give dynamic axes with "
                        f"gc.onnx.load(..., input_shapes=...))")
    how = {
        "mode": one_of(ctx, attrs.get("mode", "nearest"), "attribute 'mode'", MODES + ("bilinear",)),
        "transform": one_of(ctx, attrs.get("coordinate_transformation_mode", "half_pixel"),
                            "attribute 'coordinate_transformation_mode'", TRANSFORMS),
        "nearest": one_of(ctx, attrs.get("nearest_mode", "round_prefer_floor"), "attribute 'nearest_mode'", NEAREST),
        "a": float(attrs.get("cubic_coeff_a", -0.75)),
        "antialias": bool(attrs.get("antialias", 0)),
        "exclude_outside": bool(attrs.get("exclude_outside", 0)),
    }
    if how["mode"] == "bilinear":   # Upsample-7's name for linear
        how["mode"] = "linear"
    if node.op_type == "Upsample" or ctx.opset < 11:
        how["transform"] = "asymmetric"   # Resize-10 and Upsample define no other
        how["nearest"] = "round_prefer_floor" if node.op_type == "Resize" else "floor"
        if node.op_type == "Upsample" and how["mode"] == "nearest":
            how["nearest"] = "floor"
    axes, scales, sizes, roi = _targets(ctx, node, ins, attrs, rank)
    if how["transform"] == "tf_crop_and_resize" and roi is None:
        raise ctx.error("coordinate_transformation_mode tf_crop_and_resize needs the roi input")
    extrapolation = float(attrs.get("extrapolation_value", 0.0))
    y = x
    for k in reversed(range(len(axes))):   # the last axis first, as ONNX's reference interpolates
        axis = axes[k]
        n_in, n_out = x.shape[axis], sizes[k]
        if n_in == n_out and scales[k] == 1.0 and how["transform"] != "tf_crop_and_resize":
            continue
        if n_in * max(n_out, 1) > MAX_MATRIX:
            raise ctx.error(f"resizing axis {axis} from {n_in} to {n_out} is over graphc's limit of {MAX_MATRIX} "
                            f"interpolation weights per axis")
        span = (roi[axis], roi[axis + rank]) if roi is not None else (0.0, 1.0)
        m, outside = axis_matrix(n_in, n_out, scales[k], how, span)
        y = _apply(ctx, y, axis, m, outside, extrapolation)
    return [y]


def _targets(ctx: ImportContext, node: Any, ins: list[Any], attrs: dict[str, Any], rank: int):
    """(axes, scale per axis, output size per axis, roi or None)."""
    if node.op_type == "Upsample" or ctx.opset < 11:
        scales_in = ins[1] if len(ins) > 1 else None
        given = ctx.static(scales_in, "input 1 ('scales')") if scales_in is not None else np.array(attrs.get("scales"))
        scales = [float(s) for s in np.asarray(given).reshape(-1)]
        axes = list(range(rank))
        if len(scales) != rank:
            raise ctx.error(f"'scales' has {len(scales)} values for an input of rank {rank}")
        return axes, scales, [math.floor(ctx_dim * s) for ctx_dim, s in zip(ins[0].shape, scales)], None
    x = ins[0]
    roi_t, scales_t, sizes_t = (ins + [None, None, None])[1:4]
    axes = list(attrs.get("axes", range(rank)))
    axes = [a + rank if a < 0 else a for a in axes]
    if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
        raise ctx.error(f"attribute 'axes' {attrs.get('axes')} does not name distinct axes of a rank-{rank} input")
    roi = None
    if roi_t is not None and roi_t.shape not in ((0,), None):
        values = [float(v) for v in ctx.static(roi_t, "input 1 ('roi')").reshape(-1)]
        if len(values) == 2 * len(axes) and len(axes) != rank:   # roi for the given axes only
            full_lo, full_hi = [0.0] * rank, [1.0] * rank
            for k, a in enumerate(axes):
                full_lo[a], full_hi[a] = values[k], values[k + len(axes)]
            values = full_lo + full_hi
        if len(values) != 2 * rank:
            raise ctx.error(f"input 1 ('roi') has {len(values)} values; expected {2 * rank}")
        roi = values
    has_scales = scales_t is not None and scales_t.shape not in ((0,), None)
    has_sizes = sizes_t is not None and sizes_t.shape not in ((0,), None)
    if has_scales == has_sizes:
        raise ctx.error("Resize needs exactly one of 'scales' and 'sizes'")
    if has_scales:
        scales = [float(v) for v in ctx.static(scales_t, "input 2 ('scales')").reshape(-1)]
        if len(scales) != len(axes) or any(s <= 0 for s in scales):
            raise ctx.error(f"'scales' {scales} must give one positive scale per resized axis ({len(axes)})")
        sizes = []
        for a, s in zip(axes, scales):
            extent = (roi[a + rank] - roi[a]) if roi is not None and attrs.get(
                "coordinate_transformation_mode") == "tf_crop_and_resize" else 1.0
            sizes.append(math.floor(x.shape[a] * extent * s))
        return axes, scales, sizes, roi
    sizes = [int(v) for v in ctx.static_ints(sizes_t, "input 3 ('sizes')")]
    if len(sizes) != len(axes) or any(s < 0 for s in sizes):
        raise ctx.error(f"'sizes' {sizes} must give one size per resized axis ({len(axes)})")
    scales = [s / x.shape[a] for a, s in zip(axes, sizes)]
    policy = one_of(ctx, attrs.get("keep_aspect_ratio_policy", "stretch"), "attribute 'keep_aspect_ratio_policy'",
                    ("stretch", "not_larger", "not_smaller"))
    if policy != "stretch":
        scale = min(scales) if policy == "not_larger" else max(scales)
        scales = [scale] * len(axes)
        sizes = [math.floor(x.shape[a] * scale + 0.5) for a in axes]
    return axes, scales, sizes, roi


def _apply(ctx: ImportContext, x: Any, axis: int, m: np.ndarray, outside: np.ndarray, extrapolation: float) -> Any:
    """x with `axis` mapped through M (a gather when each row picks one input exactly)."""
    picks = (np.count_nonzero(m, axis=1) == 1) & np.isclose(m.max(axis=1), 1.0) & ~outside
    if picks.all():
        index = ctx.constant(m.argmax(axis=1).astype(np.int64))
        return array_ops.gather(x, index, axis=axis)
    if not x.dtype.is_floating:
        raise ctx.error(f"linear and cubic resizing need a float input, got {x.dtype.name}")
    rank = x.ndim
    perm = [d for d in range(rank) if d != axis] + [axis]
    inverse = list(np.argsort(perm))
    moved = array_ops.transpose(x, perm) if axis != rank - 1 else x
    y = math_ops.matmul(moved, ctx.constant(np.ascontiguousarray(m.T).astype(x.dtype.np)))
    if outside.any():
        shape = [1] * (rank - 1) + [len(outside)]
        mask = ctx.constant(outside.reshape(shape))
        y = math_ops.where(mask, ctx.scalar_like(extrapolation, y), y)
    return array_ops.transpose(y, inverse) if axis != rank - 1 else y

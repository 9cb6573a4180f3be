"""Import rules for the ai.onnx.ml operators scikit-learn exports use (through skl2onnx):
Scaler, Normalizer, LinearClassifier, LinearRegressor, ArrayFeatureExtractor, ZipMap and
LabelEncoder (numbers to numbers), each as ONNX's reference defines it.

ZipMap turns class probabilities into a sequence of {label: probability} maps; graphc values
are tensors, so the rule passes the probability matrix through and records the labels
(ImportContext.zipmaps): Imported.present() gives onnxruntime's list of dicts. String labels
have no graphc form and are refused by name.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...api import array as array_ops
from ...api import math as math_ops
from ...api import nn as nn_ops
from ...ir.dtypes import int64
from .checks import one_of, rank_of
from .import_rules import ImportContext, rule

ML = "ai.onnx.ml."
POST_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")


def _floats(ctx: ImportContext, attrs: dict[str, Any], name: str, like: Any) -> Any:
    values = attrs.get(name)
    if values is None:
        raise ctx.error(f"attribute {name!r} is required")
    return ctx.constant(np.asarray(values, dtype=like.dtype.np))


def _matrix(ctx: ImportContext, x: Any) -> Any:
    """The features as [N, C] in a float type (a vector is one row, as onnxruntime reads it)."""
    if rank_of(ctx, x) not in (1, 2):
        raise ctx.error(f"input 0 has shape {x.shape}; expected features [N, C] or [C]")
    if not x.dtype.is_floating:
        x = math_ops.cast(x, "float32")
    return array_ops.expand_dims(x, 0) if x.ndim == 1 else x


def _no_strings(ctx: ImportContext, attrs: dict[str, Any], *names: str) -> None:
    for name in names:
        if attrs.get(name):
            raise ctx.error(f"attribute {name!r}: string labels have no graphc form (graphc values are numbers); "
                            f"export the model with integer labels")


@rule(ML + "Scaler")
def _scaler(ctx, node, ins, attrs):
    x = _matrix(ctx, ins[0])
    offset = _floats(ctx, {"offset": attrs.get("offset", [0.0])}, "offset", x)
    scale = _floats(ctx, {"scale": attrs.get("scale", [1.0])}, "scale", x)
    return [math_ops.multiply(math_ops.subtract(x, offset), scale)]


@rule(ML + "Normalizer")
def _normalizer(ctx, node, ins, attrs):
    x = _matrix(ctx, ins[0])
    norm = one_of(ctx, attrs.get("norm", "MAX"), "attribute 'norm'", ("MAX", "L1", "L2"))
    if norm == "MAX":   # the row's largest value (not magnitude), as the spec and onnxruntime say
        top = math_ops.reduce_max(x, axis=1, keepdims=True)
        return [math_ops.divide(x, math_ops.where(math_ops.equal(top, ctx.scalar_like(0.0, x)),
                                                  ctx.scalar_like(1.0, x), top))]
    if norm == "L1":
        size = math_ops.reduce_sum(math_ops.abs(x), axis=1, keepdims=True)
    else:
        size = math_ops.sqrt(math_ops.reduce_sum(math_ops.square(x), axis=1, keepdims=True))
    return [math_ops.divide(x, math_ops.maximum(size, ctx.scalar_like(1e-30, x)))]


def _post_transform(ctx: ImportContext, scores: Any, how: str) -> Any:
    if how == "NONE":
        return scores
    if how == "LOGISTIC":
        return math_ops.sigmoid(scores)
    if how == "SOFTMAX":
        return nn_ops.softmax(scores, axis=1)
    if how == "SOFTMAX_ZERO":   # softmax over the non-zero scores, zeros stay zero
        nonzero = math_ops.greater(math_ops.abs(scores), ctx.scalar_like(1e-7, scores))
        top = math_ops.reduce_max(scores, axis=1, keepdims=True)
        e = math_ops.where(nonzero, math_ops.exp(math_ops.subtract(scores, top)),
                           math_ops.multiply(scores, math_ops.exp(math_ops.negative(top))))
        return math_ops.divide(e, math_ops.reduce_sum(e, axis=1, keepdims=True))
    # PROBIT: sqrt(2) * erfinv(2 p - 1) has no graphc op
    raise ctx.error("post_transform PROBIT is not supported (graphc has no inverse error function)")


@rule(ML + "LinearClassifier")
def _linear_classifier(ctx, node, ins, attrs):
    _no_strings(ctx, attrs, "classlabels_strings")
    x = _matrix(ctx, ins[0])
    features = x.shape[1]
    if features is None:
        raise ctx.error("LinearClassifier needs the number of features (input dimension 1) known")
    coefficients = np.asarray(attrs.get("coefficients", []), x.dtype.np)
    if coefficients.size == 0 or coefficients.size % features:
        raise ctx.error(f"attribute 'coefficients' has {coefficients.size} values, not a multiple of the "
                        f"{features} features")
    weights = ctx.constant(np.ascontiguousarray(coefficients.reshape(-1, features).T))
    scores = math_ops.matmul(x, weights)
    if attrs.get("intercepts") is not None:
        scores = math_ops.add(scores, ctx.constant(np.asarray(attrs["intercepts"], x.dtype.np)))
    labels = [int(v) for v in attrs.get("classlabels_ints", [])]
    how = one_of(ctx, attrs.get("post_transform", "NONE"), "attribute 'post_transform'", POST_TRANSFORMS)
    if weights.shape[1] == 1 and len(labels) == 2:
        scores = array_ops.concat([math_ops.negative(scores), scores], axis=1)
    scores = _post_transform(ctx, scores, how)
    if scores.shape[1] > 1:
        best = math_ops.argmax(scores, axis=1)
        label = array_ops.gather(ctx.constant(np.asarray(labels, np.int64)), best) if labels else best
    else:   # one score: the first label at or over the threshold, else 0
        threshold = ctx.scalar_like(0.0 if how == "NONE" else 0.5, scores)
        first = labels[0] if labels else 1
        hit = array_ops.reshape(math_ops.greater_equal(scores, threshold), [-1])
        label = math_ops.where(hit, ctx.constant(np.int64(first)), ctx.constant(np.int64(0)))
    return [math_ops.cast(label, int64), scores]


@rule(ML + "LinearRegressor")
def _linear_regressor(ctx, node, ins, attrs):
    x = _matrix(ctx, ins[0])
    targets = int(attrs.get("targets", 1))
    coefficients = np.asarray(attrs.get("coefficients", []), x.dtype.np)
    if targets < 1 or coefficients.size % targets or (x.shape[1] not in (None, coefficients.size // targets)):
        raise ctx.error(f"attribute 'coefficients' has {coefficients.size} values; {targets} target(s) over "
                        f"{x.shape[1]} features need {targets * (x.shape[1] or 0)}")
    weights = ctx.constant(np.ascontiguousarray(coefficients.reshape(targets, -1).T))
    score = math_ops.matmul(x, weights)
    if attrs.get("intercepts") is not None:
        score = math_ops.add(score, ctx.constant(np.asarray(attrs["intercepts"], x.dtype.np)))
    how = one_of(ctx, attrs.get("post_transform", "NONE"), "attribute 'post_transform'", POST_TRANSFORMS)
    if how != "NONE":
        raise ctx.error(f"post_transform {how} for a regressor is not defined by ONNX's reference")
    return [score]


@rule(ML + "ArrayFeatureExtractor")
def _array_feature_extractor(ctx, node, ins, attrs):
    """data[..., indices] (indices flattened; a 1-D data gives one row), as onnxruntime does.
    The indices may be computed (an MLP's argmax picking its class labels)."""
    data, indices = ins
    last = data.shape[-1] if data.shape else None
    if indices.static_value is not None:
        index = np.asarray(indices.static_value, np.int64).reshape(-1)
        if last is not None and index.size and (index.min() < 0 or index.max() >= last):
            raise ctx.error(f"input 1 ('indices') {index.tolist()} reaches outside the last axis of size {last}")
        flat = ctx.constant(index)
    else:
        flat = array_ops.reshape(math_ops.cast(indices, int64), [-1])
    out = array_ops.gather(data, flat, axis=max(data.ndim - 1, 0))
    return [array_ops.expand_dims(out, 0) if data.ndim == 1 else out]


@rule(ML + "ZipMap")
def _zipmap(ctx, node, ins, attrs):
    _no_strings(ctx, attrs, "classlabels_strings")
    labels = [int(v) for v in attrs.get("classlabels_int64s", [])]
    probabilities = ins[0]
    if rank_of(ctx, probabilities) != 2 or probabilities.shape[1] not in (None, len(labels)):
        raise ctx.error(f"input 0 has shape {probabilities.shape}; ZipMap maps [N, {len(labels)}] probabilities "
                        f"to its {len(labels)} labels")
    ctx.zipmaps[node.output[0]] = labels
    return [probabilities]


@rule(ML + "LabelEncoder")
def _label_encoder(ctx, node, ins, attrs):
    _no_strings(ctx, attrs, "keys_strings", "values_strings", "default_string")
    x = ins[0]
    keys = attrs.get("keys_int64s") or attrs.get("keys_floats")
    values = attrs.get("values_int64s") or attrs.get("values_floats")
    if not keys or values is None or len(keys) != len(values):
        raise ctx.error("LabelEncoder needs numeric keys and as many values (string keys or values have no graphc "
                        "form)")
    as_float = attrs.get("values_floats") is not None and not attrs.get("values_int64s")
    value_type = np.float32 if as_float else np.int64
    default = float(attrs.get("default_float", -0.0)) if as_float else int(attrs.get("default_int64", -1))
    key_array = ctx.constant(np.asarray(keys, x.dtype.np))
    hits = math_ops.equal(array_ops.expand_dims(x, -1), key_array)               # [..., keys]
    found = math_ops.reduce_any(hits, axis=-1)
    position = math_ops.argmax(math_ops.cast(hits, "int32"), axis=-1)
    mapped = array_ops.gather(ctx.constant(np.asarray(values, value_type)), position)
    return [math_ops.where(found, mapped, ctx.constant(np.asarray(default, value_type)))]

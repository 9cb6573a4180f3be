"""TF1's variable initializers: callables (shape, dtype) -> the initial value, as
gc.get_variable and gc.layers take them. Random ones draw with graph ops (their seed, the
graph's seed: TF1's rules), so a session's initializer computes them; orthogonal draws a
seeded NumPy matrix (a QR decomposition has no graph op) and is a constant.

Glorot and He variants scale by fan_in / fan_out: for a dense kernel [in, out] those are in
and out; for a convolution [kh, kw, in, out], kh * kw * in and kh * kw * out. TF1's normal
variants draw from a truncated normal, widened by 1 / 0.8796 to keep the variance.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import GraphcError
from ..ir.dtypes import as_dtype, float32
from ..ir.tensor import Tensor
from .composite import truncated_normal
from .convert import constant
from .random import random_normal, random_uniform

Initializer = Callable[..., Tensor]
TRUNCATED_STDDEV = 0.87962566103423978   # the standard deviation of a standard normal cut at +-2


def _fans(shape: Sequence[int]) -> tuple[float, float]:
    shape = [int(d) for d in shape]
    if not shape:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    field = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * field, shape[-1] * field


def zeros_initializer(dtype: Any = float32) -> Initializer:
    return lambda shape, dtype=dtype, **_: constant(np.zeros(shape, as_dtype(dtype).np))


def ones_initializer(dtype: Any = float32) -> Initializer:
    return lambda shape, dtype=dtype, **_: constant(np.ones(shape, as_dtype(dtype).np))


def constant_initializer(value: Any = 0, dtype: Any = float32) -> Initializer:
    def init(shape: Sequence[int], dtype: Any = dtype, **_: Any) -> Tensor:
        given = np.asarray(value, as_dtype(dtype).np)
        if given.size not in (1, int(np.prod(shape, dtype=np.int64))):
            raise GraphcError(f"constant_initializer: {given.size} values do not fill a variable of shape {list(shape)}")
        return constant(given.reshape(shape) if given.size > 1 else np.full(shape, given.reshape(-1)[0]))
    return init


def random_uniform_initializer(minval: float = -0.05, maxval: float = 0.05, seed: int | None = None,
                               dtype: Any = float32) -> Initializer:
    return lambda shape, dtype=dtype, **_: random_uniform(list(shape), minval, maxval, dtype=dtype, seed=seed)


def random_normal_initializer(mean: float = 0.0, stddev: float = 1.0, seed: int | None = None,
                              dtype: Any = float32) -> Initializer:
    return lambda shape, dtype=dtype, **_: random_normal(list(shape), mean, stddev, dtype=dtype, seed=seed)


def truncated_normal_initializer(mean: float = 0.0, stddev: float = 1.0, seed: int | None = None,
                                 dtype: Any = float32) -> Initializer:
    return lambda shape, dtype=dtype, **_: truncated_normal(list(shape), mean, stddev, dtype=dtype, seed=seed)


def variance_scaling_initializer(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                                 seed: int | None = None, dtype: Any = float32) -> Initializer:
    """TF1's VarianceScaling: variance scale / n, n the fan in, the fan out or their mean."""
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise GraphcError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise GraphcError(f"distribution must be truncated_normal, normal or uniform, got {distribution!r}")

    def init(shape: Sequence[int], dtype: Any = dtype, **_: Any) -> Tensor:
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return random_uniform(list(shape), -limit, limit, dtype=dtype, seed=seed)
        if distribution == "normal":
            return random_normal(list(shape), 0.0, math.sqrt(variance), dtype=dtype, seed=seed)
        return truncated_normal(list(shape), 0.0, math.sqrt(variance) / TRUNCATED_STDDEV, dtype=dtype, seed=seed)
    return init


def glorot_uniform_initializer(seed: int | None = None, dtype: Any = float32) -> Initializer:
    return variance_scaling_initializer(1.0, "fan_avg", "uniform", seed, dtype)


def glorot_normal_initializer(seed: int | None = None, dtype: Any = float32) -> Initializer:
    return variance_scaling_initializer(1.0, "fan_avg", "truncated_normal", seed, dtype)


def he_normal(seed: int | None = None) -> Initializer:
    return variance_scaling_initializer(2.0, "fan_in", "truncated_normal", seed)


def he_uniform(seed: int | None = None) -> Initializer:
    return variance_scaling_initializer(2.0, "fan_in", "uniform", seed)


def orthogonal_initializer(gain: float = 1.0, seed: int | None = None, dtype: Any = float32) -> Initializer:
    """An orthogonal matrix (rows or columns, whichever are fewer, orthonormal) times gain,
    from the QR decomposition of a seeded normal matrix; the leading axes fold into rows."""
    def init(shape: Sequence[int], dtype: Any = dtype, **_: Any) -> Tensor:
        if len(shape) < 2:
            raise GraphcError(f"orthogonal_initializer needs a shape of rank 2 or more, got {list(shape)}")
        rows, cols = int(np.prod(shape[:-1], dtype=np.int64)), int(shape[-1])
        a = np.random.default_rng(seed).normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        q = q if rows >= cols else q.T
        return constant((gain * q).reshape(shape).astype(as_dtype(dtype).np))
    return init


__all__ = ["constant_initializer", "glorot_normal_initializer", "glorot_uniform_initializer", "he_normal",
           "he_uniform", "ones_initializer", "orthogonal_initializer", "random_normal_initializer",
           "random_uniform_initializer", "truncated_normal_initializer", "variance_scaling_initializer",
           "zeros_initializer"]

"""Random ops, counter-based so that every backend can produce the very same numbers.

A draw is a pure function of (key, run counter, element index): the key comes from the graph
and op seeds (TF1 rules), the run counter from the session (it advances each run in which the
node executes) and the element index from the position. The bits come from Philox4x32-10
(Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), which a CPU loop or a CUDA
thread computes independently per element, unlike a sequential generator.

Uniform float32 uses the top 24 bits of one word; float64 uses 53 bits of two words; normals use
Box-Muller on the two float64 uniforms of each block (elements 2m and 2m+1 share block m).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..ir.dtypes import as_dtype, float32, int64
from . import attrs as attr_rules
from .base import OpDef, register
from .shape_ops import _ShapeInputOp, _shape_arg, _unknown_of_length

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_M64 = (1 << 64) - 1


def philox4x32(counter: np.ndarray, key: tuple[int, int], rounds: int = 10) -> np.ndarray:
    """Philox4x32 of a (4, n) uint32 counter array under a 2-word key -> (4, n) uint32."""
    c0, c1, c2, c3 = (counter[i].astype(np.uint64) for i in range(4))
    k0, k1 = key
    m0, m1 = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1])
    for _ in range(rounds):
        p0 = m0 * c0
        p1 = m1 * c2
        c0, c1, c2, c3 = (
            (p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0),
            p1 & _MASK32,
            (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1),
            p0 & _MASK32,
        )
        k0 = (k0 + PHILOX_W[0]) & 0xFFFFFFFF
        k1 = (k1 + PHILOX_W[1]) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def _mix64(z: int) -> int:
    """SplitMix64's finalizer: spreads seeds so nearby seeds give unrelated keys."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def philox_key(seed: int, seed2: int) -> tuple[int, int]:
    k = _mix64(_mix64(seed & _M64) ^ (seed2 & _M64))
    return k & 0xFFFFFFFF, k >> 32


def random_words(n_blocks: int, key: tuple[int, int], run: int) -> np.ndarray:
    """4 * n_blocks uint32 words: block j is Philox((j lo, j hi, run lo, run hi), key)."""
    j = np.arange(n_blocks, dtype=np.uint64)
    counter = np.stack([
        j & _MASK32, j >> np.uint64(32),
        np.full(n_blocks, run & 0xFFFFFFFF, np.uint64), np.full(n_blocks, (run >> 32) & 0xFFFFFFFF, np.uint64),
    ])
    return philox4x32(counter, key).T.reshape(-1)


def uniform_values(n: int, dtype: np.dtype, key: tuple[int, int], run: int) -> np.ndarray:
    """n uniforms in [0, 1)."""
    if np.dtype(dtype) == np.float32:
        w = random_words((n + 3) // 4, key, run)[:n]
        return ((w >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24))
    w = random_words((2 * n + 3) // 4, key, run)[: 2 * n].astype(np.uint64)
    a, b = w[0::2] >> np.uint64(5), w[1::2] >> np.uint64(6)
    return (a.astype(np.float64) * 67108864.0 + b.astype(np.float64)) * (2.0 ** -53)


def normal_values(n: int, dtype: np.dtype, key: tuple[int, int], run: int) -> np.ndarray:
    """n standard normals by Box-Muller; pair m comes from block m's two float64 uniforms."""
    pairs = (n + 1) // 2
    w = random_words(pairs, key, run).astype(np.uint64).reshape(pairs, 4)
    u = ((w[:, 0::2] >> np.uint64(5)).astype(np.float64) * 67108864.0
         + (w[:, 1::2] >> np.uint64(6)).astype(np.float64)) * (2.0 ** -53)
    radius = np.sqrt(-2.0 * np.log1p(-u[:, 0]))  # 1 - u in (0, 1]: log is finite
    angle = 2.0 * np.pi * u[:, 1]
    z = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).reshape(-1)[:n]
    return z.astype(dtype)


class _RandomOp(_ShapeInputOp):
    """Inputs: [shape tensor] while building; [run counter] once compiled (`counter_input`)."""

    arity = (0, 1)
    attr_defaults = {"shape": None, "dtype": float32, "seed": 0, "seed2": 0, "counter_input": False}
    attr_checks = {
        "shape": attr_rules.shape(allow_unknown=False),
        "dtype": attr_rules.dtype(),
        "seed": attr_rules.integer(),
        "seed2": attr_rules.integer(),
        "counter_input": attr_rules.boolean(),
    }
    stateful = True
    shape_inputs = (0,)

    def infer(self, inputs, attrs):
        dtype = as_dtype(attrs["dtype"])
        if not dtype.is_floating:
            raise DTypeError(
                f"{self.name} draws float32 or float64 values, not {dtype.name}",
                hint="draw floats and convert with gc.cast / gc.floor",
            )
        if attrs["counter_input"]:
            if attrs["shape"] is None:
                raise ShapeError(f"{self.name} needs a static shape once compiled")
            return [(dtype, tuple(attrs["shape"]))]
        target = _shape_arg(inputs, attrs, "shape", 0)
        if target is None:
            return [(dtype, _unknown_of_length(inputs[0]))]
        if any(d < 0 for d in target):
            raise ShapeError(f"random shape {target} has a negative size")
        return [(dtype, tuple(target))]

    def draw(self, n: int, dtype: np.dtype, key: tuple[int, int], run: int) -> np.ndarray:
        raise NotImplementedError

    def reference(self, inputs: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
        run = int(inputs[-1]) if attrs["counter_input"] else 0
        shape = tuple(attrs["shape"]) if attrs["counter_input"] else self.target(inputs, attrs)
        n = int(np.prod(shape, dtype=np.int64))
        key = philox_key(int(attrs["seed"]), int(attrs["seed2"]))
        return self.draw(n, as_dtype(attrs["dtype"]).np, key, run).reshape(shape)


@register
class RandomUniform(_RandomOp):
    """Uniform values in [0, 1)."""

    name = "RandomUniform"

    def draw(self, n, dtype, key, run):
        return uniform_values(n, dtype, key, run)


@register
class RandomStandardNormal(_RandomOp):
    """Standard normal values (mean 0, standard deviation 1)."""

    name = "RandomStandardNormal"

    def draw(self, n, dtype, key, run):
        return normal_values(n, dtype, key, run)


@register
class RunCounter(OpDef):
    """The run counter of the random draws inside a loop body or a branch: an int64 scalar the
    session supplies and advances each run, like a random op's own counter. A draw inside a
    body takes counter * M + iteration + 1 (graphc.api.control_flow) as its counter input, so
    each iteration and each run draws anew, the same on every backend."""

    name = "RunCounter"
    arity = 0
    stateful = True

    def infer(self, inputs, attrs):
        return [(int64, ())]

    def reference(self, inputs, attrs):
        raise InvalidArgumentError("RunCounter has a value only inside a program (the session supplies it)")

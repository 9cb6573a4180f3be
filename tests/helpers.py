"""Helpers for comparing graphc with NumPy."""
from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np

import graphc as gc

TOLERANCE = {  # (rtol, atol) per result dtype
    "float32": (2e-5, 2e-6),
    "float64": (1e-12, 1e-13),
}


def run(fetches: Any, feed_dict: dict | None = None, backend: str = "numpy") -> Any:
    """Run fetches in a fresh session of the default graph after initializing variables."""
    with gc.Session(backend=backend) as sess:
        if gc.global_variables():
            sess.run(gc.global_variables_initializer())
        return sess.run(fetches, feed_dict)


def assert_close(actual: Any, expected: Any, dtype: Any = None, rtol: float | None = None,
                 atol: float | None = None) -> None:
    """Values equal within the tolerance of `dtype` (exact for ints and bools); NaNs must match."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    name = np.dtype(dtype if dtype is not None else actual.dtype).name
    if name in TOLERANCE:
        r, a = TOLERANCE[name]
        np.testing.assert_allclose(actual, expected, rtol=rtol if rtol is not None else r,
                                   atol=atol if atol is not None else a, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def random_array(rng: np.random.Generator, shape: Sequence[int], dtype: Any, low: float = -3.0,
                 high: float = 3.0) -> np.ndarray:
    """Random values of a dtype in [low, high) (bools are fair coin flips)."""
    dtype = np.dtype(gc.as_dtype(dtype).np)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        return rng.integers(int(np.floor(low)), int(np.ceil(high)), size=shape, endpoint=True).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def kernel_listing(fetches: Any, feed_dict: dict | None = None) -> str:
    """The LLVM backend's kernel listing for `fetches` (which kernel runs which node) as text."""
    return gc.debugprint(fetches, feed_dict, level="kernels", backend="llvm", file=io.StringIO())


def window_case_id(case: tuple) -> str:
    """A test id for a window case (channels, (h, w), window, strides, padding, dilations)."""
    c, (h, w), window, strides, padding, dilations = case
    pad = padding if isinstance(padding, str) else "explicit"
    return f"{c}x{h}x{w}-{window}x{window}-s{strides[0]}{strides[1]}-{pad}-d{dilations[0]}"

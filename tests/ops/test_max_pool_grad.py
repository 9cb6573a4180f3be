"""MaxPoolGrad where windows do not overlap (stride >= window) is a gather: each input position
takes its window's gradient when it is the window's first maximum. Ties are the common case
after a ReLU (windows of zeros), so every backend is checked on inputs full of them, against a
direct NumPy loop that gives each window's gradient to its first maximum only."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

from ..conftest import CPU_BACKENDS


def _first_max_grad(x: np.ndarray, g: np.ndarray, k: tuple[int, int], s: tuple[int, int],
                    pads: tuple[int, int]) -> np.ndarray:
    """NHWC: each window's gradient added at its first maximum (row-major over the window)."""
    out = np.zeros_like(x)
    n, h, w, c = x.shape
    _, oh, ow, _ = g.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best, at = -np.inf, None
                    for di in range(k[0]):
                        for dj in range(k[1]):
                            r, q = i * s[0] + di - pads[0], j * s[1] + dj - pads[1]
                            if 0 <= r < h and 0 <= q < w and x[b, r, q, ch] > best:
                                best, at = x[b, r, q, ch], (r, q)
                    if at is not None:
                        out[b, at[0], at[1], ch] += g[b, i, j, ch]
    return out


@pytest.mark.parametrize("backend", CPU_BACKENDS + ["cuda-emulator"])
@pytest.mark.parametrize("shape, k, s, padding", [
    ((2, 6, 8, 3), (2, 2), (2, 2), "VALID"),
    ((2, 7, 5, 4), (2, 2), (2, 2), "SAME"),      # odd sizes: SAME pads the last row / column
    ((1, 7, 7, 2), (2, 2), (2, 2), "VALID"),     # the last row and column belong to no window
    ((2, 9, 9, 3), (3, 3), (3, 3), "SAME"),
    ((1, 8, 9, 2), (2, 3), (3, 3), "VALID"),     # stride larger than the window: gaps
])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_disjoint_max_pool_gradient_goes_to_the_first_maximum(backend, shape, k, s, padding, data_format):
    rng = np.random.default_rng(sum(shape) + k[0])
    x = np.maximum(rng.integers(-2, 3, size=shape), 0).astype(np.float32)   # a ReLU's output: many ties
    x_in = x if data_format == "NHWC" else x.transpose(0, 3, 1, 2)
    xp = gc.placeholder(gc.float32, x_in.shape)
    pooled = gc.nn.max_pool2d(xp, k, s, padding, data_format=data_format)
    weights = rng.normal(size=pooled.shape).astype(np.float32)
    (grad,) = gc.gradients(gc.reduce_sum(pooled * gc.constant(weights)), [xp])
    with gc.Session(backend=backend) as sess:
        got = sess.run(grad, {xp: x_in})
    g_nhwc = weights if data_format == "NHWC" else weights.transpose(0, 2, 3, 1)
    oh, ow = g_nhwc.shape[1:3]
    pads = (0, 0) if padding == "VALID" else (max((oh - 1) * s[0] + k[0] - shape[1], 0) // 2,
                                               max((ow - 1) * s[1] + k[1] - shape[2], 0) // 2)
    want = _first_max_grad(x, g_nhwc, k, s, pads)
    if data_format == "NCHW":
        want = want.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

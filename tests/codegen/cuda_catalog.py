"""A graph that exercises every kind of kernel the CUDA renderer writes (each launch mode,
every reduction combiner, GEMM tiles, gathers and scatters, random draws, checks, row chains,
a training step with convolutions and Adam), for the nvcc and GPU checks."""
from __future__ import annotations

from typing import Any

import numpy as np

import graphc as gc


def build() -> tuple[list[Any], dict[Any, np.ndarray], list[Any]]:
    """(fetches, feeds, train ops) in the default graph."""
    rng = np.random.default_rng(7)
    x = gc.placeholder(gc.float32, [6, 200], name="x")
    d = gc.placeholder(gc.float64, [66, 130], name="d")
    i = gc.placeholder(gc.int32, [6, 200], name="i")
    big = gc.placeholder(gc.int64, [3, 5], name="big")
    idx = gc.placeholder(gc.int32, [4], name="idx")
    flags = gc.placeholder(gc.bool, [6, 200], name="flags")
    images = gc.placeholder(gc.float32, [4, 8, 8, 2], name="images")
    labels = gc.placeholder(gc.int32, [4], name="labels")
    sq = gc.placeholder(gc.float32, [128, 256], name="sq")   # whole GEMM tiles: the float32 fast path
    long = gc.placeholder(gc.float32, [70000], name="long")  # long reductions: a grid stage
    fetches = [
        gc.reduce_sum(long), gc.argmax(long, axis=0), gc.reduce_max(gc.reshape(long, [2, 35000]), axis=1),
        gc.matmul(sq, sq, transpose_b=True), gc.matmul(sq, sq, transpose_a=True),
        gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x),             # vector mode
        gc.log1p(gc.abs(x)) + gc.expm1(x * 0.1) + gc.erf(x) + gc.sin(x) * gc.cos(x) + gc.rsqrt(gc.abs(x) + 1),
        gc.pow(gc.abs(d) + 0.5, d) + gc.floor(d) - gc.ceil(d) + gc.round(d) + gc.sign(d) + d // 0.3 + d % 0.7,
        i // 3 + i % 5 - gc.abs(i) * gc.sign(i) + gc.pow(i, 2), big // gc.constant(-2, gc.int64),
        gc.cast(x, gc.int32) + gc.cast(d[:6, :6], gc.int64)[:, :1], gc.cast(flags, gc.float32),
        gc.logical_xor(flags, x > 0), gc.where(flags, x, -x), gc.maximum(x, 0.3), gc.minimum(d, 0.2),
        gc.is_nan(x / (x - x)), gc.is_finite(x), gc.is_inf(1 / x),
        gc.reduce_sum(x, axis=1), gc.reduce_sum(x, axis=0), gc.reduce_sum(x), gc.reduce_prod(d, axis=0),
        gc.reduce_max(d, axis=1), gc.reduce_min(i, axis=0), gc.reduce_any(flags, axis=1), gc.reduce_all(flags),
        gc.reduce_mean(gc.reduce_sum(d, axis=1)), gc.argmax(x, axis=1), gc.argmin(d, axis=0),
        gc.nn.softmax(x), gc.nn.log_softmax(d), gc.reduce_logsumexp(x, axis=1),
        gc.matmul(x, x, transpose_b=True), gc.matmul(d, d, transpose_a=True),
        gc.matmul(gc.reshape(x, [2, 3, 200]), gc.reshape(x, [200, 6])[None]),
        gc.matmul(i[:, :5], gc.transpose(i[:, :5])),
        gc.gather(x, idx), gc.one_hot(idx, 7), gc.concat([x, x * 2], axis=1), gc.tile(d[:2, :3], [2, 3]),
        gc.pad(x, [[1, 2], [0, 3]]), gc.stack([x, x], axis=1), gc.transpose(d) * 2.0,
        gc.random_uniform([10, 10], seed=1), gc.random_normal([7], seed=2, dtype=gc.float64),
        gc.check_numerics(x, "catalog"),
    ]
    feeds = {x: rng.normal(size=(6, 200)).astype(np.float32), d: rng.normal(size=(66, 130)),
             i: rng.integers(-50, 50, size=(6, 200)).astype(np.int32),
             big: rng.integers(-(2 ** 40), 2 ** 40, size=(3, 5)), idx: np.array([5, 0, 3, 3], np.int32),
             flags: rng.random((6, 200)) < 0.5, images: rng.random((4, 8, 8, 2)).astype(np.float32),
             labels: np.array([1, 0, 9, 4], np.int32), sq: rng.normal(size=(128, 256)).astype(np.float32),
             long: rng.normal(size=70000).astype(np.float32)}
    kernel = gc.Variable(gc.random_normal([3, 3, 2, 4], seed=3), name="kernel")
    h = gc.nn.relu(gc.nn.conv2d(images, kernel, strides=1, padding="SAME"))
    pooled = gc.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
    avg = gc.nn.avg_pool2d(h, ksize=2, strides=2, padding="VALID")
    # overlapping windows: their gradient is the serial scatter ("single" launch mode); the 2x2
    # pool's is a gather
    overlapping = gc.nn.max_pool2d(h, ksize=3, strides=2, padding="SAME")
    w = gc.Variable(gc.random_normal([4 * 4 * 4, 10], seed=4, stddev=0.1), name="w")
    logits = gc.matmul(gc.reshape(pooled + avg + overlapping, [-1, 64]), w)
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    train = gc.train.AdamOptimizer(0.01).minimize(loss)
    fetches.append(loss)
    return fetches, feeds, [train]

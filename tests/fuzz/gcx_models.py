"""Real graphs to mutate: each builder makes a model the way a user would and saves it, so the
fuzzer starts from files graphc itself writes (with their real op mix, attributes, variables,
gradients and optimizer slots) rather than from hand-written JSON.

`model_files()` builds them once per process, in a fixed order with fixed seeds, and caches the
bytes, so the cases drawn from a seed are the same in every process.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

import numpy as np

import graphc as gc


def _mlp() -> None:
    """The MLP of tests/io: placeholder, variable, matmul, softmax and a gradient."""
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    w = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
    y = gc.nn.softmax(x @ w, axis=-1)
    gc.gradients(gc.reduce_sum(y * y), [w])


def _convnet() -> None:
    """Convolution and both poolings with their gradients (Conv2DBackpropInput/Filter,
    MaxPoolGrad, AvgPoolGrad) and a second-order pooling gradient, trained by SGD."""
    x = gc.placeholder(gc.float32, [None, 6, 6, 2], name="x")
    labels = gc.placeholder(gc.int32, [None], name="labels")
    f = gc.Variable(gc.random_normal([3, 3, 2, 4], stddev=0.3, seed=1), name="conv/filters")
    h = gc.nn.relu(gc.nn.conv2d(x, f, strides=1, padding="SAME"))
    p = gc.nn.max_pool2d(h, 2, 2, "VALID")
    a = gc.nn.avg_pool2d(h, 3, 2, "SAME")
    z = gc.reshape(p, [-1, 36]) + gc.reshape(gc.nn.conv2d(a, gc.ones([1, 1, 4, 4]), padding="VALID"), [-1, 36])
    w = gc.Variable(gc.random_normal([36, 3], stddev=0.2, seed=2), name="dense/w")
    logits = gc.matmul(z, w)
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss")
    gc.train.GradientDescentOptimizer(0.1).minimize(loss)
    (gx,) = gc.gradients(gc.reduce_sum(p * p), [x])
    gc.gradients(gc.reduce_sum(gx * gx), [x])
    xt = gc.transpose(x, [0, 3, 1, 2])
    y = gc.nn.conv2d(xt, gc.ones([2, 2, 2, 3]), strides=2, padding=[[0, 0], [0, 0], [1, 1], [2, 0]], data_format="NCHW")
    yd = gc.nn.conv2d(x, gc.ones([2, 2, 2, 1]), padding="SAME", dilations=2)
    gc.gradients(gc.reduce_sum(y * y) + gc.reduce_sum(yd), [x])


def _random() -> None:
    """Random ops with graph and op seeds, a variable initialized from them, dropout-like masks."""
    gc.set_random_seed(11)
    x = gc.placeholder(gc.float32, [None, 4], name="x")
    v = gc.Variable(gc.random_uniform([4, 4], dtype=gc.float32, seed=3), name="v")
    noise = gc.random_normal(gc.shape(x), seed=5)
    mask = gc.cast(gc.random_uniform(gc.shape(x)) > 0.5, gc.float32)
    gc.identity(x @ v + noise * mask, name="out")
    gc.random_uniform([2, 3], dtype=gc.float64, seed=7, name="draw64")


def _adam() -> None:
    """A two-layer classifier trained by Adam (slots, beta powers, assign ops, a group)."""
    x = gc.placeholder(gc.float32, [None, 5], name="x")
    labels = gc.placeholder(gc.int32, [None], name="labels")
    w1 = gc.Variable(gc.random_normal([5, 8], stddev=0.3, seed=1), name="w1")
    b1 = gc.Variable(gc.zeros([8]), name="b1")
    w2 = gc.Variable(gc.random_normal([8, 3], stddev=0.3, seed=2), name="w2")
    h = gc.nn.tanh(x @ w1 + b1)
    logits = h @ w2
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss")
    gc.train.AdamOptimizer(0.01).minimize(loss, name="train")
    gc.reduce_mean(gc.cast(gc.equal(gc.argmax(logits, 1), gc.cast(labels, gc.int64)), gc.float32), name="accuracy")


def _shapes() -> None:
    """Shape, slicing and structure ops: reshape, transpose, strided slices, gather, one_hot,
    split, unstack, pad, tile, concat, where, clip, cast, check_numerics, placeholder_with_default."""
    x = gc.placeholder(gc.float32, [None, 3, 4], name="x")
    idx = gc.placeholder(gc.int32, [None], name="idx")
    n = gc.shape(x)[0]
    parts = [gc.reshape(x, [n, -1]), gc.transpose(x, [2, 0, 1]), x[1:, ::-1, None, ..., -1], gc.gather(x, idx, axis=1),
             gc.one_hot(idx, 4, on_value=2.0, off_value=-1.0), gc.pad(x, [[0, 0], [1, 0], [0, 1]], mode="REFLECT"),
             gc.tile(x, [1, 2, 1]), gc.concat([x, x * 2.0], axis=-1), gc.stack([x, x], axis=1),
             gc.where(x > 0.0, x, -x), gc.clip_by_value(x, -0.5, 0.5), gc.cast(x, gc.int32),
             gc.check_numerics(x, "bad"), gc.expand_dims(x, 1), gc.squeeze(gc.expand_dims(x, 0), [0]),
             gc.broadcast_to(x[:, :1], [2, 5, 4]), gc.fill(gc.shape(x), 1.5), gc.reduce_max(x, axis=[1, 2])]
    parts += gc.split(x, [1, -1, 1], axis=2) + gc.unstack(x, axis=1)
    parts += [gc.nn.leaky_relu(x, 0.1), gc.nn.elu(x), gc.nn.gelu(x, approximate=True), gc.argmin(x, 2),
              gc.reduce_logsumexp(x, axis=1), gc.reduce_any(x > 1.0, axis=[0]), gc.shape(x, out_type=gc.int64),
              gc.nn.log_softmax(x, axis=1), gc.reduce_prod(x, axis=[2], keepdims=True)]
    d = gc.placeholder_with_default(gc.ones([2, 3, 4]), [None, 3, 4], name="d")
    gc.add_n([x[:2], d, d], name="sum3")
    gc.gradients(gc.reduce_sum(parts[2]) + gc.reduce_sum(parts[3] * parts[3]), [x])


def _loops() -> None:
    """Loops and branches, each bounded (the fuzzer runs what loads, so every loop has a small
    static trip count or walks a short sequence): a while_loop with nested loop values, a
    reverse scan whose body captures a variable, a map_fn with a cond inside, a foldr, a cond,
    and the gradient through them (loops with history, backward loops, branch gradients)."""
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    w = gc.Variable(gc.random_normal([3, 3], stddev=0.3, seed=4), name="w")
    _, (acc, _) = gc.while_loop(lambda i, s: gc.reduce_sum(s[0]) < 50.0,
                                lambda i, s: (i + 1, (s[0] * 1.5 + 1.0, s[1] + 1)),
                                [gc.constant(0), (gc.ones([3]), gc.constant(0, gc.int64))], maximum_iterations=6)
    h = gc.scan(lambda h, e: gc.nn.tanh(gc.matmul(gc.expand_dims(h, 0), w)[0] + e), x, initializer=gc.zeros([3]),
                reverse=True)
    m = gc.map_fn(lambda r: gc.cond(gc.reduce_sum(r) > 0.0, lambda: r * 2.0, lambda: -r), x)
    f = gc.foldr(lambda a, e: a * 0.5 + e, x, initializer=gc.zeros([3]))
    c = gc.cond(gc.reduce_sum(x) > 0.0, lambda: acc * 2.0, lambda: acc - 1.0)
    loss = gc.add_n([gc.reduce_sum(h * h), gc.reduce_sum(m), gc.reduce_sum(f), gc.reduce_sum(c)], name="loss")
    try:
        gc.gradients(loss, [x, w])
    except gc.GraphcError:   # gradients of loops are young: the model is still worth fuzzing without them
        pass


def _nested() -> None:
    """Loops in loops: a while_loop inside a scan's body, a scan inside a cond's branch inside
    a map_fn, and a while_loop whose body runs a foldl (sub-graphs three deep)."""
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    k = gc.placeholder_with_default(gc.constant(0.5), [], name="k")

    def row_step(acc, row):
        _, inner = gc.while_loop(lambda j, r: j < 2, lambda j, r: (j + 1, r * k + acc), [gc.constant(0), row],
                                 maximum_iterations=3)
        return inner
    gc.identity(gc.scan(row_step, x, initializer=gc.zeros([3])), name="rows")
    gc.identity(gc.map_fn(lambda r: gc.cond(r[0] > 0.0, lambda: gc.scan(lambda a, e: a + e * k, r),
                                            lambda: r * k), x), name="mapped")
    _, total = gc.while_loop(lambda i, t: i < 2, lambda i, t: (i + 1, gc.foldl(lambda a, e: a + e, x, initializer=t)),
                             [gc.constant(0), gc.zeros([3])], maximum_iterations=2)
    gc.identity(total, name="total")


BUILDERS: dict[str, Callable[[], None]] = {"mlp": _mlp, "convnet": _convnet, "random": _random, "adam": _adam,
                                          "shapes": _shapes, "loops": _loops, "nested": _nested}
_FILES: dict[str, bytes] = {}


def model_files() -> dict[str, bytes]:
    """The saved bytes of every model, built on first use (in name order) and cached."""
    if not _FILES:
        with tempfile.TemporaryDirectory(prefix="graphc-fuzz-models-") as tmp:
            for name in sorted(BUILDERS):
                g = gc.Graph()
                with g.as_default():
                    BUILDERS[name]()
                path = os.path.join(tmp, f"{name}.gcx")
                gc.save_graph(path, g)
                with open(path, "rb") as f:
                    _FILES[name] = f.read()
    return dict(_FILES)

"""One small graph per graphc op, for the .gcx round-trip test.

Each case builds into the default graph and returns (fetches, feeds, runnable). Elementwise ops
are listed by the dtype of their inputs; every other op has a builder. A registered op missing
here makes the round-trip test fail, so a new op cannot skip the file format.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import graphc as gc
from graphc.api.convert import apply1

Case = tuple[list[Any], dict[Any, np.ndarray], bool]
RNG = np.random.default_rng(7)

UNARY_FLOAT = ["Abs", "Ceil", "Cos", "Elu", "Erf", "Exp", "Expm1", "Floor", "Gelu", "IsFinite", "IsInf", "IsNan",
               "LeakyRelu", "Log", "Log1p", "Neg", "Reciprocal", "Relu", "Relu6", "Round", "Rsqrt", "Selu",
               "Sigmoid", "Sign", "Silu", "Sin", "Softplus", "Softsign", "Sqrt", "Square", "Tanh"]
BINARY_FLOAT = ["Add", "Equal", "FloorDiv", "FloorMod", "Greater", "GreaterEqual", "Less", "LessEqual", "Maximum",
                "Minimum", "Mul", "NotEqual", "Pow", "RealDiv", "SigmoidCrossEntropyWithLogits",
                "SquaredDifference", "Sub"]
BOOL_OPS = {"LogicalAnd": 2, "LogicalOr": 2, "LogicalXor": 2, "LogicalNot": 1}


def _f(shape: tuple[int, ...], name: str | None = None, dtype: Any = np.float32) -> tuple[gc.Tensor, np.ndarray]:
    value = RNG.uniform(-2, 2, size=shape).astype(dtype)
    return gc.placeholder(value.dtype, [None] + list(shape[1:]) if shape else [], name=name), value


def _elementwise(op: str, arity: int, kind: str) -> Callable[[], Case]:
    def build() -> Case:
        feeds: dict[Any, np.ndarray] = {}
        inputs = []
        for i in range(arity):
            if kind == "bool":
                value = RNG.random((3, 4)) < 0.5
                p = gc.placeholder(gc.bool, [None, 4])
            else:
                p, value = _f((3, 4))
            feeds[p] = value
            inputs.append(p)
        return [apply1(op, inputs)], feeds, True
    return build


def _reduction(op: str, dtype: Any = np.float32) -> Callable[[], Case]:
    def build() -> Case:
        if dtype == np.bool_:
            x, v = gc.placeholder(gc.bool, [None, 3, 4]), RNG.random((2, 3, 4)) < 0.5
        else:
            x, v = _f((2, 3, 4))
        outs = [apply1(op, [x], {"axis": (1,), "keepdims": True}), apply1(op, [x], {"axis": None}),
                apply1(op, [x], {"axis": (-1, 0)})]
        return outs, {x: v}, True
    return build


def _variables() -> Case:
    w = gc.Variable(gc.random_normal([3, 2], seed=3), name="w")
    b = gc.Variable(np.arange(2, dtype=np.float64), name="b", trainable=False)
    x, v = _f((4, 3))
    y = x @ w
    with gc.control_dependencies([w.assign(w * 2.0)]):
        after = w.read_value()
    add = b.assign_add(np.ones(2))
    sub = b.assign_sub(np.full(2, 0.5))
    gc.global_variables_initializer()  # saved, not run: in a loaded graph it restores the saved values
    return [y, after, add, sub, gc.group(add, sub)], {x: v}, True


def _conv() -> Case:
    x, v = _f((2, 6, 6, 3))
    f = gc.constant(RNG.normal(size=(3, 3, 3, 4)).astype(np.float32))
    y = gc.nn.conv2d(x, f, strides=1, padding="SAME")
    z = gc.nn.conv2d(gc.transpose(x, [0, 3, 1, 2]), f, strides=2, padding=[[0, 0], [0, 0], [1, 1], [2, 0]],
                     data_format="NCHW")
    gx, gf = gc.gradients(gc.reduce_sum(y * y) + gc.reduce_sum(z), [x, f])
    return [y, z, gx, gf], {x: v}, True


def _pool() -> Case:
    x, v = _f((2, 6, 6, 3))
    mp = gc.nn.max_pool2d(x, 2, 2, "VALID")
    ap = gc.nn.avg_pool2d(x, 3, 2, "SAME")
    (gx,) = gc.gradients(gc.reduce_sum(mp * mp) + gc.reduce_sum(ap * ap), [x])
    (ggx,) = gc.gradients(gc.reduce_sum(gx * gx), [x])
    return [mp, ap, gx, ggx], {x: v}, True


def _shapes() -> Case:
    x, v = _f((2, 3, 4))
    n = gc.shape(x)[0]
    outs = [gc.reshape(x, [n, -1]), gc.reshape(x, [6, 4]), gc.transpose(x, [2, 0, 1]), gc.expand_dims(x, 1),
            gc.squeeze(gc.expand_dims(x, 0), [0]), gc.broadcast_to(x[:, :1], [2, 5, 4]),
            gc.tile(x, [1, 2, 1]), gc.pad(x, [[0, 0], [1, 2], [2, 1]], mode="REFLECT"),
            gc.pad(x, [[1, 0], [0, 0], [0, 1]], constant_values=1.5), gc.fill([2, 3], 7.0),
            gc.fill(gc.shape(x), 1.0), gc.shape(x, out_type=gc.int64), gc.concat([x, x * 2.0], axis=-1),
            gc.stack([x, x], axis=1)] + gc.unstack(x, axis=1) + gc.split(x, [1, -1, 1], axis=2) \
        + gc.split(x, 2, axis=2)
    return outs, {x: v}, True


def _slicing() -> Case:
    x, v = _f((3, 5, 4))
    idx = gc.placeholder(gc.int32, [None])
    outs = [x[1:, ::-2, None, ..., -1], x[..., 1], gc.gather(x, idx, axis=1),
            gc.one_hot(gc.cast(idx, gc.int64), 6, on_value=2.5, off_value=-1.0, axis=0)]
    gx = gc.gradients(gc.reduce_sum(outs[0]) + gc.reduce_sum(outs[2] * outs[2]), [x])[0]
    return outs + [gx], {x: v, idx: np.array([4, 0, 4], np.int32)}, True


def _broadcast_grad() -> Case:
    x, v = _f((2, 3))
    b = gc.placeholder(gc.float32, [3])
    (gb,) = gc.gradients(gc.reduce_sum((x + b) ** 2.0), [b])
    return [gb], {x: v, b: np.ones(3, np.float32)}, True


def _nn() -> Case:
    logits, v = _f((4, 5))
    labels = gc.placeholder(gc.int32, [None])
    probs = gc.nn.softmax(logits * 0.5)
    outs = [gc.nn.softmax(logits, axis=0), gc.nn.log_softmax(logits),
            gc.nn.softmax_cross_entropy_with_logits(labels=probs, logits=logits),
            gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), gc.matmul(logits, logits,
                                                                                                  transpose_b=True)]
    return outs, {logits: v, labels: np.array([0, 4, 2, 1], np.int32)}, True


def _structure() -> Case:
    x, v = _f((2, 3))
    d = gc.placeholder_with_default(gc.constant(np.ones((2, 3), np.float32)), [None, 3])
    outs = [gc.identity(x), gc.stop_gradient(x), gc.check_numerics(x, "bad"), d,
            gc.add_n([x, x, d]), gc.where(x > 0.0, x, -x), gc.clip_by_value(x, -0.5, 0.5), gc.cast(x, gc.int32),
            gc.group(gc.identity(x))]
    return outs, {x: v}, True


def _random() -> Case:
    gc.set_random_seed(11)
    outs = [gc.random_normal([2, 3], seed=5), gc.random_uniform([4], dtype=gc.float64),
            gc.random_uniform(gc.shape(gc.constant(np.zeros((2, 2))))) ]
    return outs, {}, True


def _compiled_random() -> Case:
    """The form random ops take inside a compiled program (a run counter input); not runnable
    as a user graph, but it must round-trip."""
    counter = gc.placeholder(gc.int64, [])
    outs = [apply1(op, [counter], {"shape": (2, 2), "seed": 1, "seed2": 2, "counter_input": True})
            for op in ("RandomUniform", "RandomStandardNormal")]
    return outs, {counter: np.int64(0)}, False


def _loops() -> Case:
    """A while_loop, a reverse scan whose body captures a tensor, a cond inside a map_fn and one
    outside (the loops' own round trips are in tests/io/test_gcx_loops.py)."""
    x, v = _f((4, 3))
    k = gc.placeholder(gc.float32, [], name="k")
    _, total = gc.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * k + 1.0), [gc.constant(0), gc.zeros([3])])
    stacked = gc.scan(lambda a, e: a + e * k, x, initializer=gc.zeros([3]), reverse=True)
    mapped = gc.map_fn(lambda row: gc.cond(gc.reduce_sum(row) > 0.0, lambda: row * 2.0, lambda: -row), x)
    branch = gc.cond(k > 0.0, lambda: x * k, lambda: x - k)
    return [total, stacked, mapped, branch], {x: v, k: np.float32(0.5)}, True


def _loop_draws() -> Case:
    """Random draws inside a scan body: a RunCounter outside, draws with a counter input inside."""
    gc.set_random_seed(3)
    x, v = _f((5, 3))
    masked = gc.scan(lambda a, e: a + e * gc.cast(gc.random_uniform([3], seed=1) < 0.5, gc.float32), x,
                     initializer=gc.zeros([3]))
    return [masked], {x: v}, True


def _collectives() -> Case:
    """Collectives as graph ops (a world of one when run here)."""
    x, v = _f((2, 3))
    outs = [apply1("MpiAllreduce", [x], {"reduce": "average", "key": "g/allreduce", "rank": 0, "size": 1}),
            apply1("MpiBroadcast", [x], {"root": 0, "key": "g/broadcast", "rank": 0, "size": 1}),
            apply1("MpiAllgather", [x], {"key": "g/allgather", "rank": 0, "size": 1})]
    return outs, {x: v}, True


CASES: dict[str, Callable[[], Case]] = {}
for _op in UNARY_FLOAT:
    CASES[_op] = _elementwise(_op, 1, "float")
for _op in BINARY_FLOAT:
    CASES[_op] = _elementwise(_op, 2, "float")
for _op, _n in BOOL_OPS.items():
    CASES[_op] = _elementwise(_op, _n, "bool")
CASES["ClipByValue"] = _elementwise("ClipByValue", 3, "float")
CASES["AddN"] = _elementwise("AddN", 3, "float")
for _op in ("Sum", "Prod", "Mean", "Max", "Min", "LogSumExp"):
    CASES[_op] = _reduction(_op)
for _op in ("Any", "All"):
    CASES[_op] = _reduction(_op, np.bool_)
CASES["ArgMax"] = lambda: (lambda x: ([gc.argmax(x[0], 1), gc.argmin(x[0], 0, output_type=gc.int32)],
                                      {x[0]: x[1]}, True))(_f((3, 4)))
CASES["ArgMin"] = CASES["ArgMax"]
for _op in ("Placeholder", "Const", "VariableV2", "ReadVariable", "Assign", "AssignAdd", "AssignSub", "NoOp"):
    CASES[_op] = _variables
for _op in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"):
    CASES[_op] = _conv
for _op in ("MaxPool", "AvgPool", "MaxPoolGrad", "AvgPoolGrad", "MaxPoolGradGrad"):
    CASES[_op] = _pool
for _op in ("Reshape", "Transpose", "ExpandDims", "Squeeze", "BroadcastTo", "Tile", "Pad", "Fill", "Shape",
            "Concat", "Pack", "Unpack", "Split"):
    CASES[_op] = _shapes
for _op in ("StridedSlice", "Gather", "OneHot", "StridedSliceGrad", "GatherGrad"):
    CASES[_op] = _slicing
CASES["SumToShape"] = _broadcast_grad
for _op in ("Softmax", "LogSoftmax", "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits",
            "MatMul"):
    CASES[_op] = _nn
for _op in ("Identity", "StopGradient", "CheckNumerics", "PlaceholderWithDefault", "Select", "Cast"):
    CASES[_op] = _structure
CASES["While"] = _loops
CASES["If"] = _loops
CASES["RandomStandardNormal"] = _random
CASES["RandomUniform"] = _random
CASES["RunCounter"] = _loop_draws
for _op in ("MpiAllreduce", "MpiBroadcast", "MpiAllgather"):
    CASES[_op] = _collectives

# Builders that are not the main case of any op but shapes ops take elsewhere.
EXTRA_CASES: dict[str, Callable[[], Case]] = {"compiled_random": _compiled_random}

"""Models built in graphc, exported to ONNX (checked by onnx.checker), run in onnxruntime:
the outputs match Session.run on the reference backend."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")
pytest.importorskip("onnxruntime", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
import onnxruntime as ort

import graphc as gc
from graphc.api.convert import apply1

TESTED_OPS = {"Add", "Sub", "Mul", "RealDiv", "FloorDiv", "FloorMod", "Pow", "Maximum", "Minimum", "SquaredDifference",
              "AddN", "Neg", "Abs", "Sign", "Square", "Reciprocal", "Exp", "Expm1", "Log", "Log1p", "Sqrt", "Rsqrt",
              "Tanh", "Sigmoid", "Sin", "Cos", "Erf", "Floor", "Ceil", "Round", "IsNan", "IsInf", "IsFinite", "Less",
              "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual", "LogicalAnd", "LogicalOr", "LogicalXor",
              "LogicalNot", "Select", "ClipByValue", "Cast", "Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Softplus",
              "Softsign", "Silu", "Gelu", "SigmoidCrossEntropyWithLogits", "Sum", "Prod", "Mean", "Max", "Min",
              "LogSumExp", "Any", "All", "ArgMax", "ArgMin", "MatMul", "Reshape", "Transpose", "ExpandDims",
              "Squeeze", "BroadcastTo", "Tile", "Pad", "Fill", "Shape", "Concat", "Pack", "Unpack", "Split",
              "StridedSlice", "Gather", "OneHot", "Softmax", "LogSoftmax", "SoftmaxCrossEntropyWithLogits",
              "SparseSoftmaxCrossEntropyWithLogits", "Conv2D", "MaxPool", "AvgPool", "Identity", "StopGradient",
              "CheckNumerics", "PlaceholderWithDefault", "Const", "VariableV2", "ReadVariable", "Placeholder",
              "SumToShape"}

RNG = np.random.default_rng(3)


def _check(tmp_path, inputs, outputs, feeds, session=None, opset=None, rtol=2e-5, atol=2e-6):
    path = tmp_path / "model.onnx"
    model = gc.onnx.export(path, inputs, outputs, session=session, opset=opset)
    onnx.checker.check_model(onnx.load(path))
    names = [i.name for i in model.graph.input]
    assert names == [t.name for t in inputs]
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {n: feeds[t] for n, t in zip(names, inputs)})
    if session is None:
        with gc.Session(inputs[0].graph if inputs else outputs[0].graph) as sess:
            if sess.graph.variables:
                sess.run(gc.global_variables_initializer())
            want = sess.run(list(outputs), feeds)
    else:
        want = session.run(list(outputs), feeds)
    for t, w, g in zip(outputs, want, got):
        w = np.asarray(w)
        assert g.dtype == w.dtype, f"{t.name}: onnxruntime gives {g.dtype}, graphc {w.dtype}"
        assert g.shape == w.shape, f"{t.name}: onnxruntime gives {g.shape}, graphc {w.shape}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=t.name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=t.name)
    return model


def test_trained_mlp(tmp_path):
    x = gc.placeholder(gc.float32, [None, 8], name="x")
    labels = gc.placeholder(gc.int32, [None], name="labels")
    w1 = gc.Variable(gc.random_normal([8, 16], stddev=0.3, seed=1), name="w1")
    b1 = gc.Variable(np.zeros(16, np.float32), name="b1")
    w2 = gc.Variable(gc.random_normal([16, 3], stddev=0.3, seed=2), name="w2")
    logits = gc.nn.relu(x @ w1 + b1) @ w2
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    train = gc.train.GradientDescentOptimizer(0.5).minimize(loss)
    X = RNG.normal(size=(32, 8)).astype(np.float32)
    Y = (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 0)
    sess = gc.Session()
    sess.run(gc.global_variables_initializer())
    for _ in range(5):
        sess.run(train, {x: X, labels: Y})
    probs = gc.nn.softmax(logits)
    model = _check(tmp_path, [x, labels], [probs, loss], {x: X, labels: Y}, session=sess)
    frozen = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert any(np.array_equal(v, sess.run(w1)) for v in frozen.values())  # trained, not initial, values


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_small_cnn(tmp_path, data_format):
    shape = [None, 8, 8, 3] if data_format == "NHWC" else [None, 3, 8, 8]
    x = gc.placeholder(gc.float32, shape, name="images")
    f1 = gc.Variable(gc.random_normal([3, 3, 3, 4], stddev=0.3, seed=3), name="f1")
    f2 = gc.Variable(gc.random_normal([2, 2, 4, 5], stddev=0.3, seed=4), name="f2")
    h = gc.nn.relu(gc.nn.conv2d(x, f1, strides=1, padding="SAME", data_format=data_format))
    h = gc.nn.max_pool2d(h, 2, 2, "VALID", data_format=data_format)
    h = gc.nn.conv2d(h, f2, strides=2, padding=[[0, 0], [0, 0], [1, 0], [0, 1]] if data_format == "NCHW"
                     else [[0, 0], [1, 0], [0, 1], [0, 0]], data_format=data_format)
    h = gc.nn.avg_pool2d(gc.nn.elu(h), 3, 2, "SAME", data_format=data_format)
    flat = gc.reshape(h, [gc.shape(h)[0], -1])
    dense = gc.Variable(gc.random_normal([5 * 1 * 1, 2], seed=5), name="dense")
    out = gc.nn.log_softmax(flat @ dense)
    images = RNG.normal(size=[2] + shape[1:]).astype(np.float32)
    _check(tmp_path, [x], [out, h], {x: images}, rtol=1e-4, atol=1e-5)


def test_conv_with_unknown_spatial_size_uses_auto_pad(tmp_path):
    x = gc.placeholder(gc.float32, [None, None, None, 2], name="x")  # onnxruntime has no float64 Conv
    f = gc.constant(RNG.normal(size=(3, 2, 2, 3)).astype(np.float32))
    y = gc.nn.conv2d(x, f, strides=[2, 1], padding="SAME")
    z = gc.nn.max_pool2d(y, [3, 2], [2, 2], "SAME")
    model = _check(tmp_path, [x], [y, z], {x: RNG.normal(size=(1, 7, 6, 2)).astype(np.float32)}, rtol=1e-5, atol=1e-5)
    assert any(a.name == "auto_pad" for n in model.graph.node for a in n.attribute)


def test_elementwise_chains(tmp_path):
    a = gc.placeholder(gc.float32, [None, 5], name="a")
    b = gc.placeholder(gc.float32, [5], name="b")
    i = gc.placeholder(gc.int32, [None, 5], name="i")
    j = gc.placeholder(gc.int32, [5], name="j")
    pos = gc.abs(a) + 0.5
    outs = [
        gc.tanh(a * b - a / b) + gc.sigmoid(a) * gc.exp(-gc.square(a)),
        gc.log(pos) + gc.sqrt(pos) - gc.rsqrt(pos) + gc.log1p(pos) + gc.expm1(a * 0.1) + gc.reciprocal(pos),
        gc.sin(a) * gc.cos(b) + gc.erf(a) + gc.sign(a) + gc.floor(a) + gc.ceil(a) + gc.round(a * 2.0),
        gc.maximum(a, b) - gc.minimum(a, 0.0) + gc.pow(pos, b) + gc.squared_difference(a, b)
        + gc.add_n([a, a, b * 1.0]),
        a // b, a % b, i // j, i % j, i * j - i + gc.abs(j) - j, i / j, -i,
        gc.where(a > b, a, b), gc.clip_by_value(a, -0.5, 0.7), gc.cast(a * 3.0, gc.int32), gc.cast(i, gc.float64),
        gc.logical_xor(gc.logical_and(a < b, a >= 0.0), gc.logical_or(a <= b, gc.logical_not(a > 1.0))),
        gc.equal(i, j), gc.not_equal(i, j), gc.greater_equal(i, j), gc.is_nan(a / a), gc.is_inf(b / a),
        gc.is_finite(a / b), gc.nn.relu(a), gc.nn.relu6(a * 4.0), gc.nn.leaky_relu(a, 0.1), gc.nn.elu(a),
        gc.nn.selu(a), gc.nn.softplus(a), gc.nn.softsign(a), gc.nn.silu(a), gc.nn.gelu(a),
        gc.nn.gelu(a, approximate=True), gc.nn.sigmoid_cross_entropy_with_logits(labels=gc.sigmoid(b), logits=a),
        gc.identity(a) + gc.stop_gradient(b), gc.check_numerics(a, "bad"), a + i, i + 2.5,
    ]
    feeds = {a: RNG.normal(size=(4, 5)).astype(np.float32), b: np.array([1.5, -2.0, 0.5, 3.0, -0.25], np.float32),
             i: RNG.integers(-9, 9, size=(4, 5)).astype(np.int32), j: np.array([3, -4, 0, 1, -1], np.int32)}
    feeds[a][0, :2] = 0.0  # 0 / 0 is NaN, x / 0 is inf
    _check(tmp_path, [a, b, i, j], outs, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [17, 18])
def test_reductions(tmp_path, opset):
    x = gc.placeholder(gc.float32, [None, 3, 4], name="x")
    k = gc.placeholder(gc.int32, [None, 3], name="k")
    flags = gc.placeholder(gc.bool, [None, 3], name="flags")
    outs = [gc.reduce_sum(x), gc.reduce_sum(x, axis=1), gc.reduce_mean(x, axis=[0, 2], keepdims=True),
            gc.reduce_max(x, axis=-1), gc.reduce_min(x, axis=0), gc.reduce_prod(x, axis=2, keepdims=True),
            gc.reduce_logsumexp(x, axis=1), gc.reduce_sum(k, axis=1), gc.reduce_mean(k), gc.reduce_any(flags, axis=1),
            gc.reduce_all(flags, axis=0), gc.reduce_sum(flags), gc.argmax(x, 2), gc.argmin(x, 1, output_type=gc.int32),
            gc.reduce_sum(x, axis=[])]
    feeds = {x: RNG.normal(size=(2, 3, 4)).astype(np.float32), k: RNG.integers(-5, 5, size=(2, 3)).astype(np.int32),
             flags: RNG.random((2, 3)) < 0.5}
    _check(tmp_path, [x, k, flags], outs, feeds, opset=opset, rtol=1e-5, atol=1e-6)


def test_shape_ops(tmp_path):
    x = gc.placeholder(gc.float32, [None, 4, 5], name="x")
    idx = gc.placeholder(gc.int32, [None], name="idx")
    n = gc.shape(x)[0]
    parts = gc.split(x, [1, 3], axis=1)
    outs = [gc.reshape(x, [n, -1]), gc.reshape(x, [-1, 5]), gc.transpose(x, [2, 0, 1]), gc.transpose(x),
            gc.expand_dims(x, 1), gc.squeeze(gc.expand_dims(x, -1), [-1]), gc.broadcast_to(x[:, :1, :], [2, 3, 5]),
            gc.tile(x, [1, 2, 1]), gc.pad(x, [[0, 0], [1, 2], [2, 1]], constant_values=-1.0),
            gc.pad(x, [[0, 0], [2, 1], [1, 3]], mode="REFLECT"), gc.pad(x, [[1, 0], [2, 1], [0, 3]], mode="SYMMETRIC"),
            gc.fill([2, 3], 4.5), gc.shape(x), gc.shape(x, out_type=gc.int64), gc.concat([x, x * 2.0], axis=-1),
            gc.stack([x, -x], axis=1), *gc.unstack(x, axis=1), *parts, *gc.split(x, 5, axis=2),
            x[:, 1:3, ::2], x[:, ::-1, None, -1], x[..., 1], x[1:, -3:-1, 4:0:-2], gc.gather(x, idx, axis=1),
            gc.one_hot(idx, 4, on_value=2.0, off_value=-1.0), gc.one_hot(idx, 3, axis=0, dtype=gc.int64),
            gc.placeholder_with_default(gc.constant(np.ones(3, np.float32)), [3])]
    feeds = {x: RNG.normal(size=(2, 4, 5)).astype(np.float32), idx: np.array([3, 0, 2, 7, -1], np.int32)}
    feeds_gather = dict(feeds)
    feeds_gather[idx] = np.array([3, 0, 2, 1, 1], np.int32)
    _check(tmp_path, [x, idx], outs[:-4] + outs[-3:], feeds)
    _check(tmp_path, [x, idx], [outs[-4]], feeds_gather)


def test_cross_entropies_and_softmax(tmp_path):
    logits = gc.placeholder(gc.float64, [None, 6], name="logits")
    labels = gc.placeholder(gc.int64, [None], name="labels")
    probs = gc.nn.softmax(logits * 0.3, axis=-1)
    outs = [gc.nn.softmax(logits, axis=0), gc.nn.log_softmax(logits),
            gc.nn.softmax_cross_entropy_with_logits(labels=probs, logits=logits),
            gc.nn.softmax_cross_entropy_with_logits(labels=gc.one_hot(labels, 6, dtype=gc.float64), logits=logits),
            gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
            gc.matmul(logits, logits, transpose_a=True), gc.matmul(logits, logits, transpose_b=True)]
    feeds = {logits: RNG.normal(size=(4, 6)), labels: np.array([0, 5, 2, 2])}
    _check(tmp_path, [logits, labels], outs, feeds, rtol=1e-10, atol=1e-12)


def test_gradient_graph_exports(tmp_path):
    """A gradient (sum-to-shape of a broadcast) exports like any other subgraph."""
    x = gc.placeholder(gc.float32, [3, 4], name="x")
    b = gc.placeholder(gc.float32, [4], name="b")
    gx, gb = gc.gradients(gc.reduce_sum(gc.tanh(x + b) * x), [x, b])
    _check(tmp_path, [x, b], [gx, gb], {x: RNG.normal(size=(3, 4)).astype(np.float32),
                                       b: RNG.normal(size=4).astype(np.float32)}, rtol=1e-5, atol=1e-5)


def test_op_without_equivalent_names_op_and_node(tmp_path):
    x = gc.placeholder(gc.float32, [2, 3], name="x")
    noise = gc.random_uniform([2, 3], seed=1, name="noise")
    with pytest.raises(gc.GraphcError, match="RandomUniform.*has no ONNX equivalent") as err:
        gc.onnx.export(tmp_path / "m.onnx", [x], [x + noise])
    assert err.value.node_name is not None and "RandomUniform" in err.value.node_name
    g = gc.placeholder(gc.float32, [2], name="g")
    grad = apply1("StridedSliceGrad", [g], {"spec": (("slice", 0, 2, 1),), "shape": (4,)}, name="ssg")
    with pytest.raises(gc.GraphcError, match="StridedSliceGrad 'ssg'"):
        gc.onnx.export(tmp_path / "m.onnx", [g], [grad])


def test_missing_input_and_bad_opset(tmp_path):
    x = gc.placeholder(gc.float32, [2], name="x")
    y = gc.placeholder(gc.float32, [2], name="y")
    with pytest.raises(gc.GraphcError, match="placeholder is needed by the outputs but is not one of the inputs"):
        gc.onnx.export(tmp_path / "m.onnx", [x], [x + y])
    with pytest.raises(gc.GraphcError, match="supports opsets 17 to"):
        gc.onnx.export(tmp_path / "m.onnx", [x], [x * 2.0], opset=11)

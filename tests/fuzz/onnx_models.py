"""The real ONNX models the ONNX fuzz cases (tests/fuzz/onnx_cases.py) start from, built with
onnx.helper and checked with onnx.checker.

Why several: each covers import rules and opset branches the others do not: an MLP (Gemm, Relu,
Softmax), a small CNN (Conv, BatchNormalization, pools, Flatten), array ops (Reshape, Transpose,
Gather, Slice, Concat, Split, Pad, Expand, Tile, ConstantOfShape, Range, OneHot), normalization
and reductions (LayerNormalization, ReduceMean, ArgMax, Clip, LogSoftmax), an opset-11 model
(attribute forms of axes and splits), integer arithmetic with indices known only at run time,
and the MLP with its initializers as external data next to the model.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHTS_FILE = "weights.bin"


def _model(nodes: list, inputs: list, outputs: list, inits: dict[str, np.ndarray], opset: int = 18,
           name: str = "m") -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


def _vi(name: str, elem: int, shape: list) -> Any:
    return helper.make_tensor_value_info(name, elem, shape)


def _mlp(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="dense1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], name="dense2", transB=1, alpha=0.5),
             helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1)]
    return _model(nodes, [_vi("x", TensorProto.FLOAT, ["batch", 4])], [_vi("probs", TensorProto.FLOAT, ["batch", 3])],
                  {"w1": _f32(rng, 4, 8), "b1": _f32(rng, 8), "w2": _f32(rng, 3, 8), "b2": _f32(rng, 3)})


def _cnn(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1],
                              kernel_shape=[3, 3]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"], name="bn",
                              epsilon=1e-5),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("AveragePool", ["p"], ["a"], name="avg", kernel_shape=[2, 2], pads=[0, 0, 1, 1], strides=[2, 2],
                              count_include_pad=1),
             helper.make_node("Flatten", ["a"], ["f"], name="flatten", axis=1),
             helper.make_node("MatMul", ["f", "dense"], ["y"], name="dense")]
    inits = {"w": _f32(rng, 4, 3, 3, 3), "b": _f32(rng, 4), "scale": _f32(rng, 4), "bias": _f32(rng, 4),
             "mean": _f32(rng, 4), "var": np.abs(_f32(rng, 4)) + 0.5, "dense": _f32(rng, 36, 5)}
    return _model(nodes, [_vi("x", TensorProto.FLOAT, [1, 3, 10, 10])], [_vi("y", TensorProto.FLOAT, [1, 5])], inits)


def _arrays(rng: np.random.Generator) -> onnx.ModelProto:
    i64 = lambda *v: np.array(v, np.int64)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="transpose", perm=[0, 2, 1]),
             helper.make_node("Reshape", ["t", "shape"], ["r"], name="reshape"),
             helper.make_node("Gather", ["r", "idx"], ["g"], name="gather", axis=1),
             helper.make_node("Slice", ["r", "starts", "ends", "axes", "steps"], ["s"], name="slice"),
             helper.make_node("Concat", ["g", "s"], ["cat"], name="concat", axis=1),
             helper.make_node("Unsqueeze", ["cat", "ax0"], ["u"], name="unsqueeze"),
             helper.make_node("Squeeze", ["u", "ax0"], ["sq"], name="squeeze"),
             helper.make_node("Split", ["sq", "split"], ["s1", "s2"], name="split", axis=1),
             helper.make_node("Expand", ["s1", "eshape"], ["e"], name="expand"),
             helper.make_node("Tile", ["s2", "reps"], ["tl"], name="tile"),
             helper.make_node("Pad", ["tl", "pads"], ["pd"], name="pad", mode="constant"),
             helper.make_node("Shape", ["pd"], ["shp"], name="shape"),
             helper.make_node("ConstantOfShape", ["shp"], ["zeros"], name="zeros",
                              value=numpy_helper.from_array(np.array([0.5], np.float32))),
             helper.make_node("Add", ["pd", "zeros"], ["sum"], name="add"),
             helper.make_node("Cast", ["idx"], ["idxf"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Where", ["mask", "e", "zeros2"], ["w"], name="where"),
             helper.make_node("Range", ["r0", "r1", "r2"], ["rng"], name="range"),
             helper.make_node("OneHot", ["idx", "depth", "onoff"], ["oh"], name="onehot", axis=-1)]
    inits = {"shape": i64(2, 12), "idx": i64(0, -1, 3), "starts": i64(1), "ends": i64(9), "axes": i64(1),
             "steps": i64(2), "ax0": i64(0), "split": i64(3, 4), "eshape": i64(3, 2, 1), "reps": i64(1, 2),
             "pads": i64(0, 1, 1, 0), "mask": np.array([True, False, True]).reshape(3, 1, 1),
             "zeros2": np.zeros((1, 1, 3), np.float32), "r0": np.array(0, np.int64), "r1": np.array(7, np.int64),
             "r2": np.array(2, np.int64), "depth": np.array(4, np.int64), "onoff": np.array([0, 1], np.float32)}
    outs = [_vi("sum", TensorProto.FLOAT, [3, 9]), _vi("w", TensorProto.FLOAT, [3, 2, 3]),
            _vi("idxf", TensorProto.FLOAT, [3]), _vi("oh", TensorProto.FLOAT, [3, 4]), _vi("rng", TensorProto.INT64, [4])]
    return _model(nodes, [_vi("x", TensorProto.FLOAT, [2, 3, 4])], outs, inits)


def _norms(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], name="ln", axis=-1, epsilon=1e-5),
             helper.make_node("ReduceMean", ["ln", "axes"], ["m"], name="mean", keepdims=1),
             helper.make_node("Sub", ["ln", "m"], ["c"], name="sub"),
             helper.make_node("Mul", ["c", "c"], ["sq"], name="mul"),
             helper.make_node("ReduceSum", ["sq", "axes"], ["ss"], name="sum", keepdims=0),
             helper.make_node("Sqrt", ["ss"], ["rt"], name="sqrt"),
             helper.make_node("ArgMax", ["x"], ["am"], name="argmax", axis=1, keepdims=0),
             helper.make_node("Clip", ["c", "lo", "hi"], ["cl"], name="clip"),
             helper.make_node("Div", ["cl", "two"], ["d"], name="div"),
             helper.make_node("Pow", ["d", "two"], ["pw"], name="pow"),
             helper.make_node("ReduceMax", ["pw"], ["mx"], name="max", keepdims=1),
             helper.make_node("LogSoftmax", ["x"], ["ls"], name="logsoftmax", axis=1),
             helper.make_node("LeakyRelu", ["ls"], ["lr"], name="leaky", alpha=0.1),
             helper.make_node("GlobalAveragePool", ["x4"], ["gp"], name="gap")]
    inits = {"g": _f32(rng, 5), "b": _f32(rng, 5), "axes": np.array([1], np.int64), "lo": np.array(-1, np.float32),
             "hi": np.array(1, np.float32), "two": np.array(2, np.float32)}
    ins = [_vi("x", TensorProto.FLOAT, ["n", 5]), _vi("x4", TensorProto.FLOAT, [1, 2, 3, 3])]
    outs = [_vi("rt", TensorProto.FLOAT, ["n"]), _vi("am", TensorProto.INT64, ["n"]), _vi("mx", TensorProto.FLOAT, [1, 1]),
            _vi("lr", TensorProto.FLOAT, ["n", 5]), _vi("gp", TensorProto.FLOAT, [1, 2, 1, 1])]
    return _model(nodes, ins, outs, inits)


def _opset11(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], name="unsqueeze", axes=[0]),
             helper.make_node("Squeeze", ["u"], ["s"], name="squeeze", axes=[0]),
             helper.make_node("ReduceMean", ["s"], ["m"], name="mean", axes=[1], keepdims=1),
             helper.make_node("Split", ["s"], ["a", "b"], name="split", axis=1, split=[2, 4]),
             helper.make_node("Softmax", ["b"], ["sm"], name="softmax", axis=1),
             helper.make_node("Clip", ["a"], ["cl"], name="clip"),
             helper.make_node("Concat", ["cl", "sm", "m"], ["y"], name="concat", axis=1)]
    return _model(nodes, [_vi("x", TensorProto.FLOAT, [3, 6])], [_vi("y", TensorProto.FLOAT, [3, 7])], {}, opset=11)


def _ints(rng: np.random.Generator) -> onnx.ModelProto:
    """Integer arithmetic (division by zero, INT_MIN / -1) and indices that come from an input,
    so they are only known, and may be out of range, at run time."""
    nodes = [helper.make_node("Div", ["a", "b"], ["q"], name="div"),
             helper.make_node("Mod", ["a", "b"], ["r"], name="mod", fmod=0),
             helper.make_node("Pow", ["q", "two"], ["p"], name="pow"),
             helper.make_node("Cast", ["i"], ["i64"], name="cast", to=TensorProto.INT64),
             helper.make_node("Gather", ["table", "i64"], ["g"], name="gather", axis=0),
             helper.make_node("Equal", ["r", "zero"], ["eq"], name="eq"),
             helper.make_node("Not", ["eq"], ["ne"], name="not"),
             helper.make_node("Where", ["ne", "q", "r"], ["w"], name="where"),
             helper.make_node("ReduceProd", ["w"], ["prod"], name="prod", keepdims=0),
             helper.make_node("ArgMin", ["a"], ["amin"], name="argmin", axis=0, keepdims=1)]
    inits = {"two": np.array(2, np.int32), "zero": np.array(0, np.int32), "table": _f32(rng, 4, 3)}
    ins = [_vi("a", TensorProto.INT32, [4]), _vi("b", TensorProto.INT32, [4]), _vi("i", TensorProto.INT32, [2])]
    outs = [_vi("p", TensorProto.INT32, [4]), _vi("g", TensorProto.FLOAT, [2, 3]), _vi("prod", TensorProto.INT32, []),
            _vi("amin", TensorProto.INT64, [1])]
    return _model(nodes, ins, outs, inits)


def _external(rng: np.random.Generator) -> onnx.ModelProto:
    """The MLP with its initializers in WEIGHTS_FILE next to the model (see external_weights)."""
    model = _mlp(np.random.default_rng(11))
    offset = 0
    for init in model.graph.initializer:
        raw = numpy_helper.to_array(init).tobytes()
        init.ClearField("float_data")
        init.ClearField("raw_data")
        init.data_location = TensorProto.EXTERNAL
        for key, value in (("location", WEIGHTS_FILE), ("offset", str(offset)), ("length", str(len(raw)))):
            init.external_data.add(key=key, value=value)
        offset += len(raw)
    return model


def external_weights() -> bytes:
    """The bytes of WEIGHTS_FILE for the external-data model (the MLP's initializers in order)."""
    model = _mlp(np.random.default_rng(11))
    return b"".join(numpy_helper.to_array(i).tobytes() for i in model.graph.initializer)


BUILDERS: dict[str, Callable[[np.random.Generator], onnx.ModelProto]] = {
    "mlp": _mlp, "cnn": _cnn, "arrays": _arrays, "norms": _norms, "opset11": _opset11, "ints": _ints,
    "external": _external}


@functools.cache
def seed_models() -> dict[str, bytes]:
    """Each seed model serialized (built once per process)."""
    return {name: build(np.random.default_rng(i)).SerializeToString() for i, (name, build) in enumerate(BUILDERS.items())}

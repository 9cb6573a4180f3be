"""Export rules for the softmax family, the cross-entropies, convolution and pooling.

ONNX convolutions and pools are NCHW with OIHW weights; graphc's NHWC tensors are transposed
around them and its HWIO filters transposed once. TF's SAME padding puts the odd pixel at the
end, which is ONNX's SAME_UPPER; explicit pads are written when the spatial size is known.
"""
from __future__ import annotations

import numpy as np

from ...ir.dtypes import int64, promote
from ...ir.node import Node
from ...ops.conv import window_output
from .export_rules import ExportContext, rule

_TO_NCHW = [0, 3, 1, 2]
_TO_NHWC = [0, 2, 3, 1]


@rule("Softmax", "LogSoftmax")
def _softmax(ctx, node):
    return [ctx.op(node.type, [ctx.input(node, 0)], axis=int(node.attrs["axis"]))]


@rule("SoftmaxCrossEntropyWithLogits")
def _softmax_xent(ctx, node):
    """-sum(labels * log_softmax(logits)) with 0 * -inf counted as 0, as graphc does."""
    dtype = node.outputs[0].dtype
    axis = int(node.attrs["axis"])
    labels, logits = ctx.input(node, 0, dtype), ctx.input(node, 1, dtype)
    logp = ctx.op("LogSoftmax", [logits], axis=axis)
    zero = ctx.const(np.zeros((), dtype.np), hint="zero")
    terms = ctx.op("Where", [ctx.op("Equal", [labels, zero]), zero, ctx.op("Mul", [labels, logp])])
    return [ctx.op("Neg", [ctx.reduce("ReduceSum", terms, [axis], keepdims=False)])]


@rule("SparseSoftmaxCrossEntropyWithLogits")
def _sparse_softmax_xent(ctx, node):
    logp = ctx.op("LogSoftmax", [ctx.input(node, 1)], axis=-1)
    labels = ctx.op("Unsqueeze", [ctx.input(node, 0, int64), ctx.ints([-1], "axes")])
    picked = ctx.op("GatherElements", [logp, labels], axis=-1)
    return [ctx.op("Neg", [ctx.op("Squeeze", [picked, ctx.ints([-1], "axes")])])]


def _spatial(node: Node, x_shape, data_format: str):
    if x_shape is None:
        return None, None
    return (x_shape[1], x_shape[2]) if data_format == "NHWC" else (x_shape[2], x_shape[3])


def _padding_attrs(node: Node, hw, kernel, strides, dilations) -> dict:
    """ONNX pads / auto_pad for graphc's padding attribute."""
    pad = node.attrs["padding"]
    if pad == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if pad == "SAME":
        if hw[0] is None or hw[1] is None:
            return {"auto_pad": "SAME_UPPER"}
        (t, b), (l_, r) = (window_output(hw[i], kernel[i], strides[i], dilations[i], "SAME")[1] for i in range(2))
        return {"pads": [t, l_, b, r]}
    (t, b), (l_, r) = pad
    return {"pads": [t, l_, b, r]}


def _nchw(ctx: ExportContext, node: Node, name: str) -> str:
    return ctx.op("Transpose", [name], perm=_TO_NCHW) if node.attrs["data_format"] == "NHWC" else name


def _back(ctx: ExportContext, node: Node, name: str) -> str:
    return ctx.op("Transpose", [name], perm=_TO_NHWC) if node.attrs["data_format"] == "NHWC" else name


@rule("Conv2D")
def _conv2d(ctx, node):
    x_t, f_t = node.inputs
    dtype = promote(x_t.dtype, f_t.dtype)
    if f_t.shape is None:
        raise ctx.unsupported(node, "exporting it needs the filters' shape")
    kernel = f_t.shape[:2]
    strides, dilations = node.attrs["strides"], node.attrs["dilations"]
    hw = _spatial(node, x_t.shape, node.attrs["data_format"])
    x = _nchw(ctx, node, ctx.input(node, 0, dtype))
    w = ctx.op("Transpose", [ctx.input(node, 1, dtype)], perm=[3, 2, 0, 1])  # HWIO -> OIHW
    y = ctx.op("Conv", [x, w], kernel_shape=list(kernel), strides=list(strides), dilations=list(dilations),
               group=int(node.attrs.get("groups", 1)), **_padding_attrs(node, hw, kernel, strides, dilations))
    return [_back(ctx, node, y)]


@rule("MaxPool", "AvgPool")
def _pool(ctx, node):
    x_t = node.inputs[0]
    kernel, strides = node.attrs["ksize"], node.attrs["strides"]
    hw = _spatial(node, x_t.shape, node.attrs["data_format"])
    x = _nchw(ctx, node, ctx.input(node, 0))
    dilations = tuple(node.attrs.get("dilations") or (1, 1))
    attrs = _padding_attrs(node, hw, kernel, strides, dilations)
    if node.type == "AvgPool":
        y = ctx.op("AveragePool", [x], kernel_shape=list(kernel), strides=list(strides), count_include_pad=0,
                   **attrs)
    else:
        if dilations != (1, 1):
            attrs["dilations"] = list(dilations)
        y = ctx.op("MaxPool", [x], kernel_shape=list(kernel), strides=list(strides), **attrs)
    return [_back(ctx, node, y)]



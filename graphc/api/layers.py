"""gc.layers: TF1's functional layers, each in a variable scope of its own (`dense`,
`dense_1`, ... or the name given) holding its variables, so `reuse=True` shares them.

batch_normalization normalizes with the batch's moments when training and with its moving
averages otherwise; in training it also moves the averages (momentum), and its output depends
on those assignments, so running anything computed from the layer updates them; they are
also in the gc.GraphKeys.UPDATE_OPS collection, for TF1 code that runs them explicitly.
`training` may be a Python bool or a bool tensor (then both forms are built and one is picked,
and the averages move only when it is true).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import GraphcError, ShapeError
from ..ir.tensor import Tensor
from . import array, math, nn
from .control import control_dependencies, identity
from .control_flow import cond
from .convert import convert_to_tensor
from .initializers import ones_initializer, zeros_initializer
from .layer_objects import (
    GRU,
    LSTM,
    Add,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    Layer,
    LayerNormalization,
    MaxPooling2D,
    Reshape,
    SimpleRNN,
)
from .scopes import get_variable, variable_scope

UPDATE_OPS = "update_ops"
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": nn.relu, "sigmoid": math.sigmoid, "tanh": math.tanh, "softmax": nn.softmax, "elu": nn.elu,
    "selu": nn.selu, "gelu": nn.gelu, "softplus": nn.softplus, "swish": nn.swish, "linear": lambda x: x,
}


def _activation(activation: Any) -> Callable[[Tensor], Tensor] | None:
    if activation is None or callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise GraphcError(f"unknown activation {activation!r}; use a function or one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


def _last_dim(x: Tensor, what: str) -> int:
    if x.shape is None or x.shape[-1] is None:
        raise ShapeError(f"{what} needs the last dimension of its input known, got shape {x.shape}")
    return int(x.shape[-1])


def dense(inputs: Any, units: int, activation: Any = None, use_bias: bool = True, kernel_initializer: Any = None,
          bias_initializer: Any = None, trainable: bool = True, name: str | None = None, reuse: Any = None) -> Tensor:
    """activation(inputs @ kernel + bias) over the last axis; kernel [in, units] (Glorot uniform)."""
    x = convert_to_tensor(inputs)
    with variable_scope(name, default_name="dense", reuse=reuse):
        kernel = get_variable("kernel", [_last_dim(x, "dense"), units], dtype=x.dtype, initializer=kernel_initializer,
                              trainable=trainable)
        y = math.matmul(x, kernel) if x.ndim == 2 else _last_axis_product(x, kernel)
        if use_bias:
            y = nn.bias_add(y, get_variable("bias", [units], dtype=x.dtype,
                                            initializer=bias_initializer or zeros_initializer(), trainable=trainable))
        act = _activation(activation)
        return act(y) if act is not None else y


def _last_axis_product(x: Tensor, kernel: Tensor) -> Tensor:
    from .composite import tensordot

    return tensordot(x, kernel, [[x.ndim - 1], [0]])


def conv2d(inputs: Any, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
           data_format: str = "channels_last", dilation_rate: Any = (1, 1), activation: Any = None,
           use_bias: bool = True, kernel_initializer: Any = None, bias_initializer: Any = None,
           trainable: bool = True, name: str | None = None, reuse: Any = None) -> Tensor:
    x = convert_to_tensor(inputs)
    fmt = {"channels_last": "NHWC", "channels_first": "NCHW"}.get(data_format)
    if fmt is None:
        raise GraphcError(f"data_format must be channels_last or channels_first, got {data_format!r}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    channels = x.shape[-1] if fmt == "NHWC" else x.shape[1]
    if channels is None:
        raise ShapeError(f"conv2d needs the input's channels known, got shape {x.shape}")
    with variable_scope(name, default_name="conv2d", reuse=reuse):
        kernel = get_variable("kernel", [kh, kw, int(channels), filters], dtype=x.dtype,
                              initializer=kernel_initializer, trainable=trainable)
        y = nn.conv2d(x, kernel, strides=_two(strides), padding=padding.upper(), data_format=fmt,
                      dilations=_two(dilation_rate))
        if use_bias:
            bias = get_variable("bias", [filters], dtype=x.dtype, initializer=bias_initializer or zeros_initializer(),
                                trainable=trainable)
            y = nn.bias_add(y, bias, data_format=fmt)
        act = _activation(activation)
        return act(y) if act is not None else y


def _two(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, (int, np.integer)) else [int(d) for d in v]


def _pool(op: Any, inputs: Any, pool_size: Any, strides: Any, padding: str, data_format: str) -> Tensor:
    fmt = "NHWC" if data_format == "channels_last" else "NCHW"
    size, step = _two(pool_size), _two(strides)
    return op(convert_to_tensor(inputs), ksize=size, strides=step, padding=padding.upper(), data_format=fmt)


def max_pooling2d(inputs: Any, pool_size: Any, strides: Any, padding: str = "valid",
                  data_format: str = "channels_last", name: str | None = None) -> Tensor:
    return _pool(nn.max_pool2d, inputs, pool_size, strides, padding, data_format)


def average_pooling2d(inputs: Any, pool_size: Any, strides: Any, padding: str = "valid",
                      data_format: str = "channels_last", name: str | None = None) -> Tensor:
    return _pool(nn.avg_pool2d, inputs, pool_size, strides, padding, data_format)


def flatten(inputs: Any, name: str | None = None) -> Tensor:
    """[batch, ...] -> [batch, product of the rest]."""
    x = convert_to_tensor(inputs)
    rest = x.shape[1:] if x.shape is not None else None
    if rest is None or None in rest:
        raise ShapeError(f"flatten needs every dimension after the batch known, got {x.shape}")
    return array.reshape(x, [-1, int(np.prod(rest, dtype=np.int64))], name=name)


def dropout(inputs: Any, rate: float = 0.5, noise_shape: Any = None, seed: int | None = None,
            training: Any = False, name: str | None = None) -> Tensor:
    """Drop units at `rate` when training (scaling the kept ones), identity otherwise."""
    x = convert_to_tensor(inputs)
    if isinstance(training, bool):
        return nn.dropout(x, rate=rate, noise_shape=noise_shape, seed=seed) if training else identity(x)
    flag = convert_to_tensor(training)
    if x.shape is not None and None not in x.shape:   # a branch draws only when training
        return cond(flag, lambda: nn.dropout(x, rate=rate, noise_shape=noise_shape, seed=seed), lambda: identity(x))
    # a draw in a branch needs a shape known when building; with a free batch size pick after
    # drawing (an unfed learning phase is a constant False, so compiling drops the draw)
    return math.where(flag, nn.dropout(x, rate=rate, noise_shape=noise_shape, seed=seed), x)


def batch_normalization(inputs: Any, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                        center: bool = True, scale: bool = True, training: Any = False, trainable: bool = True,
                        name: str | None = None, reuse: Any = None) -> Tensor:
    x = convert_to_tensor(inputs)
    axis %= x.ndim
    if x.shape[axis] is None:
        raise ShapeError(f"batch_normalization needs the size of axis {axis} known, got {x.shape}")
    n = int(x.shape[axis])
    reduce_axes = [d for d in range(x.ndim) if d != axis]
    shape = [n if d == axis else 1 for d in range(x.ndim)]
    with variable_scope(name, default_name="batch_normalization", reuse=reuse):
        gamma = get_variable("gamma", [n], x.dtype, ones_initializer(), trainable=trainable) if scale else None
        beta = get_variable("beta", [n], x.dtype, zeros_initializer(), trainable=trainable) if center else None
        moving_mean = get_variable("moving_mean", [n], x.dtype, zeros_initializer(), trainable=False)
        moving_var = get_variable("moving_variance", [n], x.dtype, ones_initializer(), trainable=False)

        def normalized(mean: Tensor, var: Tensor) -> Tensor:
            y = math.multiply(math.subtract(x, array.reshape(mean, shape)),
                              math.rsqrt(math.add(array.reshape(var, shape), epsilon)))
            if gamma is not None:
                y = math.multiply(y, array.reshape(gamma, shape))
            return math.add(y, array.reshape(beta, shape)) if beta is not None else y

        if training is False:
            return normalized(moving_mean, moving_var)
        batch_mean, batch_var = nn.moments(x, reduce_axes)
        use_batch = training is True or None
        new_mean = math.add(math.multiply(moving_mean, momentum), math.multiply(batch_mean, 1.0 - momentum))
        new_var = math.add(math.multiply(moving_var, momentum), math.multiply(batch_var, 1.0 - momentum))
        if use_batch is None:   # a bool tensor: move the averages only when it is true
            flag = convert_to_tensor(training)
            new_mean = math.where(flag, new_mean, moving_mean)
            new_var = math.where(flag, new_var, moving_var)
        updates = [moving_mean.assign(new_mean), moving_var.assign(new_var)]
        graph = x.graph
        for u in updates:
            graph.add_to_collection(UPDATE_OPS, u)
        with control_dependencies(updates):
            if use_batch:
                return identity(normalized(batch_mean, batch_var))
            flag = convert_to_tensor(training)
            mean = math.where(flag, batch_mean, moving_mean)
            var = math.where(flag, batch_var, moving_var)
            return identity(normalized(mean, var))


__all__ = [
    "GRU",
    "LSTM",
    "Add",
    "AveragePooling2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "Layer",
    "LayerNormalization",
    "MaxPooling2D",
    "Reshape",
    "SimpleRNN",
    "average_pooling2d",
    "batch_normalization",
    "conv2d",
    "dense",
    "dropout",
    "flatten",
    "max_pooling2d",
]

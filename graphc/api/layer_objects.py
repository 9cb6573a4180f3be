"""Keras-named layer objects: a layer's variables are made on its first call, from the input
it gets (the input size is found then), in a variable scope of its own (`dense`, `dense_1`,
...); later calls reuse them. Each wraps the functional layer of gc.layers, so the two agree.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.graph import get_default_graph
from ..ir.tensor import Tensor
from .scopes import AUTO_REUSE, get_variable_scope_name
from .variables import Variable, global_variables, trainable_variables


def _fn() -> Any:
    """gc.layers (the functional layers), which imports this module to offer its classes."""
    from . import layers

    return layers


class Layer:
    """Base: `__call__(x, training=False)`; `variables`, `trainable_variables` once called."""

    default_name = "layer"

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._scope: str | None = None   # the variable scope (relative to where it was first called)
        self._prefix: str | None = None  # the full scope, to find its variables
        self._graph: Any = None
        self.built = False

    def __call__(self, inputs: Any, training: Any = False) -> Tensor:
        if self._scope is None:
            self._scope = self.name or _fresh_scope(self.default_name)
            outer = get_variable_scope_name()
            self._prefix = f"{outer}/{self._scope}" if outer else self._scope
            self._graph = get_default_graph()
        out = self.call(inputs, training)
        self.built = True
        return out

    def call(self, inputs: Any, training: Any) -> Tensor:
        raise NotImplementedError

    @property
    def variables(self) -> list[Variable]:
        if self._prefix is None:
            return []
        start = self._prefix + "/"   # its own variables, not optimizer slots (dense/kernel/Adam)
        return [v for v in global_variables(self._graph)
                if v.op.name.startswith(start) and "/" not in v.op.name[len(start):]]

    @property
    def trainable_variables(self) -> list[Variable]:
        mine = {id(v) for v in self.variables}
        return [v for v in trainable_variables(self._graph) if id(v) in mine]

    def count_params(self) -> int:
        return int(sum(np.prod(v.shape, dtype=np.int64) for v in self.variables))


def _fresh_scope(base: str) -> str:
    """base, base_1, ... : the first name no variable or op of this scope uses yet."""
    graph = get_default_graph()
    outer = get_variable_scope_name(graph)
    taken = {v.op.name for v in global_variables(graph)}
    k, name = 0, base
    while any(t.startswith(f"{outer}/{name}/".lstrip("/")) for t in taken) or name in _claimed.setdefault(
            (id(graph), outer), set()):
        k += 1
        name = f"{base}_{k}"
    _claimed[(id(graph), outer)].add(name)
    return name


_claimed: dict[tuple[int, str], set[str]] = {}   # scope names given to layers without variables yet


class Dense(Layer):
    default_name = "dense"

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True, kernel_initializer: Any = None,
                 bias_initializer: Any = None, name: str | None = None) -> None:
        super().__init__(name)
        self.units, self.activation, self.use_bias = units, activation, use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    def call(self, inputs: Any, training: Any) -> Tensor:
        return _fn().dense(inputs, self.units, self.activation, self.use_bias, self.kernel_initializer,
                        self.bias_initializer, name=self._scope, reuse=AUTO_REUSE)


class Conv2D(Layer):
    default_name = "conv2d"

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 data_format: str = "channels_last", activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = None, name: str | None = None) -> None:
        super().__init__(name)
        self.args = {"filters": filters, "kernel_size": kernel_size, "strides": strides, "padding": padding,
                         "data_format": data_format, "activation": activation, "use_bias": use_bias,
                         "kernel_initializer": kernel_initializer}

    def call(self, inputs: Any, training: Any) -> Tensor:
        return _fn().conv2d(inputs, name=self._scope, reuse=AUTO_REUSE, **self.args)


class _Pooling(Layer):
    op = ""   # the function of gc.layers

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str = "channels_last", name: str | None = None) -> None:
        super().__init__(name)
        self.pool_size, self.strides = pool_size, strides if strides is not None else pool_size
        self.padding, self.data_format = padding, data_format

    def call(self, inputs: Any, training: Any) -> Tensor:
        return getattr(_fn(), self.op)(inputs, self.pool_size, self.strides, self.padding, self.data_format)


class MaxPooling2D(_Pooling):
    default_name = "max_pooling2d"
    op = "max_pooling2d"


class AveragePooling2D(_Pooling):
    default_name = "average_pooling2d"
    op = "average_pooling2d"


class Flatten(Layer):
    default_name = "flatten"

    def call(self, inputs: Any, training: Any) -> Tensor:
        return _fn().flatten(inputs)


class Dropout(Layer):
    default_name = "dropout"

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.rate, self.seed = rate, seed

    def call(self, inputs: Any, training: Any) -> Tensor:
        return _fn().dropout(inputs, self.rate, seed=self.seed, training=training)


class BatchNormalization(Layer):
    default_name = "batch_normalization"

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, name: str | None = None) -> None:
        super().__init__(name)
        self.args = {"axis": axis, "momentum": momentum, "epsilon": epsilon, "center": center, "scale": scale}

    def call(self, inputs: Any, training: Any) -> Tensor:
        return _fn().batch_normalization(inputs, training=training, name=self._scope, reuse=AUTO_REUSE, **self.args)


__all__ = ["AveragePooling2D", "BatchNormalization", "Conv2D", "Dense", "Dropout", "Flatten", "Layer",
           "MaxPooling2D"]

"""Keras-named layer objects: a layer's variables are made on its first call, from the input
it gets (the input size is found then), in a variable scope of its own (`dense`, `dense_1`,
...); later calls reuse them. Each wraps the functional layer of gc.layers, so the two agree.
"""
from __future__ import annotations

import weakref
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
    """Base: `__call__(x, training=None)`; `variables`, `trainable_variables` once called.

    training=None means the graph's learning phase (a bool placeholder that defaults to False,
    fed True by a model's training step) where the graph has one (gc.Input makes it), else
    False; True or False pick the form when building."""

    default_name = "layer"

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._scope: str | None = None   # the variable scope (relative to where it was first called)
        self._prefix: str | None = None  # the full scope, to find its variables
        self._graph: Any = None
        self.built = False

    def __call__(self, inputs: Any, training: Any = None) -> Tensor:
        if self._scope is None:
            self._scope = self.name or _fresh_scope(self.default_name)
            outer = get_variable_scope_name()
            self._prefix = f"{outer}/{self._scope}" if outer else self._scope
            self._graph = get_default_graph()
            _called.setdefault(self._graph, []).append(self)
        if training is None:   # Keras: the graph's learning phase where a gc.Input made one, else inference
            training = existing_learning_phase(get_default_graph())
            training = False if training is None else training
        out = self.call(inputs, training)
        self.output_shape = getattr(out, "shape", None)
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
    claimed = _claimed.setdefault(graph, {}).setdefault(outer, set())
    while any(t.startswith(f"{outer}/{name}/".lstrip("/")) for t in taken) or name in claimed:
        k += 1
        name = f"{base}_{k}"
    claimed.add(name)
    return name


LEARNING_PHASE = "keras_learning_phase"


def existing_learning_phase(graph: Any) -> Tensor | None:
    found = graph.get_collection(LEARNING_PHASE)
    return found[0] if found else None


def learning_phase(graph: Any = None) -> Tensor:
    """The graph's learning phase: a bool scalar that is False unless fed (Keras' TF1 backend
    `K.learning_phase()`); layers called with training=None follow it, and a model's training
    step feeds True, so one graph serves both training and inference."""
    from .variables import placeholder_with_default

    graph = graph or get_default_graph()
    found = existing_learning_phase(graph)
    if found is None:
        with graph.as_default(), graph.name_scope(None):
            found = placeholder_with_default(False, [], name=LEARNING_PHASE)
        graph.add_to_collection(LEARNING_PHASE, found)
    return found


def Input(shape: Any, batch_size: int | None = None, name: str | None = None, dtype: Any = None) -> Tensor:
    """Keras' `Input(shape=...)`: a placeholder of `[batch_size, *shape]` (batch size free by
    default) in the default graph, which gets a learning phase, for a functional gc.Model."""
    from ..ir.dtypes import float32
    from .variables import placeholder

    graph = get_default_graph()
    learning_phase(graph)
    return placeholder(dtype or float32, [batch_size, *tuple(shape)], name=name or "input")


def layers_called_in(graph: Any) -> list[Layer]:
    """Layer objects first called in `graph`, in call order (a model's summary lists them)."""
    return list(_called.get(graph, ()))


_called: weakref.WeakKeyDictionary[Any, list[Layer]] = weakref.WeakKeyDictionary()
# graph -> scope -> names given to layers (some make no variables): never given twice
_claimed: weakref.WeakKeyDictionary[Any, dict[str, set[str]]] = weakref.WeakKeyDictionary()


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


class Embedding(Layer):
    """Rows of an [input_dim, output_dim] table for integer ids (uniform in +-0.05 at first)."""

    default_name = "embedding"

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = None,
                 name: str | None = None) -> None:
        super().__init__(name)
        self.input_dim, self.output_dim, self.initializer = input_dim, output_dim, embeddings_initializer

    def call(self, inputs: Any, training: Any) -> Tensor:
        from .array import gather
        from .initializers import random_uniform_initializer
        from .scopes import get_variable, variable_scope

        with variable_scope(self._scope, reuse=AUTO_REUSE):
            table = get_variable("embeddings", [self.input_dim, self.output_dim],
                                 initializer=self.initializer or random_uniform_initializer(-0.05, 0.05))
        return gather(table, inputs)


class LayerNormalization(Layer):
    """Each example normalized over its last axis, then scaled (gamma) and shifted (beta)."""

    default_name = "layer_normalization"

    def __init__(self, axis: int = -1, epsilon: float = 1e-3, name: str | None = None) -> None:
        super().__init__(name)
        self.axis, self.epsilon = axis, epsilon

    def call(self, inputs: Any, training: Any) -> Tensor:
        from . import math
        from .convert import convert_to_tensor
        from .initializers import ones_initializer, zeros_initializer
        from .scopes import get_variable, variable_scope

        x = convert_to_tensor(inputs)
        size = x.shape[self.axis]
        with variable_scope(self._scope, reuse=AUTO_REUSE):
            gamma = get_variable("gamma", [size], x.dtype, ones_initializer())
            beta = get_variable("beta", [size], x.dtype, zeros_initializer())
        mean = math.reduce_mean(x, axis=self.axis, keepdims=True)
        centered = math.subtract(x, mean)
        var = math.reduce_mean(math.square(centered), axis=self.axis, keepdims=True)
        return math.add(math.multiply(math.multiply(centered, math.rsqrt(math.add(var, self.epsilon))), gamma), beta)


class Reshape(Layer):
    """Each example reshaped to `target_shape` (the batch axis kept; one entry may be -1)."""

    default_name = "reshape"

    def __init__(self, target_shape: Any, name: str | None = None) -> None:
        super().__init__(name)
        self.target_shape = [int(d) for d in target_shape]

    def call(self, inputs: Any, training: Any) -> Tensor:
        from .array import reshape

        return reshape(inputs, [-1, *self.target_shape])


class Concatenate(Layer):
    """Joins a list of tensors along `axis` (a functional model's merge of branches)."""

    default_name = "concatenate"

    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        super().__init__(name)
        self.axis = axis

    def call(self, inputs: Any, training: Any) -> Tensor:
        from .array import concat

        return concat(list(inputs), axis=self.axis)


class Add(Layer):
    """The sum of a list of tensors of one shape (a residual connection)."""

    default_name = "add"

    def call(self, inputs: Any, training: Any) -> Tensor:
        from .math import add_n

        return add_n(list(inputs))


class _Recurrent(Layer):
    """A cell run over time by gc.nn.dynamic_rnn (one loop node): the last output, or every one
    with return_sequences; with return_state, also the final state."""

    def __init__(self, units: int, return_sequences: bool = False, return_state: bool = False,
                 name: str | None = None, **cell_args: Any) -> None:
        super().__init__(name)
        self.units, self.return_sequences, self.return_state = units, return_sequences, return_state
        self.cell_args = cell_args
        self.cell: Any = None

    def make_cell(self) -> Any:
        raise NotImplementedError

    def call(self, inputs: Any, training: Any) -> Any:
        from .array import getitem
        from .rnn import dynamic_rnn

        if self.cell is None:
            self.cell = self.make_cell()
        outputs, state = dynamic_rnn(self.cell, inputs, dtype=getattr(inputs, "dtype", None), scope=self._scope)
        out = outputs if self.return_sequences else getitem(outputs, (slice(None), -1))
        return (out, state) if self.return_state else out

    @property
    def variables(self) -> list[Variable]:
        return self.cell.variables if self.cell is not None else []


class SimpleRNN(_Recurrent):
    default_name = "simple_rnn"

    def make_cell(self) -> Any:
        from .rnn_cell import BasicRNNCell

        return BasicRNNCell(self.units, name=self._scope, **self.cell_args)


class LSTM(_Recurrent):
    default_name = "lstm"

    def make_cell(self) -> Any:
        from .rnn_cell import LSTMCell

        return LSTMCell(self.units, name=self._scope, **self.cell_args)


class GRU(_Recurrent):
    default_name = "gru"

    def make_cell(self) -> Any:
        from .rnn_cell import GRUCell

        return GRUCell(self.units, name=self._scope, **self.cell_args)


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
    "learning_phase",
]

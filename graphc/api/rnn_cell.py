"""`gc.nn.rnn_cell`: TF1's recurrent cells (BasicRNNCell, LSTMCell, GRUCell, MultiRNNCell).

Each cell computes one time step, `cell(inputs, state) -> (output, new_state)`, with TF1's
equations, variable layout and names (one fused kernel per gate group, `[input_size +
num_units, k * num_units]`, applied to `concat([inputs, h])`), so weights and habits carry over.

Variables cannot be created inside a loop body (graphc raises: a loop's sub-graph holds no
state), so a cell creates its variables in `build(input_size, dtype)`, which `__call__` runs on
first use and `gc.nn.dynamic_rnn` runs *before* tracing its loop; inside the loop the cell only
reads them (they are captured like any outer tensor).
"""
from __future__ import annotations

import math as _math
from collections import namedtuple
from typing import Any, Callable, Sequence

from ..errors import GraphcError, ShapeError
from ..ir.dtypes import as_dtype, float32
from ..ir.function import FuncGraph
from ..ir.graph import get_default_graph
from ..ir.tensor import Tensor
from . import array, math, nest
from .convert import constant, convert_to_tensor
from .random import random_uniform
from .variables import Variable


class LSTMStateTuple(namedtuple("LSTMStateTuple", ("c", "h"))):
    """The state of an LSTMCell: the memory `c` and the output `h`, each [batch, num_units]."""

    __slots__ = ()

    @property
    def dtype(self) -> Any:
        return convert_to_tensor(self.c).dtype


_ACTIVATIONS: dict[str, Callable[[Any], Tensor]] = {"tanh": math.tanh, "sigmoid": math.sigmoid}


def _activation(activation: Any) -> Callable[[Any], Tensor]:
    """A callable, a name ("tanh", "relu", ...) or None (tanh, TF1's default)."""
    if activation is None:
        return math.tanh
    if callable(activation):
        return activation
    if isinstance(activation, str):
        if activation in _ACTIVATIONS:
            return _ACTIVATIONS[activation]
        # nn imports this module, so its activations are looked up when a cell is made
        from . import nn
        fn = getattr(nn, activation, None)
        if callable(fn):
            return fn
    raise GraphcError(f"unknown activation {activation!r}: pass a callable or a name such as 'tanh' or 'relu'")


def glorot_uniform(shape: Sequence[int], dtype: Any, seed: int | None) -> Tensor:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), Keras' and TF2's default kernel init."""
    limit = _math.sqrt(6.0 / (shape[0] + shape[1]))
    return random_uniform(list(shape), -limit, limit, dtype=dtype, seed=seed)


class RNNCell:
    """The base of the cells: variable bookkeeping, zero_state and the build-on-first-call rule.

    Subclasses define `state_size`, `output_size`, `_build(input_size, dtype)` (creating variables
    with `_add_variable`) and `_step(inputs, state)`."""

    _default_name = "rnn_cell"

    def __init__(self, num_units: int, activation: Any = None, name: str | None = None,
                 seed: int | None = None, dtype: Any = None) -> None:
        if int(num_units) <= 0:
            raise GraphcError(f"{type(self).__name__} needs num_units > 0, got {num_units!r}")
        self._num_units = int(num_units)
        self._activation = _activation(activation)
        self._name = name or self._default_name
        self._seed = seed
        self._dtype = None if dtype is None else as_dtype(dtype)
        self._variables: list[Variable] = []
        self.built = False
        self.input_size: int | None = None

    # ---------------------------------------------------------------- structure
    @property
    def state_size(self) -> Any:
        return self._num_units

    @property
    def output_size(self) -> int:
        return self._num_units

    @property
    def name(self) -> str:
        return self._name

    @property
    def variables(self) -> list[Variable]:
        return list(self._variables)

    @property
    def trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables if v.trainable]

    @property
    def weights(self) -> list[Variable]:
        """Keras' name for `variables`."""
        return self.variables

    def zero_state(self, batch_size: Any, dtype: Any = float32) -> Any:
        """Zeros of the state's structure, each [batch_size, size]; batch_size may be a scalar tensor."""
        dtype = as_dtype(dtype)
        return nest.pack_sequence_as(self.state_size, [array.zeros([batch_size, s], dtype)
                                                       for s in nest.flatten(self.state_size)])

    # ---------------------------------------------------------------- variables
    def build(self, input_size: int, dtype: Any = None) -> None:
        """Create the variables for inputs of `input_size` features (once). Call it before a
        loop that uses the cell: variables cannot be created inside a loop body."""
        if self.built:
            if input_size != self.input_size:
                raise ShapeError(f"{type(self).__name__} '{self._name}' was built for {self.input_size} input "
                                 f"features, got {input_size}")
            return
        graph = get_default_graph()
        if isinstance(graph, FuncGraph):
            raise GraphcError(f"{type(self).__name__} '{self._name}' would create its variables inside "
                              f"'{graph.name}' (a loop body or a branch)",
                              hint="call cell.build(input_size, dtype) before the loop, or use gc.nn.dynamic_rnn")
        dtype = as_dtype(dtype) if dtype is not None else (self._dtype or float32)
        self._dtype = dtype
        with graph.name_scope(self._name):
            self._build(int(input_size), dtype)
        self.input_size = int(input_size)
        self.built = True

    def _build(self, input_size: int, dtype: Any) -> None:
        raise NotImplementedError

    def _add_variable(self, name: str, shape: Sequence[int], dtype: Any, init: Any) -> Variable:
        """A variable named `<cell scope>/name`, initialized by `init` (a callable of nothing:
        TF1 semantics with variables built under control_dependencies(None))."""
        var = Variable(init, dtype=dtype, name=name)
        if tuple(var.shape) != tuple(shape):
            raise ShapeError(f"variable '{var.name}' has shape {var.shape}, expected {tuple(shape)}")
        self._variables.append(var)
        return var

    def _kernel(self, name: str, shape: Sequence[int], dtype: Any, seed_offset: int) -> Variable:
        seed = None if self._seed is None else int(self._seed) + seed_offset
        return self._add_variable(name, shape, dtype, lambda: glorot_uniform(shape, dtype, seed))

    def _bias(self, name: str, size: int, dtype: Any, value: float = 0.0) -> Variable:
        return self._add_variable(name, (size,), dtype, lambda: array.fill([size], constant(value, dtype=dtype)))

    # ---------------------------------------------------------------- stepping
    def __call__(self, inputs: Any, state: Any, scope: Any = None) -> tuple[Tensor, Any]:
        """One step: (output, new_state). Builds the variables on first call from the inputs'
        static feature size (the last dimension must be known)."""
        x = convert_to_tensor(inputs)
        if not self.built:
            self.build(_feature_size(x, type(self).__name__), x.dtype)
        return self._step(x, state)

    def _step(self, inputs: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def _linear(self, parts: list[Any], kernel: Variable, bias: Variable) -> Tensor:
        return math.matmul(array.concat(parts, 1), kernel) + bias

    def __repr__(self) -> str:
        return f"<gc.nn.rnn_cell.{type(self).__name__} '{self._name}' num_units={self._num_units}>"


def _feature_size(x: Tensor, who: str) -> int:
    if x.shape is None or len(x.shape) != 2 or x.shape[-1] is None:
        raise ShapeError(f"{who} needs inputs of shape [batch, features] with a known feature size, "
                         f"got shape {x.shape}", hint="give the placeholder a static last dimension")
    return int(x.shape[-1])


class BasicRNNCell(RNNCell):
    """output = new_state = activation([inputs, state] @ kernel + bias)."""

    _default_name = "basic_rnn_cell"

    def __init__(self, num_units: int, activation: Any = None, reuse: Any = None, name: str | None = None,
                 dtype: Any = None, seed: int | None = None) -> None:
        super().__init__(num_units, activation, name, seed, dtype)

    def _build(self, input_size: int, dtype: Any) -> None:
        n = self._num_units
        self.kernel = self._kernel("kernel", (input_size + n, n), dtype, 0)
        self.bias = self._bias("bias", n, dtype)

    def _step(self, inputs: Tensor, state: Any) -> tuple[Tensor, Any]:
        out = self._activation(self._linear([inputs, state], self.kernel, self.bias))
        return out, out


class LSTMCell(RNNCell):
    """TF1's LSTMCell (no peepholes, no projection), state LSTMStateTuple(c, h):
        i, j, f, o = split([inputs, h] @ kernel + bias, 4)      (TF1's gate order)
        c' = sigmoid(f + forget_bias) * c + sigmoid(i) * activation(j)
        h' = sigmoid(o) * activation(c');  output = h'."""

    _default_name = "lstm_cell"

    def __init__(self, num_units: int, forget_bias: float = 1.0, activation: Any = None, reuse: Any = None,
                 name: str | None = None, dtype: Any = None, seed: int | None = None,
                 state_is_tuple: bool = True) -> None:
        if not state_is_tuple:
            raise GraphcError("LSTMCell supports state_is_tuple=True only (TF1 deprecated the concatenated state)")
        super().__init__(num_units, activation, name, seed, dtype)
        self._forget_bias = float(forget_bias)

    @property
    def state_size(self) -> LSTMStateTuple:
        return LSTMStateTuple(self._num_units, self._num_units)

    def _build(self, input_size: int, dtype: Any) -> None:
        n = self._num_units
        self.kernel = self._kernel("kernel", (input_size + n, 4 * n), dtype, 0)
        self.bias = self._bias("bias", 4 * n, dtype)

    def _step(self, inputs: Tensor, state: Any) -> tuple[Tensor, Any]:
        c, h = state
        i, j, f, o = array.split(self._linear([inputs, h], self.kernel, self.bias), 4, axis=1)
        new_c = math.sigmoid(f + self._forget_bias) * c + math.sigmoid(i) * self._activation(j)
        new_h = math.sigmoid(o) * self._activation(new_c)
        return new_h, LSTMStateTuple(new_c, new_h)


BasicLSTMCell = LSTMCell


class GRUCell(RNNCell):
    """TF1's GRUCell (gates bias starts at 1, so the cell starts by keeping its state):
        r, u = split(sigmoid([inputs, h] @ gates/kernel + gates/bias), 2)
        c = activation([inputs, r * h] @ candidate/kernel + candidate/bias)
        h' = u * h + (1 - u) * c;  output = h'."""

    _default_name = "gru_cell"

    def __init__(self, num_units: int, activation: Any = None, reuse: Any = None, name: str | None = None,
                 dtype: Any = None, seed: int | None = None) -> None:
        super().__init__(num_units, activation, name, seed, dtype)

    def _build(self, input_size: int, dtype: Any) -> None:
        n = self._num_units
        graph = get_default_graph()
        with graph.name_scope("gates"):
            self.gate_kernel = self._kernel("kernel", (input_size + n, 2 * n), dtype, 0)
            self.gate_bias = self._bias("bias", 2 * n, dtype, 1.0)
        with graph.name_scope("candidate"):
            self.candidate_kernel = self._kernel("kernel", (input_size + n, n), dtype, 1)
            self.candidate_bias = self._bias("bias", n, dtype)

    def _step(self, inputs: Tensor, state: Any) -> tuple[Tensor, Any]:
        r, u = array.split(math.sigmoid(self._linear([inputs, state], self.gate_kernel, self.gate_bias)), 2, axis=1)
        c = self._activation(self._linear([inputs, r * state], self.candidate_kernel, self.candidate_bias))
        new_h = u * state + (1 - u) * c
        return new_h, new_h


class MultiRNNCell(RNNCell):
    """Cells stacked in depth: cell k's output is cell k+1's input; the state is the tuple of the
    cells' states and the output the last cell's."""

    _default_name = "multi_rnn_cell"

    def __init__(self, cells: Sequence[RNNCell], state_is_tuple: bool = True, name: str | None = None) -> None:
        if not cells:
            raise GraphcError("MultiRNNCell needs at least one cell")
        if not state_is_tuple:
            raise GraphcError("MultiRNNCell supports state_is_tuple=True only")
        self._cells = list(cells)
        self._name = name or self._default_name
        self._variables = []
        self._dtype = None
        self.built = False
        self.input_size = None

    @property
    def cells(self) -> list[RNNCell]:
        return list(self._cells)

    @property
    def state_size(self) -> tuple:
        return tuple(c.state_size for c in self._cells)

    @property
    def output_size(self) -> int:
        return self._cells[-1].output_size

    @property
    def variables(self) -> list[Variable]:
        return [v for c in self._cells for v in c.variables]

    def _build(self, input_size: int, dtype: Any) -> None:
        graph = get_default_graph()
        size = input_size
        for k, cell in enumerate(self._cells):
            with graph.name_scope(f"cell_{k}"):
                cell.build(size, dtype)
            size = cell.output_size

    def _step(self, inputs: Tensor, state: Any) -> tuple[Tensor, Any]:
        if not isinstance(state, (list, tuple)) or len(state) != len(self._cells):
            raise GraphcError(f"MultiRNNCell of {len(self._cells)} cells needs a tuple of {len(self._cells)} "
                              f"states, got {nest.describe(state)}")
        x, new_states = inputs, []
        for cell, s in zip(self._cells, state):
            x, s = cell(x, s)
            new_states.append(s)
        return x, tuple(new_states)

    def __repr__(self) -> str:
        return f"<gc.nn.rnn_cell.MultiRNNCell of {len(self._cells)} cells>"


__all__ = ["BasicLSTMCell", "BasicRNNCell", "GRUCell", "LSTMCell", "LSTMStateTuple", "MultiRNNCell", "RNNCell"]

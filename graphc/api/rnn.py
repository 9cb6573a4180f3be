"""`gc.nn.dynamic_rnn` and `gc.nn.bidirectional_dynamic_rnn` (TF1 semantics).

Both run a cell (graphc/api/rnn_cell.py) over time in ONE loop node (the While op, through the
scan machinery of control_flow.py): the graph, its compile time and its gradient do not grow
with the sequence length, and the time dimension may be unknown while building.

With `sequence_length`, each step computes a bool mask `t < length` per batch row and, as TF1
does, outputs zeros and copies the previous state through (gc.where) for rows past their end;
so the final state is each sequence's state at its own last step.

The backward direction of the bidirectional RNN walks the padded time axis from its end with
the same mask: a row stays at its initial state through its padding, then reads x[len-1], ...,
x[0]. That is exactly TF1's reverse_sequence -> dynamic_rnn -> reverse_sequence (every output
and the final state equal), without the two gathers, and the outputs come out already in input
order because a reverse loop stacks its per-step values from the end.
"""
from __future__ import annotations

from typing import Any

from ..errors import DTypeError, GraphcError, ShapeError
from ..ir.dtypes import as_dtype, int32
from ..ir.tensor import Tensor
from . import array, math, nest
from .control_flow import _sequence_loop
from .convert import convert_to_tensor
from .rnn_cell import RNNCell


def _time_major(x: Tensor, time_major: bool) -> Tensor:
    """Swap the batch and time axes unless the inputs are time major already (the loop walks axis 0)."""
    if x.shape is None or len(x.shape) < 3:
        raise ShapeError(f"dynamic_rnn needs inputs of rank 3 ([batch, time, depth], or [time, batch, depth] "
                         f"with time_major=True), got shape {x.shape}")
    if time_major:
        return x
    return array.transpose(x, [1, 0] + list(range(2, len(x.shape))))


def _dim(x: Tensor, axis: int) -> Any:
    """The static size of x's axis, or a scalar int32 tensor computed at run time."""
    d = x.shape[axis]
    return d if d is not None else array.shape(x)[axis]


def _lengths(sequence_length: Any, batch: Any) -> Tensor:
    lengths = convert_to_tensor(sequence_length)
    if not lengths.dtype.is_integer:
        raise DTypeError(f"sequence_length must hold integers, got {lengths.dtype.name}")
    if lengths.shape is not None and (len(lengths.shape) != 1 or (
            isinstance(batch, int) and lengths.shape[0] not in (None, batch))):
        raise ShapeError(f"sequence_length must be a vector of {batch} lengths (one per batch row), "
                         f"got shape {lengths.shape}")
    return math.cast(lengths, int32)


def _build_cell(cell: RNNCell, x_tm: Tensor, dtype: Any) -> None:
    """Variables exist before the loop is traced (a loop body cannot create them)."""
    if not callable(cell) or not hasattr(cell, "state_size"):
        raise GraphcError(f"dynamic_rnn needs an RNN cell (gc.nn.rnn_cell.*), got {cell!r}")
    if getattr(cell, "built", True):
        return
    depth = x_tm.shape[-1]
    if depth is None or len(x_tm.shape) != 3:
        raise ShapeError(f"dynamic_rnn needs inputs whose last (feature) dimension is known, got shape {x_tm.shape}")
    cell.build(int(depth), dtype)


def _run(cell: RNNCell, x_tm: Tensor, lengths: Tensor | None, state: Any, reverse: bool) -> tuple[Tensor, Any]:
    """The loop: (outputs stacked [time, batch, output_size] in input order, final state)."""
    stash: dict[str, Tensor] = {}

    def step(acc: Any, x_t: Tensor) -> Any:
        t, prev = acc if lengths is not None else (None, acc)
        output, new = cell(x_t, prev)
        nest.assert_same_structure(prev, new, "the cell returns a state of another structure than it takes")
        if lengths is not None:
            valid = array.expand_dims(math.less(t, lengths), 1)        # [batch, 1]
            output = math.where(valid, output, 0.0)
            new = nest.pack_sequence_as(prev, [math.where(valid, n, p) for n, p in
                                               zip(nest.flatten(new), nest.flatten(prev))])
            stash["output"] = output
            return (t - 1 if reverse else t + 1), new
        stash["output"] = output
        return new

    if lengths is not None:
        start = _dim(x_tm, 0) - 1 if reverse else 0
        init: Any = (math.cast(convert_to_tensor(start), int32), state)
    else:
        init = state
    finals, stacked = _sequence_loop(step, x_tm, init, reverse, "while", True, True,
                                     lambda acc, elem: stash["output"])
    final = nest.pack_sequence_as(init, finals)
    return stacked[0], (final[1] if lengths is not None else final)


def _rnn(cell: RNNCell, inputs: Any, sequence_length: Any, initial_state: Any, dtype: Any, time_major: bool,
         scope: str, reverse: bool) -> tuple[Tensor, Any]:
    x = convert_to_tensor(inputs)
    graph = x.graph
    with graph.as_default(), graph.name_scope(scope):
        x_tm = _time_major(x, time_major)
        batch = _dim(x_tm, 1)
        if initial_state is not None:
            state = nest.pack_sequence_as(initial_state, [convert_to_tensor(s) for s in nest.flatten(initial_state)])
            dtype = as_dtype(dtype) if dtype is not None else nest.flatten(state)[0].dtype
        else:
            dtype = as_dtype(dtype) if dtype is not None else x.dtype
        if not dtype.is_floating:
            raise DTypeError(f"dynamic_rnn computes in a float dtype, got {dtype.name}")
        if x.dtype != dtype:
            x_tm = math.cast(x_tm, dtype)
        _build_cell(cell, x_tm, dtype)
        if initial_state is None:
            state = cell.zero_state(batch, dtype)
        lengths = _lengths(sequence_length, batch) if sequence_length is not None else None
        outputs, final = _run(cell, x_tm, lengths, state, reverse)
        if not time_major:
            outputs = array.transpose(outputs, [1, 0] + list(range(2, len(outputs.shape or (0, 0, 0)))))
    return outputs, final


def dynamic_rnn(cell: RNNCell, inputs: Any, sequence_length: Any = None, initial_state: Any = None,
                dtype: Any = None, parallel_iterations: Any = None, swap_memory: bool = False,
                time_major: bool = False, scope: str | None = None) -> tuple[Tensor, Any]:
    """Run `cell` over the time axis of `inputs` ([batch, time, depth], or [time, batch, depth]
    with time_major): TF1's tf.nn.dynamic_rnn. Returns (outputs [batch, time, output_size] (or
    time major), final state). With `sequence_length` ([batch] ints), outputs past a row's
    length are zero and its state stops there. The state starts at `initial_state`, else at
    cell.zero_state (of `dtype`, default the inputs' dtype)."""
    return _rnn(cell, inputs, sequence_length, initial_state, dtype, time_major, scope or "rnn", reverse=False)


def bidirectional_dynamic_rnn(cell_fw: RNNCell, cell_bw: RNNCell, inputs: Any, sequence_length: Any = None,
                              initial_state_fw: Any = None, initial_state_bw: Any = None, dtype: Any = None,
                              parallel_iterations: Any = None, swap_memory: bool = False, time_major: bool = False,
                              scope: str | None = None) -> tuple[tuple[Tensor, Tensor], tuple[Any, Any]]:
    """TF1's tf.nn.bidirectional_dynamic_rnn: ((output_fw, output_bw), (state_fw, state_bw)).
    The backward cell reads each sequence from its own last step (sequence_length) back to
    its first; output_bw[t] is its output after reading x[len-1], ..., x[t], in input order."""
    x = convert_to_tensor(inputs)
    with x.graph.as_default(), x.graph.name_scope(scope or "bidirectional_rnn"):
        out_fw, state_fw = _rnn(cell_fw, x, sequence_length, initial_state_fw, dtype, time_major, "fw", reverse=False)
        out_bw, state_bw = _rnn(cell_bw, x, sequence_length, initial_state_bw, dtype, time_major, "bw", reverse=True)
    return (out_fw, out_bw), (state_fw, state_bw)


__all__ = ["bidirectional_dynamic_rnn", "dynamic_rnn"]

"""Import rules for ONNX's recurrent layers: LSTM, GRU and RNN become loops (gc.scan).

Each direction is one counted While over the time axis (so a model's graph, its compile time
and its gradient do not grow with the sequence length), written as the ONNX operator schema
writes the cell, with W, R and B split per gate:

  LSTM (gates i, o, f, c):  i = f(x W_i^T + h R_i^T + P_i * c + Wb_i + Rb_i), f likewise,
      c~ = g(x W_c^T + h R_c^T + Wb_c + Rb_c), c' = f * c + i * c~,
      o = f(x W_o^T + h R_o^T + P_o * c' + Wb_o + Rb_o), h' = o * h(c')
  GRU (gates z, r, h):  z = f(...), r = f(...),
      h~ = g(x W_h^T + (r * h) R_h^T + Rb_h + Wb_h), or with linear_before_reset
      h~ = g(x W_h^T + r * (h R_h^T + Rb_h) + Wb_h);  h' = (1 - z) * h~ + z * h
  RNN:  h' = f(x W^T + h R^T + Wb + Rb)

`clip` clips each gate's input before its activation; LSTM's `input_forget` couples the forget
gate to 1 - i. With `sequence_lens`, a batch row past its length outputs zeros and keeps its
state, and the reverse direction reads each row from its own last step back to its first (what
onnxruntime and TF1's bidirectional_dynamic_rnn do): the loop walks the padded time axis from
its end with the same mask. The input projection x W^T is computed for all steps before the
loop by graphc's loop pass (graphc/passes/loops.py), not here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...api import array as array_ops
from ...api import math as math_ops
from ...api import nn as nn_ops
from ...api.control_flow import scan
from ...ir.dtypes import int32
from ...ir.tensor import Tensor
from .checks import one_of, rank_of
from .import_rules import ImportContext, rule

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
# activation -> (number of parameters it takes from activation_alpha / _beta, their defaults, the function)
ACTIVATIONS: dict[str, tuple[tuple[float | None, float | None], Callable[[Tensor, Any, Any], Tensor]]] = {
    "Sigmoid": ((None, None), lambda x, a, b: math_ops.sigmoid(x)),
    "Tanh": ((None, None), lambda x, a, b: math_ops.tanh(x)),
    "Relu": ((None, None), lambda x, a, b: nn_ops.relu(x)),
    "Softsign": ((None, None), lambda x, a, b: nn_ops.softsign(x)),
    "Softplus": ((None, None), lambda x, a, b: nn_ops.softplus(x)),
    "LeakyRelu": ((0.01, None), lambda x, a, b: nn_ops.leaky_relu(x, alpha=a)),
    "ThresholdedRelu": ((1.0, None), lambda x, a, b: math_ops.where(x > a, x, 0.0 * x)),
    "Elu": ((1.0, None), lambda x, a, b: math_ops.where(x > 0.0, x, a * (math_ops.exp(x) - 1.0))),
    "HardSigmoid": ((0.2, 0.5), lambda x, a, b: math_ops.clip_by_value(a * x + b, 0.0, 1.0)),
    "Affine": ((1.0, 0.0), lambda x, a, b: a * x + b),
    "ScaledTanh": ((1.0, 1.0), lambda x, a, b: a * math_ops.tanh(b * x)),
}
Activation = Callable[[Tensor], Tensor]


def _activations(ctx: ImportContext, op: str, attrs: dict[str, Any], directions: int) -> list[list[Activation]]:
    """Per direction, the cell's activations with their alpha / beta (taken in order, as ONNX says)."""
    per = len(DEFAULT_ACTIVATIONS[op])
    names = attrs.get("activations") or DEFAULT_ACTIVATIONS[op] * directions
    if len(names) != per * directions:
        raise ctx.error(f"attribute 'activations' lists {len(names)} functions; {op} with {directions} "
                        f"direction(s) takes {per * directions}")
    alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
    out: list[Activation] = []
    for name in names:
        spec = ACTIVATIONS.get(name) or ACTIVATIONS.get(name.capitalize())
        if spec is None:
            raise ctx.error(f"activation {name!r} is not one graphc imports (it knows {', '.join(sorted(ACTIVATIONS))})")
        (alpha, beta), fn = spec
        a = alphas.pop(0) if alpha is not None and alphas else alpha
        b = betas.pop(0) if beta is not None and betas else beta
        out.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
    return [out[d * per:(d + 1) * per] for d in range(directions)]


def _direction_slice(t: Tensor | None, d: int) -> Tensor | None:
    return None if t is None else array_ops.getitem(t, d)


def _split_rows(t: Tensor, parts: int) -> list[Tensor]:
    return array_ops.split(t, parts, axis=0) if parts > 1 else [t]


@rule("LSTM", "GRU", "RNN")
def _recurrent(ctx, node, ins, attrs):
    op = node.op_type
    x, w, r = ins[0], ins[1], ins[2]
    b, lengths, h0 = (ins + [None] * 8)[3:6]
    c0, peep = (ins + [None] * 8)[6:8] if op == "LSTM" else (None, None)
    direction = one_of(ctx, attrs.get("direction", "forward"), "attribute 'direction'",
                       ("forward", "reverse", "bidirectional"))
    directions = 2 if direction == "bidirectional" else 1
    layout = one_of(ctx, int(attrs.get("layout", 0)), "attribute 'layout'", (0, 1))
    for name, t, rank in (("X", x, 3), ("W", w, 3), ("R", r, 3)):
        if rank_of(ctx, t, f"input {name}") != rank:
            raise ctx.error(f"input {name} must have rank {rank}, got shape {t.shape}")
    if layout == 1:   # batch first: X [batch, seq, input], initial states [batch, directions, hidden]
        x = array_ops.transpose(x, [1, 0, 2])
        h0 = array_ops.transpose(h0, [1, 0, 2]) if h0 is not None else None
        c0 = array_ops.transpose(c0, [1, 0, 2]) if c0 is not None else None
    hidden = attrs.get("hidden_size", r.shape[-1])
    gates = GATES[op]
    if hidden is None or r.shape[-1] not in (None, hidden) or w.shape[1] not in (None, gates * hidden):
        raise ctx.error(f"W {w.shape} and R {r.shape} do not fit {op} with hidden_size {hidden} ({gates} gates)")
    if w.shape[0] not in (None, directions):
        raise ctx.error(f"W holds {w.shape[0]} directions; direction {direction!r} needs {directions}")
    if not x.dtype.is_floating:
        raise ctx.error(f"input X must be a float tensor, got {x.dtype.name}")
    clip = attrs.get("clip")
    acts = _activations(ctx, op, attrs, directions)
    batch = x.shape[1] if x.shape[1] is not None else array_ops.shape(x)[1]
    outputs, finals, cells = [], [], []
    for d in range(directions):
        reverse = direction == "reverse" or d == 1
        weights = _Weights(op, hidden, _direction_slice(w, d), _direction_slice(r, d), _direction_slice(b, d),
                           _direction_slice(peep, d), x.dtype)
        if h0 is not None:
            h = math_ops.cast(_direction_slice(h0, d), x.dtype)
        else:
            h = array_ops.zeros([batch, hidden] if isinstance(batch, int) else array_ops.stack([batch, hidden]), x.dtype)
        c = None
        if op == "LSTM":
            c = math_ops.cast(_direction_slice(c0, d), x.dtype) if c0 is not None else array_ops.zeros_like(h)
        cell = _Cell(op, weights, acts[d], clip, bool(attrs.get("input_forget", 0)), bool(attrs.get(
            "linear_before_reset", 0)))
        ys, h_last, c_last = _run(cell, x, lengths, h, c, reverse)
        outputs.append(ys)
        finals.append(h_last)
        cells.append(c_last)
    y = array_ops.stack(outputs, axis=1)                     # [seq, directions, batch, hidden]
    y_h = array_ops.stack(finals, axis=0)                    # [directions, batch, hidden]
    if layout == 1:
        y = array_ops.transpose(y, [2, 0, 1, 3])             # [batch, seq, directions, hidden]
        y_h = array_ops.transpose(y_h, [1, 0, 2])
    result = [y, y_h]
    if op == "LSTM":
        y_c = array_ops.stack(cells, axis=0)
        result.append(array_ops.transpose(y_c, [1, 0, 2]) if layout == 1 else y_c)
    return result


class _Weights:
    """One direction's W, R (transposed once, outside the loop) and bias sums, per gate."""

    def __init__(self, op: str, hidden: int, w: Tensor, r: Tensor, b: Tensor | None, peep: Tensor | None,
                 dtype: Any) -> None:
        gates = GATES[op]
        self.w = [array_ops.transpose(g) for g in _split_rows(math_ops.cast(w, dtype), gates)]   # [input, hidden]
        self.r = [array_ops.transpose(g) for g in _split_rows(math_ops.cast(r, dtype), gates)]   # [hidden, hidden]
        if b is None:
            self.wb = self.rb = [None] * gates
        else:
            parts = array_ops.split(math_ops.cast(b, dtype), 2 * gates, axis=0)
            self.wb, self.rb = parts[:gates], parts[gates:]
        self.p = array_ops.split(math_ops.cast(peep, dtype), 3, axis=0) if peep is not None else None

    def bias(self, k: int, both: bool = True) -> Tensor | None:
        parts = [self.wb[k]] + ([self.rb[k]] if both else [])
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]


class _Cell:
    """One step of the ONNX cell: (x_t, h, c) -> (h', c')."""

    def __init__(self, op: str, weights: _Weights, acts: list[Activation], clip: float | None, input_forget: bool,
                 linear_before_reset: bool) -> None:
        self.op, self.wt, self.acts, self.clip = op, weights, acts, clip
        self.input_forget, self.linear_before_reset = input_forget, linear_before_reset

    def _pre(self, x: Tensor, h: Tensor, k: int) -> Tensor:
        z = math_ops.matmul(x, self.wt.w[k]) + math_ops.matmul(h, self.wt.r[k])
        bias = self.wt.bias(k)
        return z + bias if bias is not None else z

    def _gate(self, z: Tensor, act: Activation) -> Tensor:
        if self.clip is not None:
            z = math_ops.clip_by_value(z, -self.clip, self.clip)
        return act(z)

    def __call__(self, x: Tensor, h: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor | None]:
        f, g = self.acts[0], self.acts[-1 if self.op != "LSTM" else 1]
        if self.op == "RNN":
            return self._gate(self._pre(x, h, 0), f), None
        if self.op == "GRU":
            z = self._gate(self._pre(x, h, 0), f)
            rg = self._gate(self._pre(x, h, 1), f)
            wx = math_ops.matmul(x, self.wt.w[2])
            wb, rb = self.wt.wb[2], self.wt.rb[2]
            if self.linear_before_reset:
                rh = math_ops.matmul(h, self.wt.r[2])
                rh = rh + rb if rb is not None else rh
                pre = wx + rg * rh
            else:
                pre = wx + math_ops.matmul(rg * h, self.wt.r[2])
                pre = pre + rb if rb is not None else pre
            pre = pre + wb if wb is not None else pre
            cand = self._gate(pre, self.acts[1])
            return (1.0 - z) * cand + z * h, None
        assert c is not None
        p = self.wt.p
        i_pre, o_pre, f_pre, c_pre = (self._pre(x, h, k) for k in range(4))
        i = self._gate(i_pre + p[0] * c if p is not None else i_pre, f)
        fg = 1.0 - i if self.input_forget else self._gate(f_pre + p[2] * c if p is not None else f_pre, f)
        c_new = fg * c + i * self._gate(c_pre, g)
        o = self._gate(o_pre + p[1] * c_new if p is not None else o_pre, f)
        return o * self.acts[2](c_new), c_new


def _run(cell: _Cell, x: Tensor, lengths: Tensor | None, h: Tensor, c: Tensor | None,
         reverse: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """One direction over x [seq, batch, input]: (outputs [seq, batch, hidden], last h, last c)."""
    has_c = c is not None
    if lengths is None:
        def step(state: Any, x_t: Tensor) -> Any:
            h_new, c_new = cell(x_t, state[0], state[1] if has_c else None)
            return (h_new, c_new, h_new) if has_c else (h_new, h_new)

        init = (h, c, h) if has_c else (h, h)
        out = scan(step, x, initializer=init, reverse=reverse)
        hs = out[-1]
        last = 0 if reverse else -1
        h_last = array_ops.getitem(out[0], last)
        return hs, h_last, (array_ops.getitem(out[1], last) if has_c else None)
    lens = math_ops.cast(lengths, int32)
    steps = x.shape[0] if x.shape[0] is not None else array_ops.shape(x)[0]
    t0 = math_ops.cast(steps - 1 if reverse else 0, int32)

    def masked(state: Any, x_t: Tensor) -> Any:
        t, h_prev = state[0], state[1]
        c_prev = state[2] if has_c else None
        h_new, c_new = cell(x_t, h_prev, c_prev)
        valid = array_ops.expand_dims(math_ops.less(t, lens), 1)
        h_keep = math_ops.where(valid, h_new, h_prev)
        y = math_ops.where(valid, h_new, 0.0 * h_new)
        t_next = t - 1 if reverse else t + 1
        if has_c:
            return t_next, h_keep, math_ops.where(valid, c_new, c_prev), y
        return t_next, h_keep, y

    zeros = 0.0 * h
    init = (t0, h, c, zeros) if has_c else (t0, h, zeros)
    out = scan(masked, x, initializer=init, reverse=reverse)
    # the state stops at each row's last valid step, so the final state is the last (or, walking
    # backwards, the first) row of the stacked states
    last = 0 if reverse else -1
    h_last = array_ops.getitem(out[1], last)
    return out[-1], h_last, (array_ops.getitem(out[2], last) if has_c else None)

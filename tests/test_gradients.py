"""Symbolic gradients (graphc.autodiff and every op's gradient rule) against finite differences.

The table CASES holds, for every op with a gradient rule, graphs that exercise the rule over
shapes, broadcasting, axes and attributes; each case names the rules it must reach, and the test
records which rules really ran (so a case cannot silently stop exercising its op).
`test_every_rule_has_a_case` makes a new rule without a case fail. The rest of the file checks
the semantics of gc.gradients (dtypes, stop_gradient, unconnected inputs, sums over paths, ys
and variable reads, grad_ys, errors, higher derivatives, unknown shapes) and that
gc.testing.check_gradients itself catches a wrong rule.
"""
from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import pytest

import graphc as gc
from graphc.api import gradient_builder as builder
from graphc.ops import all_ops, define_elementwise, get_op, register_gradient
from graphc.testing import GradientCheckError
from tests.conftest import CPU_BACKENDS
from tests.helpers import assert_close, run


# --------------------------------------------------------------------------- inputs
def _any(rng, shape):
    return rng.uniform(-2.0, 2.0, shape)


def _pos(rng, shape):
    return rng.uniform(0.5, 2.5, shape)


def _wide_pos(rng, shape):
    return rng.uniform(0.5, 6.0, shape)


def _above_minus_one(rng, shape):
    return rng.uniform(-0.7, 2.0, shape)


def _nonzero(rng, shape):
    """Away from 0 (the kink of abs, relu, sign, ...)."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)


def _distinct(rng, shape):
    """Pairwise distinct by at least 0.2 (no ties for max / min / max pooling)."""
    n = math.prod(shape)
    return ((rng.permutation(n) - n / 2) * 0.3 + rng.uniform(-0.05, 0.05, n)).reshape(shape)


def _prob(rng, shape):
    return rng.uniform(0.1, 0.9, shape)


def _non_integer(rng, shape):
    """Away from integers and from halves (floor, ceil, round are flat there)."""
    return rng.integers(-3, 3, shape) + rng.choice([0.2, 0.3, 0.7, 0.8], shape) + rng.uniform(-0.05, 0.05, shape)


def _off_grid(rng, shape):
    """k/2 + 1/4: never within 1/4 of an _on_grid value (no ties for maximum / minimum)."""
    return rng.integers(-4, 4, shape) * 0.5 + 0.25


def _on_grid(rng, shape):
    return rng.integers(-4, 4, shape) * 0.5


def _relu6(rng, shape):
    """Away from both kinks of relu6, 0 and 6, with values in all three pieces."""
    piece = rng.integers(0, 3, shape)
    return np.choose(piece, [rng.uniform(-3, -0.3, shape), rng.uniform(0.3, 5.7, shape), rng.uniform(6.3, 8, shape)])


def _prod(rng, shape):
    """Magnitudes near 1 so that products stay moderate."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape)


DOMAINS: dict[str, Callable[[np.random.Generator, tuple], np.ndarray]] = {
    "any": _any, "pos": _pos, "wide_pos": _wide_pos, "gt-1": _above_minus_one, "nonzero": _nonzero,
    "distinct": _distinct, "prob": _prob, "nonint": _non_integer, "offgrid": _off_grid, "ongrid": _on_grid,
    "relu6": _relu6, "prod": _prod,
}


@dataclass(frozen=True)
class In:
    """An input: random values of `shape` from a domain, or the given `value`."""

    shape: tuple = ()
    domain: str = "any"
    value: Any = None

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.value is not None:
            return np.array(self.value, dtype=np.float64)
        return np.asarray(DOMAINS[self.domain](rng, self.shape), dtype=np.float64)


def V(value: Any) -> In:
    return In(value=np.asarray(value, dtype=np.float64))


@dataclass(frozen=True)
class Case:
    ops: frozenset        # op types whose gradient rules this case must reach
    fn: Callable[..., Any]
    inputs: tuple
    check: dict = field(default_factory=dict)   # extra check_gradients arguments (eps, tolerances)


CASES: list[Any] = []


def case(case_id: str, ops: str | set | tuple, fn: Callable[..., Any], *inputs: In, **check: Any) -> None:
    ops = {ops} if isinstance(ops, str) else set(ops)
    CASES.append(pytest.param(Case(frozenset(ops), fn, tuple(inputs), check), id=case_id))


def shape_id(*shapes: tuple) -> str:
    return "x".join("(" + ",".join(map(str, s)) + ")" for s in shapes)


def apply(op: str, inputs: list, **attrs: Any) -> gc.Tensor:
    """An op applied directly (for the gradient helper ops, which have no public builder)."""
    return builder.apply1(op, [builder.convert_to_tensor(t) for t in inputs], attrs)


# --------------------------------------------------------------------------- elementwise
BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (3,)), ((3,), ()), ((4, 1), (2, 1, 3))]
BINARY = [  # op, builder, domain of x, domain of y
    ("Add", gc.add, "any", "any"),
    ("Sub", gc.subtract, "any", "any"),
    ("Mul", gc.multiply, "any", "any"),
    ("RealDiv", gc.divide, "any", "nonzero"),
    ("Pow", gc.pow, "pos", "any"),                 # the exponent's gradient needs a base > 0
    ("SquaredDifference", gc.squared_difference, "any", "any"),
    ("Maximum", gc.maximum, "offgrid", "ongrid"),  # never tied
    ("Minimum", gc.minimum, "offgrid", "ongrid"),
    ("FloorMod", gc.mod, "wide_pos", "pos"),
    ("FloorDiv", gc.floordiv, "wide_pos", "pos"),
]
for _op, _fn, _dx, _dy in BINARY:
    for _sx, _sy in BINARY_SHAPES:
        case(f"{_op}-{shape_id(_sx, _sy)}", _op, _fn, In(_sx, _dx), In(_sy, _dy))
case("Pow-negative-base-constant-exponent", "Pow", lambda x: x ** 3.0, In((5,), "nonzero"))
case("Pow-constant-base", "Pow", lambda y: gc.pow(2.5, y), In((2, 3)))
case("Pow-operator-square-root", "Pow", lambda x: x ** 0.5, In((4,), "pos"))
case("Maximum-with-constant", {"Maximum", "Minimum"}, lambda x: gc.minimum(gc.maximum(x, 0.1), 0.9),
     In((3, 4), "any"))  # uniform(-2, 2) values lie away from 0.1 and 0.9 with this seed: checked below
case("AddN-same-shapes", "AddN", lambda x, y, z: gc.add_n([x, y, z]), In((3, 4)), In((3, 4)), In((3, 4)))
case("AddN-broadcast", "AddN", lambda x, y, z: gc.add_n([x * 1.5, y, z]), In((3, 4)), In((4,)), In(()))
case("AddN-repeated-input", "AddN", lambda x, y: gc.add_n([x, gc.sin(x), y, x]), In((2, 3)), In((2, 3)))

UNARY = [  # op, function, domain
    ("Neg", gc.negative, "any"),
    ("Abs", gc.abs, "nonzero"),
    ("Sign", gc.sign, "nonzero"),
    ("Square", gc.square, "any"),
    ("Reciprocal", gc.reciprocal, "nonzero"),
    ("Exp", gc.exp, "any"),
    ("Expm1", gc.expm1, "any"),
    ("Log", gc.log, "pos"),
    ("Log1p", gc.log1p, "gt-1"),
    ("Sqrt", gc.sqrt, "pos"),
    ("Rsqrt", gc.rsqrt, "pos"),
    ("Tanh", gc.tanh, "any"),
    ("Sigmoid", gc.sigmoid, "any"),
    ("Sin", gc.sin, "any"),
    ("Cos", gc.cos, "any"),
    ("Erf", gc.erf, "any"),
    ("Floor", gc.floor, "nonint"),
    ("Ceil", gc.ceil, "nonint"),
    ("Round", gc.round, "nonint"),
    ("Identity", gc.identity, "any"),
    ("CheckNumerics", lambda x: gc.check_numerics(x, "checked"), "any"),
    ("Relu", gc.nn.relu, "nonzero"),
    ("Relu6", gc.nn.relu6, "relu6"),
    ("LeakyRelu", gc.nn.leaky_relu, "nonzero"),
    ("LeakyRelu", lambda x: gc.nn.leaky_relu(x, alpha=0.01), "nonzero"),
    ("Elu", gc.nn.elu, "nonzero"),
    ("Elu", lambda x: gc.nn.elu(x, alpha=0.5), "nonzero"),
    ("Selu", gc.nn.selu, "nonzero"),
    ("Softplus", gc.nn.softplus, "any"),
    ("Softsign", gc.nn.softsign, "any"),
    ("Silu", gc.nn.silu, "any"),
    ("Gelu", gc.nn.gelu, "any"),
    ("Gelu", lambda x: gc.nn.gelu(x, approximate=True), "any"),
]
_seen: dict[str, int] = {}
for _op, _fn, _dom in UNARY:
    _seen[_op] = _seen.get(_op, 0) + 1
    _variant = "" if _seen[_op] == 1 else f"-v{_seen[_op]}"
    for _shape in [(), (5,), (2, 3)]:
        case(f"{_op}{_variant}-{shape_id(_shape)}", _op, _fn, In(_shape, _dom))
case("Softplus-large-magnitudes", "Softplus", gc.nn.softplus, V([-30.0, -5.0, -0.5, 0.5, 5.0, 30.0]))
case("Gelu-approximate-large-magnitudes", "Gelu", lambda x: gc.nn.gelu(x, approximate=True), V([-6.0, -3.0, 3.0, 6.0]))
case("PlaceholderWithDefault", "PlaceholderWithDefault",
     lambda x: gc.placeholder_with_default(x * 2.0, (2, 3)) * x, In((2, 3)))

SIGMOID_CE_SHAPES = [((3, 4), (3, 4)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((), (5,))]
for _sl, _sx in SIGMOID_CE_SHAPES:
    case(f"SigmoidCrossEntropyWithLogits-{shape_id(_sl, _sx)}", "SigmoidCrossEntropyWithLogits",
         lambda z, x: gc.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), In(_sl, "prob"), In(_sx, "nonzero"))

SELECT_SHAPES = [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)), ((), (3,), (3,)), ((2, 3, 4), (3, 1), ())]
for _sc, _sx, _sy in SELECT_SHAPES:  # the condition's float input gets a zero gradient
    case(f"Select-{shape_id(_sc, _sx, _sy)}", "Select", lambda c, x, y: gc.where(c > 0, x, y),
         In(_sc, "nonzero"), In(_sx), In(_sy))

# x on the off-grid, lo in {-1, -0.5} and hi in {0.5, 1}: x is below, inside and above, never at a bound.
CLIP_SHAPES = [((3, 4), (), ()), ((3, 4), (3, 1), (1, 4)), ((2, 3), (3,), (2, 1)), ((4,), (4,), (4,))]
DOMAINS["clip_lo"] = lambda rng, shape: rng.choice([-1.0, -0.5], shape)
DOMAINS["clip_hi"] = lambda rng, shape: rng.choice([0.5, 1.0], shape)
for _sx, _sl, _sh in CLIP_SHAPES:
    case(f"ClipByValue-{shape_id(_sx, _sl, _sh)}", "ClipByValue", gc.clip_by_value, In(_sx, "offgrid"),
         In(_sl, "clip_lo"), In(_sh, "clip_hi"))

# Casts: values on a 1/8 grid (exact in float32) and eps = 1/4 make the float32 round trip exact.
case("Cast-float64-float32-float64", "Cast", lambda x: gc.cast(gc.cast(x, gc.float32) * 3.0, gc.float64),
     V(np.arange(-8, 8).reshape(4, 4) / 8.0), eps=0.25)
case("Cast-float32-math-then-float64", {"Cast", "Mul"},
     lambda x, y: gc.cast(gc.cast(x, gc.float32) * gc.cast(y, gc.float32), gc.float64) + x,
     V([0.5, -1.25, 2.0]), V([1.5, 0.25, -0.75]), eps=0.25, rtol=1e-6)
case("Cast-int-path-has-no-gradient", "Mul", lambda x: gc.cast(gc.cast(x, gc.int32), gc.float64) * x,
     In((5,), "nonint"))

# --------------------------------------------------------------------------- reductions
REDUCTIONS = [
    ("Sum", gc.reduce_sum, "any"),
    ("Mean", gc.reduce_mean, "any"),
    ("Max", gc.reduce_max, "distinct"),
    ("Min", gc.reduce_min, "distinct"),
    ("Prod", gc.reduce_prod, "prod"),
    ("LogSumExp", gc.reduce_logsumexp, "any"),
]
AXES = [None, 0, -1, 1, (0, 2), (-1, -3)]
for _op, _fn, _dom in REDUCTIONS:
    for _axis, _keep in itertools.product(AXES, [False, True]):
        case(f"{_op}-axis={_axis}-keepdims={_keep}", _op,
             lambda x, f=_fn, a=_axis, k=_keep: f(x, axis=a, keepdims=k), In((2, 3, 4), _dom))
    case(f"{_op}-vector", _op, _fn, In((5,), _dom))
    case(f"{_op}-scalar", _op, lambda x, f=_fn: f(x, axis=None), In((), _dom))
    case(f"{_op}-empty-axes", _op, lambda x, f=_fn: f(x, axis=()), In((2, 3), _dom))
case("Prod-one-zero", "Prod", lambda x: gc.reduce_prod(x, axis=1), V([[2.0, 0.0, 3.0], [1.5, -2.0, 0.5]]))
case("Prod-two-zeros", "Prod", lambda x: gc.reduce_prod(x, axis=1), V([[0.0, 0.0, 3.0], [0.0, -2.0, 0.5]]))
case("Prod-zero-all-axes", "Prod", gc.reduce_prod, V([[2.0, 0.0], [1.5, -2.0]]))
case("Prod-zeros-keepdims", "Prod", lambda x: gc.reduce_prod(x, axis=0, keepdims=True),
     V([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [3.0, 4.0, 1.5]]))
case("LogSumExp-plus-minus-800", "LogSumExp", lambda x: gc.reduce_logsumexp(x, axis=-1),
     V([[800.0, 799.0, -800.0], [-800.0, -801.0, -799.5]]))

# --------------------------------------------------------------------------- matmul
MATMUL = [  # shape of a, shape of b, transpose_a, transpose_b
    ((3, 4), (4, 5), False, False), ((4, 3), (4, 5), True, False), ((3, 4), (5, 4), False, True),
    ((4, 3), (5, 4), True, True),
    ((2, 3, 4), (2, 4, 5), False, False), ((2, 4, 3), (2, 4, 5), True, False), ((2, 3, 4), (2, 5, 4), False, True),
    ((2, 4, 3), (2, 5, 4), True, True),
    ((2, 1, 3, 4), (3, 4, 5), False, False), ((3, 4), (2, 4, 5), False, False), ((2, 3, 4), (4, 5), False, False),
    ((2, 1, 4, 3), (3, 5, 4), True, True), ((1, 3, 4), (2, 1, 4, 5), False, False),
    ((4,), (4, 5), False, False), ((3, 4), (4,), False, False), ((4,), (4,), False, False),
    ((4,), (2, 4, 5), False, False), ((2, 3, 4), (4,), False, False), ((4,), (5, 4), False, True),
    ((4, 3), (4,), True, False),
]
for _sa, _sb, _ta, _tb in MATMUL:
    case(f"MatMul-{shape_id(_sa, _sb)}-ta={_ta}-tb={_tb}", "MatMul",
         lambda a, b, ta=_ta, tb=_tb: gc.matmul(a, b, transpose_a=ta, transpose_b=tb), In(_sa), In(_sb))
case("MatMul-operator-same-operand", "MatMul", lambda a: a @ gc.transpose(a), In((3, 4)))

# --------------------------------------------------------------------------- shape ops
case("Reshape-2d", "Reshape", lambda x: gc.reshape(x, (6, 4)) * gc.constant(np.arange(4.0)), In((2, 3, 4)))
case("Reshape-minus-one", "Reshape", lambda x: gc.reshape(x, [-1]), In((2, 3, 4)))
case("Reshape-3d", "Reshape", lambda x: gc.reshape(x, (2, -1, 3)), In((4, 6)))
for _perm in [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1)]:
    case(f"Transpose-perm={_perm}", "Transpose", lambda x, p=_perm: gc.transpose(x, p), In((2, 3, 4)))
case("Transpose-property-T", "Transpose", lambda x: x.T, In((3, 4)))
for _axis in [0, 1, -1]:
    case(f"ExpandDims-axis={_axis}", "ExpandDims", lambda x, a=_axis: gc.expand_dims(x, a), In((2, 3)))
case("ExpandDims-tuple-axis", "ExpandDims", lambda x: apply("ExpandDims", [x], axis=(0, -1)), In((2, 3)))
for _axis in [None, (0,), (-2,), (0, 2)]:
    case(f"Squeeze-axis={_axis}", "Squeeze", lambda x, a=_axis: gc.squeeze(x, a), In((1, 3, 1, 2)))
for _src, _dst in [((3, 1), (2, 3, 4)), ((), (3,)), ((4,), (2, 3, 4)), ((1, 4), (3, 4)), ((2, 3), (2, 3))]:
    case(f"BroadcastTo-{shape_id(_src, _dst)}", "BroadcastTo", lambda x, s=_dst: gc.broadcast_to(x, s), In(_src))
for _src, _mult in [((2, 3), (2, 1)), ((3,), (3,)), ((2, 1, 3), (1, 2, 2)), ((2, 2), (1, 1)), ((2, 3), (2, 3))]:
    case(f"Tile-{shape_id(_src)}-by-{_mult}", "Tile", lambda x, m=_mult: gc.tile(x, m), In(_src))
PADS = [
    ("CONSTANT", (3, 4), ((1, 2), (0, 3))),
    ("CONSTANT", (5,), ((2, 0),)),
    ("REFLECT", (3, 4), ((2, 1), (1, 3))),
    ("REFLECT", (5,), ((4, 2),)),
    ("REFLECT", (2, 3, 4), ((1, 0), (0, 2), (3, 3))),
    ("SYMMETRIC", (3, 4), ((3, 1), (0, 4))),
    ("SYMMETRIC", (5,), ((1, 5),)),
    ("SYMMETRIC", (2, 3, 2), ((1, 1), (0, 2), (2, 0))),
]
for _mode, _shape, _pads in PADS:
    case(f"Pad-{_mode}-{shape_id(_shape)}-{_pads}", "Pad",
         lambda x, m=_mode, p=_pads: gc.pad(x, p, mode=m, constant_values=1.5 if m == "CONSTANT" else 0), In(_shape))
case("Fill-static", "Fill", lambda v: gc.fill([2, 3], v) * gc.constant(np.arange(6.0).reshape(2, 3)), In(()))
case("Fill-from-shape", "Fill", lambda v, x: gc.fill(gc.shape(x), v) * x, In(()), In((3, 2)))

# --------------------------------------------------------------------------- slicing and joining
SLICES = {
    "1:3": lambda x: x[1:3],
    "::-1": lambda x: x[::-1],
    "::-2,1": lambda x: x[::-2, 1],
    "None,...,1:": lambda x: x[None, ..., 1:],
    "...,::-1,None": lambda x: x[..., ::-1, None],
    "-1": lambda x: x[-1],
    ":,None,3:0:-2": lambda x: x[:, None, 3:0:-2],
    "1:-1,::2,-2": lambda x: x[1:-1, ::2, -2],
    "...,0": lambda x: x[..., 0],
    "-3:,None,None,:-1": lambda x: x[-3:, None, None, :-1],
    "2:2 (empty)": lambda x: x[2:2],
    "slice-fn": lambda x: gc.slice(x, [1, 0, 1], [2, -1, 2]),
}
for _key, _fn in SLICES.items():
    case(f"StridedSlice-[{_key}]", "StridedSlice", _fn, In((4, 5, 3)))
case("StridedSlice-scalar-index-of-vector", "StridedSlice", lambda x: x[2] * x[-1], In((4,)))

CONCATS = [([(2, 3), (1, 3), (3, 3)], 0), ([(2, 1), (2, 3), (2, 2)], 1), ([(2, 3, 1), (2, 3, 2)], -1),
           ([(1, 2, 3), (2, 2, 3)], -3)]
for _shapes, _axis in CONCATS:
    case(f"Concat-{shape_id(*_shapes)}-axis={_axis}", "Concat",
         lambda *xs, a=_axis: gc.concat(list(xs), a), *[In(s) for s in _shapes])
case("Concat-same-input-twice", "Concat", lambda x: gc.concat([x, gc.sin(x), x], 1), In((2, 3)))
for _axis in [0, 1, -1, 2]:
    case(f"Pack-axis={_axis}", "Pack", lambda x, y, z, a=_axis: gc.stack([x, y, z], a),
         In((2, 3)), In((2, 3)), In((2, 3)))
for _axis in [0, 1, -1]:
    case(f"Unpack-axis={_axis}", "Unpack",
         lambda x, a=_axis: gc.add_n([p * float(i + 1) for i, p in enumerate(gc.unstack(x, axis=a))]), In((3, 4, 2)))
case("Unpack-one-output-used", "Unpack", lambda x: gc.unstack(x, axis=1)[2], In((3, 4)))
case("Split-even-axis-1", "Split", lambda x: gc.add_n([p * float(i + 1) for i, p in enumerate(gc.split(x, 3, 1))]),
     In((4, 6)))
case("Split-sizes-axis-0", "Split", lambda x: gc.concat(gc.split(x, [1, -1, 2], 0)[::-1], 0), In((4, 6)))
case("Split-some-parts-used-axis--1", "Split", lambda x: gc.split(x, [2, 3, 1], -1)[1] * 2.0, In((2, 3, 6)))
GATHERS = [  # params shape, indices, axis
    ((5, 3), [0, 2, 0, 4, 2, 2], 0),
    ((3, 5), [4, 4, 1], 1),
    ((4, 3), [[0, 1], [1, 0], [3, 3]], 0),
    ((2, 5, 3), [1, 1, 4, 0], -2),
    ((2, 3, 4), [3, 0, 3], -1),
    ((6,), [5, 5, 5], 0),
]
for _shape, _idx, _axis in GATHERS:
    case(f"Gather-{shape_id(_shape)}-idx={_idx}-axis={_axis}", "Gather",
         lambda p, i=_idx, a=_axis: gc.gather(p, i, axis=a), In(_shape))
case("Gather-getitem-list", "Gather", lambda p: p[[2, 0, 2]], In((3, 2)))

# --------------------------------------------------------------------------- nn
for _shape, _axis in [((2, 3, 4), -1), ((2, 3, 4), 0), ((2, 3, 4), 1), ((5,), 0)]:
    case(f"Softmax-{shape_id(_shape)}-axis={_axis}", "Softmax", lambda x, a=_axis: gc.nn.softmax(x, a), In(_shape))
    case(f"LogSoftmax-{shape_id(_shape)}-axis={_axis}", "LogSoftmax", lambda x, a=_axis: gc.nn.log_softmax(x, a),
         In(_shape))
for _shape, _axis in [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((4,), -1)]:
    case(f"SoftmaxCrossEntropyWithLogits-{shape_id(_shape)}-axis={_axis}", "SoftmaxCrossEntropyWithLogits",
         lambda l, x, a=_axis: gc.nn.softmax_cross_entropy_with_logits(labels=l, logits=x, axis=a),
         In(_shape, "prob"), In(_shape))
case("SoftmaxCrossEntropyWithLogits-one-hot-labels", "SoftmaxCrossEntropyWithLogits",
     lambda l, x: gc.nn.softmax_cross_entropy_with_logits(labels=l, logits=x),
     V([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), In((2, 3)))
for _labels, _shape in [([1, 4, 0], (3, 5)), ([[0, 3, 3], [2, 1, 0]], (2, 3, 4)), (2, (3,))]:
    case(f"SparseSoftmaxCrossEntropyWithLogits-{shape_id(_shape)}", "SparseSoftmaxCrossEntropyWithLogits",
         lambda x, lb=_labels: gc.nn.sparse_softmax_cross_entropy_with_logits(labels=gc.constant(lb), logits=x),
         In(_shape))


def _conv_attrs(x_shape, f_shape, **kw) -> tuple[dict, tuple]:
    """The Conv2D node's attributes and output shape for these arguments (built in a scratch graph)."""
    with gc.Graph().as_default():
        y = gc.nn.conv2d(gc.placeholder(gc.float64, x_shape), gc.placeholder(gc.float64, f_shape), **kw)
        return dict(y.op.attrs), y.shape


def _pool_attrs(kind, x_shape, **kw) -> tuple[dict, tuple]:
    with gc.Graph().as_default():
        y = getattr(gc.nn, kind)(gc.placeholder(gc.float64, x_shape), **kw)
        return dict(y.op.attrs), y.shape


CONVS = [  # x shape (in data_format), filter shape, conv2d arguments
    ((2, 5, 5, 3), (3, 3, 3, 2), dict(strides=1, padding="VALID")),
    ((2, 6, 5, 3), (3, 2, 3, 2), dict(strides=2, padding="SAME")),
    ((1, 7, 6, 2), (2, 3, 2, 3), dict(strides=(2, 1), padding="SAME")),
    ((2, 5, 6, 2), (3, 3, 2, 2), dict(strides=1, padding="SAME", dilations=2)),
    ((1, 7, 7, 2), (2, 2, 2, 3), dict(strides=(2, 2), padding="VALID", dilations=(2, 1))),
    ((1, 5, 5, 2), (2, 2, 2, 3), dict(strides=2, padding=((1, 0), (2, 1)))),
    ((1, 8, 7, 1), (2, 3, 1, 2), dict(strides=3, padding="VALID")),
    ((2, 3, 5, 6), (3, 3, 3, 2), dict(strides=2, padding="SAME", data_format="NCHW")),
    ((1, 2, 6, 5), (2, 2, 2, 3), dict(strides=1, padding="VALID", dilations=(2, 1), data_format="NCHW")),
    ((1, 2, 4, 5), (3, 2, 2, 2), dict(strides=(1, 2), padding=((1, 1), (0, 2)), data_format="NCHW")),
    ((2, 5, 5, 4), (3, 3, 2, 6), dict(strides=1, padding="SAME", groups=2)),                    # grouped
    ((1, 3, 6, 5), (2, 2, 1, 6), dict(strides=2, padding="VALID", groups=3, data_format="NCHW")),   # depthwise x2
]


def _conv_id(xs, fs, kw) -> str:
    return f"{shape_id(xs, fs)}-" + ",".join(f"{k}={v}" for k, v in kw.items())


for _xs, _fs, _kw in CONVS:
    case(f"Conv2D-{_conv_id(_xs, _fs, _kw)}", "Conv2D", lambda x, f, kw=_kw: gc.nn.conv2d(x, f, **kw), In(_xs), In(_fs))
for _xs, _fs, _kw in [CONVS[1], CONVS[3], CONVS[5], CONVS[7], CONVS[9], CONVS[10], CONVS[11]]:
    _attrs, _ys = _conv_attrs(_xs, _fs, **_kw)
    case(f"Conv2DBackpropInput-{_conv_id(_xs, _fs, _kw)}", "Conv2DBackpropInput",
         lambda f, g, a=_attrs, s=_xs: apply("Conv2DBackpropInput", [f, g], **a, shape=s), In(_fs), In(_ys))
    case(f"Conv2DBackpropFilter-{_conv_id(_xs, _fs, _kw)}", "Conv2DBackpropFilter",
         lambda x, g, a=_attrs, s=_fs: apply("Conv2DBackpropFilter", [x, g], **a, shape=s), In(_xs), In(_ys))


def _conv_second(kw):
    def fn(x, f):
        gx, gf = gc.gradients(gc.reduce_sum(gc.tanh(gc.nn.conv2d(x, f, **kw))), [x, f])
        return gc.concat([gc.reshape(gx, [-1]), gc.reshape(gf, [-1])], 0)
    return fn


for _xs, _fs, _kw in [CONVS[1], CONVS[5], CONVS[8]]:
    case(f"Conv2D-second-derivative-{_conv_id(_xs, _fs, _kw)}",
         {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"}, _conv_second(_kw), In(_xs), In(_fs))

POOLS = [  # x shape, pool arguments
    ((2, 4, 6, 3), dict(ksize=2, strides=2, padding="VALID")),
    ((1, 5, 5, 2), dict(ksize=3, strides=2, padding="SAME")),
    ((1, 4, 5, 2), dict(ksize=2, strides=1, padding="SAME")),
    ((2, 5, 7, 1), dict(ksize=(3, 2), strides=(2, 3), padding="VALID")),
    ((2, 3, 5, 6), dict(ksize=(3, 2), strides=(2, 1), padding="VALID", data_format="NCHW")),
    ((1, 2, 5, 7), dict(ksize=3, strides=2, padding="SAME", data_format="NCHW")),
]
for _xs, _kw in POOLS:
    _pid = f"{shape_id(_xs)}-" + ",".join(f"{k}={v}" for k, v in _kw.items())
    case(f"MaxPool-{_pid}", "MaxPool", lambda x, kw=_kw: gc.nn.max_pool2d(x, **kw), In(_xs, "distinct"))
    case(f"AvgPool-{_pid}", "AvgPool", lambda x, kw=_kw: gc.nn.avg_pool2d(x, **kw), In(_xs))
    _mattrs, _ys = _pool_attrs("max_pool2d", _xs, **_kw)
    _aattrs, _ = _pool_attrs("avg_pool2d", _xs, **_kw)
    case(f"MaxPoolGrad-{_pid}", "MaxPoolGrad", lambda x, g, a=_mattrs: apply("MaxPoolGrad", [x, g], **a),
         In(_xs, "distinct"), In(_ys))
    case(f"MaxPoolGradGrad-{_pid}", "MaxPoolGradGrad", lambda x, h, a=_mattrs: apply("MaxPoolGradGrad", [x, h], **a),
         In(_xs, "distinct"), In(_xs))
    case(f"AvgPoolGrad-{_pid}", "AvgPoolGrad", lambda g, a=_aattrs, s=_xs: apply("AvgPoolGrad", [g], **a, shape=s),
         In(_ys))
    case(f"MaxPool-second-derivative-{_pid}", {"MaxPool", "MaxPoolGrad"},
         lambda x, kw=_kw: gc.gradients(gc.reduce_sum(gc.square(gc.nn.max_pool2d(x, **kw))), x)[0],
         In(_xs, "distinct"))
    case(f"AvgPool-second-derivative-{_pid}", {"AvgPool", "AvgPoolGrad"},
         lambda x, kw=_kw: gc.gradients(gc.reduce_sum(gc.sin(gc.nn.avg_pool2d(x, **kw))), x)[0], In(_xs))


def _max_pool_third(x):
    """d/dx |d/dx sum(max_pool(x)^2)|^2 reaches MaxPoolGrad's rule; check_gradients adds the
    third derivative, which reaches MaxPoolGradGrad's rule."""
    kw = dict(ksize=2, strides=1, padding="SAME")
    (g,) = gc.gradients(gc.reduce_sum(gc.square(gc.nn.max_pool2d(x, **kw))), x)
    return gc.gradients(gc.reduce_sum(gc.square(g)), x)[0]


case("MaxPool-third-derivative", {"MaxPool", "MaxPoolGrad", "MaxPoolGradGrad"}, _max_pool_third,
     In((1, 4, 4, 2), "distinct"))

# --------------------------------------------------------------------------- the helper ops themselves
for _src, _dst in [((2, 3, 4), (3, 1)), ((2, 3, 4), (4,)), ((2, 3), ()), ((3, 4), (1, 1)), ((2, 1, 4), (2, 1, 4))]:
    case(f"SumToShape-{shape_id(_src, _dst)}", "SumToShape", lambda x, s=_dst: apply("SumToShape", [x], shape=s),
         In(_src))
case("SumToShape-second-derivative", {"SumToShape", "Mul"},
     lambda x, y: gc.concat([gc.reshape(g, [-1]) for g in gc.gradients(gc.reduce_sum(gc.sin(x * y)), [x, y])], 0),
     In((3, 1)), In((1, 4)))
_SSG_SPECS = [
    ((4, 5), lambda x: x[::-2, 1]),
    ((4, 5), lambda x: x[None, 1:3, ::-1]),
    ((2, 3, 4), lambda x: x[..., 1:, None, -1]),
]
for _i, (_shape, _fn) in enumerate(_SSG_SPECS):
    with gc.Graph().as_default():
        _node = _fn(gc.placeholder(gc.float64, _shape)).op
        _spec, _gshape = _node.attrs["spec"], _node.outputs[0].shape
    case(f"StridedSliceGrad-{_i}-{shape_id(_shape)}", "StridedSliceGrad",
         lambda g, sp=_spec, s=_shape: apply("StridedSliceGrad", [g], spec=sp, shape=s), In(_gshape))
    case(f"StridedSlice-second-derivative-{_i}", {"StridedSlice", "StridedSliceGrad"},
         lambda x, f=_fn: gc.gradients(gc.reduce_sum(f(x) ** 3.0), x)[0], In(_shape))
for _shape, _idx, _axis in [((5, 3), [0, 2, 0, 4, 2, 2], 0), ((3, 5), [[4, 4], [1, 0]], 1)]:
    _gshape = _shape[:_axis] + np.shape(_idx) + _shape[_axis + 1:]
    case(f"GatherGrad-{shape_id(_shape)}-axis={_axis}", "GatherGrad",
         lambda g, i=_idx, a=_axis, s=_shape: apply("GatherGrad", [g, gc.constant(i)], axis=a, shape=s), In(_gshape))
    case(f"Gather-second-derivative-axis={_axis}", {"Gather", "GatherGrad"},
         lambda p, i=_idx, a=_axis: gc.gradients(gc.reduce_sum(gc.sin(gc.gather(p, i, axis=a))), p)[0], In(_shape))

# --------------------------------------------------------------------------- loops and branches
case("While-scan-rnn", "While",
     lambda xs, h0, w: gc.scan(lambda h, x: gc.tanh(h @ w + x), xs, initializer=h0),
     In((4, 2, 3)), In((2, 3)), In((3, 3)))
case("While-scan-reverse-nested-elems", "While",
     lambda a, b: gc.scan(lambda acc, e: acc * gc.sin(e[0]) + e[1], (a, b), initializer=gc.ones([3], gc.float64),
                          reverse=True), In((5, 3)), In((5, 3)))
case("While-while-loop-fixed-count", "While",
     lambda x, w: gc.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, gc.sin(v) * w + v), [0, x])[1],
     In((2, 3)), In((3,)))
# collectives in a world of one (graphc.distributed): their gradients are collectives too
case("MpiAllreduce-sum", "MpiAllreduce", lambda x: apply("MpiAllreduce", [x * x], reduce="sum"), In((3, 2)))
case("MpiAllreduce-average", "MpiAllreduce", lambda x: apply("MpiAllreduce", [gc.exp(x)], reduce="average"),
     In((4,)))
case("MpiBroadcast", "MpiBroadcast", lambda x: apply("MpiBroadcast", [gc.sin(x)], root=0) * x, In((4,)))
case("MpiAllgather", "MpiAllgather", lambda x: apply("MpiAllgather", [x * x]) * 2.0, In((2, 3)))
case("While-map-fn", "While", lambda x: gc.map_fn(lambda r: gc.reduce_sum(gc.exp(r) * r), x), In((4, 3)))
case("If-cond-both-branches", "If",
     lambda x, y: gc.cond(gc.reduce_sum(x) > 0, lambda: gc.sin(x) * y, lambda: x * x - y),
     In((2, 3)), In((2, 3)))



# --------------------------------------------------------------------------- running the table
@contextlib.contextmanager
def recording_rules() -> Iterator[set[str]]:
    """Wrap every gradient rule to record the op types whose rules run (restored afterwards)."""
    used: set[str] = set()
    saved = {name: op.grad for name, op in all_ops().items() if op.grad is not None}

    def wrap(rule):
        def recorded(b, node, *grads):
            used.add(node.type)
            return rule(b, node, *grads)
        return recorded

    for name, rule in saved.items():
        get_op(name).grad = wrap(rule)
    try:
        yield used
    finally:
        for name, rule in saved.items():
            get_op(name).grad = rule


@pytest.mark.sampled("c", keep=2)   # the emulator: two cases per set of gradient rules
@pytest.mark.parametrize("c", CASES)
def test_gradient_matches_finite_differences(c: Case, backend, rng):
    inputs = [spec.draw(rng) for spec in c.inputs]
    with recording_rules() as used:
        worst = gc.testing.check_gradients(c.fn, inputs, backend=backend, **c.check)
    assert worst <= 1.0
    missing = c.ops - used
    assert not missing, f"the case never ran the gradient rule of {sorted(missing)} (rules run: {sorted(used)})"


def _second_order(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The gradient of sum(sin(fn(xs))) w.r.t. all xs, flattened: differentiating it again runs
    every rule that the first gradient built (the rules of the rules' ops)."""
    def grad_fn(*xs):
        y = gc.convert_to_tensor(fn(*xs))
        grads = gc.gradients(gc.reduce_sum(gc.sin(y)), list(xs), unconnected_gradients="zero")
        return gc.concat([gc.reshape(g, [-1]) for g in grads], 0)
    return grad_fn


SECOND_ORDER = [p for p in CASES if not p.values[0].check]  # the Cast cases need their special eps


@pytest.mark.sampled("c", backends=("llvm",))   # numpy runs every case
@pytest.mark.parametrize("backend", CPU_BACKENDS + [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("c", SECOND_ORDER)
def test_second_derivative_matches_finite_differences(c: Case, backend, rng):   # too slow for the emulator
    inputs = [spec.draw(rng) for spec in c.inputs]
    assert gc.testing.check_gradients(_second_order(c.fn), inputs, backend=backend) <= 1.0


@pytest.mark.sampled("c")
@pytest.mark.parametrize("c", CASES)
def test_float32_gradients_keep_float32_and_match_float64(c: Case, backend, rng):
    """The same graph on float32 inputs: each gradient is float32 and close to the float64 one."""
    inputs = [spec.draw(rng) for spec in c.inputs]
    results = {}
    for dtype in (gc.float64, gc.float32):
        with gc.Graph().as_default():
            xs = [gc.placeholder(dtype, v.shape) for v in inputs]
            y = gc.convert_to_tensor(c.fn(*xs))
            direction = gc.constant(np.linspace(-1.0, 1.0, int(np.prod(y.shape))).reshape(y.shape), y.dtype)
            grads = gc.gradients(gc.reduce_sum(y * direction), xs, unconnected_gradients="zero")
            assert [g.dtype for g in grads] == [dtype] * len(xs)
            with gc.Session(backend=backend) as sess:
                results[dtype] = sess.run(grads, dict(zip(xs, [v.astype(dtype.np) for v in inputs])))
    for g32, g64 in zip(results[gc.float32], results[gc.float64]):
        assert g32.dtype == np.float32
        scale = max(1.0, float(np.max(np.abs(g64), initial=0.0)))
        np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-4 * scale)


def _rules() -> set[str]:
    return {name for name, op in all_ops().items() if op.grad is not None}


def _covered() -> set[str]:
    return set().union(*(p.values[0].ops for p in CASES))


TESTED_OPS = _covered() | {"StopGradient", "Placeholder", "Const", "VariableV2", "ReadVariable", "Assign"}


def test_every_rule_has_a_case():
    missing = sorted(_rules() - _covered())
    assert not missing, f"ops with a gradient rule but no case in CASES: {missing}"


def test_cases_name_ops_with_rules():
    assert _covered() <= _rules(), sorted(_covered() - _rules())


def test_clip_and_maximum_inputs_stay_away_from_the_kinks(rng):
    """The domains the table relies on: off-grid values never meet on-grid ones, nor the clip
    bounds; the constant bounds of 'Maximum-with-constant' are not met by its inputs."""
    off, on = _off_grid(rng, (1000,)), _on_grid(rng, (1000,))
    assert np.min(np.abs(off[:, None] - on[None, :])) >= 0.25
    assert np.min(np.abs(off[:, None] - np.array([-1.0, -0.5, 0.5, 1.0]))) >= 0.25
    spec = next(p.values[0] for p in CASES if p.id == "Maximum-with-constant")
    x = spec.inputs[0].draw(np.random.default_rng(1234))
    assert np.min(np.abs(x[..., None] - np.array([0.1, 0.9]))) > 1e-3


# --------------------------------------------------------------------------- explicit values
def _grads(ys, xs, **kw):
    return run(gc.gradients(ys, xs, **kw))


def test_reduce_max_splits_the_gradient_among_ties():
    x = gc.constant([1.0, 3.0, 3.0], gc.float64)
    assert_close(_grads(gc.reduce_max(x), x)[0], [0.0, 0.5, 0.5])
    y = gc.constant([2.0, 1.0, 1.0, 5.0], gc.float64)
    assert_close(_grads(gc.reduce_min(y), y)[0], [0.0, 0.5, 0.5, 0.0])
    z = gc.constant([2.0, 2.0, 2.0, 2.0], gc.float64)
    assert_close(_grads(gc.reduce_max(z) * 4.0, z)[0], [1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("keepdims", [False, True])
def test_reduce_max_min_ties_along_an_axis(keepdims):
    x = gc.constant([[1.0, 1.0, 0.0], [3.0, 2.0, 3.0]], gc.float64)
    w = gc.constant([[2.0], [4.0]] if keepdims else [2.0, 4.0], gc.float64)
    gmax, = _grads(gc.reduce_max(x, axis=1, keepdims=keepdims) * w, x)
    assert_close(gmax, [[1.0, 1.0, 0.0], [2.0, 0.0, 2.0]])
    gmin, = _grads(gc.reduce_min(x, axis=-2, keepdims=keepdims), x)
    assert_close(gmin, [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])


def test_maximum_minimum_ties_go_to_the_first_operand():
    x = gc.constant([1.0, 2.0, 3.0, -1.0], gc.float64)
    y = gc.constant([1.0, 0.0, 3.0, 5.0], gc.float64)
    gx, gy = _grads(gc.maximum(x, y), [x, y])
    assert_close(gx, [1.0, 1.0, 1.0, 0.0])
    assert_close(gy, [0.0, 0.0, 0.0, 1.0])
    gx, gy = _grads(gc.minimum(x, y), [x, y])
    assert_close(gx, [1.0, 0.0, 1.0, 1.0])
    assert_close(gy, [0.0, 1.0, 0.0, 0.0])
    s = gc.constant(2.0, gc.float64)  # broadcast scalar tied with one entry
    gx, gs = _grads(gc.maximum(x, s), [x, s])
    assert_close(gx, [0.0, 1.0, 1.0, 0.0])
    assert_close(gs, 2.0)


def test_reduce_prod_with_zeros():
    x = gc.constant([[2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [1.0, 2.0, 4.0]], gc.float64)
    g, = _grads(gc.reduce_prod(x, axis=1), x)
    assert_close(g, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [8.0, 4.0, 2.0]])
    g, = _grads(gc.reduce_prod(x), x)
    assert_close(g, np.zeros((3, 3)))
    v = gc.constant([5.0, 0.0], gc.float64)
    assert_close(_grads(gc.reduce_prod(v), v)[0], [0.0, 5.0])


def test_reduce_prod_gradient_when_the_product_underflows():
    """The product of the others is computed without dividing by x (as TF does), so it stays
    right when the whole product underflows to 0 although no element is 0."""
    x = gc.constant([[1e-200, 1e-200, 3.0], [2.0, 0.5, 4.0]], gc.float64)
    g, = _grads(gc.reduce_prod(x, axis=-1), x)
    np.testing.assert_allclose(g, [[3e-200, 3e-200, 0.0], [2.0, 8.0, 1.0]], rtol=1e-12)


@pytest.mark.parametrize("values, hessian", [
    ([2.0, 0.0, 3.0], [[0.0, 3.0, 0.0], [3.0, 0.0, 2.0], [0.0, 2.0, 0.0]]),
    ([0.0, 0.0, 3.0], [[0.0, 3.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
    ([0.0, 0.0, 0.0], np.zeros((3, 3))),
    ([2.0, -1.0, 3.0], [[0.0, 3.0, -1.0], [3.0, 0.0, 2.0], [-1.0, 2.0, 0.0]]),
])
def test_reduce_prod_hessian_with_zeros(values, hessian):
    x = gc.placeholder(gc.float64, [3])
    h, = gc.hessians(gc.reduce_prod(x), x)
    assert_close(run(h, {x: np.array(values)}), np.array(hessian, np.float64))


def test_logsumexp_gradient_is_finite_at_plus_minus_800():
    values = np.array([[800.0, 799.0, -800.0], [-800.0, -801.0, -800.0]])
    x = gc.constant(values, gc.float64)
    g, = _grads(gc.reduce_logsumexp(x, axis=1), x)
    e = np.exp(values - values.max(axis=1, keepdims=True))
    assert np.all(np.isfinite(g))
    assert_close(g, e / e.sum(axis=1, keepdims=True))
    s = gc.constant([800.0, -800.0], gc.float32)
    gs, = _grads(gc.reduce_logsumexp(s), s)
    assert gs.dtype == np.float32 and np.all(np.isfinite(gs))
    assert_close(gs, [1.0, 0.0])


def test_pow_gradient_with_respect_to_the_exponent():
    x = gc.constant([2.0, 0.5, 0.0], gc.float64)
    y = gc.constant([3.0, -1.0, 2.0], gc.float64)
    gx, gy = _grads(gc.pow(x, y), [x, y])
    assert_close(gx, [12.0, -4.0, 0.0])
    assert_close(gy, [8.0 * np.log(2.0), 2.0 * np.log(0.5), 0.0])  # 0 ** y is flat in y for y > 0


def test_abs_sign_floor_gradients_away_from_zero():
    x = gc.constant([-2.5, -0.3, 0.4, 3.7], gc.float64)
    assert_close(_grads(gc.abs(x), x)[0], [-1.0, -1.0, 1.0, 1.0])
    assert_close(_grads(gc.sign(x), x)[0], [0.0, 0.0, 0.0, 0.0])
    assert gc.gradients(gc.floor(x), x) == [None]
    assert_close(_grads(gc.floor(x), x, unconnected_gradients="zero")[0], np.zeros(4))
    assert_close(_grads(gc.ceil(x) + gc.round(x) + x, x)[0], np.ones(4))


def test_cross_entropy_label_gradients():
    labels = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    logits = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -2.0]])
    lb, lg = gc.constant(labels), gc.constant(logits)
    g_l, g_x = _grads(gc.nn.softmax_cross_entropy_with_logits(labels=lb, logits=lg), [lb, lg])
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert_close(g_l, -logp)
    assert_close(g_x, np.exp(logp) - labels)
    z, s = gc.constant(labels), gc.constant(logits)
    g_z, g_s = _grads(gc.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=s), [z, s])
    assert_close(g_z, -logits)
    assert_close(g_s, 1 / (1 + np.exp(-logits)) - labels)
    sparse_labels = gc.constant([2, 0])
    g_sl, g_sx = gc.gradients(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=sparse_labels, logits=lg),
                              [sparse_labels, lg])
    assert g_sl is None
    assert_close(run(g_sx), np.exp(logp) - np.eye(3)[[2, 0]])


def test_clip_by_value_gradients_for_x_and_both_bounds():
    x = gc.constant([-2.0, -0.5, 0.3, 2.0, 5.0], gc.float64)
    lo = gc.constant(-1.0, gc.float64)
    hi = gc.constant([1.0, 1.0, 1.0, 1.0, 4.0], gc.float64)
    gx, glo, ghi = _grads(gc.clip_by_value(x, lo, hi) * gc.constant([1.0, 2.0, 3.0, 4.0, 5.0], gc.float64),
                          [x, lo, hi])
    assert_close(gx, [0.0, 2.0, 3.0, 0.0, 0.0])
    assert_close(glo, 1.0)
    assert_close(ghi, [0.0, 0.0, 0.0, 4.0, 5.0])


def test_cast_gradients_keep_each_dtype():
    x32 = gc.placeholder(gc.float32, [3])
    x64 = gc.placeholder(gc.float64, [3])
    y = gc.cast(x32, gc.float64) * x64 + gc.cast(gc.cast(x64, gc.float32) * 2.0, gc.float64)
    g32, g64 = gc.gradients(y, [x32, x64])
    assert (g32.dtype, g64.dtype) == (gc.float32, gc.float64)
    a, b = np.array([1.0, 2.0, 3.0], np.float32), np.array([0.5, -1.0, 4.0])
    r32, r64 = run([g32, g64], {x32: a, x64: b})
    assert r32.dtype == np.float32 and r64.dtype == np.float64
    assert_close(r32, b.astype(np.float32))
    assert_close(r64, a.astype(np.float64) + 2.0)


# --------------------------------------------------------------------------- semantics
def test_integer_and_bool_inputs_get_no_gradient():
    i = gc.placeholder(gc.int32, [3])
    flag = gc.placeholder(gc.bool, [3])
    x = gc.placeholder(gc.float64, [3])
    y = gc.cast(i, gc.float64) * x + gc.where(flag, x, 2.0 * x) + gc.cast(flag, gc.float64)
    gi, gf, gx = gc.gradients(y, [i, flag, x])
    assert gi is None and gf is None
    feeds = {i: np.array([1, 2, 3], np.int32), flag: np.array([True, False, True]), x: np.ones(3)}
    assert_close(run(gx, feeds), [2.0, 4.0, 4.0])
    # an integer y carries no gradient either
    assert gc.gradients(i * 2, [i]) == [None]
    # with unconnected_gradients="zero" the integer input gets integer zeros
    gi, = gc.gradients(y, [i], unconnected_gradients="zero")
    assert gi.dtype == gc.int32
    assert_close(run(gi), np.zeros(3, np.int32))


def test_stop_gradient_blocks():
    x = gc.placeholder(gc.float64, [2])
    g, = gc.gradients(x * gc.stop_gradient(x), x)
    assert_close(run(g, {x: np.array([3.0, -1.0])}), [3.0, -1.0])  # not 2x
    assert gc.gradients(gc.stop_gradient(x) * 3.0, x) == [None]
    z, = gc.gradients(gc.stop_gradient(x * x), x, unconnected_gradients="zero")
    assert_close(run(z, {x: np.array([3.0, -1.0])}), [0.0, 0.0])


def test_unconnected_x_gives_none_or_zeros():
    x = gc.placeholder(gc.float64, [2, 3])
    other = gc.placeholder(gc.float32, [4])
    y = gc.reduce_sum(gc.sin(x))
    assert gc.gradients(y, [other]) == [None]
    gx, go = gc.gradients(y, [x, other], unconnected_gradients="zero")
    assert go.dtype == gc.float32 and go.shape == (4,)
    value = np.arange(6.0).reshape(2, 3)
    rx, ro = run([gx, go], {x: value})
    assert_close(ro, np.zeros(4, np.float32))
    assert_close(rx, np.cos(value))
    with pytest.raises(gc.GraphcError, match="unconnected_gradients"):
        gc.gradients(y, [x], unconnected_gradients="zeros")


def test_gradients_over_several_paths_are_summed():
    x = gc.placeholder(gc.float64, [3])
    h = gc.sin(x)
    y = x * x + h + h * x + gc.reduce_sum(x)  # the sum is broadcast into each of the 3 elements
    g, = gc.gradients(y, x)
    v = np.array([0.5, -1.0, 2.0])
    assert_close(run(g, {x: v}), 2 * v + np.cos(v) + np.cos(v) * v + np.sin(v) + 3.0)


def test_several_ys_are_summed():
    x = gc.placeholder(gc.float64, [3])
    y1, y2 = x * 2.0, gc.reduce_sum(gc.square(x))
    g, = gc.gradients([y1, y2], x)
    v = np.array([0.5, -1.0, 2.0])
    assert_close(run(g, {x: v}), 2.0 + 2 * v)
    g1, = gc.gradients([y1], [x])
    assert_close(run(g1, {x: v}), [2.0, 2.0, 2.0])


def test_grad_ys_weight_the_ys():
    x = gc.placeholder(gc.float64, [3])
    y1, y2 = gc.square(x), gc.reduce_sum(x) * 3.0
    w = np.array([1.0, -2.0, 0.5])
    v = np.array([0.5, -1.0, 2.0])
    g, = gc.gradients(y1, x, grad_ys=w)
    assert_close(run(g, {x: v}), 2 * v * w)
    g, = gc.gradients([y1, y2], x, grad_ys=[gc.constant(w), 2.0])
    assert_close(run(g, {x: v}), 2 * v * w + 6.0)
    g, = gc.gradients([y1, y2], x, grad_ys=[None, -1.0])
    assert_close(run(g, {x: v}), 2 * v - 3.0)
    with pytest.raises(gc.ShapeError, match="grad_ys"):
        gc.gradients(y1, x, grad_ys=np.ones(4))
    with pytest.raises(gc.GraphcError, match="grad_ys has 1 entries for 2 ys"):
        gc.gradients([y1, y2], x, grad_ys=[w])


def test_gradient_wrt_a_variable_sums_over_all_reads():
    v = gc.Variable(np.array([1.0, 2.0]), name="v")
    a = v * 3.0                                  # the canonical read
    b = gc.square(v.read_value())                # an explicit fresh read
    marker = gc.no_op()
    with gc.control_dependencies([marker]):
        c = v * 5.0                              # a fresh read inside control_dependencies
    assert c.op.inputs[0].op.type == "ReadVariable"
    y = gc.reduce_sum(a + b + c)
    g, = gc.gradients(y, v)
    assert_close(run(g), 3.0 + 2 * np.array([1.0, 2.0]) + 5.0)
    # the gradient w.r.t. one read tensor is that read's share only
    g_canonical, = gc.gradients(y, v.value())
    assert_close(run(g_canonical), [3.0, 3.0])


def test_gradient_of_x_itself_and_repeated_xs():
    x = gc.placeholder(gc.float64, [2, 2])
    g, g_again = gc.gradients(x, [x, x])
    assert_close(run(g_again, {x: np.zeros((2, 2))}), np.ones((2, 2)))
    assert_close(run(g, {x: np.zeros((2, 2))}), np.ones((2, 2)))


@pytest.mark.parametrize("shape, axis", [((0, 3), None), ((0, 3), 0), ((3, 0), 1), ((3, 0), None)])
@pytest.mark.parametrize("reduce", [gc.reduce_sum, gc.reduce_mean, gc.reduce_max, gc.reduce_prod,
                                    gc.reduce_logsumexp])
def test_gradients_of_empty_tensors(shape, axis, reduce):
    x = gc.placeholder(gc.float64, shape)
    y = reduce(gc.sin(x), axis=axis)
    g, = gc.gradients(gc.reduce_sum(gc.where(gc.is_finite(y), y, 0.0)), x)
    out = run(g, {x: np.zeros(shape)})
    assert out.shape == shape and out.dtype == np.float64


def test_gradient_wrt_an_intermediate_tensor():
    x = gc.placeholder(gc.float64, [3])
    h = x * 3.0
    y = gc.reduce_sum(gc.square(h) + x)
    gh, gx = gc.gradients(y, [h, x])
    v = np.array([0.5, -1.0, 2.0])
    rh, rx = run([gh, gx], {x: v})
    assert_close(rh, 2 * 3.0 * v)
    assert_close(rx, 18.0 * v + 1.0)


def test_differentiating_through_an_assign_is_an_error():
    x = gc.placeholder(gc.float32, [2])
    v = gc.Variable(np.zeros(2, np.float32), name="state")
    updated = v.assign(x, name="set_state")
    with pytest.raises(gc.GraphcError, match="no gradient") as info:
        gc.gradients(updated * 2.0, x)
    assert "set_state" in str(info.value)
    assert info.value.node_name == "set_state" and info.value.op_type == "Assign"


def test_gradient_of_gradient_hessian_of_quadratic_form():
    a = np.array([[1.0, 2.0, 0.0], [-1.0, 3.0, 0.5], [4.0, 0.0, -2.0]])
    x = gc.placeholder(gc.float64, [3])
    y = gc.reduce_sum(x * gc.matmul(gc.constant(a), x))  # x^T A x
    h, = gc.hessians(y, x)
    assert h.shape == (3, 3)
    assert_close(run(h, {x: np.array([0.3, -0.7, 1.1])}), a + a.T)


def test_hessian_vector_product():
    x = gc.placeholder(gc.float64, [3])
    vec = gc.placeholder(gc.float64, [3])
    y = gc.reduce_sum(gc.sin(x) * gc.reduce_prod(x)) + gc.reduce_sum(x ** 3.0)
    g, = gc.gradients(y, x)
    hv, = gc.gradients(gc.reduce_sum(g * gc.stop_gradient(vec)), x)
    h, = gc.hessians(y, x)
    xv, vv = np.array([0.3, -0.7, 1.1]), np.array([1.0, 2.0, -0.5])
    rhv, rh = run([hv, h], {x: xv, vec: vv})
    assert_close(rhv, rh @ vv)
    # and the Hessian-vector product agrees with finite differences of the gradient
    eps = 1e-6
    gp, gm = run(g, {x: xv + eps * vv}), run(g, {x: xv - eps * vv})
    np.testing.assert_allclose(rhv, (gp - gm) / (2 * eps), rtol=1e-6, atol=1e-7)


def test_gradient_penalty_checked_by_finite_differences(backend):
    def penalty(w, x):
        loss = gc.reduce_sum(gc.tanh(gc.matmul(x, w)) ** 2.0)
        (gx,) = gc.gradients(loss, x)
        return gc.reduce_sum(gc.square(gx))  # ||d loss / d x||^2, differentiated w.r.t. w and x

    rng = np.random.default_rng(7)
    with recording_rules() as used:
        worst = gc.testing.check_gradients(penalty, [rng.normal(size=(3, 2)), rng.normal(size=(4, 3))],
                                           backend=backend)
    assert worst <= 1.0
    assert {"MatMul", "Tanh", "Pow", "Square", "Sum"} <= used


def test_unused_multi_output_parts_and_unstack_fill_with_zeros():
    x = gc.placeholder(gc.float64, [3, 2])
    parts = gc.unstack(x)
    g, = gc.gradients(parts[1] * 2.0, x)
    assert_close(run(g, {x: np.ones((3, 2))}), [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0]])


# --------------------------------------------------------------------------- unknown shapes
def _p(shape_known, value):
    """A float64 placeholder for value: dims unknown (None each) or rank unknown (shape=None)."""
    shape = None if shape_known == "rank" else (None,) * np.ndim(value)
    return gc.placeholder(gc.float64, shape)


UNKNOWN = {  # name -> (function of placeholders, input values)
    "broadcast-mul": (lambda x, y: x * y, [np.arange(3.0).reshape(3, 1) + 0.5, np.linspace(-1, 1, 4).reshape(1, 4)]),
    "scalar-plus-vector": (lambda x, y: gc.sin(x + y) * x, [np.array(0.7), np.array([0.1, -0.4, 1.2])]),
    "divide-broadcast": (lambda x, y: x / y, [np.linspace(-1, 2, 6).reshape(2, 3), np.array([1.5, -0.5, 2.0])]),
    "reduce_sum-axis": (lambda x: gc.reduce_sum(gc.square(x), axis=-1), [np.linspace(-1, 2, 12).reshape(3, 4)]),
    "reduce_mean-axis": (lambda x: gc.reduce_mean(x * x, axis=0), [np.linspace(-1, 2, 12).reshape(3, 4)]),
    "reduce_mean-keepdims": (lambda x: gc.reduce_mean(gc.sin(x), axis=(0, 1), keepdims=True) * x,
                             [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "reduce_max-axis": (lambda x: gc.reduce_max(x, axis=1), [np.array([[0.3, -1.0, 2.0], [1.5, 0.2, -0.4]])]),
    "reduce_min-all": (lambda x: gc.reduce_min(x), [np.array([[0.3, -1.0, 2.0], [1.5, 0.2, -0.4]])]),
    "reduce_prod": (lambda x: gc.reduce_prod(x, axis=0), [np.array([[0.3, -1.0, 2.0], [1.5, 0.0, -0.4]])]),
    "logsumexp": (lambda x: gc.reduce_logsumexp(x, axis=-1), [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "reshape": (lambda x: gc.reshape(x, [-1]) * gc.constant(np.arange(6.0)), [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "slice": (lambda x: x[1:, ::-1] * 2.0, [np.linspace(-1, 2, 12).reshape(3, 4)]),
    "gather": (lambda x: gc.gather(x, [0, 2, 2]), [np.linspace(-1, 2, 12).reshape(3, 4)]),
    "concat": (lambda x, y: gc.concat([x, gc.sin(y)], 0), [np.ones((2, 3)), np.linspace(-1, 2, 3).reshape(1, 3)]),
    "stack-unstack": (lambda x: gc.stack(gc.unstack(x, num=2)[::-1], axis=1), [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "split": (lambda x: gc.split(x, 3, axis=1)[2] * 2.0, [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "pad-constant": (lambda x: gc.pad(x, [[1, 0], [0, 2]]) * 3.0, [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "softmax": (lambda x: gc.nn.softmax(x) * x, [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "log-softmax": (lambda x: gc.nn.log_softmax(x, axis=0), [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "softmax-ce": (lambda l, x: gc.nn.softmax_cross_entropy_with_logits(labels=l, logits=x),
                   [np.full((2, 3), 1 / 3), np.linspace(-1, 2, 6).reshape(2, 3)]),
    "sigmoid-ce": (lambda l, x: gc.nn.sigmoid_cross_entropy_with_logits(labels=l, logits=x),
                   [np.full((2, 3), 0.3), np.linspace(-1, 2, 6).reshape(2, 3)]),
    "where-clip": (lambda x, y: gc.where(x > 0, gc.clip_by_value(y, -0.5, 0.5), x * y),
                   [np.array([[1.0, -2.0, 0.5]]), np.array([[0.3], [-1.0]])]),
    "transpose": (lambda x: gc.transpose(x) * gc.constant(np.arange(6.0).reshape(3, 2)), [np.ones((2, 3))]),
    "expand-squeeze": (lambda x: gc.squeeze(gc.expand_dims(x, 0) * 2.0, 0), [np.linspace(-1, 2, 6).reshape(2, 3)]),
    "broadcast_to-shape-of": (lambda x, y: gc.broadcast_to(x, gc.shape(y)) * y,
                              [np.array([[0.5], [-1.0]]), np.linspace(-1, 2, 6).reshape(2, 3)]),
    "fill-shape-of": (lambda v, y: gc.fill(gc.shape(y), v) * y, [np.array(1.5), np.linspace(-1, 2, 6).reshape(2, 3)]),
    "conv2d": (lambda x, f: gc.nn.conv2d(x, f, strides=2, padding="SAME"),
               [np.linspace(-1, 1, 2 * 5 * 5 * 2).reshape(2, 5, 5, 2),
                np.linspace(-1, 1, 3 * 3 * 2 * 2).reshape(3, 3, 2, 2)]),
    "conv2d-nchw": (lambda x, f: gc.nn.conv2d(x, f, padding="VALID", data_format="NCHW"),
                    [np.linspace(-1, 1, 2 * 2 * 4 * 4).reshape(2, 2, 4, 4),
                     np.linspace(-1, 1, 2 * 2 * 2 * 3).reshape(2, 2, 2, 3)]),
    "max_pool": (lambda x: gc.nn.max_pool2d(x, 2, 2, "SAME"),
                 [np.random.default_rng(3).permutation(50).reshape(2, 5, 5, 1) * 0.1]),
    "avg_pool": (lambda x: gc.nn.avg_pool2d(x, 3, 2, "SAME"), [np.linspace(-1, 1, 50).reshape(2, 5, 5, 1)]),
    # these need a known rank; with an unknown one, building the gradient is a clear error
    "matmul": (lambda a, b: gc.matmul(a, b),
               [np.linspace(-1, 2, 12).reshape(3, 4), np.linspace(0, 1, 8).reshape(4, 2)]),
    "matmul-broadcast-batch": (lambda a, b: gc.matmul(a, b, transpose_b=True),
                               [np.linspace(-1, 2, 24).reshape(2, 1, 3, 4), np.linspace(0, 1, 24).reshape(2, 3, 4)]),
    "matmul-vector": (lambda a, b: gc.matmul(a, b), [np.linspace(-1, 2, 4), np.linspace(0, 1, 24).reshape(2, 4, 3)]),
    "tile": (lambda x: gc.tile(x, [2, 1]) * gc.constant(np.arange(12.0).reshape(4, 3)),
             [np.linspace(-1, 2, 6).reshape(2, 3)]),
}
NEEDS_RANK = {"matmul": "known rank", "matmul-broadcast-batch": "known rank", "matmul-vector": "known rank",
              "tile": "known rank"}


@pytest.mark.sampled("name", "unknown")
@pytest.mark.parametrize("unknown", ["dims", "rank"])
@pytest.mark.parametrize("name", sorted(UNKNOWN))
def test_gradients_with_unknown_shapes(name, unknown, backend):
    fn, values = UNKNOWN[name]
    xs = [_p(unknown, v) for v in values]
    y = fn(*xs)
    if unknown == "rank" and name in NEEDS_RANK:
        with pytest.raises(gc.ShapeError, match=NEEDS_RANK[name]):
            gc.gradients(y, xs)
        return
    grads = gc.gradients(y, xs)
    for x, g in zip(xs, grads):
        assert g is not None and g.dtype == gc.float64
        if g.shape is not None and x.shape is not None:
            assert len(g.shape) == len(x.shape)
    feeds = dict(zip(xs, values))
    worst = gc.testing.check_gradients(y, xs, feed_dict=feeds, backend=backend)
    assert worst <= 1.0
    for value, got in zip(values, run(grads, feeds)):
        assert np.shape(got) == np.shape(value)


@pytest.mark.sampled("name", "unknown")
@pytest.mark.parametrize("name, unknown", [(n, u) for n in sorted(UNKNOWN) for u in ("dims", "rank")
                                           if not (u == "rank" and n in NEEDS_RANK)])
def test_second_derivatives_with_unknown_shapes(name, unknown, backend):
    """The gradient built on unknown shapes (SumToShape, StridedSliceGrad, ... with shape
    inputs) is differentiated again."""
    fn, values = UNKNOWN[name]
    xs = [_p(unknown, v) for v in values]
    y = gc.convert_to_tensor(fn(*xs))
    grads = gc.gradients(gc.reduce_sum(gc.sin(y)), xs, unconnected_gradients="zero")
    z = gc.add_n([gc.reduce_sum(gc.square(g)) for g in grads])
    feeds = dict(zip(xs, values))
    assert gc.testing.check_gradients(z, xs, feed_dict=feeds, backend=backend) <= 1.0


def test_sparse_cross_entropy_gradient_with_unknown_batch(backend):
    logits = gc.placeholder(gc.float64, [None, 3])
    labels = gc.placeholder(gc.int32, [None])
    y = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    values = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    feeds = {logits: values, labels: np.array([2, 0], np.int32)}
    assert gc.testing.check_gradients(y, [logits], feed_dict=feeds, backend=backend) <= 1.0
    unknown_classes = gc.placeholder(gc.float64, [None, None])
    z = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=unknown_classes)
    with pytest.raises(gc.ShapeError, match="number of classes"):
        gc.gradients(z, unknown_classes)


# --------------------------------------------------------------------------- check_gradients itself
_CUBE = "GradTestCubeForCheckGradients"  # a name no other test uses


def _cube_rule(b, node, g):
    x = node.inputs[0]
    return [b.unbroadcast(b.multiply(g, b.multiply(3.0, b.square(x))), x)]


def _wrong_cube_rule(b, node, g):
    x = node.inputs[0]
    return [b.unbroadcast(b.multiply(g, b.multiply(2.9, b.square(x))), x)]  # 2.9 x^2: wrong by 3%


@pytest.fixture
def cube_op():
    """A custom elementwise op x**3 with a correct gradient rule, registered for this test only:
    the registry is global and other tests enumerate every registered op, so it is removed again."""
    assert _CUBE not in all_ops()
    op = define_elementwise(_CUBE, 1, lambda x: x * x * x, doc="x ** 3 (a test op for check_gradients)")
    register_gradient(_CUBE)(_cube_rule)
    try:
        yield op
    finally:
        from graphc.ops import base
        base._REGISTRY.pop(_CUBE, None)  # no public way to unregister an op
        assert _CUBE not in all_ops()


def test_check_gradients_catches_a_wrong_rule(cube_op, backend):
    x = np.array([[0.5, -1.0, 2.0], [1.5, -0.3, 0.8]])
    fn = lambda t: apply(_CUBE, [t]) + t  # noqa: E731
    assert gc.testing.check_gradients(fn, [x], backend=backend) <= 1.0
    register_gradient(_CUBE)(_wrong_cube_rule)
    try:
        with pytest.raises(GradientCheckError, match=r"input 0 .*differ most at \[0, 2\]"):
            gc.testing.check_gradients(fn, [x], backend=backend)
    finally:
        register_gradient(_CUBE)(_cube_rule)
    assert cube_op.grad is _cube_rule
    assert gc.testing.check_gradients(fn, [x], backend=backend) <= 1.0


def test_check_gradients_reports_non_finite_gradients(backend):
    with pytest.raises(GradientCheckError, match="not finite"):
        gc.testing.check_gradients(lambda x: gc.sqrt(x), [np.array([0.0, 1.0])], backend=backend)

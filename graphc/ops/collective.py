"""Collective ops across processes: allreduce, broadcast and allgather (graphc.distributed, over
MPI). Each is a node of the graph like any other: it differentiates (the gradient of an
allreduce is an allreduce), runs on every CPU backend, and the compiled program calls the
runtime between kernels to exchange the data (graphc/runtime/host_calls.py).

The exchange itself is done by a handler that graphc.distributed installs when it starts MPI
(`set_collective_handler`); without one the process is alone (a world of size 1): an allreduce
or a broadcast returns its input and an allgather stacks it once, so a script written for
mpirun also runs as a plain `python train.py`.

`key` names the collective in messages (the node's name); `rank` and `size` are the process's
place in the world when the graph was built, which the gradients of broadcast and allgather
need (only the root's input, only this rank's slice).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DTypeError
from . import attrs as attr_rules
from .base import OpDef, register, register_gradient

REDUCTIONS = ("sum", "average")

# kind -> (x, out, attrs) -> None: fills `out`; installed by graphc.distributed.init()
_handler: Callable[[str, np.ndarray, np.ndarray, dict[str, Any]], None] | None = None


def set_collective_handler(handler: Callable[[str, np.ndarray, np.ndarray, dict[str, Any]], None] | None) -> None:
    global _handler
    _handler = handler


_started: dict[str, np.ndarray] = {}   # alone: what an allreduce_start handed over, by key


def run_collective(kind: str, x: np.ndarray | None, out: np.ndarray | None, attrs: dict[str, Any]) -> None:
    """Fill `out` with the collective's result for this process's `x` (alone: a world of one).
    Compiled programs split an allreduce in two calls: "allreduce_start" (x only) and
    "allreduce_wait" (out only), paired by the key."""
    if _handler is not None:
        _handler(kind, x, out, attrs)
    else:
        run_alone(kind, x, out, attrs)
    if kind in ("allreduce", "allreduce_wait") and attrs.get("root", -1) >= 0 and \
            attrs["root"] != getattr(_handler, "rank", 0):
        out[...] = 0   # the gradient of a broadcast: only its root keeps the sum


def run_alone(kind: str, x: np.ndarray | None, out: np.ndarray | None, attrs: dict[str, Any]) -> None:
    """A collective in a world of one process: its own value (stacked once for an allgather)."""
    if kind == "allreduce_start":
        _started[attrs["key"]] = np.array(x, copy=True)
    elif kind == "allreduce_wait":
        out[...] = _started.pop(attrs["key"])
    elif kind == "allgather":
        out[0] = x
    else:
        out[...] = x


def _numbers(op: str, x: Any) -> None:
    if x.dtype.name == "bool":
        raise DTypeError(f"{op} exchanges numbers, got a bool tensor", hint="cast it first")


class _Collective(OpDef):
    arity = 1
    stateful = True          # every call is an exchange with the other processes: never merged or folded
    has_side_effect = False
    kind = ""

    def reference(self, inputs, attrs):
        x = np.ascontiguousarray(inputs[0])
        shape, dtype = self.infer_shape(x.shape, attrs), x.dtype
        out = np.empty(shape, dtype)
        run_collective(self.kind, x, out, attrs)
        return out

    def infer_shape(self, shape: tuple, attrs: dict[str, Any]) -> tuple:
        return tuple(shape)

    def infer(self, inputs, attrs):
        x = inputs[0]
        _numbers(self.name, x)
        return [(x.dtype, None if x.shape is None else self.infer_shape(tuple(x.shape), attrs))]


_COMMON = {"key": attr_rules.string(max_length=4096), "rank": attr_rules.integer(0, 1 << 20),
           "size": attr_rules.integer(1, 1 << 20)}


@register
class MpiAllreduce(_Collective):
    """The elementwise sum (or average) of x over every process."""

    name = "MpiAllreduce"
    kind = "allreduce"
    # root >= 0: only that rank keeps the result, the others get zeros (a broadcast's gradient)
    attr_defaults = {"reduce": "sum", "root": -1, "key": "", "rank": 0, "size": 1}
    attr_checks = {"reduce": attr_rules.string(REDUCTIONS), "root": attr_rules.integer(-1, 1 << 20), **_COMMON}


@register
class MpiBroadcast(_Collective):
    """The root process's x, on every process."""

    name = "MpiBroadcast"
    kind = "broadcast"
    attr_defaults = {"root": 0, "key": "", "rank": 0, "size": 1}
    attr_checks = {"root": attr_rules.integer(0, 1 << 20), **_COMMON}


@register
class MpiAllgather(_Collective):
    """Every process's x, stacked along a new first axis in rank order: [size, *x.shape]."""

    name = "MpiAllgather"
    kind = "allgather"
    attr_defaults = {"key": "", "rank": 0, "size": 1}
    attr_checks = dict(_COMMON)

    def infer_shape(self, shape: tuple, attrs: dict[str, Any]) -> tuple:
        return (attrs["size"],) + tuple(shape)


def _gradient_attrs(node: Any, suffix: str) -> dict[str, Any]:
    return {"key": f"{node.attrs['key']}/{suffix}", "rank": node.attrs["rank"], "size": node.attrs["size"]}


@register_gradient("MpiAllreduce")
def _allreduce_gradient(build, node, g):
    """Each process's input reaches every output: the gradient is the allreduce of the gradients."""
    return [build.apply1("MpiAllreduce", [g], {"reduce": node.attrs["reduce"], **_gradient_attrs(node, "grad")})]


@register_gradient("MpiBroadcast")
def _broadcast_gradient(build, node, g):
    """Only the root's input is used, by every process: it gets the sum of their gradients, the
    others zeros (every rank takes part in the exchange, so the op is the same everywhere)."""
    return [build.apply1("MpiAllreduce", [g], {"reduce": "sum", "root": node.attrs["root"],
                                                **_gradient_attrs(node, "grad")})]


@register_gradient("MpiAllgather")
def _allgather_gradient(build, node, g):
    """This process's input is row `rank` of every process's output."""
    total = build.apply1("MpiAllreduce", [g], {"reduce": "sum", **_gradient_attrs(node, "grad")})
    return [build.gather(total, node.attrs["rank"])]

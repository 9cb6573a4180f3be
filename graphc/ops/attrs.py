"""Checks of op attribute values, shared by every op that declares them.

An op lists its attributes' checks once, in `OpDef.attr_checks` (name -> check); the IR runs
them before the op's inference whenever a node is created (graphc.ops.base.OpDef.output_types),
so a node built by the API, a gradient rule, or a loaded graph file all meet the same rules, and
an op and its gradient twins (MaxPool / MaxPoolGrad / MaxPoolGradGrad, Conv2D and its two
backprops) share one table. A check returns nothing or raises a GraphcError naming the op and
the attribute (ShapeError for shape-like values and DTypeError for dtypes, as the ops' own
inference raises for the same mistakes; InvalidAttributeError for the rest); the IR adds the
node.

The API layer normalizes what users pass (lists to tuples, NumPy ints to ints) before creating
nodes, so these checks mostly matter for values no builder makes: those of a graph file.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import DTypeError, GraphcError, InvalidAttributeError, ShapeError
from ..ir.dtypes import DType, as_dtype

AttrCheck = Callable[[str, str, Any], None]   # (op name, attribute name, value)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_RANK = 64


def fail(op: str, attr: str, expected: str, value: Any, kind: type[GraphcError] = InvalidAttributeError) -> GraphcError:
    """The error for attribute `attr` of op `op` holding `value` instead of `expected`; the IR
    adds the node. Shape-like attributes raise ShapeError and dtypes DTypeError, as the ops'
    own inference does for the same mistakes."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return kind(f"{op} attribute '{attr}' must be {expected}, got {text}")


def _range(low: int, high: int) -> str:
    if low == 0 and high == INT64_MAX:
        return "non-negative integers"
    if low == INT64_MIN and high == INT64_MAX:
        return "integers"
    return f"integers in [{low}, {high}]"


def is_int(value: Any) -> bool:
    """A Python int, not a bool. NumPy integers are refused, as graphc.ir.shapes refuses them
    for axes: the API converts what users pass, and a file can only hold one as a tagged scalar."""
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int = INT64_MIN, high: int = INT64_MAX, optional: bool = False,
            kind: type[GraphcError] = InvalidAttributeError) -> AttrCheck:
    """An int in [low, high] (or None when optional)."""
    what = "one of the " + _range(low, high) + (" or null" if optional else "")

    def check(op: str, attr: str, value: Any) -> None:
        if value is None and optional:
            return
        if not is_int(value) or not low <= value <= high:
            raise fail(op, attr, what, value, kind)
    return check


def int_tuple(length: int | None = None, low: int = INT64_MIN, high: int = INT64_MAX, optional: bool = False,
              max_length: int = 1 << 20, allow_none: bool = False,
              kind: type[GraphcError] = ShapeError) -> AttrCheck:
    """A tuple of ints in [low, high] (None entries when allow_none), of `length` entries
    (at most `max_length`)."""
    count = f"{length} " if length is not None else ""
    what = f"a list of {count}{_range(low, high)}" + (" (or null entries)" if allow_none else "")\
        + (" or null" if optional else "")

    def check(op: str, attr: str, value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, (tuple, list)) or len(value) > max_length or (
                length is not None and len(value) != length):
            raise fail(op, attr, what, value, kind)
        for v in value:
            if v is None and allow_none:
                continue
            if not is_int(v) or not low <= v <= high:
                raise fail(op, attr, what, value, kind)
    return check


def axes(optional: bool = True) -> AttrCheck:
    """An axis or a tuple of axes (in [-64, 63]), or None for all axes."""
    one = integer(-MAX_RANK, MAX_RANK - 1, kind=ShapeError)
    many = int_tuple(low=-MAX_RANK, high=MAX_RANK - 1, max_length=MAX_RANK)

    def check(op: str, attr: str, value: Any) -> None:
        if value is None and optional:
            return
        (many if isinstance(value, (tuple, list)) else one)(op, attr, value)
    return check


def boolean() -> AttrCheck:
    def check(op: str, attr: str, value: Any) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise fail(op, attr, "true or false", value)
    return check


def number(optional: bool = False) -> AttrCheck:
    """A real number (int or float, not bool)."""
    def check(op: str, attr: str, value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise fail(op, attr, "a number", value)
    return check


def string(choices: tuple[str, ...] | None = None, max_length: int = 1 << 16) -> AttrCheck:
    what = f"one of {list(choices)}" if choices else "a string"

    def check(op: str, attr: str, value: Any) -> None:
        if not isinstance(value, str) or len(value) > max_length or (choices and value not in choices):
            raise fail(op, attr, what, value)
    return check


def dtype(optional: bool = False) -> AttrCheck:
    """A graphc DType (or a name or NumPy dtype the API converts; never None unless optional)."""
    def check(op: str, attr: str, value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, DType):
            return
        try:   # as_dtype accepts what the API accepts (names, NumPy dtypes)
            as_dtype(value)
        except Exception:
            raise fail(op, attr, "a dtype", value, DTypeError) from None
    return check


def shape(optional: bool = True, allow_unknown: bool = True) -> AttrCheck:
    """A static shape: a tuple of sizes >= 0 (None = unknown), or None (unknown rank)."""
    return int_tuple(low=0, optional=optional, max_length=MAX_RANK, allow_none=allow_unknown)


def pairs(high: int = (1 << 31) - 1) -> AttrCheck:
    """A tuple of (before, after) pairs of ints in [0, high] (paddings), at most one per dim."""
    what = f"a list of (before, after) pairs of integers in [0, {high}]"

    def check(op: str, attr: str, value: Any) -> None:
        if not isinstance(value, (tuple, list)) or len(value) > MAX_RANK:
            raise fail(op, attr, what, value, ShapeError)
        for p in value:
            if not isinstance(p, (tuple, list)) or len(p) != 2 or not all(is_int(x) and 0 <= x <= high for x in p):
                raise fail(op, attr, what, value, ShapeError)
    return check


def scalar() -> AttrCheck:
    """A number or a bool (a fill value for a tensor of any dtype)."""
    def check(op: str, attr: str, value: Any) -> None:
        if not isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
            raise fail(op, attr, "a number or a bool", value)
    return check


def slice_spec() -> AttrCheck:
    """A strided-slice spec (graphc.ops.slicing): entries ("slice", start, stop, step) with ints
    or None and a non-zero step, ("index", i), ("newaxis",) and at most one ("ellipsis",)."""
    what = ("a list of ['slice', start|null, stop|null, step|null], ['index', i], ['newaxis'] or "
            "['ellipsis'] entries (step not 0, one ellipsis at most)")
    def ok_int(v: Any, allow_none: bool) -> bool:
        return allow_none if v is None else is_int(v) and INT64_MIN <= v <= INT64_MAX

    def check(op: str, attr: str, value: Any) -> None:
        if not isinstance(value, (tuple, list)) or len(value) > MAX_RANK:
            raise fail(op, attr, what, value, ShapeError)
        ellipses = 0
        for e in value:
            good = isinstance(e, (tuple, list)) and len(e) >= 1 and isinstance(e[0], str)
            if good and e[0] == "slice":
                good = len(e) == 4 and all(ok_int(v, True) for v in e[1:]) and e[3] != 0
            elif good and e[0] == "index":
                good = len(e) == 2 and ok_int(e[1], False)
            elif good and e[0] in ("newaxis", "ellipsis"):
                good = len(e) == 1
                ellipses += e[0] == "ellipsis"
            else:
                good = False
            if not good or ellipses > 1:
                raise fail(op, attr, what, value, ShapeError)
    return check


def derived(defaults: dict[str, Any]) -> dict[str, AttrCheck]:
    """Checks following the defaults' types (a bool default: true or false; a number: a
    number; a dtype attribute: a dtype), for ops whose attributes are all of that kind."""
    checks: dict[str, AttrCheck] = {}
    for name, default in defaults.items():
        if isinstance(default, bool):
            checks[name] = boolean()
        elif isinstance(default, (int, float)):
            checks[name] = number()
        elif isinstance(default, DType) or name == "dtype":
            checks[name] = dtype()
    return checks


def one_of(*checks: AttrCheck, what: str) -> AttrCheck:
    """Passes when any of `checks` passes."""
    def check(op: str, attr: str, value: Any) -> None:
        for c in checks:
            try:
                c(op, attr, value)
                return
            except GraphcError:
                continue
        raise fail(op, attr, what, value)
    return check


def run_checks(op: str, checks: dict[str, AttrCheck], attrs: dict[str, Any]) -> None:
    for name, check in checks.items():
        if name in attrs:
            check(op, name, attrs[name])

"""Typed JSON for attribute values, dtypes, shapes and source lines, both ways.

Attribute values are None, bool, int, float, str, (nested) tuples, graphc DTypes, NumPy scalars
and NumPy arrays (sub-graphs, the Function values of loops and branches, are written and read
by save.py and rebuild.py, as graphs). JSON has no tuples, no dtypes and no NaN, so those are written as one-key
tagged objects; the decoder accepts exactly the shapes the encoder writes and reports anything
else as a GraphFileError that says where (node, attribute) and what was expected.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..errors import GraphcError, GraphFileError
from ..ir.dtypes import ALL_DTYPES, DType, as_dtype
from ..source import SourceLocation, shorten_code
from .format import Limits

DTYPE_NAMES = {d.name: d for d in ALL_DTYPES}
INT_LIMIT = 1 << 63
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# ------------------------------------------------------------------------------------ encoding
def encode_value(value: Any, add_array: Callable[[np.ndarray], str], where: str) -> Any:
    """The JSON form of an attribute value; arrays go to `add_array`, which names their entry."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, DType):
        return {"dtype": value.name}
    if isinstance(value, np.ndarray):
        return {"array": add_array(value)}
    if isinstance(value, np.generic):
        dtype = _graphc_dtype(value.dtype, where)
        return {"scalar": [dtype.name, encode_value(value.item(), add_array, where)]}
    if isinstance(value, (tuple, list)):
        return [encode_value(v, add_array, where) for v in value]
    raise GraphcError(f"{where}: cannot write an attribute value of type {type(value).__name__} ({value!r})")


def _graphc_dtype(np_dtype: Any, where: str) -> DType:
    try:
        return as_dtype(np_dtype)
    except GraphcError:
        raise GraphcError(f"{where}: NumPy dtype {np_dtype} is not one of graphc's dtypes") from None


def encode_shape(shape: Any) -> Any:
    return None if shape is None else [None if d is None else int(d) for d in shape]


def encode_source(source: SourceLocation | None) -> Any:
    """The source object of a node or variable: where it was created and that line's text
    (bounded), so that a reader shows the line without ever opening the file it names."""
    if source is None:
        return None
    return {"file": source.filename, "line": source.lineno, "function": source.function,
            "code": source.recorded_code()}


# ------------------------------------------------------------------------------------ decoding
class Decoder:
    """Validating decoders for the pieces of a graph document."""

    def __init__(self, limits: Limits, arrays: dict[str, np.ndarray]) -> None:
        self.limits = limits
        self.arrays = arrays

    # -------------------------------------------------------------- scalars
    def string(self, value: Any, where: str, allow_empty: bool = True) -> str:
        if not isinstance(value, str):
            raise GraphFileError(f"{where} must be a string, got {_kind(value)}")
        if len(value) > self.limits.max_string:
            raise GraphFileError(f"{where} is a string of {len(value)} characters, more than the limit "
                                 f"{self.limits.max_string}")
        if not allow_empty and not value:
            raise GraphFileError(f"{where} must not be empty")
        return value

    def integer(self, value: Any, where: str, low: int = -INT_LIMIT, high: int = INT_LIMIT - 1) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise GraphFileError(f"{where} must be an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise GraphFileError(f"{where} is {value}, outside [{low}, {high}]")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise GraphFileError(f"{where} must be true or false, got {_kind(value)}")
        return value

    def dtype(self, value: Any, where: str) -> DType:
        if not isinstance(value, str) or value not in DTYPE_NAMES:
            raise GraphFileError(f"{where} must be one of the dtype names {sorted(DTYPE_NAMES)}, got {_short(value)}")
        return DTYPE_NAMES[value]

    def obj(self, value: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> dict:
        """A JSON object with exactly these keys (optional ones may be missing)."""
        if not isinstance(value, dict):
            raise GraphFileError(f"{where} must be a JSON object, got {_kind(value)}")
        missing = required - set(value)
        if missing:
            raise GraphFileError(f"{where} lacks field(s) {sorted(missing)}")
        extra = set(value) - required - set(optional)
        if extra:
            raise GraphFileError(f"{where} has unknown field(s) {sorted(map(str, extra))[:5]}")
        return value

    def array_list(self, value: Any, where: str, limit: int) -> list:
        if not isinstance(value, list):
            raise GraphFileError(f"{where} must be a JSON array, got {_kind(value)}")
        if len(value) > limit:
            raise GraphFileError(f"{where} has {len(value)} entries, more than the limit {limit}")
        return value

    # -------------------------------------------------------------- shapes and sources
    def shape(self, value: Any, where: str, allow_unknown: bool = True) -> tuple | None:
        """None (unknown rank) or a tuple of dims (None = unknown), within the limits."""
        if value is None:
            if not allow_unknown:
                raise GraphFileError(f"{where} must be a fully known shape, got null")
            return None
        dims = self.array_list(value, where, self.limits.max_rank)
        out: list[int | None] = []
        for i, d in enumerate(dims):
            if d is None:
                if not allow_unknown:
                    raise GraphFileError(f"{where}[{i}] must be a known size, got null")
                out.append(None)
            else:
                out.append(self.integer(d, f"{where}[{i}]", 0, self.limits.max_dim))
        known = math.prod(d for d in out if d is not None)
        if known > self.limits.max_elements:
            raise GraphFileError(f"{where} {tuple(out)} declares {known} elements, more than the limit "
                                 f"{self.limits.max_elements}")
        return tuple(out)

    def source(self, value: Any, where: str) -> SourceLocation | None:
        """A recorded location: its text is the file's "code" field ("" when absent, as in
        version 1), never read from the file it names. Control characters are shown escaped,
        so a hostile file cannot put terminal escapes into an error message."""
        if value is None:
            return None
        obj = self.obj(value, where, {"file", "line", "function"}, {"code"})
        code = self.string(obj.get("code", ""), f"{where}.code")
        return SourceLocation(_printable(self.string(obj["file"], f"{where}.file")),
                              self.integer(obj["line"], f"{where}.line", 0, INT_LIMIT - 1),
                              _printable(self.string(obj["function"], f"{where}.function")),
                              text=shorten_code(_printable(code)))

    # -------------------------------------------------------------- attribute values
    def value(self, value: Any, where: str) -> Any:
        budget = [self.limits.max_attr_items]
        return self._value(value, where, 0, budget)

    def _value(self, value: Any, where: str, depth: int, budget: list[int]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise GraphFileError(f"{where} holds more than {self.limits.max_attr_items} items")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return self.integer(value, where)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise GraphFileError(f"{where}: non-finite floats must be written as {{'float': 'nan'}}")
            return value
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, list):
            if depth >= self.limits.max_attr_depth:
                raise GraphFileError(f"{where} nests deeper than {self.limits.max_attr_depth} levels")
            return tuple(self._value(v, f"{where}[{i}]", depth + 1, budget) for i, v in enumerate(value))
        if isinstance(value, dict) and len(value) == 1:
            (tag, body), = value.items()
            if tag == "float" and isinstance(body, str) and body in _NONFINITE:
                return _NONFINITE[body]
            if tag == "dtype":
                return self.dtype(body, f"{where}.dtype")
            if tag == "array":
                name = self.string(body, f"{where}.array")
                if name not in self.arrays:
                    raise GraphFileError(f"{where} refers to array entry {_short(name)}, which the file does "
                                         f"not declare")
                return self.arrays[name]
            if tag == "function":
                raise GraphFileError(f"{where}: a sub-graph ({{'function': ...}}) where a plain value belongs (only "
                                     f"the attributes of loops and branches that hold functions take one)")
            if tag == "scalar" and isinstance(body, list) and len(body) == 2:
                dtype = self.dtype(body[0], f"{where}.scalar[0]")
                item = body[1]
                if isinstance(item, dict):
                    item = self._value(item, f"{where}.scalar[1]", depth + 1, budget)
                if dtype.is_bool:
                    ok = isinstance(item, bool)
                elif dtype.is_integer:
                    ok = isinstance(item, int) and not isinstance(item, bool)
                else:
                    ok = isinstance(item, (int, float)) and not isinstance(item, bool)
                if not ok:
                    raise GraphFileError(f"{where}: scalar {_short(item)} does not fit dtype {dtype.name}")
                try:
                    with np.errstate(all="raise"):
                        return dtype.np.type(item)
                except (OverflowError, FloatingPointError, ValueError):
                    raise GraphFileError(f"{where}: scalar {_short(item)} does not fit dtype {dtype.name}") from None
        raise GraphFileError(f"{where}: {_short(value)} is not a valid attribute value (expected null, a bool, "
                             f"a number, a string, a list or one of {{'float'|'dtype'|'array'|'scalar': ...}})")


def _printable(text: str) -> str:
    """`text` with control characters (terminal escapes, newlines) written as \\xNN."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _kind(value: Any) -> str:
    names = {type(None): "null", bool: "a bool", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "an object"}
    return f"{names.get(type(value), type(value).__name__)} ({_short(value)})"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."

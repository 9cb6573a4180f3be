"""What parsing a graph document will cost, known before it is parsed.

`json.loads` turns every JSON value into a Python object: two bytes of text (`[]`) become a list
of about 90 bytes, so a small file of "many tiny lists" can take gigabytes before any check
on its structure runs. `parse_cost` is a conservative estimate of the memory the parsed
document takes, from a few C-speed counts over the text (no tokenizing): each `{` is charged as
a dict, each `[` as a list, each `,` and `:` as a value and its slot, each `"` as half a string
object, plus the text itself. Characters inside strings are counted too, which only raises the
estimate. Measured on CPython 3.11, the real cost is below the estimate for every shape of
document (graphc's own files, compact JSON, lists of empty lists or dicts, short strings,
floats, one-key dicts); a document graphc writes is estimated at about 8 bytes per byte of
text (about 4 actually used), compact JSON from another writer at about 11, and the hostile
shapes at 17 to 80.

`check_parse_cost` refuses, before parsing, a document whose estimate exceeds either bound of
`Limits`: `max_json_cost_per_byte` times its text (dense container soups, however they are
stored) and `max_json_cost_per_stored_byte` times its compressed size in the file (so that the
memory a file can make graphc use grows with the file's size, not with its compression ratio).
A document estimated under FREE_COST is always parsed: it cannot cost much whatever its shape.
"""
from __future__ import annotations

from ..errors import GraphFileError
from .format import GRAPH_ENTRY, Limits

DICT_COST = 200     # an empty dict is 64 bytes, a small one 184-232, plus its slot
LIST_COST = 96      # a list grown by appends over-allocates: 88 bytes for one item, plus its slot
VALUE_COST = 32     # a value's slot in its container (8-9 bytes) and a boxed number (24-32 bytes)
QUOTE_COST = 24     # half of a short string's 49-byte header (each string has two quotes)
FREE_COST = 16 << 20


def parse_cost(text: bytes) -> int:
    """An upper estimate, in bytes, of the memory `json.loads(text)` takes."""
    values = text.count(b",") + text.count(b":")
    return (DICT_COST * text.count(b"{") + LIST_COST * text.count(b"[") + VALUE_COST * values
            + QUOTE_COST * text.count(b'"') + len(text))


def check_parse_cost(text: bytes, stored_size: int, limits: Limits, where: str) -> None:
    """GraphFileError when parsing `text` (stored in `stored_size` bytes of the file) could
    cost more memory than the limits allow."""
    cost = parse_cost(text)
    if cost <= FREE_COST:
        return
    per_byte = cost / max(len(text), 1)
    if per_byte > limits.max_json_cost_per_byte:
        raise GraphFileError(
            f"{where}: {GRAPH_ENTRY} would take about {cost >> 20} MiB to parse, {per_byte:.0f} bytes per byte "
            f"of text, more than the limit {limits.max_json_cost_per_byte} (too many tiny lists, objects or "
            f"values for its size)")
    if cost > limits.max_json_cost_per_stored_byte * max(stored_size, 1):
        raise GraphFileError(
            f"{where}: {GRAPH_ENTRY} would take about {cost >> 20} MiB to parse from {stored_size} stored bytes, "
            f"more than the limit of {limits.max_json_cost_per_stored_byte} bytes per stored byte")

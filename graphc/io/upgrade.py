"""Bringing a graph document of an older format version up to the current one, in one place.

Every reader goes through `upgrade()` right after parsing the JSON: it refuses versions newer
than this graphc knows (with a message saying so) and applies the registered upgrade steps one
version at a time, so the rest of the reader only ever sees the current layout.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import GraphFileError
from .format import FORMAT_NAME, FORMAT_VERSION


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 gave source objects an optional "code" field (the line's text, shown in error
    messages instead of reading the file the graph names). A version-1 source lacks it and is
    read with no text, so the document needs no change; the version says a version-1 reader
    would refuse the new field."""
    return doc


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 3 added sub-graphs: `{"function": ...}` values of While and If attributes. A
    version-2 document has none, so it needs no change."""
    return doc


def _v3_to_v4(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 4 added the optional "model" field (a saved model's description); a version-3
    document has none, so it needs no change."""
    return doc


# version N -> a function turning a version-N document into a version-(N + 1) document.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def upgrade(doc: Any, where: str) -> dict[str, Any]:
    """The document in the current layout, or GraphFileError naming the problem."""
    if not isinstance(doc, dict):
        raise GraphFileError(f"{where}: the graph document must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT_NAME:
        raise GraphFileError(f"{where}: not a graphc graph file (field 'format' is {doc.get('format')!r}, "
                             f"expected {FORMAT_NAME!r})")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise GraphFileError(f"{where}: field 'version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise GraphFileError(
            f"{where}: the file has format version {version}, but this graphc reads versions up to "
            f"{FORMAT_VERSION}; it was written by a newer graphc (producer {doc.get('producer')!r})",
            hint="upgrade graphc to read it")
    while version < FORMAT_VERSION:
        step = UPGRADES.get(version)
        if step is None:
            raise GraphFileError(f"{where}: format version {version} is no longer supported")
        doc = step(doc)
        version += 1
        doc["version"] = version
    return doc

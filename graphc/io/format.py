"""The `.gcx` graph file: its name, version, layout and the limits a reader enforces.

A `.gcx` file is a zip archive holding exactly:

- `graph.json`: the versioned graph document (nodes with their ops, attributes, edges, names,
  output dtypes and shapes and the source line that created them; variables; collections; and a
  table describing every array entry), compressed with deflate;
- `arrays/<n>.npy`: one NumPy `.npy` file per constant or variable value, stored uncompressed
  and read with `allow_pickle=False`.

The limits exist because a graph file is untrusted input: every size is checked from the zip's
central directory before a byte is decompressed, so a hostile file cannot make the reader
allocate or decompress more than these bounds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FORMAT_NAME = "graphc.gcx"
FORMAT_VERSION = 1           # the version this graphc writes (and the newest it reads)
GRAPH_ENTRY = "graph.json"
ARRAY_DIR = "arrays/"
ARRAY_ENTRY = re.compile(r"^arrays/(0|[1-9][0-9]{0,8})\.npy$")

# The .npy descriptors graphc writes and accepts: its five dtypes, little-endian.
NPY_DESCR = {"|b1": "bool", "<i4": "int32", "<i8": "int64", "<f4": "float32", "<f8": "float64"}


@dataclass(frozen=True)
class Limits:
    """Bounds a reader enforces on an untrusted file (all sizes in bytes)."""

    max_file_size: int = 8 << 30
    max_total_uncompressed: int = 8 << 30
    max_entry_size: int = 4 << 30
    max_json_size: int = 256 << 20
    max_entries: int = 1_000_000
    max_compression_ratio: int = 200      # for compressed entries; graphc stores arrays uncompressed
    max_nodes: int = 2_000_000
    max_outputs_per_node: int = 100_000
    max_rank: int = 64
    max_dim: int = 1 << 48
    max_elements: int = 1 << 48           # of any declared tensor shape
    max_string: int = 4096                # names, op names, attribute strings, source files
    max_attr_depth: int = 16              # nesting of tuples inside an attribute value
    max_attr_items: int = 1_000_000       # scalars inside one attribute value


DEFAULT_LIMITS = Limits()

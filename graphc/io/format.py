"""The `.gcx` graph file: its name, version, layout and the limits a reader enforces.

A `.gcx` file is a zip archive holding exactly:

- `graph.json`: the versioned graph document (nodes with their ops, attributes, edges, names,
  output dtypes and shapes and the source line that created them; variables; collections; and a
  table describing every array entry), compressed with deflate. A node owning sub-graphs (a
  While's body and cond, an If's branches) holds each as a nested graph in its attribute:
  `{"function": {"id", "name", "nodes", "args", "results"}}`, where `nodes` are written like the
  document's, `args` name the sub-graph's argument placeholders in call order and `results` its
  result tensors. A sub-graph used by several nodes is written once and then referred to as
  `{"function": id}`; one whose graph another function already holds (the body with more
  results a gradient needs) gives `"graph": id` instead of `nodes`, and `"origin": id` for the
  function it extends. Ids count definitions in the order the file gives them, and every
  reference names a definition already complete, so no sub-graph can contain itself;
- optionally, in graph.json, `"model"`: a JSON object describing a saved Keras-style model
  (names of tensors and nodes of the graph, strings, numbers; graphc/model_files.py checks it);
- `arrays/<n>.npy`: one NumPy `.npy` file per constant or variable value, stored uncompressed
  and read with `allow_pickle=False`.

The limits exist because a graph file is untrusted input: every size is checked from the zip's
central directory before a byte is decompressed, the central directory's own size before it is
read, and what parsing graph.json will cost before it is parsed (see jsoncost.py), so a hostile
file cannot make the reader allocate or decompress more than these bounds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FORMAT_NAME = "graphc.gcx"
# The newest version this graphc writes and reads. Version 2 added the "code" field (the source
# line's text) to source objects; version 3 added sub-graphs (function attribute values). A graph
# without sub-graphs is still written as version 2, so graphc releases that predate loops read
# it; one with sub-graphs is version 3, so they refuse it by its version ("written by a newer
# graphc") instead of stumbling on an attribute value they do not know. Version 4 added the
# optional "model" field (Model.save's description of a model: which tensors are its inputs,
# outputs, labels and steps, its compile settings); only model files are written as version 4.
# graphc reads versions 1 to 3 too (see upgrade.py).
FORMAT_VERSION = 4
LOOPS_VERSION = 3
PLAIN_VERSION = 2
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
    # Entries are the graph document and one per distinct array (graphc deduplicates arrays by
    # content); zipfile keeps ~500 bytes per entry of the central directory, which is refused
    # unread when it is larger than max_entries entries can need (CENTRAL_ENTRY_BYTES each).
    max_entries: int = 100_000
    max_compression_ratio: int = 200      # for compressed entries; graphc stores arrays uncompressed
    max_nodes: int = 2_000_000            # in all: the graph's, every sub-graph's, and one per sub-graph
    max_outputs_per_node: int = 100_000
    max_rank: int = 64
    max_dim: int = 1 << 48
    max_elements: int = 1 << 48           # of any declared tensor shape
    max_string: int = 4096                # names, op names, attribute strings, source files
    max_attr_depth: int = 16              # nesting of tuples inside an attribute value
    max_attr_items: int = 1_000_000       # scalars inside one attribute value
    max_function_depth: int = 32          # sub-graphs inside sub-graphs (a loop in a loop body)
    # Estimated memory of the parsed graph.json (jsoncost.py) per byte of its text, and per byte
    # it takes in the file: graphc's own documents need ~8 and ~300 (~500 for long chains of
    # identical nodes); a document of tiny lists needs 33 per byte of text.
    max_json_cost_per_byte: int = 16
    max_json_cost_per_stored_byte: int = 1024


# The most central-directory bytes one entry graphc writes can take: 46 fixed, the name
# ("arrays/<n>.npy", at most 20 characters) and a zip64 extra field (up to 28).
CENTRAL_ENTRY_BYTES = 96

DEFAULT_LIMITS = Limits()

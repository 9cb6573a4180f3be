"""Graph files and ONNX: `save_graph` / `load_graph` for graphc's own `.gcx` format, and the
`onnx` module (export, import, backend). Loading never executes code from a file."""
from __future__ import annotations

from . import onnx
from .format import DEFAULT_LIMITS, FORMAT_VERSION, Limits
from .load import load_graph, load_graph_bytes
from .save import save_graph

__all__ = ["DEFAULT_LIMITS", "FORMAT_VERSION", "Limits", "load_graph", "load_graph_bytes", "onnx", "save_graph"]

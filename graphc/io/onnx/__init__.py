"""ONNX export and import (`gc.onnx.export`, `gc.onnx.load`).

The `onnx` package is an optional dependency (the `onnx` extra): it is imported only when one
of these functions is called, so graphc itself imports without it.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...errors import GraphcError


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise GraphcError("gc.onnx needs the onnx package", hint='pip install "graphc[onnx]"') from None


def export(path: Any, inputs: Sequence[Any], outputs: Sequence[Any], session: Any = None,
           opset: int | None = None) -> Any:
    """Write the subgraph computing `outputs` from `inputs` as an ONNX model (opset 18 by
    default, 17 to 21 accepted); variables are frozen to their values in `session` (else their
    initial values). Returns the onnx.ModelProto written."""
    _require_onnx()
    from .exporter import export_model

    return export_model(path, inputs, outputs, session=session, opset=opset)


def load(path: Any) -> tuple[Any, list[Any], list[Any]]:
    """Import an ONNX model (a path, bytes or an onnx.ModelProto) as a new graphc graph:
    returns (graph, input placeholders, output tensors). Initializers become constants."""
    _require_onnx()
    from .importer import import_model

    imported = import_model(path)
    return imported.graph, imported.inputs, imported.outputs


__all__ = ["export", "load"]

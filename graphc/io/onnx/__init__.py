"""ONNX export and import (`gc.onnx.export`, `gc.onnx.load`).

The `onnx` package is an optional dependency (the `onnx` extra): it is imported only when one
of these functions is called, so graphc itself imports without it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def load(path: Any, max_tensor_bytes: int | None = None,
         input_shapes: dict[str, Any] | None = None) -> tuple[Any, list[Any], list[Any]]:
    """Import an ONNX model (a path, bytes or an onnx.ModelProto) as a new graphc graph:
    returns (graph, input placeholders, output tensors). Initializers become constants.
    `input_shapes={"x": [8, 128]}` fixes dynamic axes (a symbolic batch size) at load.

    A file graphc cannot import is a GraphFileError naming the node and the field; a tensor
    (an initializer, a declared input, a result whose shape is known) over `max_tensor_bytes`
    (default 4 GiB) is a ResourceExhaustedError. External data is read only from regular files
    inside the model's folder, so only when `path` is a path. Nothing in the file is executed."""
    _require_onnx()
    from .importer import import_model
    from .tensors import DEFAULT_MAX_TENSOR_BYTES

    imported = import_model(path, max_tensor_bytes=max_tensor_bytes or DEFAULT_MAX_TENSOR_BYTES,
                            input_shapes=input_shapes)
    return imported.graph, imported.inputs, imported.outputs


__all__ = ["export", "load"]

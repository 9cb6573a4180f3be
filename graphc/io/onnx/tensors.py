"""ONNX TensorProto -> NumPy array, checked field by field.

Why not `onnx.numpy_helper.to_array`: it trusts the proto. Dims that disagree with the data
raise NumPy's ValueError, an unknown element type a KeyError, and external data is read from
wherever the location says, relative to the current folder when no folder is given. Here the
element type, the dims (non-negative, their product bounded) and the amount of data (raw bytes,
the typed field, or the external file's slice) are checked against each other first, and each
mismatch is a GraphFileError naming the tensor and the field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import GraphFileError, ResourceExhaustedError
from .common import (
    BFLOAT16,
    BOOL,
    DOUBLE,
    FLOAT,
    FLOAT16,
    INT8,
    INT16,
    INT32,
    INT64,
    NUMPY_OF_ONNX,
    UINT8,
    UINT16,
    UINT32,
    graphc_type,
)
from .files import external_bytes, short

DEFAULT, EXTERNAL = 0, 1   # TensorProto.DataLocation
DEFAULT_MAX_TENSOR_BYTES = 1 << 32
# The typed field that holds each element type's values when raw_data is empty (onnx.proto).
_FIELD = {FLOAT: "float_data", DOUBLE: "double_data", INT64: "int64_data", UINT32: "uint64_data",
          INT32: "int32_data", INT16: "int32_data", INT8: "int32_data", UINT16: "int32_data", UINT8: "int32_data",
          BOOL: "int32_data", FLOAT16: "int32_data", BFLOAT16: "int32_data"}


def checked_dims(dims: Any, what: str, itemsize: int, max_bytes: int) -> tuple[int, ...]:
    """Dims that are non-negative and whose tensor fits in `max_bytes`."""
    out = tuple(int(d) for d in dims)
    for i, d in enumerate(out):
        if d < 0:
            raise GraphFileError(f"{what}: dim {i} is {d}; dims must be >= 0")
    count = 1
    for d in out:
        count *= d
    if count * itemsize > max_bytes:
        raise ResourceExhaustedError(f"{what}: shape {short(out)} holds {short(count, 30)} elements "
                                     f"({short(count * itemsize, 30)} bytes), more than the limit of {max_bytes} bytes")
    return out


def tensor_array(proto: Any, what: str, folder: Path | None = None,
                 max_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> np.ndarray:
    """The values of TensorProto `proto` in graphc's (possibly wider) dtype.

    `what` names the tensor in errors ("initializer 'w'", "ONNX node 3 (Constant): attribute
    'value'"); `folder` is where external data may be read from (None: refused)."""
    what = f"{what} (tensor {short(proto.name)!r})" if proto.name and short(proto.name) not in what else what
    dtype = graphc_type(proto.data_type, what)
    np_type = NUMPY_OF_ONNX.get(proto.data_type)
    if np_type is None:  # pragma: no cover - every type graphc holds has a NumPy twin
        raise GraphFileError(f"{what}: element type {proto.data_type} has no NumPy form")
    itemsize = np.dtype(np_type).itemsize
    dims = checked_dims(proto.dims, f"{what}: field 'dims'", itemsize, max_bytes)
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if proto.HasField("segment"):
        raise GraphFileError(f"{what}: segmented tensors (field 'segment') are not supported")
    location = proto.data_location
    if location not in (DEFAULT, EXTERNAL):
        raise GraphFileError(f"{what}: field 'data_location' is {location}, not DEFAULT (0) or EXTERNAL (1)")
    if location == EXTERNAL:
        raw = external_bytes(proto, what, folder, count * itemsize)
    elif proto.external_data:
        raise GraphFileError(f"{what}: has field 'external_data' but its data_location is DEFAULT")
    else:
        raw = proto.raw_data if proto.HasField("raw_data") else None
    if raw is not None:
        if len(raw) != count * itemsize:
            raise GraphFileError(f"{what}: field 'raw_data' holds {len(raw)} bytes; shape {dims} of "
                                 f"{np.dtype(np_type).name} needs {count * itemsize}")
        if proto.data_type == BOOL:
            flat = np.frombuffer(raw, dtype=np.uint8) != 0
        else:
            flat = np.frombuffer(raw, dtype=np.dtype(np_type).newbyteorder("<"))
    else:
        field = _FIELD[proto.data_type]
        values = getattr(proto, field)
        others = [f for f in set(_FIELD.values()) | {"string_data"} if f != field and len(getattr(proto, f))]
        if others:
            raise GraphFileError(f"{what}: values in field '{others[0]}', which does not hold "
                                 f"{np.dtype(np_type).name} values (they belong in '{field}')")
        if len(values) != count:
            raise GraphFileError(f"{what}: field '{field}' holds {len(values)} values; shape {dims} needs {count}")
        flat = _typed_values(values, proto.data_type, np_type)
    return flat.reshape(dims).astype(dtype.np)


def _typed_values(values: Any, data_type: int, np_type: Any) -> np.ndarray:
    if data_type in (FLOAT16, BFLOAT16):  # the 16-bit patterns, one per int32 (onnx.proto)
        return np.asarray(values, dtype=np.int64).astype(np.uint16).view(np_type)
    if data_type == BOOL:
        return np.asarray(values, dtype=np.int64) != 0
    if data_type in (INT8, INT16, INT32, UINT8, UINT16, UINT32, INT64):
        return np.asarray(values, dtype=np.int64 if data_type != UINT32 else np.uint64).astype(np_type)
    return np.asarray(values, dtype=np_type)

"""What the ONNX exporter and importer share: element-type maps and the opset range.

graphc has five dtypes. ONNX has many more; on import the narrow integer and float types widen
to the nearest graphc type that holds all their values (int8/uint8/int16/uint16 -> int32,
uint32 -> int64, float16/bfloat16 -> float32), the same rule graphc applies to NumPy values;
types with no such graphc type (strings, complex, uint64, 8-bit and 4-bit floats) are refused.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import GraphFileError
from ...ir.dtypes import DType, bool_, float32, float64, int32, int64

DEFAULT_OPSET = 18
MIN_OPSET = 17
MAX_OPSET = 21

# ONNX TensorProto element types by number (stable across onnx versions).
FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, STRING, BOOL, FLOAT16, DOUBLE, UINT32, UINT64 = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
BFLOAT16 = 16

TO_ONNX: dict[str, int] = {"float32": FLOAT, "float64": DOUBLE, "int32": INT32, "int64": INT64, "bool": BOOL}
FROM_ONNX: dict[int, DType] = {
    FLOAT: float32, DOUBLE: float64, INT32: int32, INT64: int64, BOOL: bool_,
    UINT8: int32, INT8: int32, UINT16: int32, INT16: int32, UINT32: int64, FLOAT16: float32, BFLOAT16: float32,
}
NUMPY_OF_ONNX: dict[int, Any] = {
    FLOAT: np.float32, DOUBLE: np.float64, INT32: np.int32, INT64: np.int64, BOOL: np.bool_, UINT8: np.uint8,
    INT8: np.int8, UINT16: np.uint16, INT16: np.int16, UINT32: np.uint32, FLOAT16: np.float16,
}
try:  # onnx stores bfloat16 arrays with ml_dtypes' type (a dependency of onnx)
    import ml_dtypes

    NUMPY_OF_ONNX[BFLOAT16] = ml_dtypes.bfloat16
except ImportError:  # pragma: no cover
    pass


def onnx_type(dtype: DType) -> int:
    return TO_ONNX[dtype.name]


def graphc_type(elem_type: int, what: str) -> DType:
    """The graphc dtype holding every value of an ONNX element type, or GraphFileError."""
    dtype = FROM_ONNX.get(elem_type)
    if dtype is None:
        import onnx

        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() \
            else f"{elem_type} (not an ONNX element type)"
        raise GraphFileError(f"{what} has ONNX element type {name}, which graphc cannot hold "
                          f"(graphc has bool, int32, int64, float32 and float64)")
    return dtype

"""Reading an ONNX file and its external data without trusting either.

Why this exists: `onnx.load` follows whatever a model says. It decodes with protobuf (whose
DecodeError is not a GraphcError), reads a FIFO until a writer comes (forever), and resolves
external data locations itself. Here the model file must be a regular file under a size bound,
read in chunks; protobuf errors become GraphFileError at this one boundary; and external data is
read only from regular files that really lie inside the model's own folder (no `..`, no absolute
paths, no symlink leading out, no devices or FIFOs), at an offset and length checked against the
file's size and the tensor's declared size before a byte is read. Loading never executes code
from the file.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ...errors import GraphFileError
from ..files import read_regular, short  # noqa: F401  (short: the ONNX modules' name shortener)

MAX_MODEL_BYTES = (1 << 31) - 1   # protobuf cannot hold a bigger message
_EXTERNAL_KEYS = {"location", "offset", "length", "checksum", "basepath"}
_DECIMAL = re.compile(r"[0-9]{1,19}")


def decode_model(data: bytes, where: str) -> Any:
    """Parse the bytes of an ONNX model; anything protobuf cannot decode is a GraphFileError."""
    import onnx
    from google.protobuf.message import DecodeError

    if len(data) > MAX_MODEL_BYTES:
        raise GraphFileError(f"{where}: {len(data)} bytes is more than an ONNX model can hold ({MAX_MODEL_BYTES})")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError as err:
        raise GraphFileError(f"{where} is not an ONNX model: protobuf cannot decode it ({short(err, 200)})") from None
    check_text(model, where)
    return model


def load_model(source: Any) -> tuple[Any, Path | None, str]:
    """(ModelProto, the folder its external data may come from or None, a name for messages)
    for a path, bytes or a ModelProto."""
    import onnx

    if isinstance(source, onnx.ModelProto):
        check_text(source, "the ONNX model")
        return source, None, "the ONNX model"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_model(bytes(source), "the ONNX bytes"), None, "the ONNX bytes"
    path = os.fspath(source)
    where = f"ONNX file {short(path, 200)!r}"
    data = read_regular(path, where, MAX_MODEL_BYTES)
    return decode_model(data, where), Path(os.path.dirname(os.path.abspath(path))), where


def check_text(msg: Any, where: str) -> None:
    """Every string field holds text. protobuf hands back proto2 strings that are not UTF-8 as
    bytes, which every later use of a name (hashing it, formatting it) would trip over. A walk
    with its own stack: a ModelProto built in memory may nest subgraphs deeper than Python
    recurses."""
    stack = [msg]
    while stack:
        for field, value in stack.pop().ListFields():
            if field.type == field.TYPE_STRING:
                for v in (value if _repeated(field) else [value]):
                    if not isinstance(v, str):
                        raise GraphFileError(f"{where}: field '{field.full_name}' is not valid UTF-8 text ({short(v)})")
            elif field.type == field.TYPE_MESSAGE:
                stack.extend(value if _repeated(field) else [value])


def _repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def external_bytes(proto: Any, what: str, folder: Path | None, expected: int) -> bytes:
    """The bytes of a tensor whose data lives in an external file next to the model.

    The location must be a relative path inside the model's folder once symlinks are resolved;
    offset and length must be decimal and inside the file; the length must be the tensor's own
    size (`expected` bytes), so nothing else is read."""
    entries: dict[str, str] = {}
    for entry in proto.external_data:
        if entry.key not in _EXTERNAL_KEYS:
            raise GraphFileError(f"{what}: external_data key {short(entry.key)!r} is not one ONNX defines "
                                 f"({', '.join(sorted(_EXTERNAL_KEYS))})")
        if entry.key in entries:
            raise GraphFileError(f"{what}: external_data key '{entry.key}' is given twice")
        entries[entry.key] = entry.value
    location = entries.get("location", "")
    if not location:
        raise GraphFileError(f"{what}: external data without a 'location'")
    if folder is None:
        raise GraphFileError(f"{what} keeps its data in the external file {short(location)!r}; load the model from "
                             f"its path so that graphc knows the folder to read it from")
    if "\x00" in location or "\\" in location or os.path.isabs(location) or re.match(r"[A-Za-z]:", location) \
            or ".." in Path(location).parts:
        raise GraphFileError(f"{what}: external data location {short(location)!r} must be a relative path inside "
                             f"the model's folder (no '..', no absolute path)")
    base = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(base, location))
    if os.path.commonpath([base, target]) != base or target == base:
        raise GraphFileError(f"{what}: external data location {short(location)!r} leads outside the model's folder")
    offset = _decimal(entries.get("offset", "0"), what, "offset")
    length = _decimal(entries["length"], what, "length") if "length" in entries else None
    if length is not None and length != expected:
        raise GraphFileError(f"{what}: external data length {length} does not match the tensor's size "
                             f"({expected} bytes)")
    return read_regular(target, f"{what}: external data file {short(location)!r}", expected, offset, expected,
                        follow=False)


def _decimal(text: str, what: str, key: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise GraphFileError(f"{what}: external data {key} {short(text)!r} is not a non-negative decimal integer")
    return int(text)

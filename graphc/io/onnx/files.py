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
import stat
from pathlib import Path
from typing import Any

from ...errors import GraphFileError

MAX_MODEL_BYTES = (1 << 31) - 1   # protobuf cannot hold a bigger message
_CHUNK = 1 << 20
_EXTERNAL_KEYS = {"location", "offset", "length", "checksum", "basepath"}
_DECIMAL = re.compile(r"[0-9]{1,19}")


def short(text: Any, limit: int = 80) -> str:
    """`text` for an error message: a name from a hostile file may be megabytes long."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def read_regular(path: str, what: str, limit: int, offset: int = 0, length: int | None = None,
                 follow: bool = True) -> bytes:
    """`length` bytes (or all the rest) at `offset` of the regular file `path`, at most `limit`.

    O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it, devices
    (/dev/zero never ends) and folders before anything is read. follow=False (O_NOFOLLOW)
    refuses a symlink put in place after the path was resolved."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise GraphFileError(f"cannot read {what}: {err.strerror or err}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):   # checked before fdopen, which refuses a folder with OSError
        os.close(fd)
        raise GraphFileError(f"{what} is not a regular file")
    with os.fdopen(fd, "rb", buffering=0) as f:
        if offset > info.st_size:
            raise GraphFileError(f"{what}: offset {offset} is past the end of the file ({info.st_size} bytes)")
        available = info.st_size - offset
        if length is None:
            length = available
        elif length > available:
            raise GraphFileError(f"{what}: {length} bytes at offset {offset} run past the end of the file "
                                 f"({info.st_size} bytes)")
        if length > limit:
            raise GraphFileError(f"{what}: {length} bytes is more than the limit of {limit}")
        chunks: list[bytes] = []
        total = 0
        try:
            f.seek(offset)
            while total < length:
                chunk = f.read(min(_CHUNK, length - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as err:
            raise GraphFileError(f"cannot read {what}: {err.strerror or err}") from None
    if total != length:
        raise GraphFileError(f"{what}: the file ended after {total} of {length} bytes (it changed while read)")
    return b"".join(chunks)


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

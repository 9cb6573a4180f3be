"""Reading untrusted files: only regular files, in chunks, never more than a bound.

Why: reserving a file's size limit up front fails in a process with a bounded address space
however small the file is; a FIFO blocks its reader until a writer comes (forever); a device such
as /dev/zero never ends. Graph files (graphc.io.load) and ONNX models and their external data
(graphc.io.onnx.files) are all read through read_regular.
"""
from __future__ import annotations

import os
import stat
from typing import Any

from ..errors import GraphFileError

_CHUNK = 1 << 20


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

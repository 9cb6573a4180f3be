"""The on-disk compile cache: compiled object code keyed by a hash of the module's IR and of
everything the code depends on (llvmlite and LLVM versions, the CPU name and features).

Entries are written atomically (a temporary file renamed into place), so concurrent processes
never see half a file; each entry carries a magic number, its length and a SHA-256 of its
payload, so a truncated or corrupted entry is detected, ignored and rebuilt. The directory is
$GRAPHC_CACHE_DIR, else $XDG_CACHE_HOME/graphc, else ~/.cache/graphc; GRAPHC_CACHE_DIR=off (or
an unwritable directory) turns the cache off. Entries hold object code only: nothing in them is
ever executed by the loader except as the machine code it was compiled to.
"""
from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

MAGIC = b"GRAPHC-OBJ-1\n"
_HEADER = struct.Struct("<Q32s")


def cache_dir() -> Path | None:
    configured = os.environ.get("GRAPHC_CACHE_DIR")
    if configured is not None:
        if configured.lower() in ("", "off", "0", "none"):
            return None
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def key_of(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def load(key: str, section: str = "llvm") -> bytes | None:
    """The cached payload, or None when absent, unreadable or corrupt. `section` is a
    subdirectory: "llvm" for programs, "runtime" for graphc's own native helpers."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        blob = (folder / section / f"{key}.o").read_bytes()
    except OSError:
        return None
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _HEADER.size:
        return None
    length, digest = _HEADER.unpack_from(blob, len(MAGIC))
    payload = blob[len(MAGIC) + _HEADER.size:]
    if len(payload) != length or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def store(key: str, payload: bytes, section: str = "llvm") -> bool:
    """Write an entry atomically; False (and no error) when the cache cannot be written."""
    folder = cache_dir()
    if folder is None:
        return False
    target = folder / section
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".tmp-", suffix=".o")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + _HEADER.pack(len(payload), hashlib.sha256(payload).digest()) + payload)
            os.replace(tmp, target / f"{key}.o")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True
    except OSError:
        return False

"""The on-disk compile cache: compiled code keyed by a hash of the module's IR and of everything
the code depends on (graphc's code generator, llvmlite and LLVM versions, the CPU).

An entry is code that graphc will load and run, so it is checked before anything is loaded:

    MAGIC | key (64 hex) | len(about) u32 | len(payload) u64 | HMAC-SHA256 | about | payload

- `key` and `about` record what the entry was compiled for (`about` is a readable description:
  code generator, LLVM, CPU, tier); an entry whose recorded key or description is not exactly
  the one asked for (a file copied from another program's name, an older graphc) is ignored and
  rebuilt, never loaded;
- the HMAC is keyed by the cache folder's own secret (cache_folder.folder_secret), so an entry
  made anywhere else, or planted by someone who cannot read the private folder, fails it;
- only regular, private files under a size bound are read (cache_folder.read_private_file), and
  the folders must be private to the user (see cache_folder).

Entries are written atomically (a temporary file renamed into place), so concurrent processes
never see half a file. $GRAPHC_CACHE_DIR=off (or an unusable folder) turns the cache off.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
import tempfile

from .cache_folder import MAX_ENTRY_BYTES, cache_dir, folder_secret, read_private_file, section_folder

__all__ = ["MAGIC", "cache_dir", "key_of", "load", "store"]

MAGIC = b"GRAPHC-OBJ-2\n"
_HEADER = struct.Struct("<64sIQ32s")
_HEAD = len(MAGIC) + _HEADER.size
MAX_ABOUT = 1 << 16


def key_of(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def _mac(secret: bytes, key: bytes, about: bytes, payload: bytes) -> bytes:
    m = hmac.new(secret, MAGIC, hashlib.sha256)
    m.update(key)
    m.update(struct.pack("<IQ", len(about), len(payload)))
    m.update(about)
    m.update(payload)
    return m.digest()


def _encoded_key(key: str) -> bytes | None:
    raw = key.encode("ascii", "replace")
    return raw if len(raw) == 64 else None


def load(key: str, section: str = "llvm", about: str = "") -> bytes | None:
    """The cached payload for `key`, or None when absent, unreadable, corrupt, untrusted, or
    recorded for another key or another `about` description. `section` is a subfolder: "llvm"
    for programs, "runtime" for graphc's own native helpers, "cuda" / "cuda-emulator"."""
    folder = section_folder(section, create=False)
    want_key = _encoded_key(key)
    if folder is None or want_key is None:
        return None
    blob = read_private_file(folder / f"{key}.o", MAX_ENTRY_BYTES)
    if blob is None or len(blob) < _HEAD or not blob.startswith(MAGIC):
        return None
    recorded_key, about_len, length, digest = _HEADER.unpack_from(blob, len(MAGIC))
    if recorded_key != want_key or about_len > MAX_ABOUT or _HEAD + about_len + length != len(blob):
        return None
    recorded_about = blob[_HEAD:_HEAD + about_len]
    if recorded_about != about.encode():
        return None
    secret = folder_secret(folder.parent)
    payload = blob[_HEAD + about_len:]
    if secret is None or not hmac.compare_digest(_mac(secret, want_key, recorded_about, payload), digest):
        return None
    return payload


def store(key: str, payload: bytes, section: str = "llvm", about: str = "") -> bool:
    """Write an entry atomically; False (and no error) when the cache cannot be written."""
    folder = section_folder(section, create=True)
    raw_key = _encoded_key(key)
    about_bytes = about.encode()
    if folder is None or raw_key is None or len(about_bytes) > MAX_ABOUT \
            or _HEAD + len(about_bytes) + len(payload) > MAX_ENTRY_BYTES:
        return False
    secret = folder_secret(folder.parent)
    if secret is None:
        return False
    header = MAGIC + _HEADER.pack(raw_key, len(about_bytes), len(payload),
                                  _mac(secret, raw_key, about_bytes, payload))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".o")   # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header + about_bytes + payload)
            os.replace(tmp, folder / f"{key}.o")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True
    except OSError:
        return False

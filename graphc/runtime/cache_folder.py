"""The compile cache's folder: where it is, that it is private to this user, and its secret.

Cached entries are machine code that graphc loads and runs, so an entry must come from this
user's own graphc and nobody else. This module decides whether a folder or an entry can be
trusted:

- the cache folder and its section folders are created private to the user (0700); an existing
  one that another user owns, or that group or others may write, is not used at all (a message
  says so once, on stderr), since anyone who could write there could have planted code;
- an entry is read only if it is a regular file (never through a symbolic link, never a FIFO or
  a device), owned by this user, writable by nobody else, and no bigger than MAX_ENTRY_BYTES;
- each folder holds a random secret (`secret`, 0600) with which entries are signed, so an entry
  copied in from elsewhere (another machine, another user's cache) fails its check and is
  rebuilt rather than run;
- `.tmp-*` files that killed writers left behind are removed once they are old.
"""
from __future__ import annotations

import os
import secrets
import stat
import sys
import time
from pathlib import Path

MAX_ENTRY_BYTES = 256 << 20     # no compiled program comes near this; anything bigger is not ours
SECRET_NAME = "secret"
SECRET_BYTES = 32
STALE_TMP_SECONDS = 600         # a writer finishes in well under a second; older temporaries are dead
_CHUNK = 1 << 20

_warned: set[str] = set()
_secrets: dict[str, bytes] = {}
_swept: set[str] = set()


def cache_dir() -> Path | None:
    """$GRAPHC_CACHE_DIR, else $XDG_CACHE_HOME/graphc, else ~/.cache/graphc; None when turned off."""
    configured = os.environ.get("GRAPHC_CACHE_DIR")
    if configured is not None:
        if configured.lower() in ("", "off", "0", "none"):
            return None
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def _uid() -> int | None:
    """This process's user (None where the platform has no such notion: no ownership checks)."""
    return os.getuid() if hasattr(os, "getuid") else None


def warn_once(path: Path | str, reason: str) -> None:
    """Say once per path and process, on stderr, why part of the cache is not used."""
    text = str(path)
    if text in _warned:
        return
    _warned.add(text)
    print(f"graphc: not using {text} from the compile cache: {reason}; code is compiled afresh instead",
          file=sys.stderr)


def _not_private(st: os.stat_result) -> str | None:
    """Why a file or folder with this status could have been written by someone else, or None."""
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        return f"it belongs to user id {st.st_uid}, not to this user ({uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others may write to it (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def private_folder(folder: Path, create: bool) -> bool:
    """Whether `folder` is a folder of this user's that nobody else can write (created 0700 when
    `create` and missing; tightened to 0700 when it is ours but readable by others)."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        if not create:
            return False
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return False
        try:
            st = os.stat(folder)
        except OSError:
            return False
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    problem = _not_private(st)
    if problem is not None:
        warn_once(folder, problem)
        return False
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.chmod(folder, 0o700)
        except OSError:
            pass
    return True


def section_folder(section: str, create: bool) -> Path | None:
    """The trusted folder for a section of the cache ("llvm", "runtime", ...), or None."""
    root = cache_dir()
    if root is None or not private_folder(root, create):
        return None
    folder = root / section
    try:
        if os.path.islink(folder):
            warn_once(folder, "it is a symbolic link")
            return None
    except OSError:
        return None
    if not private_folder(folder, create):
        return None
    if create:
        sweep_temporaries(folder)
    return folder


def folder_secret(root: Path) -> bytes | None:
    """The folder's signing secret, created on first use (atomically: two processes starting
    together agree on one); None when it cannot be read or made safely."""
    key = str(root)
    if key in _secrets:
        return _secrets[key]
    path = root / SECRET_NAME
    value = read_private_file(path, SECRET_BYTES)
    if value is None and not os.path.lexists(path):
        tmp = root / f".tmp-secret-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(SECRET_BYTES))
            try:
                os.link(tmp, path)   # fails if another process made one first: then theirs is used
            except FileExistsError:
                pass
        except OSError:
            return None
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        value = read_private_file(path, SECRET_BYTES)
    if value is None or len(value) != SECRET_BYTES:
        if os.path.lexists(path):
            warn_once(path, "the cache's secret is not a private file of this user's")
        return None
    _secrets[key] = value
    return value


def read_private_file(path: Path, limit: int, warn: bool = True) -> bytes | None:
    """The bytes of `path` if it is a regular file of this user's that nobody else can write, of
    at most `limit` bytes; None otherwise (with a message on stderr when the file looks planted).
    Never follows a symbolic link, never blocks on a FIFO, never reads more than `limit` + 1."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError:
        if warn and os.path.islink(path):
            warn_once(path, "it is a symbolic link")
        return None
    try:
        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "it is not a regular file"
        elif st.st_size > limit:
            problem = f"it is {st.st_size} bytes, more than the {limit} an entry may have"
        else:
            problem = _not_private(st)
        if problem is not None:
            if warn:
                warn_once(path, problem)
            return None
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return None if total > limit else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def sweep_temporaries(folder: Path) -> None:
    """Remove `.tmp-*` files older than STALE_TMP_SECONDS (left by writers that were killed),
    once per folder and process."""
    key = str(folder)
    if key in _swept:
        return
    _swept.add(key)
    cutoff = time.time() - STALE_TMP_SECONDS
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(".tmp-"):
            continue
        path = folder / name
        try:
            st = os.lstat(path)
            if (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)) and st.st_mtime < cutoff:
                os.unlink(path)
        except OSError:
            pass

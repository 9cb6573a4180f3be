"""The compile cache refuses what it did not make itself (graphc/runtime/cache.py, cache_folder.py).

Cache entries are machine code that graphc runs, so each test plants something an adversary or
an accident could leave in the cache folder and checks that a new process ignores it, rebuilds
the entry, and still gives NumPy's results: an entry copied from another program, an entry
signed with another secret, entries that are symbolic links to /dev/zero or FIFOs, oversized
entries, folders and entries others may write, and stale temporaries.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import cache, cache_folder
from tests.runtime.test_compile_cache import (build, entries, expected, finish, in_new_process, load_entry,
                                              new_salts, payload_of, recorded_about, spawn)


def _compile_here(cache_dir: Path, monkeypatch, salt: float) -> Path:
    """Compile one small program in this process with the cache at `cache_dir`; its entry."""
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(cache_dir))
    before = set(entries(cache_dir)) if (cache_dir / "llvm").exists() else set()
    gc.reset_default_graph()
    f, args = build(gc, salt, False)
    np.testing.assert_allclose(f(*args), expected(salt, False), rtol=1e-5, atol=1e-4)
    [entry] = set(entries(cache_dir)) - before
    return entry


def _run_child(cache_dir: Path, salts: list[float], tmp_path: Path, tag: str) -> tuple[list[dict], str]:
    """Run the programs in a new process; (its timings report, its stderr)."""
    child = spawn(cache_dir, salts, False, tmp_path, tag)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    for i, salt in enumerate(salts):
        np.testing.assert_allclose(np.load(tmp_path / f"{tag}-{i}.npy"), expected(salt, False), rtol=1e-5, atol=1e-4)
    return report, stderr


def test_entry_copied_from_another_program_is_rebuilt(tmp_path, monkeypatch):
    """The old cache trusted any entry whose own checksum matched: an entry copied over another
    program's failed every run with 'compiled code has no symbol' and was never rebuilt."""
    cache_dir = tmp_path / "cache"
    a, b = new_salts(2)
    entry_a = _compile_here(cache_dir, monkeypatch, a)
    entry_b = _compile_here(cache_dir, monkeypatch, b)
    good_b = entry_b.read_bytes()
    shutil.copyfile(entry_a, entry_b)
    assert load_entry(entry_a) is not None                          # a sound entry ...
    assert cache.load(entry_b.stem, about=recorded_about(good_b)) is None   # ... but A's, not B's
    for tag in ("first", "second"):                                  # rebuilt once, then used
        [info], _ = _run_child(cache_dir, [b], tmp_path, tag)
        assert info["cache_hit"] is (tag == "second"), (tag, info)
    assert entry_b.read_bytes() == good_b


def test_entry_signed_elsewhere_is_refused(tmp_path, monkeypatch):
    """An entry that is well-formed for its key but was not made with this folder's secret (made
    in another cache, or planted by someone who cannot read the private folder) is never run."""
    cache_dir, other = tmp_path / "cache", tmp_path / "other"
    salt_a, salt_b = new_salts(2)
    entry_b = _compile_here(cache_dir, monkeypatch, salt_b)
    good_b = entry_b.read_bytes()
    about = recorded_about(good_b)
    # the same program compiled by a process using another cache folder: same key, same code,
    # another secret
    in_new_process(other, [salt_b], False, tmp_path, "other")
    foreign = other / "llvm" / entry_b.name
    assert payload_of(foreign.read_bytes()) == payload_of(good_b) and foreign.read_bytes() != good_b
    # and a planted one: another program's code under B's key and description, signed with a guess
    entry_a = _compile_here(other, monkeypatch, salt_a)
    planted_payload = payload_of(entry_a.read_bytes())
    raw_key = entry_b.stem.encode()
    planted = cache.MAGIC + cache._HEADER.pack(raw_key, len(about.encode()), len(planted_payload),
                                               cache._mac(b"\0" * 32, raw_key, about.encode(), planted_payload))
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(cache_dir))
    for bad in (foreign.read_bytes(), planted + about.encode() + planted_payload):
        entry_b.write_bytes(bad)
        assert cache.load(entry_b.stem, about=about) is None
        [info], _ = _run_child(cache_dir, [salt_b], tmp_path, "child")
        assert info["cache_hit"] is False
        assert entry_b.read_bytes() == good_b


def test_first_format_entries_are_refused(tmp_path, monkeypatch):
    """An entry in the unsigned first format (magic, length, SHA-256 of the payload) is not
    trusted: anyone could have written a matching checksum."""
    import hashlib
    import struct
    cache_dir = tmp_path / "cache"
    [salt] = new_salts(1)
    entry = _compile_here(cache_dir, monkeypatch, salt)
    good = entry.read_bytes()
    payload = payload_of(good)
    entry.write_bytes(b"GRAPHC-OBJ-1\n" + struct.pack("<Q32s", len(payload), hashlib.sha256(payload).digest())
                      + payload)
    assert cache.load(entry.stem, about=recorded_about(good)) is None
    [info], _ = _run_child(cache_dir, [salt], tmp_path, "child")
    assert info["cache_hit"] is False and entry.read_bytes() == good


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo", "symlink to a good entry", "directory",
                                  "oversized"])
def test_entries_that_are_not_small_regular_files_are_ignored(tmp_path, monkeypatch, kind):
    """A symbolic link to /dev/zero grew a process past 2 GB and a FIFO hung it: only a regular
    file under the size bound is read, never through a link, never blocking."""
    cache_dir = tmp_path / "cache"
    [salt] = new_salts(1)
    entry = _compile_here(cache_dir, monkeypatch, salt)
    good = entry.read_bytes()
    keep = tmp_path / "kept.o"
    shutil.copyfile(entry, keep)
    entry.unlink()
    if kind == "symlink to /dev/zero":
        entry.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(entry, 0o600)
    elif kind == "symlink to a good entry":
        os.chmod(keep, 0o600)
        entry.symlink_to(keep)
    elif kind == "directory":
        entry.mkdir(mode=0o700)
    else:
        with open(entry, "wb") as f:
            f.write(good)
            f.truncate(cache_folder.MAX_ENTRY_BYTES + 1)   # sparse: no disk used
        os.chmod(entry, 0o600)
    started = time.perf_counter()
    child = spawn(cache_dir, [salt], False, tmp_path, "child")
    report, _ = finish(child, [salt], False, tmp_path, "child")
    assert time.perf_counter() - started < 60
    assert report[0]["cache_hit"] is False
    if kind == "directory":
        assert entry.is_dir()          # not ours to remove; the program still ran
    else:
        assert not entry.is_symlink() and entry.read_bytes() == good   # replaced by a real entry


def test_reading_an_entry_costs_no_more_than_its_bound(tmp_path, monkeypatch):
    """Reading a link to /dev/zero in-process: refused at once, no memory grown."""
    import resource
    folder = tmp_path / "cache" / "llvm"
    folder.mkdir(parents=True, mode=0o700)
    os.chmod(tmp_path / "cache", 0o700)
    (folder / ("a" * 64 + ".o")).symlink_to("/dev/zero")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert cache.load("a" * 64) is None
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024   # KiB


def test_new_cache_folders_are_private(tmp_path, monkeypatch):
    cache_dir = tmp_path / "deep" / "cache"
    [salt] = new_salts(1)
    old_umask = os.umask(0o022)
    try:
        entry = _compile_here(cache_dir, monkeypatch, salt)
    finally:
        os.umask(old_umask)
    for path in (cache_dir, cache_dir / "llvm"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in (entry, cache_dir / cache_folder.SECRET_NAME):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_an_own_folder_readable_by_others_is_tightened(tmp_path, monkeypatch):
    """Folders made by an older graphc (0755, the umask's default) are this user's: made private."""
    cache_dir = tmp_path / "cache"
    (cache_dir / "llvm").mkdir(parents=True)
    os.chmod(cache_dir, 0o755)
    os.chmod(cache_dir / "llvm", 0o755)
    _compile_here(cache_dir, monkeypatch, new_salts(1)[0])
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_dir / "llvm").stat().st_mode) == 0o700


@pytest.mark.parametrize("where", ["cache folder", "section folder", "entry"])
def test_what_others_may_write_is_not_used(tmp_path, monkeypatch, where):
    """A folder or entry that group or others may write could hold anyone's code: it is not
    used, the program is compiled afresh, and stderr says why, once."""
    cache_dir = tmp_path / "cache"
    salts = new_salts(2)
    entry = _compile_here(cache_dir, monkeypatch, salts[0])
    _compile_here(cache_dir, monkeypatch, salts[1])
    target = {"cache folder": cache_dir, "section folder": cache_dir / "llvm", "entry": entry}[where]
    os.chmod(target, 0o777 if target.is_dir() else 0o666)
    report, stderr = _run_child(cache_dir, salts, tmp_path, "child")
    if where == "entry":
        assert [r["cache_hit"] for r in report] == [False, True]     # only the loose entry is refused
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600           # and it was rewritten privately
    else:
        assert [r["cache_hit"] for r in report] == [False, False]
        assert stat.S_IMODE(target.stat().st_mode) == 0o777          # not ours to fix
    assert stderr.count("graphc: not using") == 1, stderr
    assert str(target) in stderr and "others may write" in stderr


def test_folders_and_entries_of_another_user_are_not_used(tmp_path, monkeypatch, capsys):
    """Seen from another user id, everything in the cache belongs to someone else: nothing is
    read or written, and stderr says so once."""
    cache_dir = tmp_path / "cache"
    [salt] = new_salts(1)
    entry = _compile_here(cache_dir, monkeypatch, salt)
    about = recorded_about(entry.read_bytes())
    capsys.readouterr()
    monkeypatch.setattr(cache_folder, "_uid", lambda: os.getuid() + 4242)
    monkeypatch.setattr(cache_folder, "_warned", set())
    monkeypatch.setattr(cache_folder, "_secrets", {})
    assert cache.load(entry.stem, about=about) is None
    assert cache.store(entry.stem, b"code", about=about) is False
    assert cache.load(entry.stem, about=about) is None
    err = capsys.readouterr().err
    assert err.count("graphc: not using") == 1 and "belongs to user id" in err, err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_an_entry_owned_by_another_user_is_rebuilt(tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    [salt] = new_salts(1)
    entry = _compile_here(cache_dir, monkeypatch, salt)
    os.chown(entry, 4242, 4242)
    [info], stderr = _run_child(cache_dir, [salt], tmp_path, "child")
    assert info["cache_hit"] is False and entry.stat().st_uid == os.getuid()
    assert "belongs to user id 4242" in stderr


def test_stale_temporaries_are_removed(tmp_path, monkeypatch):
    """A writer killed between creating its temporary and renaming it leaves a .tmp file: old
    ones are removed by the next process that writes, fresh ones (a writer at work) are not."""
    cache_dir = tmp_path / "cache"
    _compile_here(cache_dir, monkeypatch, new_salts(1)[0])
    stale, fresh = cache_dir / "llvm" / ".tmp-dead.o", cache_dir / "llvm" / ".tmp-busy.o"
    for p in (stale, fresh):
        p.write_bytes(b"half an entry")
    old = time.time() - cache_folder.STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    _run_child(cache_dir, new_salts(1), tmp_path, "child")
    assert not stale.exists() and fresh.exists()

"""The on-disk compile cache of the LLVM backend (graphc/runtime/cache.py), across processes.

A process that has loaded a program's code never reads the cache for it again, so cache reads
are tested in fresh Python processes (sys.executable), with GRAPHC_CACHE_DIR under tmp_path.
Every graph carries a salt drawn per test, so its cache key is new to every process, including
this one. A child prints the `timings` of each executable (cache_hit, tier) as JSON on its last
line and saves its results as .npy: they must match NumPy to a tolerance and each other bitwise.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import cache

REPO = Path(__file__).resolve().parents[2]

GRAPH = textwrap.dedent("""
    import numpy as np

    def build(gc, salt, big):
        '''A function of (x, w) and its arguments: big ones compile at O3, small ones quickly.'''
        m, k, n = (64, 256, 32) if big else (4, 16, 8)
        rng = np.random.default_rng(0)
        xv = rng.normal(size=(m, k)).astype(np.float32)
        wv = (rng.normal(size=(k, n)) / 4).astype(np.float32)
        x = gc.placeholder(gc.float32, [m, k])
        w = gc.placeholder(gc.float32, [k, n])
        out = gc.nn.softmax(gc.nn.relu(gc.matmul(x, w) + salt) * 2.0) + gc.reduce_sum(gc.tanh(x), axis=1, keepdims=True)
        return gc.function([x, w], out), (xv, wv)
""")

# argv: JSON {"salts": [...], "big": bool, "out": dir, "tag": str, optional "ready"/"go": files}
CHILD = GRAPH + textwrap.dedent("""
    import json, os, sys, time
    import graphc as gc
    spec = json.loads(sys.argv[1])
    fns = []
    for salt in spec["salts"]:
        gc.reset_default_graph()
        fns.append(build(gc, salt, spec["big"]))
    if spec.get("ready"):
        open(spec["ready"], "w").close()
        deadline = time.time() + 60
        while not os.path.exists(spec["go"]) and time.time() < deadline:
            time.sleep(0.001)
    report = []
    for i, (f, args) in enumerate(fns):
        np.save(os.path.join(spec["out"], f"{spec['tag']}-{i}.npy"), f(*args))
        t = f._last.executable.timings
        report.append({"cache_hit": t["cache_hit"], "tier": t["tier"], "code_from": t.get("code_from")})
    print(json.dumps(report))
""")

_namespace: dict = {}
exec(GRAPH, _namespace)
build = _namespace["build"]


def expected(salt: float, big: bool) -> np.ndarray:
    gc.reset_default_graph()
    f, (x, w) = build(gc, salt, big)
    z = np.maximum(x.astype(np.float64) @ w + np.float32(salt), 0) * 2.0
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True) + np.tanh(x.astype(np.float64)).sum(axis=1, keepdims=True)


def new_salts(n: int) -> list[float]:
    r = random.SystemRandom()
    return [round(r.uniform(0.01, 0.5), 9) for _ in range(n)]


def spawn(cache_dir, salts, big, out: Path, tag: str, **sync: str) -> subprocess.Popen:
    spec = json.dumps({"salts": salts, "big": big, "out": str(out), "tag": tag, **sync})
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache_dir),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", CHILD, spec], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(child: subprocess.Popen, salts, big, out: Path, tag: str) -> tuple[list[dict], list[np.ndarray]]:
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    results = [np.load(out / f"{tag}-{i}.npy") for i in range(len(salts))]
    for salt, r in zip(salts, results):
        np.testing.assert_allclose(r, expected(salt, big), rtol=1e-5, atol=1e-4)
    return report, results


def in_new_process(cache_dir, salts, big, out: Path, tag: str):
    return finish(spawn(cache_dir, salts, big, out, tag), salts, big, out, tag)


def entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "llvm").glob("*.o"))


def assert_hit(info: dict) -> None:
    assert info["cache_hit"] is True, info
    if info["code_from"] is not None:
        assert info["code_from"] == "disk", info


def assert_compiled(info: dict) -> None:
    assert info["cache_hit"] is False, info
    if info["code_from"] is not None:
        assert info["code_from"] == "compiled", info


def test_second_process_hits_the_disk_cache(tmp_path):
    cache_dir, salts = tmp_path / "cache", new_salts(1)
    [first], [r1] = in_new_process(cache_dir, salts, True, tmp_path, "first")
    assert first["tier"] == "O3"
    assert_compiled(first)
    [entry] = entries(cache_dir)
    stamp = entry.stat().st_mtime_ns
    [second], [r2] = in_new_process(cache_dir, salts, True, tmp_path, "second")
    assert_hit(second)
    assert np.array_equal(r1, r2)
    assert entries(cache_dir) == [entry] and entry.stat().st_mtime_ns == stamp   # read, not rewritten


def _flip(blob: bytes, i: int) -> bytes:
    return blob[:i] + bytes([blob[i] ^ 0x40]) + blob[i + 1:]


HEAD = len(cache.MAGIC) + cache._HEADER.size
KEY_AT, ABOUT_LEN_AT, LENGTH_AT, DIGEST_AT = (len(cache.MAGIC) + k for k in (0, 64, 68, 76))


def recorded_about(blob: bytes) -> str:
    """The `about` description an entry records (what it was compiled for)."""
    _, about_len, _, _ = cache._HEADER.unpack_from(blob, len(cache.MAGIC))
    return blob[HEAD:HEAD + about_len].decode()


def payload_of(blob: bytes) -> bytes:
    return blob[HEAD + len(recorded_about(blob).encode()):]


def load_entry(entry: Path) -> bytes | None:
    """cache.load for an entry file, asking for what the entry says it was compiled for."""
    return cache.load(entry.stem, about=recorded_about(entry.read_bytes()))


CORRUPTIONS = {
    "truncated": lambda b: b[: len(b) // 2],
    "payload byte flipped": lambda b: _flip(b, len(b) - 100),
    "digest byte flipped": lambda b: _flip(b, DIGEST_AT + 8),
    "length field changed": lambda b: _flip(b, LENGTH_AT),
    "about length changed": lambda b: _flip(b, ABOUT_LEN_AT),
    "recorded key changed": lambda b: _flip(b, KEY_AT + 3),
    "about text changed": lambda b: _flip(b, HEAD + 2),
    "magic changed": lambda b: _flip(b, 0),
    "garbage": lambda b: os.urandom(len(b)),
    "valid header, random payload": lambda b: b[:HEAD] + os.urandom(len(b) - HEAD),
    "empty": lambda b: b"",
    "header cut short": lambda b: b[: len(cache.MAGIC) + 4],
    "bytes appended": lambda b: b + b"\0" * 16,
}


def test_corrupt_entries_are_ignored_and_rebuilt(tmp_path, monkeypatch):
    """One entry per kind of damage, written here, damaged, then rebuilt by a new process."""
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(cache_dir))
    salts = new_salts(len(CORRUPTIONS))
    damaged: list[tuple[str, Path, bytes]] = []
    for salt, (name, corrupt) in zip(salts, CORRUPTIONS.items()):
        gc.reset_default_graph()
        before = set(entries(cache_dir))
        f, args = build(gc, salt, False)
        f(*args)
        assert f._last.executable.timings["tier"] == "quick"
        [entry] = set(entries(cache_dir)) - before
        good = entry.read_bytes()
        about = recorded_about(good)
        assert cache.load(entry.stem, about=about) == payload_of(good)
        bad = corrupt(good)
        assert bad != good
        entry.write_bytes(bad)
        assert cache.load(entry.stem, about=about) is None, name
        damaged.append((name, entry, good))

    report, _ = in_new_process(cache_dir, salts, False, tmp_path, "rebuilt")
    for (name, entry, good), info in zip(damaged, report):
        assert info["cache_hit"] is False, f"the {name} entry was used"
        payload = load_entry(entry)
        assert isinstance(payload, bytes) and payload, f"the {name} entry was not rebuilt"
        assert entry.read_bytes() == good, f"the {name} entry was rebuilt differently"
    assert sorted(entries(cache_dir)) == sorted(e for _, e, _ in damaged)


@pytest.mark.parametrize("setting", ["off", "OFF", "none", "0", "", "under-a-file", "is-a-file", "llvm-is-a-file"])
def test_cache_off_or_unwritable_still_works(tmp_path, monkeypatch, setting):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "llvm").write_text("")   # root ignores chmod: a file where the folder goes
    cache_dir = {"under-a-file": str(blocker / "cache"), "is-a-file": str(blocker),
                 "llvm-is-a-file": str(tmp_path / "ro")}.get(setting, setting)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", cache_dir)
    monkeypatch.chdir(tmp_path)   # a relative "off" folder would land here
    [salt] = new_salts(1)
    f, args = build(gc, salt, False)
    result = f(*args)
    assert f._last.executable.timings["cache_hit"] is False
    np.testing.assert_allclose(result, expected(salt, False), rtol=1e-5, atol=1e-4)
    assert blocker.read_text() == "not a directory" and (tmp_path / "ro" / "llvm").read_text() == ""
    assert not [p for p in tmp_path.rglob("*") if p.suffix == ".o"]
    assert cache.store("0" * 64, b"payload") is False
    assert cache.load("0" * 64) is None


def test_cache_off_in_a_new_process(tmp_path):
    salts = new_salts(1)
    for tag in ("a", "b"):
        [info], _ = in_new_process("off", salts, False, tmp_path, tag)
        assert_compiled(info)


def test_concurrent_processes_compile_the_same_new_graph(tmp_path, monkeypatch):
    cache_dir, salts = tmp_path / "cache", new_salts(1)
    go = str(tmp_path / "go")
    children = [spawn(cache_dir, salts, True, tmp_path, f"c{i}", ready=str(tmp_path / f"ready{i}"), go=go)
                for i in range(2)]
    deadline = time.time() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.time() < deadline and all(c.poll() is None for c in children), "a child died early"
        time.sleep(0.005)
    Path(go).touch()   # both have imported graphc and built the graph: compile at once
    done = [finish(child, salts, True, tmp_path, f"c{i}") for i, child in enumerate(children)]
    assert np.array_equal(done[0][1][0], done[1][1][0])
    [entry] = entries(cache_dir)
    assert not [p for p in (cache_dir / "llvm").iterdir() if p.name.startswith(".tmp-")]
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(cache_dir))
    assert isinstance(load_entry(entry), bytes)
    [info], [r3] = in_new_process(cache_dir, salts, True, tmp_path, "after")
    assert_hit(info)
    assert np.array_equal(r3, done[0][1][0])

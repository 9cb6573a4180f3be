"""What loading a .gcx may cost is bounded by the file, not by the limits' maxima: the file is
read in chunks (a 2 KB file loads in a process with 4 GB of address space), only regular files
are read, parsing graph.json is refused when it would cost far more than its size justifies
(a small file of many tiny lists), and a central directory of more entries than allowed is
refused before zipfile reads it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import graphc as gc
import graphc.io.archive as archive_module
from graphc.io import Limits
from tests.io.gcx_files import document, entries, refused, rezip, small_model_bytes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    return small_model_bytes(tmp_path_factory.mktemp("bounds"))


def _refused_cheaply(data: bytes, *fragments: str, limits: Limits | None = None, mb: int = 64) -> str:
    """GraphFileError naming every fragment, in under 5 s and `mb` MB of allocations."""
    return str(refused(data, *fragments, limits=limits, mb=mb, name="big.gcx"))


def test_small_file_loads_with_4gb_of_address_space(tmp_path, valid):
    """Reading used to reserve the maximum file size (8 GiB) up front: MemoryError here."""
    path = tmp_path / "small.gcx"
    path.write_bytes(valid)
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        import graphc as gc
        g = gc.load_graph({str(path)!r})
        print(len(g.get_operations()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout) == len(document(valid)["nodes"])


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_only_regular_files_are_read(tmp_path, kind):
    """A FIFO used to block opening it and /dev/zero to be read until the size limit; this runs
    in a fresh process so a regression fails by timeout instead of hanging the suite."""
    target = {"fifo": str(tmp_path / "pipe.gcx"), "device": "/dev/zero", "folder": str(tmp_path)}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    script = textwrap.dedent(f"""
        import graphc as gc
        try:
            gc.load_graph({target!r})
        except gc.GraphFileError as err:
            print(err.message)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "not a regular file" in out.stdout, out.stdout


# ------------------------------------------------------------------------------ parsing graph.json
def _tiny_lists(count: int, seed: int = 0) -> bytes:
    """A JSON list of `count` tiny containers, varied so that it compresses only ~10:1 (well
    inside the compression-ratio limit, as in the reported file)."""
    tokens = np.array(["[]", "[0]", "{}", "[[]]", "[1]", "[2]", "{}", "[]"])
    picks = np.random.default_rng(seed).integers(0, len(tokens), count)
    return ("[" + ",".join(tokens[picks]) + "]").encode()


def test_many_tiny_lists_are_refused_before_parsing(valid):
    """~1.5 MB of compressed file whose graph.json is 6.6 MB of tiny lists and objects: json.loads
    alone would take ~150 MB (the reported 0.34 MB file took 1.8 GB)."""
    doc = document(valid)
    doc["collections"]["soup"] = "SOUP"
    text = json.dumps(doc).replace('"SOUP"', _tiny_lists(2_000_000).decode()).encode()
    parts = entries(valid)
    parts["graph.json"] = text
    data = rezip(parts)
    assert len(data) < 2 << 20
    _refused_cheaply(data, "graph.json would take about", "bytes per byte of text", "tiny lists")


def test_well_compressed_padding_is_bounded_by_the_stored_size(valid):
    """Whitespace between tiny lists lowers the cost per byte of text, but costs nothing to
    store: the cost per stored byte bounds that."""
    doc = document(valid)
    doc["collections"]["soup"] = "SOUP"
    padded = "[" + ",".join(["[]" + " " * 12] * 1_000_000) + "]"
    parts = entries(valid)
    parts["graph.json"] = json.dumps(doc).replace('"SOUP"', padded).encode()
    _refused_cheaply(rezip(parts), "stored bytes", "bytes per stored byte",
                     limits=Limits(max_compression_ratio=10_000))


def test_estimate_is_an_upper_bound_and_passes_real_documents(tmp_path):
    """parse_cost never underestimates what json.loads takes, for graphc's own documents and
    every hostile shape; graphc's documents stay well under the per-byte limit."""
    from graphc.io.jsoncost import parse_cost

    g = gc.Graph()
    with g.as_default():
        h = gc.placeholder(gc.float32, [None, 16], name="x")
        for i in range(40):
            h = gc.nn.relu(h @ gc.Variable(gc.random_normal([16, 16], seed=i)) + 0.5)
        gc.train.AdamOptimizer(0.01).minimize(gc.reduce_mean(h * h))
    gc.save_graph(tmp_path / "m.gcx", g)
    text = entries((tmp_path / "m.gcx").read_bytes())["graph.json"]
    doc = json.loads(text)
    shapes = {"graphc": text, "json.dumps": json.dumps(doc).encode(),
              "compact": json.dumps(doc, separators=(",", ":")).encode()}
    for token in ("[]", "{}", "[0]", "1.5", '"ab"', '{"a":1.5}', "[[],[]]", '"' + "x" * 9 + '"'):
        shapes[token] = ("[" + ",".join([token] * 200_000) + "]").encode()
    limit = Limits().max_json_cost_per_byte
    for name, body in shapes.items():
        tracemalloc.start()
        parsed = json.loads(body)
        used, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del parsed
        assert used <= parse_cost(body), name
        if name in ("graphc", "json.dumps", "compact"):
            assert parse_cost(body) / len(body) < 0.75 * limit, name


# ------------------------------------------------------------------------------ the zip directory
def test_many_entries_are_refused_before_zipfile_lists_them(valid, monkeypatch):
    parts = entries(valid)
    parts.update({f"arrays/{100 + i}.npy": b"" for i in range(3000)})
    data = rezip(parts)

    def unread(*args, **kwargs):
        raise AssertionError("zipfile read the central directory")
    monkeypatch.setattr(archive_module.zipfile, "ZipFile", unread)
    _refused_cheaply(data, "central directory lists", "more than the limit of 1000 entries",
                     limits=Limits(max_entries=1000))


def test_an_end_record_lying_about_the_directory_size_is_refused(valid):
    data = bytearray(valid)
    end = data.rfind(b"PK\x05\x06")
    data[end + 12: end + 16] = (200 << 20).to_bytes(4, "little")   # central directory size
    _refused_cheaply(bytes(data), "central directory lists", "more than the limit of 100000 entries")

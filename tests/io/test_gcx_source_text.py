"""A loaded graph never makes graphc open a file: error messages about its nodes show the source
line text recorded in the .gcx, never the file its `source.file` names (which could be
/etc/passwd, or /dev/zero that never ends)."""
from __future__ import annotations

import linecache
import os
import subprocess
import sys
import textwrap

import pytest

import graphc as gc
from graphc.io import load_graph_bytes
from graphc.source import SourceLocation
from tests.io.gcx_files import document, small_model_bytes, with_document

MAX_CODE_CHARS = 200   # graphc.source.MAX_CODE_CHARS: the most a file records of a line
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _feed_error_text(data: bytes) -> str:
    """str() of the error of running the loaded graph's softmax without feeding 'x'."""
    g = load_graph_bytes(data, "t.gcx")
    y = next(n for n in g.get_operations() if n.type == "Softmax").outputs[0]
    with gc.Session(g, backend="numpy") as sess, pytest.raises(gc.FeedError) as info:
        sess.run(y)
    assert info.value.node_name == "x"
    return str(info.value)


def _pointing_at(data: bytes, path: str, code: str | None) -> bytes:
    """The file with node 'x' recorded as created at line 1 of `path` (with `code` as its
    text, or no "code" field at all, as in version 1)."""
    doc = document(data)
    node = next(n for n in doc["nodes"] if n["name"] == "x")
    node["source"] = {"file": path, "line": 1, "function": "f"}
    if code is not None:
        node["source"]["code"] = code
    return with_document(data, doc)


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    return small_model_bytes(tmp_path_factory.mktemp("source"))


@pytest.fixture
def no_file_reads(monkeypatch):
    """Fail the test if anything asks linecache for a line."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"linecache consulted for {args}")
    monkeypatch.setattr(linecache, "getline", refuse)
    monkeypatch.setattr(linecache, "updatecache", refuse)


@pytest.mark.parametrize("code", [None, "", "x = gc.placeholder(...)"])
def test_etc_passwd_is_never_read(valid, no_file_reads, code):
    text = _feed_error_text(_pointing_at(valid, "/etc/passwd", code))
    assert "/etc/passwd:1" in text           # the location is still shown ...
    assert "root:" not in text               # ... but not the file's content
    if code:
        assert code in text                  # the recorded text is


def test_dev_zero_in_a_fresh_process_returns_at_once(tmp_path, valid):
    """Formatting the error must not read /dev/zero (before the fix it read until memory ran
    out, here the 2 GiB of address space the process is given): it takes no time or memory."""
    path = tmp_path / "zero.gcx"
    path.write_bytes(_pointing_at(valid, "/dev/zero", None))
    script = textwrap.dedent(f"""
        import resource, time
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        import graphc as gc
        from graphc.io import load_graph_bytes
        with open({str(path)!r}, "rb") as f:
            g = load_graph_bytes(f.read())
        y = next(n for n in g.get_operations() if n.type == "Softmax").outputs[0]
        start = time.perf_counter()
        try:
            gc.Session(g, backend="numpy").run(y)
        except gc.FeedError as err:
            text = str(err)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(len(text), round(time.perf_counter() - start, 3), rss_mb)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    length, seconds, rss_mb = out.stdout.split()
    assert int(length) < 2000 and float(seconds) < 2 and float(rss_mb) < 1024


def test_saved_graph_shows_the_users_line_after_loading(tmp_path, request):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [None, 3], name="x")
        y = gc.nn.softmax(x * 2.0, name="y")  # the line the error must show
    gc.save_graph(tmp_path / "m.gcx", g)        # reads this file's lines (live locations)
    request.getfixturevalue("no_file_reads")    # from here on, nothing may
    loaded = gc.load_graph(tmp_path / "m.gcx")
    with gc.Session(loaded, backend="numpy") as sess, pytest.raises(gc.FeedError) as info:
        sess.run(loaded.get_tensor_by_name(y.name))
    text = str(info.value)
    assert 'x = gc.placeholder(gc.float32, [None, 3], name="x")' in text
    line = 'y = gc.nn.softmax(x * 2.0, name="y")  # the line the error must show'
    assert loaded.get_operation_by_name("y").source.code() == line


def test_recorded_text_is_bounded_and_escaped(valid):
    long = "y = " + "a + " * 200 + "b"
    doc = document(valid)
    node = next(n for n in doc["nodes"] if n["name"] == "x")
    node["source"] = {"file": "\x1b[2Jevil.py", "line": 3, "function": "f\n", "code": long}
    loaded = load_graph_bytes(with_document(valid, doc))
    src = loaded.get_operation_by_name("x").source
    assert len(src.code()) == MAX_CODE_CHARS and src.code().endswith("\u2026")
    assert "\x1b" not in src.filename and "\\x1b" in src.filename and "\n" not in src.function


def test_saving_bounds_the_text_it_records(tmp_path):
    g = gc.Graph()
    with g.as_default():
        gc.placeholder(gc.float32, [2], name="p")
    node = g.get_operation_by_name("p")
    node.source = SourceLocation("user.py", 1, "f", text="z = " + "1 + " * 100 + "1")
    gc.save_graph(tmp_path / "s.gcx", g)
    doc = document((tmp_path / "s.gcx").read_bytes())
    code = next(n for n in doc["nodes"] if n["name"] == "p")["source"]["code"]
    assert len(code) == MAX_CODE_CHARS and code.startswith("z = 1 + 1")


def test_version_1_files_still_load(valid):
    """A file written before sources recorded their text: no "code" field, version 1."""
    doc = document(valid)
    doc["version"] = 1
    for item in doc["nodes"] + doc["variables"]:
        if item["source"] is not None:
            item["source"].pop("code", None)
    loaded = load_graph_bytes(with_document(valid, doc))
    assert loaded.get_operation_by_name("x").source.code() == ""
    assert [v.name for v in loaded.get_collection("variables")] == ["w:0"]

"""Hostile and broken .gcx files: each is a GraphFileError, found quickly, without allocating
anything large, and the message says what is wrong where."""
from __future__ import annotations

import copy
import io
import json
import struct
import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc.io import load_graph_bytes
from graphc.io.format import FORMAT_VERSION
from tests.io.gcx_files import document, entries, npy_bytes, refused, rezip, small_model_bytes, with_document

TESTED_OPS = {"Placeholder", "VariableV2", "Assign", "MatMul", "Softmax"}


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    return small_model_bytes(tmp_path_factory.mktemp("hostile"))


_rejects = refused   # tests.io.gcx_files: GraphFileError naming every fragment, fast and small


def _node(doc, name):
    return next(n for n in doc["nodes"] if n["name"] == name)


def test_valid_file_loads(valid):
    g = load_graph_bytes(valid)
    assert g.get_tensor_by_name("x:0").shape == (None, 3)
    assert [v.name for v in g.get_collection("variables")] == ["w:0"]


# ------------------------------------------------------------------------------- the container
def test_not_a_zip():
    _rejects(b"definitely not a zip file", "not a readable zip archive")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated(valid, keep):
    _rejects(valid[: int(len(valid) * keep)])


def test_bit_flips_in_entry_data_are_caught(valid):
    parts = entries(valid)
    array_name = next(n for n in parts if n.endswith(".npy"))
    for name in ("graph.json", array_name):
        offset = valid.find(name.encode()) + len(name)  # just past the local header's name
        flipped = bytearray(valid)
        flipped[offset + 60] ^= 0x10
        _rejects(bytes(flipped))


def test_random_bit_flips_never_escape(valid):
    """A flip anywhere either leaves a loadable file or gives GraphFileError (nothing else)."""
    rng = np.random.default_rng(0)
    caught = 0
    for pos in rng.integers(0, len(valid), size=60):
        flipped = bytearray(valid)
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            load_graph_bytes(bytes(flipped))
        except gc.GraphFileError:
            caught += 1
    assert caught > 30


def test_missing_graph_entry(valid):
    parts = entries(valid)
    del parts["graph.json"]
    _rejects(rezip(parts), "no 'graph.json' entry")


@pytest.mark.parametrize("name,fragment", [
    ("../evil.npy", "climbs out"), ("arrays/../../etc/passwd", "climbs out"), ("/etc/passwd", "absolute path"),
    ("C:/windows.npy", "absolute path"), ("arrays\\0.npy", "backslash"), ("code.py", "unexpected entry"),
])
def test_path_tricks(valid, name, fragment):
    parts = entries(valid)
    parts[name] = b"x"
    _rejects(rezip(parts), fragment, repr(name))


def test_undeclared_entry(valid):
    parts = entries(valid)
    parts["arrays/99.npy"] = npy_bytes(np.zeros(2, np.float32))
    _rejects(rezip(parts), "'arrays/99.npy' is not declared")


def test_zip_bomb_ratio(valid):
    parts = entries(valid)
    parts["arrays/99.npy"] = bytes(32 << 20)  # 32 MB of zeros deflate to ~32 KB
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in parts.items():
            zf.writestr(name, body)
    _rejects(buf.getvalue(), "compression ratio", "zip bomb")


def _patch_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size of `name` in the central directory."""
    out = bytearray(data)
    pos = 0
    while True:
        pos = out.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        name_len = struct.unpack_from("<H", out, pos + 28)[0]
        if out[pos + 46: pos + 46 + name_len] == name.encode():
            struct.pack_into("<I", out, pos + 24, size)
        pos += 4
    return bytes(out)


def test_declared_size_over_the_cap(valid):
    _rejects(_patch_declared_size(valid, "graph.json", 0xFFFFFFF0), "graph.json", "more than the limit")


def test_declared_size_smaller_than_content(valid):
    _rejects(_patch_declared_size(valid, "graph.json", 10))


# ------------------------------------------------------------------------------- arrays
def test_pickle_payload_in_npy(valid):
    parts = entries(valid)
    doc = json.loads(parts["graph.json"])
    name = next(iter(doc["arrays"]))
    parts[name] = npy_bytes(np.array([{"evil": print}, 1], dtype=object), allow_pickle=True)
    _rejects(rezip(parts), name, "never objects or pickles")


def test_npy_dtype_or_shape_mismatch(valid):
    parts = entries(valid)
    doc = json.loads(parts["graph.json"])
    name, meta = next(iter(doc["arrays"].items()))
    parts[name] = npy_bytes(np.zeros(meta["shape"], np.float64))
    _rejects(rezip(parts), name, "declares float32")
    parts[name] = npy_bytes(np.zeros([7], np.float32))
    _rejects(rezip(parts), name, "shape (7,)")


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(8)


@pytest.mark.parametrize("shape,fragment", [
    ((10 ** 9, 10 ** 9), "more than the limit"),     # the document's declared shape is over the limit
    ((100000, 100000), "needs 40000000000"),         # within the limit, but the payload is 8 bytes
])
def test_npy_header_declares_a_huge_shape(valid, shape, fragment):
    parts = entries(valid)
    doc = json.loads(parts["graph.json"])
    name = next(iter(doc["arrays"]))
    parts[name] = _npy_header_only(shape)
    doc["arrays"][name]["shape"] = list(shape)
    parts["graph.json"] = json.dumps(doc).encode()
    _rejects(rezip(parts), name, fragment)


def test_npy_header_disagrees_with_the_document(valid):
    parts = entries(valid)
    doc = json.loads(parts["graph.json"])
    name = next(iter(doc["arrays"]))
    parts[name] = _npy_header_only((10 ** 9, 10 ** 9))
    _rejects(rezip(parts), name, "has shape (1000000000, 1000000000) but the graph document declares")


# ------------------------------------------------------------------------------- the document
def _mutated(valid, fn) -> bytes:
    doc = copy.deepcopy(document(valid))
    fn(doc)
    return with_document(valid, doc)


def test_newer_version(valid):
    def newer(doc):
        doc["version"] = FORMAT_VERSION + 1
    err = _rejects(_mutated(valid, newer), f"format version {FORMAT_VERSION + 1}", "newer graphc")
    assert err.hint and "upgrade graphc" in err.hint


def test_not_json(valid):
    parts = entries(valid)
    parts["graph.json"] = b"{'nodes': NaN"
    _rejects(rezip(parts), "not valid JSON")


def test_deeply_nested_json(valid):
    parts = entries(valid)
    parts["graph.json"] = b"[" * 100000 + b"]" * 100000
    _rejects(rezip(parts))


@pytest.mark.parametrize("mutate,fragments", [
    (lambda d: d.update(nodes={}), ["field 'nodes' must be a JSON array"]),
    (lambda d: d["nodes"][0].update(inputs="x:0"), ["node #0 'x'", "field 'inputs' must be a JSON array"]),
    (lambda d: d["nodes"][0].update(name=7), ["field 'name' must be a string"]),
    (lambda d: d["nodes"][0].update(extra=1), ["unknown field(s) ['extra']"]),
    (lambda d: d["nodes"][0]["outputs"][0].update(dtype="complex64"), ["outputs[0].dtype", "complex64"]),
    (lambda d: d["nodes"][0]["attrs"].update(dtype={"dtype": "complex64"}), ["attribute 'dtype'.dtype must be one of"]),
    (lambda d: d["nodes"][0]["outputs"][0].update(shape=[-1, 3]), ["outputs[0].shape[0] is -1"]),
    (lambda d: d["nodes"][0]["source"].update(line="12"), ["field 'source'", "line must be an integer"]),
    (lambda d: d["variables"][0].update(trainable="yes"), ["variable 'w'", "'trainable' must be true or false"]),
    (lambda d: d.update(version="1"), ["'version' must be a positive integer"]),
    (lambda d: d.update(format="zip"), ["not a graphc graph file"]),
])
def test_wrong_json_types(valid, mutate, fragments):
    _rejects(_mutated(valid, mutate), *fragments)


def test_huge_declared_shapes(valid):
    def huge(doc):
        node = _node(doc, "x")
        node["attrs"]["shape"] = node["outputs"][0]["shape"] = [1 << 40, 1 << 40]
    _rejects(_mutated(valid, huge), "node #0 'x'", "more than the limit")



def test_huge_number_of_outputs(valid):
    def many(doc):
        doc["nodes"].append({"name": "parts", "op": "Split", "inputs": ["x:0"], "control_inputs": [],
                             "attrs": {"axis": 0, "num_split": 10 ** 12}, "outputs": [], "source": None})
    _rejects(_mutated(valid, many), "'parts'", "would make 1000000000000 outputs")


def test_cycle(valid):
    def cycle(doc):
        doc["nodes"].append({"name": "a", "op": "Neg", "inputs": ["b:0"], "control_inputs": [], "attrs": {},
                             "outputs": [{"dtype": "float32", "shape": [None, 3]}], "source": None})
        doc["nodes"].append({"name": "b", "op": "Neg", "inputs": ["a:0"], "control_inputs": [], "attrs": {},
                             "outputs": [{"dtype": "float32", "shape": [None, 3]}], "source": None})
    _rejects(_mutated(valid, cycle), "cycle", "a -> b -> a")


def test_self_loop_through_control_input(valid):
    _rejects(_mutated(valid, lambda d: d["nodes"][0]["control_inputs"].append("x")), "cycle", "x -> x")


def test_forward_reference(valid):
    def forward(doc):
        doc["nodes"][0]["control_inputs"] = [doc["nodes"][1]["name"]]
    _rejects(_mutated(valid, forward), "comes later in the file")


def test_dangling_input(valid):
    def dangling(doc):
        doc["nodes"][-1]["inputs"][0] = "nowhere:0"
    _rejects(_mutated(valid, dangling), "refers to node 'nowhere'")


def test_output_index_out_of_range(valid):
    def bad_index(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "Softmax")
        node["inputs"][0] = node["inputs"][0].rsplit(":", 1)[0] + ":3"
    _rejects(_mutated(valid, bad_index), "not an output 3")


def test_bad_tensor_reference(valid):
    _rejects(_mutated(valid, lambda d: d["nodes"][-1]["inputs"].__setitem__(0, "x")), "not a tensor reference")


def test_unknown_op(valid):
    _rejects(_mutated(valid, lambda d: _node(d, "x").update(op="os.system")), "node #0 'x'", "unknown op 'os.system'")


def test_wrong_arity(valid):
    def arity(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "MatMul")
        node["inputs"] = node["inputs"][:1]
    _rejects(_mutated(valid, arity), "MatMul takes 2 input(s), the file gives 1")


def test_unknown_attribute(valid):
    _rejects(_mutated(valid, lambda d: _node(d, "x")["attrs"].update(evil=1)), "has no attribute 'evil'")


def test_shape_mismatch(valid):
    def wrong(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "MatMul")
        node["outputs"][0]["shape"] = [None, 5]
    _rejects(_mutated(valid, wrong), "MatMul", "records shape (?, 5), but inference gives (?, 2)")


def test_dtype_mismatch(valid):
    def wrong(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "Softmax")
        node["outputs"][0]["dtype"] = "float64"
    _rejects(_mutated(valid, wrong), "Softmax", "records dtype float64")


def test_duplicate_names(valid):
    def dup(doc):
        doc["nodes"][1]["name"] = doc["nodes"][0]["name"]
    _rejects(_mutated(valid, dup), "is used by node #0 too")


def test_variable_op_names_an_undeclared_variable(valid):
    def undeclared(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "VariableV2")
        node["attrs"]["var"] = "ghost"
    _rejects(_mutated(valid, undeclared), "'ghost'")


def test_op_rejects_its_attributes(valid):
    def bad(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "Softmax")
        node["attrs"]["axis"] = [1, [2]]
    _rejects(_mutated(valid, bad), "Softmax rejects this node")


def test_non_finite_float_written_bare_is_refused(valid):
    parts = entries(valid)
    text = parts["graph.json"].decode().replace('"axis": -1', '"axis": Infinity', 1)
    parts["graph.json"] = text.encode()
    _rejects(rezip(parts), "not valid JSON")

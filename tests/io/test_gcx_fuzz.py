"""Hypothesis fuzz of the graph document: any field of a valid file replaced by any JSON value
gives a loadable graph or a GraphFileError, never another exception."""
from __future__ import annotations

import copy
import json

import pytest

pytest.importorskip("hypothesis", reason="needs the test extras: pip install -e \".[test]\"")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.io import load_graph_bytes
from tests.io.gcx_files import document, entries, rezip, small_model_bytes

TESTED_OPS = {"Placeholder", "MatMul", "Softmax", "Mul", "Sum"}

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from(["x:0", "w", "float32", "Add", "arrays/0.npy", "w:0", "x", "MatMul:0"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["dtype", "array", "float", "scalar", "shape", "name", "x"]), children, max_size=2),
    max_leaves=8,
)

_CACHE: dict[str, object] = {}


def _valid() -> tuple[dict[str, bytes], dict]:
    if "parts" not in _CACHE:
        import pathlib
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            data = small_model_bytes(pathlib.Path(d))
        _CACHE["parts"] = entries(data)
        _CACHE["doc"] = document(data)
    return _CACHE["parts"], _CACHE["doc"]  # type: ignore[return-value]


def _paths(value, prefix=()):
    """Every path to a value inside the document."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _load(doc) -> None:
    parts, _ = _valid()
    parts = dict(parts)
    parts["graph.json"] = json.dumps(doc).encode()
    try:
        load_graph_bytes(rezip(parts), "fuzz.gcx")
    except gc.GraphFileError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_field_gives_only_graph_file_errors(data):
    _, doc = _valid()
    paths = [p for p in _paths(doc) if p]
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = data.draw(st.sampled_from(["replace", "delete", "duplicate"]))
            if action == "replace" or not isinstance(parent, (dict, list)):
                parent[path[-1]] = data.draw(_JSON)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, list):
                parent.append(copy.deepcopy(parent[path[-1]]))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    _load(doc)


@settings(max_examples=60, deadline=None)
@given(node=st.integers(0, 40), value=_JSON, field=st.sampled_from(
    ["name", "op", "inputs", "control_inputs", "attrs", "outputs", "source"]))
def test_mutated_node_field(node, value, field):
    _, doc = _valid()
    doc = copy.deepcopy(doc)
    nodes = doc["nodes"]
    nodes[node % len(nodes)][field] = value
    _load(doc)


def test_valid_document_still_loads():
    parts, doc = _valid()
    g = load_graph_bytes(rezip(dict(parts)))
    assert len(g.get_operations()) == len(doc["nodes"])

"""Attribute values no builder makes are refused when a graph file is loaded, as GraphFileErrors
naming the node and the field, instead of loading and failing at run time with a raw Python
exception (or crashing the process: a pooling gradient with ksize 0 divided by zero in compiled
code). Each op's attribute rules are defined once and shared by its gradient twins, so the same
rules hold for nodes built by the API or by gradient rules."""
from __future__ import annotations

import json
import stat
from typing import Any, Callable

import pytest

import graphc as gc
from graphc.api.convert import apply1
from graphc.io import load_graph_bytes
from tests.fuzz.gcx_models import model_files
from tests.fuzz.gcx_mutations import entries, rezip

TESTED_OPS = {"Const", "RandomUniform", "MaxPoolGrad", "AvgPoolGrad", "Conv2DBackpropInput", "Sum", "GatherGrad"}


def _with(model: str, change: Callable[[dict], Any]) -> bytes:
    parts = entries(model_files()[model])
    doc = json.loads(parts["graph.json"])
    change(doc)
    parts["graph.json"] = json.dumps(doc).encode()
    return rezip(parts)


def _node(doc: dict, op: str, nth: int = 0) -> dict:
    return [n for n in doc["nodes"] if n["op"] == op][nth]


def _set_attr(model: str, op: str, key: str, value: Any) -> tuple[bytes, str]:
    name = []

    def change(doc):
        node = _node(doc, op)
        node["attrs"][key] = value
        name.append(node["name"])
    return _with(model, change), name[0]


def _refused(data: bytes, *fragments: str) -> str:
    with pytest.raises(gc.GraphFileError) as info:
        load_graph_bytes(data, "bad.gcx")
    text = str(info.value)
    assert "internal error" not in text and "graphc bug" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


# ------------------------------------------------------------------------------ the reported cases
@pytest.mark.parametrize("value", [{"float": {"a": 1}}, {"float": [1]}, [{"float": {}}]])
def test_const_value_with_a_nested_object(value):
    """Was TypeError: unhashable type: 'dict' in codec.py."""
    data, name = _set_attr("mlp", "Const", "value", value)
    _refused(data, f"'{name}'", "attribute 'value'")


@pytest.mark.parametrize("value", [[1, 2], 3, "x", None])
def test_const_value_that_is_no_array(value):
    """Was "internal error: Const value must be an ndarray (this is a graphc bug)"."""
    def change(doc):
        node = _node(doc, "Const", -1)        # not a variable's initial value (its value is the saved one)
        node["attrs"]["value"] = value
        names.append(node["name"])
    names: list[str] = []
    data = _with("mlp", change)
    _refused(data, f"'{names[0]}'", "attribute 'value' must be an array")


@pytest.mark.parametrize("key", ["seed", "seed2"])
@pytest.mark.parametrize("value", [None, "7", 1.5, True, {"scalar": ["int32", 3]}])
def test_random_seeds_must_be_integers(key, value):
    """Null, a string or a float seed2 loaded, then raised TypeError when the graph ran."""
    data, name = _set_attr("random", "RandomUniform", key, value)
    _refused(data, f"'{name}'", f"attribute '{key}'")


@pytest.mark.parametrize("op,key,value,fragment", [
    ("MaxPoolGrad", "strides", [2], "strides must be two positive ints"),
    ("MaxPoolGrad", "ksize", [0, 0], "ksize must be two positive ints"),     # was SIGFPE at run
    ("MaxPoolGrad", "ksize", None, "ksize must be two positive ints"),
    ("MaxPoolGrad", "padding", [[0, 5], [0, 0]], "padding must be smaller than the window"),   # explicit: a max pool's own
    ("AvgPoolGrad", "padding", [[0, 0], [0, 0]], "padding must be 'SAME' or 'VALID'"),
    ("AvgPoolGrad", "strides", None, "strides must be two positive ints"),
    ("Conv2DBackpropInput", "padding", "VALIDx", "padding must be"),
    ("Conv2DBackpropInput", "dilations", None, "dilations must be two positive ints"),
    ("Conv2DBackpropFilter", "strides", [1, 0], "strides must be two positive ints"),
])
def test_gradient_twins_check_the_forward_ops_attributes(op, key, value, fragment):
    """Validated only on the forward ops before: these loaded and failed at run time."""
    data, name = _set_attr("convnet", op, key, value)
    _refused(data, f"'{name}'", fragment)


def test_variable_named_like_a_tensor():
    """A variable 'Mul:0' whose saved value needs a new Const ('Mul:0/saved_value'): a plain
    GraphcError (invalid node name) before."""
    def change(doc):
        old = doc["variables"][0]["name"]
        doc["variables"][0]["name"] = "Mul:0"
        for n in doc["nodes"]:
            if n["attrs"].get("var") == old:
                n["attrs"]["var"] = "Mul:0"
            if n["name"] == doc["variables"][0]["initializer"]:
                n["control_inputs"] = [n["inputs"][0].rpartition(":")[0]]   # its Const is no carrier
        for items in doc["collections"].values():
            for item in items:
                if item.get("variable") == old:
                    item["variable"] = "Mul:0"
    _refused(_with("mlp", change), "variables[0]", "field 'name'", "'Mul:0' is not a valid variable name")


# ------------------------------------------------------------------------------ found by the fuzzer
def test_reduction_axis_must_be_a_list():
    """An int axis loaded and raised TypeError ('int' object is not iterable) at run."""
    data, name = _set_attr("adam", "Sum", "axis", 0)
    _refused(data, f"'{name}'", "attribute 'axis'")


def test_gather_gradient_axis_must_fit_its_shape():
    """Loaded (its target's rank is known, not its sizes), then a ShapeError naming no node at run."""
    data, name = _set_attr("shapes", "GatherGrad", "axis", 3)
    _refused(data, f"'{name}'", "axis 3 is out of range")


def test_gradient_of_the_wrong_shape_is_refused():
    """A MaxPoolGrad whose incoming gradient is not shaped like its pooling's result."""
    def change(doc):
        pool = _node(doc, "MaxPool")
        grad = _node(doc, "MaxPoolGrad")
        grad["inputs"][1] = pool["inputs"][0]                # x itself, 6x6 instead of 3x3
    _refused(_with("convnet", change), "MaxPoolGrad", "output gradient (input 1) has shape")


def test_symlink_entry_is_refused():
    parts = entries(model_files()["mlp"])
    buf = rezip(parts)
    # mark the array entry as a symbolic link in the central directory (external attributes)
    import io
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename.endswith(".npy"):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            dst.writestr(info, src.read(info))
    _refused(out.getvalue(), "symbolic link")


# ------------------------------------------------------------------------------ the same rules in the API
def test_builders_meet_the_same_rules():
    x = gc.placeholder(gc.float32, [1, 4, 4, 1])
    g = gc.placeholder(gc.float32, [1, 2, 2, 1])
    with pytest.raises(gc.ShapeError) as info:
        apply1("MaxPoolGrad", [x, g], {"strides": (2,)}, name="bad_grad")
    assert info.value.node_name == "bad_grad" and "strides" in str(info.value)
    with pytest.raises(gc.GraphcError) as info:
        apply1("RandomUniform", [], {"shape": (2,), "seed2": "x"}, name="bad_draw")
    assert info.value.node_name == "bad_draw" and "'seed2'" in str(info.value)

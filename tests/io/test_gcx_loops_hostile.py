"""Hostile and broken sub-graphs in .gcx files (While bodies and conditions, If branches): each
is a GraphFileError that says where, found quickly; nesting and node counts are bounded, and no
file can make a function contain itself or send the reader into unbounded recursion."""
from __future__ import annotations

import copy
import json
import time
from typing import Any, Callable

import pytest

import graphc as gc
from graphc.io import Limits, load_graph_bytes
from tests.io.gcx_files import document, entries, refused, rezip, with_document

TESTED_OPS = {"While", "If"}


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    """A while_loop (cond and body, capturing k) and a cond (two branches)."""
    g = gc.Graph()
    with g.as_default():
        k = gc.placeholder(gc.float32, [], name="k")
        _, total = gc.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * k + 1.0),
                                 [gc.constant(0), gc.zeros([3])])
        gc.cond(k > 0.0, lambda: total * k, lambda: total - k)
    path = tmp_path_factory.mktemp("loops") / "loops.gcx"
    gc.save_graph(path, g)
    return path.read_bytes()


_rejects = refused   # tests.io.gcx_files: GraphFileError naming every fragment, fast and small


def _mutated(valid: bytes, change: Callable[[dict], Any]) -> bytes:
    doc = copy.deepcopy(document(valid))
    change(doc)
    return with_document(valid, doc)


def _node(nodes: list[dict], name: str) -> dict:
    return next(n for n in nodes if n["name"] == name)


def _fn(doc: dict, key: str, owner: str = "while/While") -> dict:
    return _node(doc["nodes"], owner)["attrs"][key]["function"]


def _placeholder(name: str, dtype: str = "float32") -> dict:
    return {"name": name, "op": "Placeholder", "inputs": [], "control_inputs": [],
            "attrs": {"dtype": {"dtype": dtype}, "shape": []}, "outputs": [{"dtype": dtype, "shape": []}],
            "source": None}


def _if(name: str, attrs: dict) -> dict:
    return {"name": name, "op": "If", "inputs": [], "control_inputs": [], "attrs": attrs, "outputs": [], "source": None}


def test_valid_file_loads(valid):
    g = load_graph_bytes(valid)
    assert {n.type for n in g.get_operations()} >= {"While", "If"}


# ------------------------------------------------------------------------------- references
def _set_input(doc: dict, ref: str) -> None:
    _node(_fn(doc, "body")["nodes"], "Mul")["inputs"][1] = ref


@pytest.mark.parametrize("ref", ["nowhere:0", "k:0", "while/Const:0"])   # missing, or a node of the outer graph
def test_sub_graph_reads_only_its_own_nodes(valid, ref):
    _rejects(_mutated(valid, lambda d: _set_input(d, ref)), "attribute 'body', function 'while/body'",
             "node #6 'Mul', inputs[1]", "which function 'while/body' does not have")


def test_sub_graph_without_cycles(valid):
    _rejects(_mutated(valid, lambda d: _set_input(d, "Add_1:0")), "function 'while/body' has a cycle: Mul -> Add_1")


def test_sub_graph_node_names_are_unique(valid):
    def change(doc):
        nodes = _fn(doc, "body")["nodes"]
        nodes.append(copy.deepcopy(nodes[0]))
    _rejects(_mutated(valid, change), "function 'while/body'", "the name 'iteration' is used by node #0 too")


@pytest.mark.parametrize("results, fragment", [
    (["Add:0", "Add_1:3"], "node 'Add_1' has 1 output(s), not an output 3"),
    (["Add:0", "Nope:0"], "refers to node 'Nope', which function 'while/body' does not have"),
    (["Add:0", "Add_1"], "is not a tensor reference"),
    (["Add:0", 7], "must be a string"),
    ("Add:0", "must be a JSON array"),
])
def test_results_must_name_tensors_of_the_function(valid, results, fragment):
    _rejects(_mutated(valid, lambda d: _fn(d, "body").update(results=results)), "field 'results'", fragment)


# ------------------------------------------------------------------------------- arguments
def test_argument_count_must_match_what_the_loop_passes(valid):
    def change(doc):
        body = _fn(doc, "body")
        body["nodes"].append(_placeholder("extra"))
        body["args"].append("extra:0")
    _rejects(_mutated(valid, change), "node #5 'while/While'", "op While rejects this node",
             "'while/body' takes 5 arguments, the loop passes 4")


def test_argument_types_must_match_what_the_loop_passes(valid):
    def change(doc):
        captured = _node(_fn(doc, "cond")["nodes"], "captured/k")   # unused by the cond: only the loop checks it
        captured["attrs"]["dtype"] = {"dtype": "float64"}
        captured["outputs"][0]["dtype"] = "float64"
    _rejects(_mutated(valid, change), "node #5 'while/While'", "op While rejects this node",
             "'while/cond' expects a captured value as float64", "the loop passes float32")


def test_branch_arguments_must_match_what_cond_passes(valid):
    def change(doc):
        branch = _fn(doc, "else_branch", "cond/If")
        branch["nodes"].append(_placeholder("extra", "int32"))
        branch["args"].append("extra:0")
    _rejects(_mutated(valid, change), "'cond/If'", "op If rejects this node", "does not take the values cond passes")


@pytest.mark.parametrize("change, fragment", [
    (lambda f: f["args"].__setitem__(1, "Const:0"), "args[1]: 'Const:0' is not a placeholder of the function"),
    (lambda f: f["args"].__setitem__(2, "loop_var_0:0"), "args[2]: 'loop_var_0:0' is listed twice"),
    (lambda f: f["args"].pop(), "placeholder 'captured/k' is not one of the function's arguments"),
])
def test_arguments_are_exactly_the_placeholders(valid, change, fragment):
    _rejects(_mutated(valid, lambda d: change(_fn(d, "body"))), "function 'while/body'", fragment)


def test_loop_body_returning_too_few_values(valid):
    def change(doc):
        _fn(doc, "body")["results"] = ["Add:0"]
        _node(doc["nodes"], "while/While")["outputs"].pop()
    _rejects(_mutated(valid, change), "'while/While'", "returns 1 values for 2 loop values")


def test_recorded_outputs_are_checked_before_inference(valid):
    """A body with many results (each listed once) cannot make inference build that many
    output types for every node using it: the count is checked against the file first."""
    _rejects(_mutated(valid, lambda d: _fn(d, "body").update(results=["Add:0"] * 50_000)),
             "op While would make 50001 outputs, the file records 3")


# ------------------------------------------------------------------------------- what a sub-graph holds
@pytest.mark.parametrize("node, fragment", [
    ({"name": "r", "op": "ReadVariable", "inputs": [], "control_inputs": [],
      "attrs": {"var": "w", "dtype": {"dtype": "float32"}, "shape": []},
      "outputs": [{"dtype": "float32", "shape": []}], "source": None}, "uses variables only through its arguments"),
    ({"name": "a", "op": "Assign", "inputs": ["captured/k:0"], "control_inputs": [],
      "attrs": {"var": "w", "dtype": {"dtype": "float32"}, "shape": []},
      "outputs": [{"dtype": "float32", "shape": []}], "source": None}, "uses variables only through its arguments"),
    ({"name": "r", "op": "RandomUniform", "inputs": [], "control_inputs": [],
      "attrs": {"shape": [2], "dtype": {"dtype": "float32"}},
      "outputs": [{"dtype": "float32", "shape": [2]}], "source": None}, "random draws inside a loop body"),
])
def test_sub_graphs_hold_no_state(valid, node, fragment):
    _rejects(_mutated(valid, lambda d: _fn(d, "body")["nodes"].append(node)), "function 'while/body'", fragment)


@pytest.mark.parametrize("value, fragment", [
    (3, "must be a sub-graph {'function': {...}}, a reference {'function': id} or null"),
    ({"function": "body"}, "the function must be a JSON object"),
    ({"function": {"id": 1}}, "lacks field(s) ['args', 'name', 'results']"),
    ({"function": 7}, "refers to function 7, which the file does not define before this point"),
    ({"function": -1}, "refers to function -1, which the file does not define before this point"),
    ({"function": True}, "the function must be a JSON object"),
])
def test_function_attribute_values(valid, value, fragment):
    _rejects(_mutated(valid, lambda d: _node(d["nodes"], "while/While")["attrs"].update(body=value)),
             "node #5 'while/While', attribute 'body'", fragment)


def test_function_fields(valid):
    _rejects(_mutated(valid, lambda d: _fn(d, "body").update(id=5)), "function field 'id' is 5, expected 1")
    _rejects(_mutated(valid, lambda d: _fn(d, "body").update(name="\x1b[31mred")), "holds control characters")
    _rejects(_mutated(valid, lambda d: _fn(d, "body").update(extra=1)), "unknown field(s) ['extra']")
    _rejects(_mutated(valid, lambda d: _fn(d, "body").update(nodes={})), "field 'nodes' must be a JSON array")


def test_own_nodes_or_another_functions_graph(valid):
    def both(doc):
        _fn(doc, "body")["graph"] = 0
    _rejects(_mutated(valid, both), "function 'while/body': a function has either its own 'nodes' or the 'graph'")
    _rejects(_mutated(valid, lambda d: _fn(d, "body").pop("nodes")), "either its own 'nodes' or the 'graph'")

    def enclosing_graph(doc):   # a node of the body owning a function made of the body's own graph
        body = _fn(doc, "body")
        body["nodes"].append(_if("again", {"then_branch": {"function": {
            "id": 2, "name": "again", "graph": 1, "args": list(body["args"]), "results": []}}}))
    _rejects(_mutated(valid, enclosing_graph), "field 'graph' refers to function 1, which is not a definition complete "
             "before this point")


def test_the_graph_of_another_function_is_shared(valid):
    def change(doc):
        twin = copy.deepcopy(_node(doc["nodes"], "while/While"))
        twin["name"] = "twin"
        twin["attrs"]["cond"] = {"function": 0}
        body = twin["attrs"]["body"]["function"]
        twin["attrs"]["body"] = {"function": {"id": 4, "name": "while/body+more", "graph": 1, "args": body["args"],
                                              "results": body["results"] + ["Mul:0"], "origin": 1}}
        twin["outputs"].insert(2, {"dtype": "float32", "shape": [None, 3]})
        doc["nodes"].append(twin)
    g = load_graph_bytes(_mutated(valid, change))
    loop, twin = g.get_operation_by_name("while/While"), g.get_operation_by_name("twin")
    assert twin.attrs["body"].graph is loop.attrs["body"].graph
    assert twin.attrs["body"].origin is loop.attrs["body"]
    assert len(twin.attrs["body"].results) == 3


@pytest.mark.parametrize("origin, fragment", [
    (0, "function 'while/cond' is not the same graph with the same arguments and the first of these results"),
    (1, "which is not a definition complete before this point"),
    ("1", "must be an integer"),
])
def test_origin_must_be_the_same_body_with_fewer_results(valid, origin, fragment):
    _rejects(_mutated(valid, lambda d: _fn(d, "body").update(origin=origin)), "field 'origin'", fragment)


def test_a_function_in_a_plain_attribute(valid):
    _rejects(_mutated(valid, lambda d: _node(d["nodes"], "while/While")["attrs"].update(n_carries={"function": 0})),
             "attribute 'n_carries'", "a sub-graph ({'function': ...}) where a plain value belongs")


# ------------------------------------------------------------------------------- recursion and limits
def test_a_function_cannot_contain_itself(valid):
    """The only way to name a function is a reference to a complete definition: one naming the
    definition it is inside (or any enclosing one) is refused."""
    def change(doc):
        body = _fn(doc, "body")
        body["nodes"].append(_if("again", {"then_branch": {"function": 1}, "else_branch": {"function": 1}}))
    _rejects(_mutated(valid, change), "function 'while/body': node #9 'again', attribute 'then_branch'",
             "refers to function 1, which encloses this attribute (a function cannot contain itself)")


def test_a_reference_to_a_complete_definition_is_shared(valid):
    def change(doc):
        cond = _node(doc["nodes"], "cond/If")
        cond["attrs"]["else_branch"] = {"function": 2}    # the then_branch, defined just before
    g = load_graph_bytes(_mutated(valid, change))
    node = g.get_operation_by_name("cond/If")
    assert node.attrs["then_branch"] is node.attrs["else_branch"]


def _chain_text(depth: int, first_id: int) -> str:
    """The JSON text of an If whose then_branch holds an If whose then_branch holds ... `depth`
    functions deep (written as text: json.dumps cannot nest that deep)."""
    head, tail = [], []
    for d in range(depth):
        head.append(f'{{"name": "if{d}", "op": "If", "inputs": [], "control_inputs": [], "outputs": [], '
                    f'"source": null, "attrs": {{"then_branch": {{"function": {{"id": {first_id + d}, '
                    f'"name": "level{d}", "args": [], "results": [], "nodes": [')
        tail.append("]}}}}")
    return "".join(head) + "".join(reversed(tail))


@pytest.mark.parametrize("depth", [33, 120, 2000])
def test_nesting_is_bounded(valid, depth):
    """Too deep either for the reader's limit or for the JSON parser: a GraphFileError, never a
    RecursionError."""
    parts = entries(valid)
    doc = document(valid)
    doc["nodes"].append("CHAIN")
    parts["graph.json"] = json.dumps(doc).replace('"CHAIN"', _chain_text(depth, 4)).encode()
    err = _rejects(rezip(parts))
    assert "nest deeper than 32 levels" in str(err) or "nests too deeply" in str(err)
    if depth == 33:
        assert "function 'level31': node #0 'if32', attribute 'then_branch', function 'level32'" in str(err)


def test_nesting_limit_is_configurable(valid, tmp_path):
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    gc.scan(lambda a, e: gc.cond(gc.reduce_sum(e) > 0.0, lambda: a + e, lambda: a - e), x, initializer=gc.zeros([3]))
    gc.save_graph(tmp_path / "nested.gcx")
    data = (tmp_path / "nested.gcx").read_bytes()
    load_graph_bytes(data, limits=Limits(max_function_depth=2))
    _rejects(data, "function 'scan/body'", "sub-graphs nest deeper than 1 levels", limits=Limits(max_function_depth=1))


def test_node_limit_counts_sub_graph_nodes(valid):
    doc = document(valid)
    top = len(doc["nodes"])
    load_graph_bytes(valid, limits=Limits(max_nodes=100))
    _rejects(valid, "more than", "nodes, counting those of its sub-graphs", limits=Limits(max_nodes=top + 5))


def test_node_limit_counts_each_sub_graph(valid):
    """Empty sub-graphs cost a graph object each: they count as nodes too."""
    def change(doc):
        pred = _node(doc["nodes"], "cond/If")["inputs"][:1]
        for i in range(40):
            doc["nodes"].append(dict(_if(f"empty{i}", {
                "then_branch": {"function": {"id": 4 + 2 * i, "name": "t", "nodes": [], "args": [], "results": []}},
                "else_branch": {"function": {"id": 5 + 2 * i, "name": "e", "nodes": [], "args": [], "results": []}}}),
                inputs=pred))
    data = _mutated(valid, change)
    load_graph_bytes(data)
    top = len(document(data)["nodes"])
    _rejects(data, "'empty", "counting those of its sub-graphs and one per sub-graph",
             limits=Limits(max_nodes=top + 40))


def test_many_nodes_sharing_one_big_body_stay_cheap(valid):
    """A reference costs no rebuilding: 2000 loops sharing one body load quickly."""
    def change(doc):
        loop = _node(doc["nodes"], "while/While")
        for i in range(2000):
            twin = copy.deepcopy(loop)
            twin["name"] = f"twin{i}"
            twin["attrs"]["cond"] = {"function": 0}
            twin["attrs"]["body"] = {"function": 1}
            doc["nodes"].append(twin)
    start = time.perf_counter()
    g = load_graph_bytes(_mutated(valid, change))
    assert time.perf_counter() - start < 5.0
    assert g.get_operation_by_name("twin1999").attrs["body"] is g.get_operation_by_name("while/While").attrs["body"]

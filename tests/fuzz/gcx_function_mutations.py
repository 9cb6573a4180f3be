"""Mutations inside the sub-graphs of a saved .gcx file (loop bodies and conditions, branches),
each a pure function of (random generator, file bytes).

The document-wide mutations (gcx_mutations.py) reach a sub-graph only by chance; these aim at
what is particular to nested graphs: a node of a sub-graph changed or rewired (also to a tensor
of an enclosing graph), its arguments and results reordered, dropped, duplicated or pointed
elsewhere, a definition replaced by a reference (to itself, to an enclosing definition, to a
later or unknown one), functions swapped between attributes, a definition embedded inside
itself again (deeper and deeper nesting, renumbered so the ids are consistent), and nodes
a sub-graph must not hold (variables, assignments, random draws, stray placeholders).
"""
from __future__ import annotations

import copy
import json
from typing import Any

from tests.fuzz.gcx_mutations import GRAPH, Rng, _near_miss, _pick, _with_raw, entries, random_value, rezip

STATE_NODES = [
    {"name": "fz_read", "op": "ReadVariable", "inputs": [], "control_inputs": [],
     "attrs": {"var": "w", "dtype": {"dtype": "float32"}, "shape": [3, 3]},
     "outputs": [{"dtype": "float32", "shape": [3, 3]}], "source": None},
    {"name": "fz_draw", "op": "RandomUniform", "inputs": [], "control_inputs": [],
     "attrs": {"shape": [3], "dtype": {"dtype": "float32"}}, "outputs": [{"dtype": "float32", "shape": [3]}],
     "source": None},
    {"name": "fz_free", "op": "Placeholder", "inputs": [], "control_inputs": [],
     "attrs": {"dtype": {"dtype": "float32"}, "shape": [3]}, "outputs": [{"dtype": "float32", "shape": [3]}],
     "source": None},
]


def functions(doc: Any) -> list[tuple[dict, dict, str, list[dict]]]:
    """Every definition in the document, in a fixed order: (owning node, the definition, its
    attribute, the definitions enclosing it, outermost first). Iterative, so a deep file cannot
    recurse."""
    out: list[tuple[dict, dict, str, list[dict]]] = []
    stack: list[tuple[Any, list[dict]]] = [(doc.get("nodes") if isinstance(doc, dict) else None, [])]
    while stack:
        nodes, enclosing = stack.pop()
        found = []
        for node in nodes if isinstance(nodes, list) else []:
            attrs = node.get("attrs") if isinstance(node, dict) else None
            for key, value in (attrs.items() if isinstance(attrs, dict) else []):
                body = value.get("function") if isinstance(value, dict) else None
                if isinstance(body, dict):
                    found.append((node, body, key, enclosing))
        out.extend(found)
        for node, body, key, enclosing in reversed(found):
            stack.append((body.get("nodes"), enclosing + [body]))
    return out


def renumber(doc: Any) -> None:
    """Give the definitions the ids the reader expects (pre-order), mapping references to the
    first definition that had their old id, so a mutation is not caught by the ids alone."""
    mapping: dict[Any, int] = {}
    counter = [0]

    def visit(nodes: Any) -> None:
        for node in nodes if isinstance(nodes, list) else []:
            attrs = node.get("attrs") if isinstance(node, dict) else None
            for key, value in list(attrs.items()) if isinstance(attrs, dict) else []:
                body = value.get("function") if isinstance(value, dict) else None
                if isinstance(body, dict):
                    old = body.get("id")
                    body["id"] = counter[0]
                    if isinstance(old, int) and old not in mapping:
                        mapping[old] = counter[0]
                    counter[0] += 1
                    visit(body.get("nodes"))
                elif isinstance(body, int) and not isinstance(body, bool):
                    value["function"] = mapping.get(body, body)

    visit(doc.get("nodes") if isinstance(doc, dict) else None)


def _tensors(body: dict) -> list[tuple[str, Any]]:
    """(tensor name, dtype) of the definition's nodes."""
    out = []
    for n in body.get("nodes") or []:
        if isinstance(n, dict) and isinstance(n.get("outputs"), list):
            out += [(f"{n.get('name')}:{k}", o.get("dtype") if isinstance(o, dict) else None)
                    for k, o in enumerate(n["outputs"])]
    return out


def _edit_list(rng: Rng, items: list, choices: list[str]) -> list:
    kind = int(rng.integers(0, 6))
    items = list(items)
    if kind == 0 and items:
        items.pop(int(rng.integers(0, len(items))))
    elif kind == 1 and items:
        items.insert(int(rng.integers(0, len(items) + 1)), items[int(rng.integers(0, len(items)))])
    elif kind == 2 and len(items) > 1:
        i, j = (int(v) for v in rng.integers(0, len(items), size=2))
        items[i], items[j] = items[j], items[i]
    elif kind == 3 and items and choices:
        items[int(rng.integers(0, len(items)))] = _pick(rng, choices)
    elif kind == 4 and items:   # an output index out of range, or a malformed reference
        i = int(rng.integers(0, len(items)))
        name = str(items[i]).rpartition(":")[0]
        items[i] = name + str(_pick(rng, [":1", ":9", ":-1", "", ":01", ":999999999"]))
    else:
        items = list(reversed(items))
    return items


def mutate_function(rng: Rng, data: bytes) -> bytes:
    """One to three changes inside the sub-graphs; half the time the ids are renumbered after."""
    parts = entries(data)
    doc = json.loads(parts[GRAPH])
    raw: dict[str, str] = {}
    if not functions(doc):
        from tests.fuzz.gcx_mutations import mutate_document
        return mutate_document(rng, data)
    top_names = [f"{n['name']}:0" for n in doc["nodes"] if isinstance(n, dict) and "name" in n]
    nested_once = False
    for _ in range(int(rng.integers(1, 4))):
        found = functions(doc)
        if not found:
            break
        kind = int(rng.integers(0, 10))
        if kind == 6:
            if nested_once:   # keeps the document within what json.dumps can nest
                kind = 2
            nested_once = True
        try:
            _change(rng, doc, raw, found, kind, top_names)
        except (TypeError, KeyError, IndexError, AttributeError, ValueError):
            pass   # an earlier change left something else where this one looked
    if rng.random() < 0.5:
        renumber(doc)
    parts[GRAPH] = _with_raw(doc, raw)
    return rezip(parts)


def _change(rng: Rng, doc: dict, raw: dict[str, str], found: list, kind: int, top_names: list[str]) -> None:
    owner, body, key, enclosing = found[int(rng.integers(0, len(found)))]
    nodes = body.get("nodes") if isinstance(body.get("nodes"), list) else []
    names = [t for t, _ in _tensors(body)]
    if kind == 0 and nodes:   # an attribute of one of its nodes: near miss or any value
        node = nodes[int(rng.integers(0, len(nodes)))]
        if isinstance(node.get("attrs"), dict) and node["attrs"]:
            k = list(node["attrs"])[int(rng.integers(0, len(node["attrs"])))]
            near = rng.random() < 0.7
            node["attrs"][k] = _near_miss(rng, node["attrs"][k], doc, raw) if near else random_value(rng, doc, raw)
    elif kind == 1 and nodes:   # an input rewired: same dtype earlier, any tensor of it, or an outer one
        users = [(i, j) for i, n in enumerate(nodes) if isinstance(n.get("inputs"), list) for j in range(len(n["inputs"]))]
        if users:
            i, j = users[int(rng.integers(0, len(users)))]
            dtypes = _tensors(body)
            want = dict(dtypes).get(nodes[i]["inputs"][j])
            earlier = {f"{n.get('name')}:" for n in nodes[:i] if isinstance(n, dict)}
            same = [t for t, d in dtypes if d == want and t.rpartition(":")[0] + ":" in earlier]
            nodes[i]["inputs"][j] = _pick(rng, (same or names or ["x:0"]) + [_pick(rng, top_names or ["x:0"])])
    elif kind == 2:
        body["args"] = _edit_list(rng, body.get("args") or [], names)
    elif kind == 3:
        body["results"] = _edit_list(rng, body.get("results") or [], names)
    elif kind == 4:   # the definition replaced by a reference
        ids = [b.get("id") for b in enclosing] + [body.get("id")]
        choice = _pick(rng, [ids[-1], _pick(rng, ids), ids[-1] + 1 if isinstance(ids[-1], int) else 0, 999, -1,
                             len(found)])
        owner["attrs"][key] = {"function": choice}
    elif kind == 5:   # the functions of one node, or of two nodes, swapped
        other_owner, _, other_key, _ = found[int(rng.integers(0, len(found)))]
        owner["attrs"][key], other_owner["attrs"][other_key] = other_owner["attrs"][other_key], owner["attrs"][key]
    elif kind == 6:   # an enclosing definition embedded where it encloses: deeper nesting each time
        base = enclosing[-1] if enclosing else body
        template = copy.deepcopy(base)   # copied once: each level adds one copy, not a doubling
        inner = base
        for _ in range(int(_pick(rng, [1, 1, 2, 6, 33]))):
            holder = next((n for n in inner.get("nodes") or [] if isinstance(n, dict) and isinstance(n.get("attrs"), dict)
                           and any(isinstance(v, dict) and "function" in v for v in n["attrs"].values())), None)
            if holder is None:
                break
            k = next(k for k, v in holder["attrs"].items() if isinstance(v, dict) and "function" in v)
            holder["attrs"][k] = {"function": copy.deepcopy(template)}
            inner = holder["attrs"][k]["function"]
    elif kind == 7 and nodes:   # a node deleted or duplicated
        i = int(rng.integers(0, len(nodes)))
        if rng.random() < 0.5:
            nodes.pop(i)
        else:
            nodes.insert(int(rng.integers(0, len(nodes) + 1)), copy.deepcopy(nodes[i]))
    elif kind == 8:   # a node a sub-graph must not hold, perhaps used by another one
        extra = copy.deepcopy(_pick(rng, STATE_NODES))
        nodes.insert(int(rng.integers(0, len(nodes) + 1)), extra)
        users = [n for n in nodes if isinstance(n, dict) and isinstance(n.get("inputs"), list) and n["inputs"]]
        if users and rng.random() < 0.5:
            users[int(rng.integers(0, len(users)))]["inputs"][0] = f"{extra['name']}:0"
        if extra["op"] == "Placeholder" and rng.random() < 0.5 and isinstance(body.get("args"), list):
            body["args"].append("fz_free:0")
    elif kind == 9:   # a field of the definition: a near miss, or deleted
        field = str(_pick(rng, ["id", "name", "nodes", "args", "results"]))
        if rng.random() < 0.3:
            body.pop(field, None)
        else:
            body[field] = _near_miss(rng, body.get(field), doc, raw)

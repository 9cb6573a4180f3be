"""Mutations of a saved .gcx file, each a pure function of (random generator, file bytes).

Four families, as a hostile or damaged file could differ from a good one:

- bytes: flips, truncation, splices of the raw file;
- one attribute of one node: a near miss or any value (the change most likely to load and
  reach an op's own code);
- one input of one node rewired to another tensor of its dtype (inference that trusts its
  inputs' shapes);
- the graph document: any field replaced by any JSON value (huge numbers, very long strings,
  deep nesting, many tiny lists, references to other nodes, tagged values), deleted or
  duplicated, and "near misses" of attributes (an int off by one, a list one short, a string
  one letter off, null where a number was) that get past type checks into the ops;
- the zip container: duplicate entries, lying sizes, a compression bomb, symlink entries, many
  entries, unsupported methods, encrypted flags, path tricks;
- the `.npy` arrays: huge or lying headers, object and pickled arrays, big-endian, structured
  and Fortran-ordered arrays, short payloads.
"""
from __future__ import annotations

import copy
import io
import json
import stat
import struct
import warnings
import zipfile
from typing import Any, Callable

import numpy as np

Rng = np.random.Generator
GRAPH = "graph.json"


# ------------------------------------------------------------------------------------ helpers
def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rezip(parts: list[tuple[str, bytes]] | dict[str, bytes], method: int | None = None,
          attrs: dict[str, int] | None = None) -> bytes:
    """A zip of these (name, body) entries: .npy stored and the rest deflated, unless `method`."""
    buf = io.BytesIO()
    items = parts.items() if isinstance(parts, dict) else parts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # duplicate names are one of the tricks
        with zipfile.ZipFile(buf, "w") as zf:
            for name, body in items:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method if method is not None else (
                    zipfile.ZIP_STORED if name.endswith(".npy") else zipfile.ZIP_DEFLATED)
                if attrs and name in attrs:
                    info.external_attr = attrs[name] << 16
                zf.writestr(info, body)
    return buf.getvalue()


def _with_raw(doc: Any, raw: dict[str, str]) -> bytes:
    """json.dumps(doc) with each string "\\u0000RAWk" replaced by the JSON text raw[k] (for
    values json.dumps cannot write: nesting past its recursion limit, invalid numbers)."""
    text = json.dumps(doc)
    for key, value in raw.items():
        text = text.replace(json.dumps(key), value, 1)
    return text.encode()


# ------------------------------------------------------------------------------------ values
def _pick(rng: Rng, options: list) -> Any:
    """One of `options` (of any types; numpy's choice would make an array of them)."""
    return options[int(rng.integers(0, len(options)))]


def _huge_int(rng: Rng) -> int:
    return int(_pick(rng, [2 ** 31, 2 ** 31 - 1, -2 ** 31 - 1, 2 ** 63, 2 ** 63 - 1, -2 ** 63 - 1, 2 ** 64, 10 ** 30,
                           2 ** 40, 2 ** 48 + 1, 2 ** 20]))


def random_value(rng: Rng, doc: dict[str, Any], raw: dict[str, str], depth: int = 0) -> Any:
    """Any JSON value, biased towards what a graph document holds and what breaks readers."""
    names = [str(n.get("name")) for n in _items(doc, "nodes") if isinstance(n, dict)] or ["x"]
    kind = int(rng.integers(0, 24))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(0, 2))
    if kind == 2:
        return int(rng.integers(-3, 8))
    if kind == 3:
        return _huge_int(rng)
    if kind == 4:
        return float(_pick(rng, [0.5, -0.0, 1e308, -1e-320, 3.0, 2.5e9]))
    if kind == 5:
        return str(_pick(rng, ["", "x", "SAME", "VALID", "VALIDx", "NHWC", "NCHW", "float32", "int64", "complex64",
                               "Mul:0", "arrays/0.npy", "arrays/99.npy", "../etc", "\x1b[31mred", "Add", "Const"]))
    if kind == 6:
        return str(names[int(rng.integers(0, len(names)))]) + str(_pick(rng, [":0", ":1", ":7", "", ":00", ":-1"]))
    if kind == 7:
        return "x" * int(_pick(rng, [4097, 10_000, 1_000_000]))
    if kind == 8 and depth < 3:
        return [random_value(rng, doc, raw, depth + 1) for _ in range(int(rng.integers(0, 5)))]
    if kind == 9 and depth < 3:
        keys = ["dtype", "array", "float", "scalar", "shape", "name", "x", "file", "line", "code"]
        return {str(_pick(rng, keys)): random_value(rng, doc, raw, depth + 1) for _ in range(int(rng.integers(0, 3)))}
    if kind == 10:
        return {"dtype": str(_pick(rng, ["float32", "float64", "int32", "int64", "bool", "complex64", "object"]))}
    if kind == 11:
        return {"array": str(_pick(rng, ["arrays/0.npy", "arrays/1.npy", "arrays/2.npy", "nope"]))}
    if kind == 12:
        return {"scalar": [str(_pick(rng, ["float32", "int32", "int64", "bool", "float64"])),
                           random_value(rng, doc, raw, depth + 1)]}
    if kind == 13:
        return {"float": str(_pick(rng, ["nan", "inf", "-inf", "NaN"]))}
    if kind == 14:   # deep nesting, past what json.dumps can write
        levels = int(_pick(rng, [20, 200, 5000, 100_000]))
        return _raw(raw, "[" * levels + "]" * levels)
    if kind == 15:   # many tiny lists
        count = int(_pick(rng, [1000, 100_000, 2_000_000]))
        return _raw(raw, "[" + ",".join(["[]"] * count) + "]")
    if kind == 16:   # many tiny objects / small values
        count = int(_pick(rng, [1000, 500_000]))
        return _raw(raw, "[" + ",".join([str(_pick(rng, ["{}", "0", "1.5", '"ab"']))] * count) + "]")
    if kind == 17:   # numbers JSON allows but Python finds hard
        return _raw(raw, str(_pick(rng, ["1" * 5000, "1e999", "-1e999", "1E400", "0.0000001e-400", "-0"])))
    if kind == 18:
        return [int(rng.integers(-2, 5)) for _ in range(int(rng.integers(0, 6)))]
    if kind == 19:
        return [[int(rng.integers(-1, 3)), int(rng.integers(-1, 3))] for _ in range(int(rng.integers(0, 4)))]
    if kind == 20:
        return [None, int(rng.integers(1, 5))][: int(rng.integers(0, 3))]
    if kind == 21:
        return {"file": "/etc/passwd", "line": 1, "function": "f", "code": "x"}
    if kind == 22:
        return [["index", int(rng.integers(-3, 3))], ["slice", None, None, int(_pick(rng, [-1, 0, 1, 2]))]]
    return list(rng.integers(0, 2, size=int(rng.integers(1, 5))).tolist())


def _items(doc: Any, key: str) -> list:
    """doc[key] when the (possibly already mutated) document has a list there, else []."""
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, list) else []


def _raw(raw: dict[str, str], text: str) -> str:
    key = f"\x00RAW{len(raw)}"
    raw[key] = text
    return key


# ------------------------------------------------------------------------------------ the document
def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _near_miss(rng: Rng, value: Any, doc: dict, raw: dict) -> Any:
    """A value close to `value`: what gets past a type check into the op's own code."""
    if isinstance(value, bool):
        return _pick(rng, [not value, 0, 1, None])
    if isinstance(value, int):
        return int(_pick(rng, [value + 1, value - 1, -value, 0, -1, value * 1000, 2 ** 31, 1 << 40])) \
            if rng.random() < 0.9 else _pick(rng, [None, float(value), str(value), [value]])
    if isinstance(value, float):
        return _pick(rng, [-value, 0.0, 1e300, int(value), None, str(value)])
    if isinstance(value, str):
        return _pick(rng, [value + "x", value.lower(), value[:-1], "", None, [value], value.upper() + "_"])
    if isinstance(value, list):
        choice = int(rng.integers(0, 6))
        if choice == 0 and value:
            return value[:-1]
        if choice == 1:
            return value + value[-1:] if value else [1]
        if choice == 2 and value:
            i = int(rng.integers(0, len(value)))
            return value[:i] + [_near_miss(rng, value[i], doc, raw)] + value[i + 1:]
        if choice == 3:
            return [value]
        if choice == 4:
            return {"x": value}
        return list(reversed(value))
    if isinstance(value, dict) and value:
        key = list(value)[int(rng.integers(0, len(value)))]
        return dict(value, **{key: _near_miss(rng, value[key], doc, raw)})
    return random_value(rng, doc, raw)


def mutate_attribute(rng: Rng, data: bytes) -> bytes:
    """One attribute of one node changed to a near miss or any value: the one change most
    likely to load (inference may give the same outputs) and reach the op's own code."""
    parts = entries(data)
    doc = json.loads(parts[GRAPH])
    raw: dict[str, str] = {}
    targets = [("nodes", i, "attrs", k) for i, n in enumerate(doc["nodes"]) for k in n["attrs"]]
    path = targets[int(rng.integers(0, len(targets)))]
    near = rng.random() < 0.7
    _set(doc, path, lambda old: _near_miss(rng, old, doc, raw) if near else random_value(rng, doc, raw))
    parts[GRAPH] = _with_raw(doc, raw)
    return rezip(parts)


def mutate_rewire(rng: Rng, data: bytes) -> bytes:
    """One input of one node replaced by another tensor of the same dtype made earlier in the
    file: the graph stays well formed, and it loads when the node's inference does not notice
    (an op that trusts its inputs' shapes is then caught at run time, or crashes)."""
    parts = entries(data)
    doc = json.loads(parts[GRAPH])
    nodes = doc["nodes"]
    dtypes: list[tuple[str, str]] = []     # (tensor name, dtype), in file order
    position = {}
    for i, n in enumerate(nodes):
        position[n["name"]] = i
        dtypes += [(f"{n['name']}:{k}", o["dtype"]) for k, o in enumerate(n["outputs"])]
    users = [(i, j) for i, n in enumerate(nodes) for j in range(len(n["inputs"]))]
    if not users:
        return mutate_attribute(rng, data)
    i, j = users[int(rng.integers(0, len(users)))]
    old = nodes[i]["inputs"][j]
    want = dict(dtypes).get(old)
    choices = [t for t, d in dtypes if d == want and position[t.rpartition(":")[0]] < i and t != old]
    if choices:
        nodes[i]["inputs"][j] = choices[int(rng.integers(0, len(choices)))]
    parts[GRAPH] = json.dumps(doc).encode()
    return rezip(parts)


def mutate_document(rng: Rng, data: bytes) -> bytes:
    """1-3 changes to graph.json: replace, delete, duplicate, near-miss an attribute, reorder."""
    parts = entries(data)
    doc = json.loads(parts[GRAPH])
    raw: dict[str, str] = {}
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 6))
        if kind in (0, 1):   # an attribute, a variable field, a source: the near-miss
            targets = [("nodes", i, "attrs", k) for i, n in enumerate(_items(doc, "nodes"))
                       if isinstance(n, dict) and isinstance(n.get("attrs"), dict) for k in n["attrs"]]
            targets += [("nodes", i, field) for i, n in enumerate(_items(doc, "nodes"))
                        if isinstance(n, dict) for field in ("outputs", "inputs")]
            targets += [("variables", i, k) for i, v in enumerate(_items(doc, "variables"))
                        if isinstance(v, dict) for k in v]
            if not targets:
                continue
            path = targets[int(rng.integers(0, len(targets)))]
            near = kind == 0
            _set(doc, path, lambda old, near=near: _near_miss(rng, old, doc, raw) if near else random_value(rng, doc, raw))
            continue
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = paths[int(rng.integers(0, len(paths)))]
        if kind == 2:
            _set(doc, path, lambda old: random_value(rng, doc, raw))
        elif kind == 3:
            _delete(doc, path)
        elif kind == 4:
            _duplicate(doc, path, rng)
        else:
            nodes = doc.get("nodes")
            if isinstance(nodes, list) and len(nodes) > 1:   # swap or rename nodes
                i, j = (int(v) for v in rng.integers(0, len(nodes), size=2))
                if rng.random() < 0.5:
                    nodes[i], nodes[j] = nodes[j], nodes[i]
                elif isinstance(nodes[i], dict) and isinstance(nodes[j], dict):
                    nodes[i]["name"] = nodes[j].get("name")
    parts[GRAPH] = _with_raw(doc, raw)
    return rezip(parts)


def _parent(doc: Any, path: tuple) -> Any:
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    return parent


def _set(doc: Any, path: tuple, make: Callable[[Any], Any]) -> None:
    try:
        parent = _parent(doc, path)
        parent[path[-1]] = make(parent[path[-1]])
    except (KeyError, IndexError, TypeError):
        pass   # an earlier change removed the path


def _delete(doc: Any, path: tuple) -> None:
    try:
        del _parent(doc, path)[path[-1]]
    except (KeyError, IndexError, TypeError):
        pass


def _duplicate(doc: Any, path: tuple, rng: Rng) -> None:
    try:
        parent = _parent(doc, path)
        item = copy.deepcopy(parent[path[-1]])
        if isinstance(parent, list):
            parent.insert(int(rng.integers(0, len(parent) + 1)), item)
        elif isinstance(item, (list, dict)) and item:
            parent[path[-1]] = item + item if isinstance(item, list) else {**item, "extra": item}
    except (KeyError, IndexError, TypeError):
        pass


# ------------------------------------------------------------------------------------ bytes
def mutate_bytes(rng: Rng, data: bytes) -> bytes:
    """Flips, truncation or a splice of the raw file."""
    kind = int(rng.integers(0, 4))
    buf = bytearray(data)
    if kind == 0:
        for _ in range(int(rng.integers(1, 9))):
            buf[int(rng.integers(0, len(buf)))] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf)
    if kind == 1:
        return bytes(buf[: int(rng.integers(0, len(buf)))])
    if kind == 2:   # a byte set to an extreme value in the zip headers (sizes, offsets, counts)
        for sig in (b"PK\x01\x02", b"PK\x03\x04", b"PK\x05\x06"):
            at = buf.find(sig)
            while at >= 0 and rng.random() < 0.5:
                at = buf.find(sig, at + 1)
            if at >= 0:
                pos = at + int(rng.integers(4, 30))
                if pos < len(buf):
                    buf[pos] = int(_pick(rng, [0, 0xFF, 0x7F, 0x80]))
        return bytes(buf)
    start, length = int(rng.integers(0, len(buf))), int(rng.integers(1, 64))
    to = int(rng.integers(0, len(buf)))
    buf[to:to] = buf[start: start + length]
    return bytes(buf)


# ------------------------------------------------------------------------------------ the zip
_BOMB: list[bytes] = []


def _bomb_zip() -> bytes:
    """graph.json followed by 200 MiB of spaces, deflated to ~200 KiB (built once, streaming)."""
    if not _BOMB:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            with zf.open(GRAPH, "w", force_zip64=True) as f:
                f.write(b'{"format": "graphc.gcx"')
                block = b" " * (1 << 20)
                for _ in range(200):
                    f.write(block)
                f.write(b"}")
        _BOMB.append(buf.getvalue())
    return _BOMB[0]


def mutate_zip(rng: Rng, data: bytes) -> bytes:
    """A container trick around the real entries."""
    parts = entries(data)
    names = list(parts)
    kind = int(rng.integers(0, 11))
    if kind == 0:   # duplicate entry (same name twice, the copy first or second)
        name = names[int(rng.integers(0, len(names)))]
        items = list(parts.items())
        items.insert(int(rng.integers(0, len(items) + 1)), (name, parts[name] if rng.random() < 0.5 else b"{}"))
        return rezip(items)
    if kind == 1:   # a lying size in a central or local header
        out = bytearray(data)
        sig = bytes(_pick(rng, [b"PK\x01\x02", b"PK\x03\x04"]))
        offsets = [i for i in range(len(out)) if out.startswith(sig, i)]
        at = offsets[int(rng.integers(0, len(offsets)))]
        field = (20 if sig == b"PK\x01\x02" else 18) + 4 * int(rng.integers(0, 2))
        value = int(_pick(rng, [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 1 << 30]))
        out[at + field: at + field + 4] = struct.pack("<I", value)
        return bytes(out)
    if kind == 2:
        return _bomb_zip()
    if kind == 3:   # a symlink entry (to a file outside, or a device)
        name = names[int(rng.integers(0, len(names)))]
        parts[name] = bytes(_pick(rng, [b"/etc/passwd", b"/dev/zero", b"../../x"]))
        return rezip(parts, attrs={name: stat.S_IFLNK | 0o777})
    if kind == 4:   # many entries, undeclared
        count = int(_pick(rng, [50, 3000]))
        items = list(parts.items()) + [(f"arrays/{1000 + i}.npy", b"") for i in range(count)]
        return rezip(items)
    if kind == 5:   # the end record claims many entries or a huge central directory
        out = bytearray(data)
        at = out.rfind(b"PK\x05\x06")
        field = at + int(_pick(rng, [8, 10, 12]))
        out[field: field + 2] = b"\xff\xff"
        return bytes(out)
    if kind == 6:   # everything stored, or the arrays deflated, or an unsupported method
        methods = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
        method = methods[int(rng.integers(0, 4))]
        return rezip(parts, method=method)
    if kind == 7:   # the encrypted flag
        out = bytearray(data)
        at = out.find(b"PK\x01\x02")
        out[at + 8] |= 1
        return bytes(out)
    if kind == 8:   # path tricks
        name = str(_pick(rng, ["../graph.json", "/arrays/0.npy", "arrays\\0.npy", "arrays/0.npy\x00", "C:/x",
                               "arrays/01.npy", "arrays/0.npy/", "ARRAYS/0.npy"]))
        items = list(parts.items()) + [(name, b"")]
        return rezip(items)
    if kind == 9:   # an entry missing
        del parts[names[int(rng.integers(0, len(names)))]]
        return rezip(parts)
    return b"junk before the archive" * int(rng.integers(1, 4)) + data   # prefixed data


# ------------------------------------------------------------------------------------ .npy
def _npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npy_header(header: str, version: int = 1, pad: int = 0) -> bytes:
    text = (header + " " * pad + "\n").encode("latin1")
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(text)) + text


def mutate_npy(rng: Rng, data: bytes) -> bytes:
    """One array entry replaced by a hostile or wrong .npy."""
    parts = entries(data)
    arrays = [n for n in parts if n.endswith(".npy")]
    if not arrays:
        return mutate_zip(rng, data)
    name = arrays[int(rng.integers(0, len(arrays)))]
    original = np.load(io.BytesIO(parts[name]), allow_pickle=False)
    shape = original.shape
    kind = int(rng.integers(0, 12))
    if kind == 0:
        body = _npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == 1:   # a pickle where the header says float
        body = _npy_header(f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}") + \
            b"\x80\x04\x95" + b"cos\nsystem\n(S'true'\ntR."
    elif kind == 2:   # a huge header
        body = _npy_header(f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}", version=2,
                           pad=int(_pick(rng, [70_000, 2_000_000])))
    elif kind == 3:   # a header claiming more bytes than there are
        body = b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{'descr': '<f4'"
    elif kind == 4:
        body = _npy(original.astype(original.dtype.newbyteorder(">")))
    elif kind == 5:
        body = _npy(np.asfortranarray(original.reshape(shape)).T.copy().T if original.ndim > 1
                    else original.astype(np.float16))
    elif kind == 6:
        body = _npy(np.zeros(shape, dtype=[("a", "<f4")]))
    elif kind == 7:
        body = _npy(np.zeros(tuple(d + 1 for d in shape) or (1,), original.dtype))
    elif kind == 8:
        body = _npy(original)[:-int(rng.integers(1, 5))] if original.size else _npy(original) + b"x"
    elif kind == 9:   # a shape of absurd size
        body = _npy_header(f"{{'descr': '{original.dtype.str}', 'fortran_order': False, "
                           f"'shape': ({2 ** 40}, {2 ** 40}), }}")
    elif kind == 10:
        body = _npy(np.array(["abc"] * max(original.size, 1)))
    else:   # non-finite or out-of-range values of the right dtype
        values = original.copy()
        if values.size and values.dtype.kind == "f":
            values.reshape(-1)[0] = _pick(rng, [np.nan, np.inf, -np.inf, 1e38])
        elif values.size and values.dtype.kind in "iu":
            values.reshape(-1)[0] = np.iinfo(values.dtype).max
        elif values.size and values.dtype == np.bool_:
            body = _npy(values)
            body = body[:-1] + b"\x07"
            parts[name] = body
            return rezip(parts)
        body = _npy(values)
    parts[name] = body
    return rezip(parts)


MUTATORS: dict[str, Callable[[Rng, bytes], bytes]] = {
    "attribute": mutate_attribute, "rewire": mutate_rewire, "document": mutate_document, "bytes": mutate_bytes,
    "zip": mutate_zip, "npy": mutate_npy,
}
WEIGHTS = {"attribute": 0.25, "rewire": 0.15, "document": 0.25, "bytes": 0.12, "zip": 0.1, "npy": 0.13}

"""Helpers to take a valid .gcx file apart and put (possibly hostile) pieces back together."""
from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.io.load import load_graph_bytes


def small_model_bytes(tmp_path) -> bytes:
    """A valid file: a placeholder, a variable, a few ops and a gradient."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [None, 3], name="x")
        w = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
        y = gc.nn.softmax(x @ w, axis=-1)
        gc.gradients(gc.reduce_sum(y * y), [w])
    path = tmp_path / "small.gcx"
    gc.save_graph(path, g)
    return path.read_bytes()


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def document(data: bytes) -> dict[str, Any]:
    return json.loads(entries(data)["graph.json"])


def rezip(parts: dict[str, bytes], stored: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in parts.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if stored or name.endswith(".npy") else zipfile.ZIP_DEFLATED
            zf.writestr(info, body)
    return buf.getvalue()


def with_document(data: bytes, doc: Any) -> bytes:
    parts = entries(data)
    parts["graph.json"] = json.dumps(doc).encode()
    return rezip(parts)


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def frozen_attrs(attrs: Any) -> tuple:
    """freeze_attrs with sub-graphs compared by structure: a loaded Function is a new object,
    equal to the saved one in its name, nodes (names, ops, attributes, inputs, output types,
    source lines), arguments and results."""
    from graphc.ir.function import Function
    from graphc.ir.node import freeze_attrs

    return freeze_attrs({k: frozen_function(v) if isinstance(v, Function) else v for k, v in attrs.items()})


def frozen_function(fn: Any) -> tuple:
    nodes = tuple((n.name, n.type, frozen_attrs(n.attrs), tuple(t.name for t in n.inputs),
                   tuple(c.name for c in n.control_inputs), tuple((t.dtype, t.shape) for t in n.outputs), n.source)
                  for n in fn.graph.get_operations())
    return ("function", fn.name, nodes, tuple(t.name for t in fn.args), tuple(t.name for t in fn.results))


def refused(data: bytes, *fragments: str, limits: Any = None, seconds: float = 5.0, mb: int = 64,
            name: str = "hostile.gcx") -> gc.GraphFileError:
    """Loading `data` fails with a GraphFileError naming every fragment, within `seconds` and
    `mb` MB of allocations. (The time bound catches a loader that hangs or blows up, not a
    slow machine: these loads take well under a second on a quiet one, traced by tracemalloc,
    and CI's 2 cores may be busy.)"""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(gc.GraphFileError) as info:
            load_graph_bytes(data, name, limits)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < mb << 20, f"allocated {peak >> 20} MB"
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return info.value

"""Mutated ONNX models for the fuzz driver (tests/fuzz/driver.py): `cases(seed, count)` and
`run_case(bytes)`.

Why: graphc imports ONNX files it did not write, so any file, however broken or hostile, must
either import and run or raise a GraphcError subclass that names the node and the field. The
cases start from real models (tests/fuzz/onnx_models.py: an MLP, a small CNN, array ops,
normalizations and reductions, an opset-11 model, integer arithmetic, and one whose initializers
are external data) and break them the ways files break: any protobuf field changed (op types, inputs,
attributes, dims, element types, raw data, opsets, names, order), byte flips and truncation of
the serialized bytes, and external-data tricks (`..`, absolute paths, symlinks out of the folder,
/dev/zero, a FIFO, huge offsets and lengths).

`run_case` imports the bytes (from a path in a fresh folder that holds the external weights and
the traps, or from the bytes themselves) and runs the graph on small random inputs with the NumPy
reference backend and LLVM. It returns "ok" or the GraphcError subclass name and lets every
other exception through: the driver counts those as failures.
"""
from __future__ import annotations

import functools
import os
import random
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.fuzz.onnx_models import WEIGHTS_FILE, external_weights, seed_models

BACKENDS = ("numpy", "llvm")   # graphc backends each imported case runs on
_INTERESTING_INTS = [0, 1, -1, 2, 3, -2, 5, -5, 7, 64, 255, 1 << 16, (1 << 31) - 1, -(1 << 31), 1 << 32,
                     (1 << 40), (1 << 62), (1 << 63) - 1, -(1 << 63)]
_INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, 1e30, float("inf"), float("-inf"), float("nan"), 3.4e38]
_TRAP_LOCATIONS = ["../secret.bin", "../../etc/passwd", "/etc/passwd", "/dev/zero", "zero.bin", "fifo.bin",
                   "link_out.bin", "sub/../weights.bin", "./weights.bin", "missing.bin", "", ".", "sub",
                   "weights.bin\x00x", "C:\\weights.bin", "//weights.bin", WEIGHTS_FILE]


# ----------------------------------------------------------------------------- mutations
def _messages(msg: Any) -> list:
    """Every message inside `msg`, itself included."""
    out = [msg]
    for field, value in msg.ListFields():
        if field.type == field.TYPE_MESSAGE:
            out += [m for sub in (value if _repeated(field) else [value]) for m in _messages(sub)]
    return out


def _repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)   # protobuf >= 5; older ones have label
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def _names(model: onnx.ModelProto) -> list[str]:
    g = model.graph
    names = [v.name for v in list(g.input) + list(g.output)] + [i.name for i in g.initializer]
    names += [n for node in g.node for n in list(node.input) + list(node.output)]
    return names or ["x"]


def _scalar_value(rnd: random.Random, field: Any, old: Any, names: list[str]) -> Any:
    t = field.type
    if t == field.TYPE_BOOL:
        return not old
    if t in (field.TYPE_FLOAT, field.TYPE_DOUBLE):
        return rnd.choice(_INTERESTING_FLOATS + [old * 2, -old])
    if t == field.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values]
        return rnd.choice(values)
    if t == field.TYPE_STRING:
        return rnd.choice(names + ["", "x" * rnd.randint(1, 300), "Mul:0", "é/ü", old + "_", "..", "../x", "\x00"])
    if t == field.TYPE_BYTES:
        return rnd.choice([b"", old[: len(old) // 2], old + old[:3], bytes(rnd.randrange(256) for _ in range(9))])
    unsigned = t in (field.TYPE_UINT32, field.TYPE_UINT64, field.TYPE_FIXED32, field.TYPE_FIXED64)
    value = rnd.choice(_INTERESTING_INTS + [old + 1, old - 1, -old])
    bits = 32 if t in (field.TYPE_INT32, field.TYPE_UINT32, field.TYPE_SINT32, field.TYPE_FIXED32,
                       field.TYPE_SFIXED32) else 64
    lo, hi = (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return min(max(value, lo), hi)


def mutate_field(rnd: random.Random, model: onnx.ModelProto) -> None:
    """Change one field of one message anywhere in the model, as protobuf allows."""
    _mutate_message(rnd, rnd.choice(_messages(model)), _names(model))


def _mutate_message(rnd: random.Random, msg: Any, names: list[str]) -> None:
    field = rnd.choice(msg.DESCRIPTOR.fields)
    if _repeated(field):
        seq = getattr(msg, field.name)
        choice = rnd.randrange(4)
        if choice == 0 or not len(seq):
            if field.type == field.TYPE_MESSAGE:
                seq.add().CopyFrom(seq[rnd.randrange(len(seq))]) if len(seq) else seq.add()   # a duplicate
            else:
                empty = {field.TYPE_BYTES: b"", field.TYPE_STRING: ""}.get(field.type, 0)
                seq.append(_scalar_value(rnd, field, seq[0] if len(seq) else empty, names))
        elif choice == 1:
            del seq[rnd.randrange(len(seq))]
        elif choice == 2:
            msg.ClearField(field.name)
        else:
            i = rnd.randrange(len(seq))
            if field.type == field.TYPE_MESSAGE:
                _mutate_message(rnd, seq[i], names)
            else:
                seq[i] = _scalar_value(rnd, field, seq[i], names)
        return
    if field.type == field.TYPE_MESSAGE:
        if rnd.random() < 0.5:
            msg.ClearField(field.name)
        else:
            getattr(msg, field.name).SetInParent()
        return
    setattr(msg, field.name, _scalar_value(rnd, field, getattr(msg, field.name), names))


@functools.cache
def _op_types() -> list[str]:
    from graphc.io.onnx import import_array, import_math, import_nn  # noqa: F401  (register the rules)
    from graphc.io.onnx.import_rules import RULES

    return sorted(RULES)


def mutate_node(rnd: random.Random, model: onnx.ModelProto) -> None:
    """A targeted node change: inputs, outputs, attributes, op type, order."""
    g = model.graph
    if not len(g.node):
        return
    node = g.node[rnd.randrange(len(g.node))]
    names = _names(model)
    kind = rnd.randrange(10)
    if kind == 0 and len(node.input):
        del node.input[rnd.randrange(len(node.input))]
    elif kind == 1:
        node.input.append(rnd.choice(names + ["", "nowhere"]))
    elif kind == 2 and len(node.input):
        node.input[rnd.randrange(len(node.input))] = rnd.choice(["", "missing", node.output[0] if node.output else "y"])
    elif kind == 3:
        node.op_type = rnd.choice(_op_types() + ["Einsum", "Loop", "", "relu"])   # any op graphc imports
    elif kind == 4:
        _bad_attribute(rnd, node)
    elif kind == 5 and len(node.attribute):
        del node.attribute[rnd.randrange(len(node.attribute))]
    elif kind == 6 and len(g.node) > 1:   # out of order: a use before its definition, or a cycle
        i, j = rnd.randrange(len(g.node)), rnd.randrange(len(g.node))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[i]), b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b), g.node[j].CopyFrom(a)
    elif kind == 7:
        node.output.append(rnd.choice(names + ["extra"]))
    elif kind == 8 and len(node.output):
        node.output[rnd.randrange(len(node.output))] = rnd.choice(names + [""])
    else:
        node.domain = rnd.choice(["", "ai.onnx", "ai.onnx.ml", "com.microsoft", "x" * 40])


def _bad_attribute(rnd: random.Random, node: Any) -> None:
    names = ["axis", "axes", "perm", "kernel_shape", "strides", "pads", "dilations", "group", "to", "value",
             "keepdims", "alpha", "beta", "transA", "transB", "epsilon", "mode", "auto_pad", "split", "num_outputs",
             "start", "end", "ceil_mode", "count_include_pad", "allowzero", "select_last_index", "fmod", "min",
             "max", "training_mode", "momentum", "noop_with_empty_axes", "storage_order", "shape", "value_ints"]
    present = [a.name for a in node.attribute]
    name = rnd.choice(present + names if present else names)
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    big = rnd.choice(_INTERESTING_INTS)
    values = [0, big, [], [big], [rnd.choice(_INTERESTING_INTS) for _ in range(rnd.randint(1, 6))],
              rnd.choice(_INTERESTING_FLOATS), [1.5, float("nan")], "VALIDx", "", b"\xff\xfe", ["a", "b"],
              numpy_helper.from_array(np.zeros((0,), np.float32)), numpy_helper.from_array(np.arange(6.0).reshape(2, 3)),
              rnd.randint(-3, 5), [rnd.randint(-4, 4) for _ in range(rnd.randint(0, 5))]]
    value = rnd.choice(values)
    attr = helper.make_attribute(name, value) if value != [] else helper.make_attribute(
        name, [], attr_type=rnd.choice([onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS,
                                        onnx.AttributeProto.STRINGS]))
    if rnd.random() < 0.15:
        attr.type = rnd.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    node.attribute.append(attr)


def mutate_graph(rnd: random.Random, model: onnx.ModelProto) -> None:
    """Graph-level changes: inputs/outputs dropped or duplicated, dims, element types, opsets,
    initializers with wrong sizes."""
    g = model.graph
    kind = rnd.randrange(9)
    if kind == 0 and len(g.input):
        del g.input[rnd.randrange(len(g.input))]
    elif kind == 1 and len(g.output):
        del g.output[rnd.randrange(len(g.output))]
    elif kind == 2 and len(g.input):
        g.input.add().CopyFrom(g.input[rnd.randrange(len(g.input))])
    elif kind == 3:
        vis = [v for v in list(g.input) + list(g.output) if v.type.tensor_type.HasField("shape")]
        if vis:
            dims = rnd.choice(vis).type.tensor_type.shape.dim
            if len(dims):
                d = dims[rnd.randrange(len(dims))]
                if rnd.random() < 0.7:
                    d.dim_value = rnd.choice([0, -1, -7, 1 << 20, (1 << 62), 3])
                else:
                    d.dim_param = rnd.choice(["n", "", "batch"])
    elif kind == 4:
        target = rnd.choice([v.type.tensor_type for v in list(g.input) + list(g.output)] + list(g.initializer) or [g])
        field = "elem_type" if hasattr(target, "elem_type") else "data_type"
        if hasattr(target, field):
            setattr(target, field, rnd.choice([0, 2, 3, 7, 8, 9, 10, 12, 13, 14, 16, 17, 21, 23, 99, 1 << 20]))
    elif kind == 5:
        model.opset_import[0].version = rnd.choice([1, 5, 9, 10, 11, 12, 13, 17, 18, 21, 22, 28, 29, 1000, -1, 0])
        if rnd.random() < 0.2:
            model.opset_import.add(domain="", version=rnd.choice([7, 13]))
    elif kind == 6 and len(g.initializer):
        init = g.initializer[rnd.randrange(len(g.initializer))]
        choice = rnd.randrange(4)
        if choice == 0:
            init.raw_data = init.raw_data[: max(len(init.raw_data) - 4, 0)] if init.raw_data else b"\x00" * 3
        elif choice == 1:
            init.dims.append(rnd.choice([2, 0, -1, 1 << 40]))
        elif choice == 2:
            init.float_data.extend([1.0, 2.0])
        else:
            init.name = rnd.choice(_names(model))
    elif kind == 7 and len(g.node):
        g.node.add().CopyFrom(g.node[rnd.randrange(len(g.node))])   # a value defined twice
    else:
        mutate_external(rnd, model)


def mutate_external(rnd: random.Random, model: onnx.ModelProto) -> None:
    """Point an initializer at external data: outside the folder, at devices, links, FIFOs,
    with huge or negative offsets and lengths."""
    g = model.graph
    if not len(g.initializer):
        return
    init = g.initializer[rnd.randrange(len(g.initializer))]
    init.data_location = TensorProto.EXTERNAL if rnd.random() < 0.9 else rnd.choice([0, 1, 7])
    entries = {e.key: e.value for e in init.external_data} or {
        "location": WEIGHTS_FILE, "offset": "0", "length": str(len(init.raw_data) or 4 * len(init.float_data))}
    key = rnd.choice(["location", "offset", "length", "checksum", "basepath", "unknown"])
    if key == "location":
        entries[key] = rnd.choice(_TRAP_LOCATIONS)
    elif key in ("offset", "length"):
        entries[key] = rnd.choice(["0", "-1", "4", "3", str(1 << 40), str(1 << 64), "1e3", "x", "", "99999999"])
    else:
        entries[key] = rnd.choice(["", "..", "/tmp", "abc"])
    if rnd.random() < 0.1:
        entries.pop(rnd.choice(list(entries)), None)
    del init.external_data[:]
    for k, v in entries.items():
        init.external_data.add(key=k, value=v)
    if rnd.random() < 0.5:
        init.ClearField("raw_data")
        init.ClearField("float_data")


def mutate_bytes(rnd: random.Random, data: bytes) -> bytes:
    """Byte flips, truncation, insertion, duplication of the serialized model."""
    buf = bytearray(data)
    kind = rnd.randrange(4)
    if kind == 0:
        for _ in range(rnd.randint(1, 8)):
            buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
    elif kind == 1:
        del buf[rnd.randrange(len(buf)):]
    elif kind == 2:
        at = rnd.randrange(len(buf))
        buf[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
    else:
        at = rnd.randrange(len(buf))
        buf[at:at + rnd.randint(1, 8)] = bytes([rnd.choice([0, 0xFF, 0x7F, 0x80])]) * rnd.randint(1, 8)
    return bytes(buf)


_SMALL_INTS = [-3, -2, -1, 0, 1, 2, 3, 4, 5, 9, 100, 1 << 31, 1 << 40, -(1 << 40)]
_STRINGS = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "constant", "reflect", "edge", "wrap", "tanh", "none", "x"]


def mutate_values(rnd: random.Random, model: onnx.ModelProto) -> None:
    """One value changed, its type kept: an attribute of a node, or an element of an integer
    (shape, axes, indices) or float initializer. The rest of the model stays valid, so these
    reach the import rules' range checks, the builders and the backends."""
    g = model.graph
    with_attrs = [n for n in g.node if len(n.attribute)]
    if with_attrs and rnd.random() < 0.6:
        a = rnd.choice(list(rnd.choice(with_attrs).attribute))
        if a.type == onnx.AttributeProto.INT:
            a.i = rnd.choice(_SMALL_INTS)
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = rnd.choice(_INTERESTING_FLOATS)
        elif a.type == onnx.AttributeProto.STRING:
            a.s = rnd.choice(_STRINGS).encode()
        elif a.type == onnx.AttributeProto.INTS:
            values = list(a.ints)
            if values and rnd.random() < 0.7:
                values[rnd.randrange(len(values))] = rnd.choice(_SMALL_INTS)
            elif values and rnd.random() < 0.5:
                values.pop()
            else:
                values.append(rnd.choice(_SMALL_INTS))
            del a.ints[:]
            a.ints.extend(values)
        return
    inits = [i for i in g.initializer if i.data_type in (TensorProto.INT64, TensorProto.FLOAT)
             and i.data_location != TensorProto.EXTERNAL]
    if not inits:
        return
    init = rnd.choice(inits)
    arr = numpy_helper.to_array(init).copy().reshape(-1)
    if init.data_type == TensorProto.INT64:
        if arr.size and rnd.random() < 0.7:
            arr[rnd.randrange(arr.size)] = rnd.choice(_SMALL_INTS)
        elif arr.size and rnd.random() < 0.5:
            arr = arr[:-1]
        else:
            arr = np.append(arr, rnd.choice(_SMALL_INTS))
        shape = arr.shape if len(init.dims) <= 1 else (arr.size,) if rnd.random() < 0.5 else None
    else:
        if arr.size:
            arr[rnd.randrange(arr.size)] = rnd.choice(_INTERESTING_FLOATS)
        shape = None
    new = numpy_helper.from_array(arr.reshape(shape if shape is not None else
                                              tuple(init.dims) if arr.size == np.prod(init.dims) else arr.shape),
                                  init.name)
    init.CopyFrom(new)


_MODEL_MUTATIONS = [mutate_values, mutate_values, mutate_values, mutate_field, mutate_field, mutate_node, mutate_node, mutate_node, mutate_graph, mutate_graph,
                    mutate_external]


def make_case(seed: int, index: int) -> tuple[str, bytes]:
    """Case `index` of `seed`: a seed model, 1 to 3 mutations, maybe a byte-level one."""
    rnd = random.Random(seed * 1_000_003 + index)
    models = seed_models()
    name = rnd.choice(sorted(models))
    model = onnx.ModelProto()
    model.ParseFromString(models[name])
    applied = []
    if rnd.random() < 0.3:   # one value changed, nothing else: these mostly import and run
        mutate_values(rnd, model)
        return f"{seed}-{index}-{name}-values", model.SerializeToString()
    for _ in range(rnd.choice([1, 1, 2, 3])):
        fn = rnd.choice(_MODEL_MUTATIONS)
        try:
            fn(rnd, model)
        except (ValueError, TypeError, IndexError):   # protobuf refused the change: try another
            continue
        applied.append(fn.__name__.split("_")[1])
    data = model.SerializeToString()
    if rnd.random() < 0.2:
        data = mutate_bytes(rnd, data)
        applied.append("bytes")
    return f"{seed}-{index}-{name}-{'+'.join(applied) or 'none'}", data


def cases(seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    """`count` mutated ONNX models, the same for the same seed: (case id, serialized bytes)."""
    for i in range(count):
        yield make_case(seed, i)


# ----------------------------------------------------------------------------- running a case
def _prepare_folder(folder: Path) -> None:
    """The model's folder: its external weights and the traps a hostile model may point at."""
    (folder / WEIGHTS_FILE).write_bytes(external_weights())
    (folder.parent / "secret.bin").write_bytes(b"SECRET" * 64)
    (folder / "sub").mkdir()
    os.symlink(folder.parent / "secret.bin", folder / "link_out.bin")
    os.symlink("/dev/zero", folder / "zero.bin")
    os.mkfifo(folder / "fifo.bin")


def _feeds(inputs: list, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for t in inputs:
        shape = [2 if d is None else d for d in (t.shape if t.shape is not None else [2, 3])]
        if int(np.prod(shape, dtype=object)) > 100_000:
            shape = [2] * len(shape)   # too big to feed: the session must say the shape is wrong
        value = rng.normal(size=shape) * 3
        feeds[t] = value.astype(t.dtype.np) if t.dtype.name != "bool" else value > 0
    return feeds


def run_case(data: bytes) -> str:
    """Import `data` with graphc and run it on the reference and LLVM backends: "ok" or the
    name of the GraphcError subclass raised. Every other exception propagates."""
    import graphc as gc
    from graphc.io.onnx.importer import import_model

    try:
        with tempfile.TemporaryDirectory(prefix="graphc-onnx-case-") as tmp:
            folder = Path(tmp) / "model"
            folder.mkdir()
            _prepare_folder(folder)
            path = folder / "model.onnx"
            path.write_bytes(data)
            source: Any = path if zlib.crc32(data) % 3 else data
            imported = import_model(source, max_tensor_bytes=64 << 20)
        feeds = _feeds(imported.inputs, zlib.crc32(data))
        for backend in BACKENDS:
            with gc.Session(imported.graph, backend=backend) as sess:
                sess.run(imported.outputs, feeds)
    except gc.GraphcError as err:
        label = type(err).__name__
        if label == "GraphcError":
            raise AssertionError(f"a plain GraphcError, not a subclass: {err}") from err
        return label
    return "ok"

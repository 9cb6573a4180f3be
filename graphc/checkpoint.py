"""gc.train.Saver: TF1 checkpoints of variable values, data only.

Saver.save(sess, "dir/model", global_step=3) writes, as TF1 names them,
  dir/model-3.index                  JSON: format, version, and per variable its name, dtype,
                                     shape and the byte range of its value in the data file
  dir/model-3.data-00000-of-00001    the values, C order, little-endian, one after another
  dir/checkpoint                     TF1's text index of the kept checkpoints (newest first line)
and deletes the oldest of its checkpoints beyond max_to_keep. Restoring reads only these data
files: nothing in them is executed or unpickled; every field is checked (a regular file under a
size bound, known dtypes, shapes that fit, byte ranges inside the data file), and the variables
are checked against the checkpoint before any is set: a missing name, another dtype or shape is
listed, all of them at once, and nothing is restored.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import FailedPreconditionError, GraphcError, GraphFileError
from .io.files import read_regular
from .ir.graph import NotFoundError

FORMAT = "graphc-checkpoint"
VERSION = 1
DATA_SUFFIX = ".data-00000-of-00001"
INDEX_SUFFIX = ".index"
MAX_INDEX_BYTES = 64 << 20
MAX_DATA_BYTES = 1 << 40
MAX_CHECKPOINT_FILE = 1 << 20
DTYPES = ("bool", "int32", "int64", "float32", "float64")


class Saver:
    """Saves and restores variables (all global variables, or var_list: variables, or a dict
    {name in the checkpoint: variable})."""

    def __init__(self, var_list: Any = None, max_to_keep: int | None = 5, name: str | None = None) -> None:
        self._var_list = var_list
        self.max_to_keep = max_to_keep
        self._kept: list[str] = []

    def _variables(self, graph: Any) -> dict[str, Any]:
        """{checkpoint name: variable}."""
        from .api.variables import global_variables

        if isinstance(self._var_list, dict):
            return dict(self._var_list)
        if self._var_list is None:
            with graph.as_default():
                chosen: Sequence[Any] = global_variables()
        else:
            chosen = list(self._var_list)
        if not chosen:
            raise GraphcError("Saver: there are no variables to save")
        return {v.op.name: v for v in chosen}

    def save(self, sess: Any, save_path: str, global_step: Any = None, write_meta_graph: bool = True) -> str:
        """Write the variables' values; returns the checkpoint's path prefix."""
        if global_step is not None:
            step = global_step if isinstance(global_step, (int, np.integer)) else sess.run(global_step)
            save_path = f"{save_path}-{int(step)}"
        entries, chunks, offset = [], [], 0
        for name, var in self._variables(sess.graph).items():
            value = sess.variable_value(var.op.name)
            if value is None:
                raise FailedPreconditionError(f"Saver: variable {var.op.name!r} is uninitialized; run its "
                                              f"initializer before saving")
            data = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
            entries.append({"name": name, "dtype": value.dtype.name, "shape": list(value.shape), "offset": offset,
                            "nbytes": len(data)})
            chunks.append(data)
            offset += len(data)
        folder = os.path.dirname(save_path) or "."
        os.makedirs(folder, exist_ok=True)
        _write(save_path + DATA_SUFFIX, b"".join(chunks))
        _write(save_path + INDEX_SUFFIX, json.dumps({"format": FORMAT, "version": VERSION, "variables": entries},
                                                    indent=1).encode())
        if save_path in self._kept:
            self._kept.remove(save_path)
        self._kept.append(save_path)
        while self.max_to_keep and len(self._kept) > self.max_to_keep:
            old = self._kept.pop(0)
            for suffix in (INDEX_SUFFIX, DATA_SUFFIX):
                if os.path.exists(old + suffix):
                    os.remove(old + suffix)
        _write_state(folder, self._kept)
        return save_path

    def restore(self, sess: Any, save_path: str) -> None:
        """Set the variables from the checkpoint at `save_path` (all checked first)."""
        if save_path is None:
            raise NotFoundError("Saver.restore: no checkpoint path (gc.train.latest_checkpoint found none?)")
        index = read_index(save_path)
        wanted = self._variables(sess.graph)
        problems = []
        for name, var in wanted.items():
            entry = index.get(name)
            if entry is None:
                problems.append(f"{name!r} is not in the checkpoint")
                continue
            if entry["dtype"] != var.dtype.name:
                problems.append(f"{name!r} is {entry['dtype']} in the checkpoint, {var.dtype.name} in the graph")
            shape = tuple(var.shape) if var.shape is not None else None
            if shape is not None and tuple(entry["shape"]) != shape:
                problems.append(f"{name!r} has shape {tuple(entry['shape'])} in the checkpoint, {shape} in the graph")
        if problems:
            raise NotFoundError(f"Saver.restore({save_path!r}): the checkpoint does not fit the graph: "
                                + "; ".join(problems))
        values = {name: read_value(save_path, index[name]) for name in wanted}
        for name, var in wanted.items():
            sess.load_variable(var.op.name, values[name])


def _write(path: str, data: bytes) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_state(folder: str, kept: list[str]) -> None:
    names = [os.path.basename(p) for p in kept]
    lines = [f'model_checkpoint_path: "{names[-1]}"'] + [f'all_model_checkpoint_paths: "{n}"' for n in names]
    _write(os.path.join(folder, "checkpoint"), ("\n".join(lines) + "\n").encode())


def read_index(save_path: str) -> dict[str, dict[str, Any]]:
    """The checked entries of a checkpoint's index, by name."""
    where = save_path + INDEX_SUFFIX
    raw = read_regular(where, f"checkpoint index {where!r}", MAX_INDEX_BYTES)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise GraphFileError(f"{where} is not a graphc checkpoint index (JSON: {err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise GraphFileError(f"{where} is not a graphc checkpoint index of version {VERSION}")
    entries = doc.get("variables")
    if not isinstance(entries, list):
        raise GraphFileError(f"{where}: field 'variables' must be a list")
    out: dict[str, dict[str, Any]] = {}
    for k, e in enumerate(entries):
        at = f"{where}: variable {k}"
        if not isinstance(e, dict) or set(e) != {"name", "dtype", "shape", "offset", "nbytes"}:
            raise GraphFileError(f"{at} must have exactly name, dtype, shape, offset and nbytes")
        if not isinstance(e["name"], str) or not e["name"] or e["name"] in out:
            raise GraphFileError(f"{at}: name must be a new, non-empty string")
        if e["dtype"] not in DTYPES:
            raise GraphFileError(f"{at}: dtype {str(e['dtype'])[:40]!r} is not one of {', '.join(DTYPES)}")
        shape = e["shape"]
        if not isinstance(shape, list) or len(shape) > 32 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape):
            raise GraphFileError(f"{at}: shape must be a list of at most 32 sizes")
        for field in ("offset", "nbytes"):
            if not isinstance(e[field], int) or isinstance(e[field], bool) or not 0 <= e[field] <= MAX_DATA_BYTES:
                raise GraphFileError(f"{at}: {field} must be an integer from 0 to {MAX_DATA_BYTES}")
        count = 1
        for d in shape:
            count *= d
        if count * np.dtype(e["dtype"]).itemsize != e["nbytes"]:
            raise GraphFileError(f"{at}: {e['nbytes']} bytes do not hold {e['dtype']}{shape}")
        out[e["name"]] = e
    return out


def read_value(save_path: str, entry: dict[str, Any]) -> np.ndarray:
    where = save_path + DATA_SUFFIX
    data = read_regular(where, f"checkpoint data {where!r}", entry["nbytes"], offset=entry["offset"],
                        length=entry["nbytes"])
    if len(data) != entry["nbytes"]:
        raise GraphFileError(f"{where}: variable {entry['name']!r} needs bytes {entry['offset']} to "
                             f"{entry['offset'] + entry['nbytes']}, the file ends first")
    value = np.frombuffer(data, dtype=np.dtype(entry["dtype"]).newbyteorder("<")).reshape(entry["shape"])
    return value.astype(np.dtype(entry["dtype"]), copy=True)


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """The newest checkpoint the folder's `checkpoint` file names, if its index exists."""
    path = os.path.join(checkpoint_dir, "checkpoint")
    if not os.path.exists(path):
        return None
    text = read_regular(path, f"checkpoint state {path!r}", MAX_CHECKPOINT_FILE).decode("utf-8", "replace")
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model_checkpoint_path":
            name = value.strip().strip('"')
            if not name or "/" in name or "\\" in name or name in (".", ".."):
                raise GraphFileError(f"{path}: model_checkpoint_path {name[:80]!r} is not a file name in the folder")
            prefix = os.path.join(checkpoint_dir, name)
            return prefix if os.path.exists(prefix + INDEX_SUFFIX) else None
    return None


__all__ = ["Saver", "latest_checkpoint"]

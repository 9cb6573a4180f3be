"""Ahead-of-time compilation: a graph becomes a C header, an object file and a shared library
that need no Python, llvmlite or NumPy at run time (like TensorFlow's tfcompile).

    lib = gc.aot.compile([logits], [x], "out", "mlp")      # x: a placeholder of known shape
    lib.load()(x_value)                                     # or from C: mlp_run(inputs, outputs)

The program goes through the one compile path (graphc.backends.compile) with the AOT target
(graphc.backends.aot): the passes, lowering and LLVM module of the JIT, plus two C entry points
(graphc.codegen.llvm_aot); `pipeline` means what it means for a Session. Variables are frozen to
their values (from `session`, else their initial values); random ops draw the numbers of a
session's first run, on every call. Matrix products use graphc's generated loop kernels rather
than a BLAS, so the library depends on libc alone (and libm where an op needs it). The code is
serial: a library call never starts threads. The shared library is linked with the system C
compiler (cc, gcc or clang); without one, the header and object file are still written.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .api.convert import convert_to_tensor, graph_of
from .backends import compile as compile_program
from .backends.aot import AotTarget
from .codegen.llvm_aot import AOT_NO_MEMORY, workspace_bytes
from .compiled import initial_values
from .errors import CompileError, GraphcError
from .ir.shapes import format_shape
from .ir.tensor import Tensor
from .program import build_program

C_TYPES = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t", "bool": "uint8_t"}


@dataclass
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class AotLibrary:
    """What gc.aot.compile wrote; load() calls the library from Python."""

    name: str
    header: Path
    object: Path
    shared: Path | None
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    workspace_bytes: int
    errors: list[str] = field(default_factory=list)   # message of error code i + 1
    log: list[str] = field(default_factory=list)      # what built and rewrote the program (its passes)

    def load(self) -> "LoadedLibrary":
        if self.shared is None:
            raise CompileError(f"no shared library was linked for {self.name} (no C compiler was found)")
        return LoadedLibrary(self)


class LoadedLibrary:
    """lib(*arrays) -> list of output arrays, through ctypes (checks types and shapes first)."""

    def __init__(self, library: AotLibrary) -> None:
        self.library = library
        self._dll = ctypes.CDLL(str(library.shared))
        self._run = getattr(self._dll, f"{library.name}_run")
        self._run.restype = ctypes.c_int
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

    def __call__(self, *arrays: Any) -> list[np.ndarray]:
        specs = self.library.inputs
        if len(arrays) != len(specs):
            raise GraphcError(f"{self.library.name} takes {len(specs)} inputs, got {len(arrays)}")
        fed = []
        for a, spec in zip(arrays, specs):
            a = np.ascontiguousarray(a, dtype=spec.dtype)
            if a.shape != spec.shape:
                raise GraphcError(f"{self.library.name}: input '{spec.name}' must have shape "
                                  f"{format_shape(spec.shape)}, got {format_shape(a.shape)}")
            fed.append(a)
        outs = [np.empty(s.shape, s.dtype) for s in self.library.outputs]
        ins = (ctypes.c_void_p * max(1, len(fed)))(*[a.ctypes.data for a in fed])
        res = (ctypes.c_void_p * max(1, len(outs)))(*[o.ctypes.data for o in outs])
        code = self._run(ins, res)
        if code:
            detail = "out of memory" if code == AOT_NO_MEMORY else self.library.errors[code - 1]
            raise GraphcError(f"{self.library.name}_run failed with code {code}: {detail}")
        return outs


def compile(outputs: Any, inputs: Sequence[Any] | dict, output_dir: str | os.PathLike, name: str,
            session: Any = None, target: str | None = None, cpu: str | None = None,
            pipeline: Any = "default") -> AotLibrary:
    """Compile `outputs` as a function of `inputs` into `output_dir`/{name}.h, {name}.o and
    lib{name}.so. `inputs`: placeholders of fully known shape, or {placeholder: shape}.
    `target` (an LLVM triple) and `cpu` cross-compile; the default is this machine's CPU.
    `pipeline`: the rewrite passes, as for gc.Session (the target adds decompose and fuse)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
        raise CompileError(f"the library name must be a C identifier, got {name!r}")
    outs = [convert_to_tensor(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    pairs = list(inputs.items()) if isinstance(inputs, dict) else [(t, None) for t in inputs]
    graph = graph_of([t for t, _ in pairs] + outs)
    feeds = []
    for t, shape in pairs:
        if not isinstance(t, Tensor) or t.node.type != "Placeholder":
            raise CompileError(f"aot inputs must be placeholders, got {t!r}")
        shape = tuple(shape) if shape is not None else t.shape
        if shape is None or any(d is None for d in shape):
            raise CompileError(f"input '{t.name}' needs a fully known shape, got {format_shape(shape)}; "
                               "pass {placeholder: shape}", op_type="Placeholder", node_name=t.node.name,
                               source=t.node.source)
        feeds.append((t, t.dtype, tuple(int(d) for d in shape)))
    program = build_program(graph, outs, feeds)
    position = {id(t): j for j, (t, _, _) in enumerate(feeds)}
    sources: list[int | np.ndarray] = []
    values = _variable_values(graph, [i.key for i in program.inputs if i.kind == "variable"], session)
    for item in program.inputs:   # the passes keep every input, in order
        if item.kind == "feed":
            sources.append(position[id(item.key)])
        elif item.kind == "variable":
            sources.append(values[item.key])
        else:
            sources.append(np.int64(0))   # a random op's run counter: the first run's draws
    built = compile_program(program, AotTarget(name, sources, target, cpu), pipeline)
    program, kp, code = built.program, built.kp, built.code

    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    in_specs = [TensorSpec(t.node.name, dtype.name, shape) for t, dtype, shape in feeds]
    out_specs = [TensorSpec(t.node.name if len(t.node.outputs) == 1 else t.name.replace(":", "_"), t.dtype.name,
                            tuple(p.shape)) for t, p in zip(outs, program.outputs)]
    errors = [_error_text(check) for check in kp.errors]
    library = AotLibrary(name, folder / f"{name}.h", folder / f"{name}.o", None, in_specs, out_specs,
                         workspace_bytes(kp), errors, list(program.log))
    library.object.write_bytes(code)
    library.header.write_text(_header(library))
    library.shared = _link(library, folder) if target is None else None
    return library


def compile_onnx(model: Any, output_dir: str | os.PathLike, name: str, input_shapes: dict[str, Any] | None = None,
                 outputs: Sequence[str] | None = None, target: str | None = None, cpu: str | None = None,
                 input_dtypes: dict[str, str] | None = None) -> AotLibrary:
    """Compile an ONNX model (a path, bytes or ModelProto) into the same C library as
    compile(): its inputs in the model's order, sized by `input_shapes` ({name: shape}) where
    the model leaves a dimension open; its outputs (all, or those named in `outputs`).
    `input_dtypes` ({name: dtype name}) are checked against the model's."""
    from .io.onnx.importer import import_model

    imported = import_model(model, input_shapes=dict(input_shapes or {}))
    by_name = dict(zip(imported.output_names, imported.outputs))
    unknown = [n for n in (outputs or []) if n not in by_name]
    if unknown:
        raise CompileError(f"{unknown[0]!r} is not an output of the model (its outputs: {', '.join(by_name)})")
    for input_name, t in zip(imported.input_names, imported.inputs):
        wanted = (input_dtypes or {}).get(input_name)
        if wanted is not None and wanted != t.dtype.name:
            raise CompileError(f"input {input_name!r} is {t.dtype.name} in the model, not {wanted}")
        if t.shape is None or None in t.shape:
            raise CompileError(f"input {input_name!r} has shape {format_shape(t.shape)} in the model; give its size "
                               f"(input_shapes, or --input {input_name}:SHAPE)")
    chosen = [by_name[n] for n in outputs] if outputs else list(imported.outputs)
    return compile(chosen, list(imported.inputs), output_dir, name, target=target, cpu=cpu)


def _variable_values(graph: Any, names: list[str], session: Any) -> dict[str, np.ndarray]:
    """Each variable's value in `session`, else its initial value."""
    values = {n: session.variable_value(n) for n in names} if session is not None else {}
    values = {n: v for n, v in values.items() if v is not None}
    missing = [n for n in names if n not in values]
    if missing:
        values.update(initial_values(graph, missing))
    return values


def _error_text(check: Any) -> str:
    node = check.node
    text = check.message if isinstance(check.message, str) else "a runtime check failed"
    return f"{node.type} '{node.name}': " + text.replace("{value}", "?").replace("{index}", "?")


def _header(lib: AotLibrary) -> str:
    up = lib.name.upper()
    lines = [f"/* {lib.name}.h: generated by graphc (ahead-of-time compilation). Do not edit.",
             " *",
             f" * int {lib.name}_run(const void *const *inputs, void *const *outputs);",
             " *   inputs and outputs: C-contiguous buffers, in this order:"]
    for role, specs in (("input", lib.inputs), ("output", lib.outputs)):
        for j, s in enumerate(specs):
            lines.append(f" *   {role} {j}: {s.name} {s.dtype}{format_shape(s.shape)} ({s.nbytes} bytes)")
    lines += [" *   Returns 0 on success; -1 if the workspace could not be allocated; k > 0 when runtime",
              " *   check k failed (listed below). Reentrant and thread-safe: each call allocates its own",
              f" *   workspace ({lib.workspace_bytes} bytes); {lib.name}_run_with_workspace takes one instead."]
    for k, text in enumerate(lib.errors, 1):
        lines.append(f" *   error {k}: {text}")
    lines += [" */", f"#ifndef {up}_H", f"#define {up}_H", "", "#include <stdint.h>", "",
              "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
              f"#define {up}_NUM_INPUTS {len(lib.inputs)}", f"#define {up}_NUM_OUTPUTS {len(lib.outputs)}",
              f"#define {up}_WORKSPACE_BYTES {lib.workspace_bytes}", ""]
    for role, specs in (("INPUT", lib.inputs), ("OUTPUT", lib.outputs)):
        for j, s in enumerate(specs):
            tag = f"{up}_{role}{j}"
            lines += [f"/* {role.lower()} {j}: {s.name} */",
                      f"#define {tag}_DTYPE \"{s.dtype}\"", f"typedef {C_TYPES[s.dtype]} {tag}_T;",
                      f"#define {tag}_RANK {len(s.shape)}",
                      f"#define {tag}_SHAPE {{{', '.join(str(d) for d in s.shape) or '1'}}}"
                      + (" /* a scalar: rank 0, one element */" if not s.shape else ""),
                      f"#define {tag}_SIZE {int(np.prod(s.shape, dtype=np.int64))}",
                      f"#define {tag}_BYTES {s.nbytes}", ""]
    lines += [f"int {lib.name}_run(const void *const *inputs, void *const *outputs);",
              f"int {lib.name}_run_with_workspace(const void *const *inputs, void *const *outputs, void *workspace);",
              "", "#ifdef __cplusplus", "}", "#endif", f"#endif /* {up}_H */", ""]
    return "\n".join(lines)


def c_compiler() -> str | None:
    """The system C compiler: $CC, else cc, gcc or clang on the PATH."""
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def _link(lib: AotLibrary, folder: Path) -> Path | None:
    cc = c_compiler()
    if cc is None:
        return None
    target = folder / f"lib{lib.name}.so"
    done = subprocess.run([cc, "-shared", "-o", str(target), str(lib.object), "-lm"], capture_output=True, text=True)
    if done.returncode != 0:
        raise CompileError(f"linking lib{lib.name}.so with {cc} failed:\n{done.stderr.strip()}")
    return target

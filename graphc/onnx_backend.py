"""An `onnx.backend.base.Backend` over graphc, so ONNX's own test cases can run graphc.

`prepare(model)` imports the model once and returns a rep whose `run(inputs)` feeds a graphc
Session on the chosen graphc backend ("numpy", the reference, by default; the name is a
parameter so the conformance suite can switch to a compiled backend as one lands). Inputs that
ONNX passes as data but graphc needs while building (a Reshape's shape, a Slice's starts, ...)
are bound as constants: the model is imported again for each distinct set of their values, as
a shape-specializing compiler would. Narrow ONNX types are computed in graphc's wider types and
the outputs are cast back to the types the model declares.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from .errors import GraphFileError
from .io.onnx.common import NUMPY_OF_ONNX, graphc_type
from .io.onnx.files import short
from .io.onnx.import_rules import STATIC_INPUTS
from .io.onnx.importer import Imported, import_model

_SHAPE_ONLY = {"Shape", "Size"}  # their outputs depend on their input's shape, not its values


def static_graph_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs whose values some node needs while building (directly or through other
    nodes): these are bound as constants per run."""
    g = model.graph
    producer = {out: node for node in g.node for out in node.output if out}
    inputs = {vi.name for vi in g.input} - {init.name for init in g.initializer}
    needed: set[str] = set()
    stack = [node.input[i] for node in g.node for i in STATIC_INPUTS.get(node.op_type, ())
             if i < len(node.input) and node.input[i]]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producer.get(name)
        if node is not None and node.op_type not in _SHAPE_ONLY:
            stack.extend(i for i in node.input if i)
    return needed & inputs


class GraphcRep(BackendRep):
    """A prepared model: call run(inputs) with a list (graph input order) or a dict by name."""

    def __init__(self, model: onnx.ModelProto, backend: str) -> None:
        self.model = model
        self.backend = backend
        init = {i.name for i in model.graph.initializer}
        self.input_infos = [vi for vi in model.graph.input if vi.name not in init]
        self.static_names = static_graph_inputs(model)
        self._cache: dict[Any, tuple[Imported, Any]] = {}
        if not self.static_names:
            self._prepared(())  # import now, so unsupported models fail in prepare

    def _prepared(self, key: Any, static: dict[str, np.ndarray] | None = None) -> tuple[Imported, Any]:
        if key not in self._cache:
            from .session import Session

            imported = import_model(self.model, static_inputs=static)
            self._cache[key] = (imported, Session(imported.graph, backend=self.backend))
        return self._cache[key]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            values = dict(inputs)
        else:
            inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            values = {vi.name: v for vi, v in zip(self.input_infos, inputs)}
        arrays = {}
        for vi in self.input_infos:
            if vi.name not in values:
                continue
            dtype = graphc_type(vi.type.tensor_type.elem_type, f"ONNX input '{vi.name}'")
            value = values[vi.name]
            if isinstance(value, onnx.TensorProto):
                value = onnx.numpy_helper.to_array(value)
            arrays[vi.name] = np.asarray(value).astype(dtype.np)
        static = {n: arrays[n] for n in sorted(self.static_names) if n in arrays}
        key = tuple((n, a.dtype.str, a.shape, a.tobytes()) for n, a in static.items())
        imported, session = self._prepared(key, static)
        feeds = {t: arrays[name] for t, name in zip(imported.inputs, imported.input_names)}
        results = session.run(imported.outputs, feeds)
        out = []
        for value, elem in zip(results, imported.output_types):
            arr = np.asarray(value)
            np_type = NUMPY_OF_ONNX.get(elem)
            out.append(arr.astype(np_type) if np_type is not None and arr.dtype != np_type else arr)
        return namedtupledict("Outputs", imported.output_names)(*imported.present(out))   # ZipMap: dicts


class GraphcBackend(Backend):
    """ONNX backend over graphc; `backend_name` picks graphc's execution backend."""

    backend_name = "numpy"

    @classmethod
    def for_backend(cls, name: str) -> type[GraphcBackend]:
        """A GraphcBackend class running on graphc backend `name` (e.g. "llvm" once it lands)."""
        return type(f"GraphcBackend_{name}", (cls,), {"backend_name": name})

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> GraphcRep:
        try:
            super().prepare(model, device, **kwargs)  # onnx.checker
        except onnx.checker.ValidationError as err:  # the boundary where onnx's own checks raise
            raise GraphFileError(f"the ONNX model fails onnx.checker: {short(err, 300)}") from None
        return GraphcRep(model, cls.backend_name)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[Any, tuple[int, ...]]] | None = None, **kwargs: Any) -> tuple[Any, ...]:
        """Run one node on `inputs` (arrays, in the node's input order)."""
        from onnx import helper

        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        arrays = [np.asarray(v) for v in inputs]
        names = [n for n in node.input if n]
        graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                        for n, a in zip(names, arrays)]
        outs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output if n]
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(helper.make_graph([node], "node", graph_inputs, outs),
                                  opset_imports=[helper.make_opsetid("", opset)])
        rep = GraphcRep(model, cls.backend_name)
        return rep.run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU


prepare = GraphcBackend.prepare
run_model = GraphcBackend.run_model
run_node = GraphcBackend.run_node
supports_device = GraphcBackend.supports_device

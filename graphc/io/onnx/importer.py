"""Importing an ONNX model as an ordinary graphc graph.

Each ONNX node is rebuilt from graphc's public builders by the rules in import_math,
import_array, import_nn, import_vision (LRN, InstanceNormalization, ConvTranspose),
import_resize (Resize, Upsample), import_ml (the ai.onnx.ml operators scikit-learn exports use),
import_control (Loop, Scan, If and their sub-graphs) and import_rnn (LSTM, GRU, RNN as loops),
so the result
is a graph like any other: it runs, differentiates (gc.gradients) and saves. Initializers become
constants (Const nodes), not variables: an imported model is a function of its inputs; wrap a
constant in gc.Variable to train it.

graphc compiles for static shapes, so ONNX inputs that carry shapes or axes (Reshape's shape,
Slice's starts, Pad's pads, ...) must be known while building: constants, initializers or
values computed from shapes. A model whose shape inputs are graph inputs can be imported with
`static_inputs={name: value}` (the backend does so per run).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import GraphcError, GraphFileError
from ...ir.graph import Graph
from ...ir.tensor import Tensor
from . import import_array, import_control, import_math, import_ml, import_nn, import_resize, import_rnn, import_vision  # noqa: F401  (their @rule functions fill RULES)
from .checks import OTHER_DOMAINS, check_arity, read_attrs
from .common import DEFAULT_OPSET, graphc_type
from .files import load_model, short
from .import_rules import RULES, ImportContext, sanitize
from .import_sequence import TensorList
from .tensors import DEFAULT_MAX_TENSOR_BYTES, checked_dims, tensor_array


@dataclass
class Imported:
    """The result of an import: the graph, its input placeholders and output tensors, and the
    ONNX element types of the outputs (graphc may hold them in a wider type)."""

    graph: Graph
    inputs: list[Tensor]
    outputs: list[Tensor]
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    input_types: list[int] = field(default_factory=list)
    output_types: list[int] = field(default_factory=list)
    # outputs that ONNX gives as a sequence of maps (ZipMap): output index -> the class labels;
    # graphc computes the probability matrix, present() turns it into onnxruntime's list of dicts
    output_maps: dict[int, list[Any]] = field(default_factory=dict)

    def present(self, results: list[Any]) -> list[Any]:
        """Run results as onnxruntime gives them: a ZipMap output as a list of {label: probability}."""
        out = list(results)
        for k, labels in self.output_maps.items():
            out[k] = [dict(zip(labels, (float(p) for p in row))) for row in np.asarray(results[k])]
        return out


def import_model(source: Any, static_inputs: dict[str, np.ndarray] | None = None,
                 max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
                 input_shapes: dict[str, Any] | None = None) -> Imported:
    """Build a graphc graph from an ONNX model (path, bytes or ModelProto).

    `input_shapes` ({input name: shape}) fixes the model's dynamic axes (torch's `dynamic_axes`,
    a symbolic "batch"): each given shape must have the input's rank and agree with the sizes
    the model fixes; None in it leaves a dimension unknown.

    Anything wrong with the file is a GraphFileError naming the node (index, name, op type) and
    the field; a tensor bigger than `max_tensor_bytes` is a ResourceExhaustedError. External
    data is read only from regular files inside the model's folder (so only when loading from a
    path); nothing in the file is executed."""
    model, folder, where = load_model(source)
    if not model.HasField("graph"):
        raise GraphFileError(f"{where} has no graph")
    graph = Graph()
    ctx = ImportContext(graph, _opset(model, where), folder, max_tensor_bytes)
    ml = sorted({o.version for o in model.opset_import if o.domain == "ai.onnx.ml"})
    ctx.ml_opset = ml[-1] if ml else 1
    static_inputs = static_inputs or {}
    g = model.graph
    input_shapes = _checked_input_shapes(g, input_shapes or {}, where)
    result = Imported(graph, [], [])
    with graph.as_default():
        for k, init in enumerate(g.initializer):
            what = f"initializer {k} {short(init.name)!r}"
            _define(ctx, init.name, what)
            ctx.env[init.name] = ctx.constant(tensor_array(init, what, folder, max_tensor_bytes))
        initializers = set(ctx.env)
        for k, vi in enumerate(g.input):
            what = f"graph input {k} {short(vi.name)!r}"
            if vi.name in initializers:
                initializers.discard(vi.name)
                continue  # an initializer listed as an input (older models)
            _define(ctx, vi.name, what)
            if not vi.type.HasField("tensor_type"):
                raise GraphFileError(f"{what} is not a tensor; graphc imports tensors only")
            elem = vi.type.tensor_type.elem_type
            dtype = graphc_type(elem, what)
            if vi.name in static_inputs:
                ctx.env[vi.name] = ctx.constant(np.asarray(static_inputs[vi.name]).astype(dtype.np))
                continue
            from ...api.variables import placeholder

            dims = _dims(vi, what, dtype.np.itemsize, max_tensor_bytes)
            if vi.name in input_shapes:
                dims = _fixed_dims(dims, input_shapes[vi.name], what)
                checked_dims([d or 0 for d in dims], f"{what}: input_shapes", dtype.np.itemsize, max_tensor_bytes)
            p = placeholder(dtype, dims, name=sanitize(vi.name, "input"))
            ctx.env[vi.name] = p
            result.inputs.append(p)
            result.input_names.append(vi.name)
            result.input_types.append(elem)
        for index, node in enumerate(g.node):
            _convert(ctx, index, node)
        for k, vo in enumerate(g.output):
            if vo.name not in ctx.env:
                raise GraphFileError(f"graph output {k} {short(vo.name)!r} is not computed by any node")
            if isinstance(ctx.env[vo.name], TensorList):
                raise GraphFileError(f"graph output {k} {short(vo.name)!r} is an ONNX sequence; graphc's results "
                                     f"are tensors", hint="end the model with ConcatFromSequence, or return the "
                                     "tensors as separate outputs")
            if vo.name in ctx.zipmaps:
                result.output_maps[k] = ctx.zipmaps[vo.name]
            result.outputs.append(ctx.env[vo.name])
            result.output_names.append(vo.name)
            result.output_types.append(vo.type.tensor_type.elem_type)
    return result


def _opset(model: Any, where: str) -> int:
    """The default domain's opset: one version, one ONNX defines (DEFAULT_OPSET if none given)."""
    import onnx

    versions = sorted({o.version for o in model.opset_import if o.domain in ("", "ai.onnx")})
    if len(versions) > 1:
        raise GraphFileError(f"{where}: field 'opset_import' gives the default domain {len(versions)} versions "
                             f"({short(versions)})")
    opset = versions[0] if versions else DEFAULT_OPSET
    latest = onnx.defs.onnx_opset_version()
    if not 1 <= opset <= latest:
        raise GraphFileError(f"{where}: field 'opset_import' asks for opset {opset} of the default domain; "
                             f"ONNX defines 1 to {latest}")
    return opset


def _define(ctx: ImportContext, name: str, what: str) -> None:
    """`name` is a new value name (ONNX graphs are in SSA form: each value defined once)."""
    error = ctx.error if ctx.node is not None else GraphFileError   # a node's output, or a graph value
    if not name:
        raise error(f"{what} has an empty name")
    if name in ctx.env:
        raise error(f"{what} is already defined (ONNX values are defined once)")


def _checked_input_shapes(g: Any, shapes: dict[str, Any], where: str) -> dict[str, list[int | None]]:
    """input_shapes as lists of ints (or None), every name an input of the model."""
    names = [vi.name for vi in g.input if vi.name not in {init.name for init in g.initializer}]
    out: dict[str, list[int | None]] = {}
    for name, shape in shapes.items():
        if name not in names:
            raise GraphFileError(f"{where}: input_shapes names {short(name)!r}, which is not an input of the model "
                                 f"(its inputs: {short(names)})")
        try:
            dims = [None if d is None else int(d) for d in shape]
        except (TypeError, ValueError):
            raise GraphFileError(f"{where}: input_shapes[{short(name)!r}] must be a list of ints (or None), "
                                 f"got {short(shape)}") from None
        if any(d is not None and d < 0 for d in dims):
            raise GraphFileError(f"{where}: input_shapes[{short(name)!r}] has a negative size: {dims}")
        out[name] = dims
    return out


def _fixed_dims(declared: Any, given: list[int | None], what: str) -> list[int | None]:
    """The declared dims with the given sizes in place of the unknown ones (they must agree)."""
    if declared is None:
        return list(given)
    if len(declared) != len(given):
        raise GraphFileError(f"{what}: input_shapes gives rank {len(given)} ({given}), the model declares rank "
                             f"{len(declared)} ({['?' if d is None else d for d in declared]})")
    for k, (d, s) in enumerate(zip(declared, given)):
        if d is not None and s is not None and d != s:
            raise GraphFileError(f"{what}: input_shapes gives size {s} to dimension {k}, which the model fixes at {d}")
    return [s if s is not None else d for d, s in zip(declared, given)]


def _dims(vi: Any, what: str, itemsize: int, max_bytes: int) -> Any:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    checked_dims([d or 0 for d in dims], f"{what}: field 'shape'", itemsize, max_bytes)
    return dims


# ONNX ops on sequences whose names do not say so
SEQUENCE_OPS = frozenset({"SplitToSequence", "ConcatFromSequence"})
# the sequence ops graphc imports (graphc/io/onnx/import_sequence.py): they alone take sequences
SEQUENCE_RULES = frozenset({"SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceAt", "SequenceErase",
                            "SequenceLength", "SplitToSequence", "ConcatFromSequence"})


def _convert(ctx: ImportContext, index: int, node: Any) -> None:
    ctx.node, ctx.index = node, index
    if node.domain not in ("", "ai.onnx", *OTHER_DOMAINS):
        raise ctx.error(f"operator domain {short(node.domain)!r} is not supported (only the default ONNX domain, "
                        f"ai.onnx.ml and ai.onnx.preview.training's Gradient)")
    key = f"{node.domain}.{node.op_type}" if node.domain in OTHER_DOMAINS else node.op_type
    fn = RULES.get(key)
    if fn is None:
        if node.op_type.startswith(("Sequence", "Optional")) or node.op_type in SEQUENCE_OPS:   # the rest of them
            kind = "optionals" if node.op_type.startswith("Optional") else "sequences"
            raise ctx.error(f"graphc cannot import ONNX op {short(key)}: it works on ONNX {kind}, which have no "
                            f"graphc form (graphc values are tensors)")
        raise ctx.error(f"graphc cannot import ONNX op {short(key)}")
    inputs = []
    for k, name in enumerate(node.input):
        if not name:
            inputs.append(None)
        elif name not in ctx.env:
            raise ctx.error(f"input {k} {short(name)!r} is not defined before this node (a missing value, or "
                            f"nodes out of order)")
        else:
            inputs.append(ctx.env[name])
    if node.op_type not in SEQUENCE_RULES:
        for k, value in enumerate(inputs):
            if isinstance(value, TensorList):
                raise ctx.error(f"input {k} is an ONNX sequence; {short(key)} takes tensors (graphc keeps a "
                                f"sequence only between sequence ops, as a list of tensors while importing)")
    check_arity(ctx, node, inputs)
    attrs = read_attrs(ctx, node)
    produced: set[str] = set()
    for k, name in enumerate(node.output):
        if name:
            _define(ctx, name, f"output {k} {short(name)!r}")
            if name in produced:
                raise ctx.error(f"output {k} {short(name)!r} is named twice")
            produced.add(name)
    scope = sanitize(node.name or node.op_type, "node")
    try:
        with ctx.graph.name_scope(scope):
            outputs = list(fn(ctx, node, inputs, attrs))
    except GraphcError as err:
        if ctx.where() in err.message and type(err) is not GraphcError:
            raise
        message = err.message if ctx.where() in err.message else f"{ctx.where()}: {err.message}"
        cls = GraphFileError if type(err) is GraphcError else type(err)
        raise cls(message, hint=err.hint) from None
    for k, (name, t) in enumerate(zip(node.output, outputs)):
        if name and t is not None:
            if not isinstance(t, TensorList):
                _bounded(ctx, t, f"output {k} {short(name)!r}")
            ctx.env[name] = t
    for name in list(node.output)[len(outputs):]:
        if name:
            raise ctx.error(f"output {short(name)!r} is not supported by graphc's import of {node.op_type}")
    ctx.node, ctx.index = None, None


def _bounded(ctx: ImportContext, t: Tensor, what: str) -> None:
    """A result whose static shape is too big to allocate is refused here, not at run time."""
    if t.shape is not None and all(d is not None for d in t.shape):
        checked_dims(t.shape, f"{ctx.where()}: {what}", t.dtype.np.itemsize, ctx.max_tensor_bytes)

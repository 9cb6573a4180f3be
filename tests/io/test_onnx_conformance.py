"""ONNX's own node test cases (built in memory by onnx 1.23, no download) run on graphc
through graphc.onnx_backend, for the core subset of op types graphc imports.

Selection: every case whose nodes all have op types in CORE_OPS, the nodes of its sub-graphs
(Loop / Scan bodies, If branches) included. Cases that use an element type
graphc cannot hold at all (strings, uint64, 8-, 4- and 2-bit floats and ints, complex) are run
too and must fail with a GraphcError naming that type; the pass rate is measured over the rest.
Every other failure must be listed in DEVIATIONS with its reason, and every listed deviation
must still fail (so the list stays true). Control-flow cases whose values are ONNX sequences or
optionals are not selected (their sub-graphs use Sequence* / Optional* ops); UNSUPPORTED names
them with the reason, and they must fail with a GraphcError saying so, not crash.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
from onnx.backend.test.runner import Runner

import graphc as gc
from graphc.io.onnx.common import FROM_ONNX
from graphc.onnx_backend import GraphcBackend

# The graphc execution backend the cases run on (GRAPHC_ONNX_BACKEND=llvm runs them compiled).
BACKEND = os.environ.get("GRAPHC_ONNX_BACKEND", "numpy")
CONTROL_FLOW = {"Loop", "Scan", "If"}

TESTED_OPS = {"Add", "Sub", "Mul", "RealDiv", "FloorDiv", "FloorMod", "Pow", "Maximum", "Minimum", "Neg", "Abs",
              "Sign", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos", "Erf", "Tanh",
              "Sigmoid", "Relu", "Elu", "LeakyRelu", "Softplus", "Softsign", "Gelu", "Equal", "NotEqual", "Less",
              "LessEqual", "Greater", "GreaterEqual", "LogicalAnd", "LogicalOr", "LogicalXor", "LogicalNot",
              "IsNan", "IsInf", "Select", "Cast", "Sum", "Mean", "Max", "Min", "Prod", "LogSumExp", "ArgMax",
              "ArgMin", "MatMul", "Softmax", "LogSoftmax", "Reshape", "Transpose", "Concat", "StridedSlice",
              "While", "If", "Gather", "Squeeze", "ExpandDims", "BroadcastTo", "Tile", "Pad", "Split", "Shape", "Conv2D",
              "MaxPool", "AvgPool", "OneHot", "Const", "Placeholder", "Identity", "Rsqrt", "Square", "Fill"}

CORE_OPS = {
    "Abs", "Add", "And", "ArgMax", "ArgMin", "AveragePool", "BatchNormalization", "Cast", "CastLike", "Ceil", "Celu",
    "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "Cos", "Div", "Dropout", "Elu", "Equal", "Erf", "Exp",
    "Expand", "Flatten", "Floor", "Gather", "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater",
    "GreaterOrEqual", "Hardmax", "HardSigmoid", "HardSwish", "Identity", "If", "IsInf", "IsNaN", "LayerNormalization",
    "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mish",
    "Mod", "Mul", "Neg", "Not", "OneHot", "Or", "Pad", "Pow", "PRelu", "Range", "Reciprocal", "ReduceL1", "ReduceL2",
    "LSTM", "GRU", "RNN", "LRN", "InstanceNormalization", "ConvTranspose", "Resize", "Upsample",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Round", "Scan", "Selu", "Shape", "Sigmoid", "Sign", "Sin", "Size", "Slice",
    "Softmax", "Softplus", "Softsign", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu",
    "Tile", "Transpose", "Unsqueeze", "Where", "Xor",
}

# Failures graphc accepts, each with its reason.
DEVIATIONS = {
    "test_training_dropout": "training-mode dropout draws random numbers graphc cannot reproduce",
    "test_training_dropout_default": "training-mode dropout draws random numbers graphc cannot reproduce",
    "test_training_dropout_mask": "training-mode dropout draws random numbers graphc cannot reproduce",
    "test_training_dropout_default_mask": "training-mode dropout draws random numbers graphc cannot reproduce",
    "test_identity_sequence": "graphc values are tensors; ONNX sequences have no graphc form",
    "test_identity_opt": "graphc values are tensors; ONNX optionals have no graphc form",
    "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool's Indices output (flat argmax positions) is not imported",
    "test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool's Indices output (flat argmax positions) is not "
                                                       "imported",
    "test_convtranspose_3d": "graphc imports 1-D and 2-D transposed convolutions; 3-D convolutions are not ops yet",
}

# Control-flow cases outside the selection, with the reason; each must fail with a GraphcError.
UNSUPPORTED = {
    "test_if_seq": "the branches return an ONNX sequence; graphc values are tensors",
    "test_if_opt": "the branches return an ONNX optional; graphc values are tensors",
    "test_loop13_seq": "the loop carries an ONNX sequence; graphc values are tensors",
    "test_loop16_seq_none": "the loop carries an optional sequence; graphc values are tensors",
}


def _op_types(graph: onnx.GraphProto) -> set[str]:
    """The op types of a graph's nodes and of the nodes of its sub-graphs, at any depth."""
    out: set[str] = set()
    stack = [graph]
    while stack:
        g = stack.pop()
        for node in g.node:
            out.add(node.op_type)
            for a in node.attribute:
                stack.extend([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs))
    return out


def _element_types(model: onnx.ModelProto) -> set[int]:
    """Every element type the model's values, initializers, constants and casts use."""
    g = model.graph
    types = {vi.type.tensor_type.elem_type for vi in list(g.input) + list(g.output) + list(g.value_info)
             if vi.type.HasField("tensor_type")}
    types |= {init.data_type for init in g.initializer}
    for node in g.node:
        for a in node.attribute:
            if a.name == "to" and node.op_type == "Cast":
                types.add(a.i)
            if a.type == onnx.AttributeProto.TENSOR:
                types.add(a.t.data_type)
    types.discard(onnx.TensorProto.UNDEFINED)
    return types


def unholdable(model: onnx.ModelProto) -> list[str]:
    """Names of the element types the model uses that graphc cannot hold."""
    return sorted(onnx.TensorProto.DataType.Name(t) for t in _element_types(model) if t not in FROM_ONNX)


def _collect():
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():  # the generators warn while building their data
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    return [c for c in cases if c.kind == "node" and _op_types(c.model.graph) <= CORE_OPS]


def _array(value):
    return onnx.numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value


def _run_case(backend, case) -> str | None:
    """None if the case passes, else what went wrong."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the reference data holds inf / NaN on purpose
            for inputs, expected in case.data_sets:
                outputs = backend.prepare(case.model).run(list(inputs))
                Runner.assert_similar_outputs([_array(e) for e in expected], list(outputs), case.rtol, case.atol)
    except gc.GraphcError as err:
        return f"GraphcError: {str(err).splitlines()[0]}"
    except AssertionError as err:
        return f"mismatch: {str(err).strip().splitlines()[0] if str(err).strip() else 'outputs differ'}"
    return None


@pytest.fixture(scope="module")
def results():
    backend = GraphcBackend.for_backend(BACKEND)
    return {case.name: (case, _run_case(backend, case)) for case in _collect()}


def test_core_subset_pass_rate(results):
    applicable = {name: r for name, (case, r) in results.items() if not unholdable(case.model)}
    passed = sum(1 for r in applicable.values() if r is None)
    rate = passed / len(applicable)
    print(f"\nONNX node conformance on graphc backend {BACKEND!r}: {passed} / {len(applicable)} passed "
          f"({rate:.1%}); {len(results) - len(applicable)} more cases use types graphc cannot hold")
    assert len(applicable) > 800, "the core subset shrank: did collection change?"
    assert rate >= 0.95, f"only {passed} / {len(applicable)} core cases pass"


def test_every_failure_is_a_listed_deviation(results):
    unexpected = {name: r for name, (case, r) in results.items()
                  if r is not None and name not in DEVIATIONS and not unholdable(case.model)}
    assert not unexpected, "unexpected failures:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(unexpected.items()))


def test_listed_deviations_still_fail(results):
    missing = sorted(set(DEVIATIONS) - set(results))
    assert not missing, f"DEVIATIONS names cases that are not selected: {missing}"
    now_pass = sorted(name for name in DEVIATIONS if results[name][1] is None)
    assert not now_pass, f"these deviations pass now; remove them from DEVIATIONS: {now_pass}"


def test_cases_with_types_graphc_lacks_fail_clearly(results):
    """Not skipped: they run, and the error names the type graphc cannot hold."""
    lacking = {name: (case, r) for name, (case, r) in results.items() if unholdable(case.model)}
    assert lacking
    for name, (case, r) in lacking.items():
        assert r is not None and "GraphcError" in r and "cannot hold" in r, f"{name}: {r}"


def test_control_flow_cases_run():
    """Loop, Scan and If cases are selected (and so pass, by the tests above)."""
    names = {c.name for c in _collect() if _op_types(c.model.graph) & CONTROL_FLOW}
    expected = {"test_if", "test_loop11", "test_scan_sum", "test_scan9_sum", "test_scan9_scalar"}
    assert expected <= names, sorted(expected - names)


def test_unsupported_control_flow_cases_fail_clearly():
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = {c.name: c for c in node_cases.collect_testcases(None) if c.name in UNSUPPORTED}
    assert set(cases) == set(UNSUPPORTED)
    backend = GraphcBackend.for_backend(BACKEND)
    for name, case in cases.items():
        r = _run_case(backend, case)
        assert r is not None and r.startswith("GraphcError"), f"{name}: {r}"
        assert "sequence" in r.lower() or "optional" in r.lower() or "cannot hold" in r, f"{name}: {r}"


def test_backend_interface(results):
    """prepare / run_model / run_node and device support, on a small case."""
    backend = GraphcBackend.for_backend(BACKEND)
    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    node = onnx.helper.make_node("Add", ["a", "b"], ["c"])
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)
    (c,) = backend.run_node(node, [a, b])
    np.testing.assert_array_equal(c, a + b)
    case, _ = results["test_relu"]
    (y,) = backend.run_model(case.model, list(case.data_sets[0][0]))
    np.testing.assert_array_equal(y, np.maximum(case.data_sets[0][0][0], 0))

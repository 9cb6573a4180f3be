"""The 140 small model cases the onnx package ships with reference outputs (simple,
pytorch-converted, pytorch-operator: torch exports of layers and operators, sequence and
string models) run on graphc's LLVM backend: each gives the reference outputs, or is refused
with a GraphcError for a reason listed here (ONNX sequences and strings have no graphc form,
training-domain ops, a dilated pool too wide to build from slices). A wrong result or any
other exception fails."""
from __future__ import annotations

import glob
import os
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")

from onnx import numpy_helper
from onnx.backend.test.runner import Runner

import graphc as gc
from graphc.onnx_backend import GraphcBackend

TESTED_OPS = {"Conv2D", "MatMul", "While"}
DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
KINDS = ("simple", "pytorch-converted", "pytorch-operator")
# case -> the words its refusal must contain
REFUSED = {
    **{name: "STRING" for name in (
        "test_strnorm_model_monday_casesensintive_lower", "test_strnorm_model_monday_casesensintive_nochangecase",
        "test_strnorm_model_monday_casesensintive_upper", "test_strnorm_model_monday_empty_output",
        "test_strnorm_model_monday_insensintive_upper_twodim", "test_strnorm_model_nostopwords_nochangecase")},
}


def _cases() -> list[str]:
    return sorted(d for kind in KINDS for d in glob.glob(os.path.join(DATA, kind, "*")))


def _tensors(folder: str, pattern: str) -> list[np.ndarray]:
    return [numpy_helper.to_array(onnx.load_tensor(f)) for f in sorted(glob.glob(os.path.join(folder, pattern)))]


def _run(folder: str) -> str | None:
    """None if the case gives its reference outputs, else why not."""
    model = onnx.load(os.path.join(folder, "model.onnx"))
    backend = GraphcBackend.for_backend("llvm")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = backend.prepare(model)
            for data_set in sorted(glob.glob(os.path.join(folder, "test_data_set_*"))):
                inputs, outputs = _tensors(data_set, "input_*.pb"), _tensors(data_set, "output_*.pb")
                Runner.assert_similar_outputs(outputs, list(rep.run(inputs)), 1e-3, 1e-7)
    except gc.GraphcError as err:
        return f"refused: {err}"
    return None


def test_the_packaged_cases_are_all_there():
    assert len(_cases()) == 140, "the onnx package's model cases changed: update this test"


@pytest.mark.parametrize("folder", _cases(), ids=os.path.basename)
def test_packaged_model_case(folder):
    name = os.path.basename(folder)
    outcome = _run(folder)
    if name in REFUSED:
        assert outcome is not None and REFUSED[name] in outcome, outcome
    else:
        assert outcome is None, outcome

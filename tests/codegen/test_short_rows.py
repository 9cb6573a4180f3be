"""Short rows (7 or 14 elements: the planes of a small NCHW image) run as one masked vector body
per row: the loop's trip count is opaque and its llvm.loop metadata asks for predication, which
llvmlite writes with a placeholder that the compiler resolves into a self-reference."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.codegen import llvm_loops
from graphc.codegen.llvm import render_module
from graphc.lower import lower_program, plan_memory
from graphc.passes import DEFAULT_PIPELINE, run_pipeline
from graphc.program import build_program
from graphc.runtime import llvm_compile


def test_the_placeholder_of_a_loop_id_becomes_a_self_reference():
    assert llvm_loops.LOOP_SELF == llvm_compile.LOOP_SELF
    text = f'!3 = !{{ !"{llvm_compile.LOOP_SELF}", !1, !2 }}\n!4 = !{{ !"other" }}\n'
    assert llvm_compile.resolve_loop_ids(text) == '!3 = distinct !{!3, !1, !2 }\n!4 = !{ !"other" }\n'


def _module_text(fetch, feeds):
    graph = gc.get_default_graph()
    program = build_program(graph, [fetch], [(t, t.dtype, v.shape) for t, v in feeds.items()])
    kp = plan_memory(lower_program(run_pipeline(program, DEFAULT_PIPELINE), blas=True, vector_loops=True))
    return str(render_module(kp, "short_rows")[0])


@pytest.mark.parametrize("width, predicated", [(14, True), (7, True), (16, False), (3, False), (40, False)])
def test_rows_of_a_strided_view_are_predicated_only_when_short_and_uneven(width, predicated):
    rng = np.random.default_rng(0)
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (50, width + 2))
        y = gc.clip_by_value(x[:, 1:width + 1] * 2.0 + 1.0, 0.0, 3.0)   # rows of `width` from rows of width + 2
        xv = rng.normal(size=(50, width + 2)).astype(np.float32)
        text = _module_text(y, {x: xv})
        assert ("llvm.loop.vectorize.predicate.enable" in text) == predicated
        with gc.Session() as sess:
            got = sess.run(y, {x: xv})
    np.testing.assert_allclose(got, np.clip(xv[:, 1:width + 1] * 2.0 + 1.0, 0.0, 3.0), rtol=1e-6)


def test_rows_with_bounds_tested_reads_stay_unpredicated():
    """A padded copy's reads are tested against the image's bounds: masked, they ran 3x slower."""
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (8, 7, 7))
        y = gc.pad(x, [[0, 0], [1, 1], [1, 1]]) * 1.5
        xv = np.ones((8, 7, 7), np.float32)
        assert "llvm.loop.vectorize.predicate.enable" not in _module_text(y, {x: xv})
        with gc.Session() as sess:
            got = sess.run(y, {x: xv})
    np.testing.assert_array_equal(got, np.pad(xv, [[0, 0], [1, 1], [1, 1]]) * 1.5)

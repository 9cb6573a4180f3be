"""Constants start on a cache line: the graph's own copies, folded constants and the arrays the
lowering makes (packed filters), so kernels' vector loads never span two lines."""
from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.ir.aligned import ALIGN, aligned, aligned_copy, is_aligned
from graphc.lower import lower_program
from graphc.passes import DEFAULT_PIPELINE, run_pipeline
from graphc.program import build_program


def test_an_aligned_copy_keeps_values_shape_and_dtype_and_starts_on_a_cache_line():
    for value in (np.arange(1000, dtype=np.float32)[3:], np.ones((0, 5)), np.float64(2.5),
                  np.arange(12, dtype=np.int64).reshape(3, 4).T, np.array(["ab", "c"])):
        copy = aligned_copy(value)
        assert copy.ctypes.data % ALIGN == 0 or copy.size == 0
        assert copy.dtype == np.asarray(value).dtype and copy.shape == np.shape(value)
        np.testing.assert_array_equal(copy, value)
        assert copy.flags.c_contiguous
    already = aligned_copy(np.ones(100))
    assert aligned(already) is already
    assert aligned(np.ones(10_000)[1:]) is not None and is_aligned(aligned(np.ones(10_000)[1:]))


def test_the_graph_the_folding_and_the_lowering_keep_constants_on_cache_lines():
    rng = np.random.default_rng(0)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (1, 16, 12, 12))
        f = gc.constant(np.asarray(rng.normal(size=(3, 3, 16, 40)), np.float32)[:, :, :, :])
        folded = gc.constant(np.ones((40,), np.float32)) * 2.0 + 1.0   # folded into one constant
        y = gc.nn.conv2d(x, f, padding="SAME", data_format="NCHW") + gc.reshape(folded, (1, 40, 1, 1))
    assert is_aligned(f.node.attrs["value"])
    program = run_pipeline(build_program(g, [y], [(x, x.dtype, tuple(x.shape))]), DEFAULT_PIPELINE)
    kp = lower_program(program, blas=True, vector_loops=True, gemm_epilogues=True, direct_conv=True)
    assert any("filter_panels" in b.name for b in kp.buffers)   # the packed filter the lowering made
    consts = [b for b in kp.buffers if b.kind == "const" and b.value is not None and np.asarray(b.value).size > 1]
    assert consts, kp.buffers
    assert all(is_aligned(np.asarray(b.value)) for b in consts), [(b, np.asarray(b.value).ctypes.data % ALIGN)
                                                                 for b in consts]


def test_large_results_and_loaded_variables_start_on_cache_lines():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (300, 301))
        v = gc.Variable(np.zeros((300, 301), np.float32), name="v")
        step = v.assign_add(x * 2.0)
    with gc.Session(graph=g) as sess:
        sess.run(gc.global_variables_initializer())
        xv = np.ones((300, 301), np.float32)
        for _ in range(3):
            out = sess.run(x * 3.0, {x: xv})
            assert is_aligned(out) and out.nbytes >= 1 << 16
            np.testing.assert_array_equal(out, 3.0)
        v.load(np.full((300, 301), 5.0, np.float32)[:, :], sess)
        assert is_aligned(sess._state.variables["v"])
        np.testing.assert_array_equal(sess.run(step, {x: xv}), 7.0)

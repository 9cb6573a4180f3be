"""Every kind of generated CUDA kernel compiles with nvcc for sm_80 and sm_90 (CI has nvcc but
no GPU), and the same module gives the NumPy reference's results in the emulator."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda import render_cuda
from graphc.lower import lower_program, plan_memory
from graphc.passes import DEFAULT_PIPELINE, run_pipeline
from graphc.program import build_program
from tests.codegen import cuda_catalog as catalog
from tests.helpers import assert_close


def _catalog_module():
    fetches, feeds, train = catalog.build()
    graph = gc.get_default_graph()
    program = build_program(graph, fetches + train, [(t, t.dtype, v.shape) for t, v in feeds.items()])
    kp = plan_memory(lower_program(run_pipeline(program, DEFAULT_PIPELINE), blas=True))
    return render_cuda(kp, "catalog")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc (the CUDA toolkit)")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_kind_of_kernel_compiles_with_nvcc(arch):
    from graphc.runtime.cuda_devices import compile_cubin

    module = _catalog_module()
    assert {launch.mode for launch in module.launches} == {"flat", "vector", "block", "thread", "single", "chain",
                                                                "gemm", "split"}
    cubin = compile_cubin(module.source, arch)
    assert cubin[:4] == b"\x7fELF"


@pytest.mark.parametrize("backend", [pytest.param("cuda-emulator", marks=pytest.mark.skipif(
    shutil.which("g++") is None, reason="needs g++")), pytest.param("cuda", marks=pytest.mark.gpu)])
def test_catalog_matches_the_reference(backend):
    fetches, feeds, train = catalog.build()
    results = {}
    for name in ("numpy", backend):
        with gc.Session(backend=name) as sess:
            sess.run(gc.global_variables_initializer())
            first = sess.run(fetches, feeds)
            for _ in range(3):
                sess.run(train, feeds)
            results[name] = first + [sess.run(fetches[-1], feeds)]
    for got, want in zip(results[backend], results["numpy"]):
        got, want = np.asarray(got), np.asarray(want)
        assert got.dtype == want.dtype
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=2e-4 if want.dtype == np.float32 else 1e-9,
                                       atol=1e-4 if want.dtype == np.float32 else 1e-9, equal_nan=True)
        else:
            assert_close(got, want)

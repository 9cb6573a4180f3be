"""Shared fixtures: a fresh default graph per test, and the backends every op test runs on."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import graphc as gc

# Every compiled backend is compared with the NumPy reference. "cuda-emulator" runs the CUDA
# backend's generated kernels on the CPU (graphc's emulator, built with g++); "cuda" runs them on
# a real GPU (marked gpu: skipped unless PyCUDA finds one).
BACKENDS = ["numpy", "llvm", pytest.param("cuda-emulator", marks=pytest.mark.skipif(
    shutil.which("g++") is None, reason="the CUDA emulator needs g++")), pytest.param("cuda", marks=pytest.mark.gpu)]
CPU_BACKENDS = ["numpy", "llvm"]   # plus "cuda", for tests whose runs are too long for the emulator


@pytest.fixture(autouse=True)
def fresh_default_graph():
    gc.reset_default_graph()
    yield
    gc.reset_default_graph()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    """Skip tests marked gpu cleanly when there is no usable CUDA device."""
    try:
        import pycuda.driver as drv  # noqa: F401

        drv.init()
        has_gpu = drv.Device.count() > 0
    except Exception:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with PyCUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

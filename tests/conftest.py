"""Shared fixtures: a fresh default graph per test, and the backends every op test runs on."""
from __future__ import annotations

import os
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


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=os.environ.get("GRAPHC_FULL_TESTS") == "1",
                     help="run every parameter product on every backend (also GRAPHC_FULL_TESTS=1); by default "
                          "tests marked `sampled` run a covering sample on their slow backends")


def _coverage_value(value):
    """What a parameter value stands for: a gradient case its ops, anything else itself."""
    ops = getattr(value, "ops", None)
    return ("ops", tuple(sorted(ops))) if ops is not None else repr(value)


def _sample(config, items):
    """@pytest.mark.sampled(*groups, backends=(...), keep=1): on those backends, an item runs only
    if it is among the first `keep` items of its test function for some value of some group (a
    parameter name or a tuple of names). Every value of every group is still covered on every
    backend; what is dropped is the product of the groups (shapes x dtypes x cases), which the
    fast backends run in full. --full runs everything."""
    if config.getoption("--full"):
        return
    kept, dropped, seen = [], [], {}
    for item in items:
        marker = item.get_closest_marker("sampled")
        params = getattr(getattr(item, "callspec", None), "params", {})
        backends = marker.kwargs.get("backends", ("cuda-emulator",)) if marker else ()
        if marker is None or params.get("backend") not in backends:
            kept.append(item)
            continue
        keep = marker.kwargs.get("keep", 1)
        fresh = False
        for group in marker.args:
            names = (group,) if isinstance(group, str) else tuple(group)
            key = (item.module.__name__, item.originalname, params["backend"], names,
                   tuple(_coverage_value(params[n]) for n in names))
            if seen.get(key, 0) < keep:
                fresh = True
            seen[key] = seen.get(key, 0) + 1
        (kept if fresh else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_modifyitems(config, items):
    """Sample the slow backends' parameter products (see _sample); skip tests marked gpu cleanly
    when there is no usable CUDA device."""
    _sample(config, items)
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

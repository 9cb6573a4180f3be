"""The sampled test products (tests/conftest.py, @pytest.mark.sampled) still cover every value of
every sampled group on the slow backends: the sample drops combinations, never an op, a dtype or
a shape."""
from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _collected(target: str, *extra: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", target,
                          *extra], capture_output=True, text=True, cwd=ROOT, timeout=300).stdout
    return [line for line in out.splitlines() if "::" in line]


def _params(ids: list[str], backend: str) -> list[list[str]]:
    """The parameter ids after the backend's, of the items on `backend`."""
    rows = []
    for item in ids:
        inside = item[item.index("[") + 1:-1]
        if inside.startswith(backend + "-"):
            rows.append(re.split(r"-(?![^(]*\))", inside[len(backend) + 1:]))
    return rows


@pytest.mark.parametrize("target", ["tests/ops/test_elementwise.py::test_binary_shapes",
                                    "tests/ops/test_elementwise.py::test_binary_dtypes"])
def test_the_emulator_sample_covers_every_value(target):
    full = _params(_collected(target, "--full"), "cuda-emulator")
    sample = _params(_collected(target), "cuda-emulator")
    assert 0 < len(sample) < len(full) / 2               # much smaller ...
    for position in range(len(full[0])):                  # ... yet every op, dtype and shape is there
        assert {row[position] for row in sample} == {row[position] for row in full}, position
    assert len(_params(_collected(target), "llvm")) == len(_params(_collected(target, "--full"), "llvm"))

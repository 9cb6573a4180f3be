"""The op tests also run on a real GPU (backend "cuda", marked gpu) where PyCUDA finds one; the
CUDA emulator is already among the shared BACKENDS."""
from __future__ import annotations

import pytest

from tests.conftest import BACKENDS


@pytest.fixture(params=BACKENDS + [pytest.param("cuda", marks=pytest.mark.gpu)])
def backend(request) -> str:
    return request.param

"""Cases with known outcomes, for testing the fuzz driver itself (tests/fuzz/test_driver.py)."""
from __future__ import annotations

import os
import time
from typing import Iterator

import graphc as gc

KINDS = [b"ok", b"graphc-error", b"value-error", b"hang", b"crash", b"memory"]


def cases(seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    for i in range(count):
        kind = KINDS[(seed + i) % len(KINDS)]
        yield f"{kind.decode()}-{i}", kind


def run_case(data: bytes) -> str:
    if data == b"graphc-error":
        raise gc.GraphFileError("a refused file")
    if data == b"value-error":
        raise ValueError("a raw exception")
    if data == b"hang":
        time.sleep(3600)
    if data == b"crash":
        os.abort()
    if data == b"memory":
        block = bytearray(200 << 20)     # touched: resident
        block[::4096] = b"x" * len(block[::4096])
        return "ok"
    return "ok"

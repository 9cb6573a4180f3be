"""The bounded slice of the .gcx fuzzer that CI runs every time: 300 mutated real graphs (fixed
seed), each loaded and, when it loads, run on both CPU backends; every outcome must be a load
or a GraphcError that keeps graphc's promises (see tests/fuzz/gcx_cases.py). The long run is
`python -m tests.fuzz.driver gcx --count 10000 --seed 1`, in worker processes that also count
crashes, hangs and memory."""
from __future__ import annotations

import collections
import time

import graphc as gc
from tests.fuzz import gcx_cases

SEED, COUNT = 20240, 300


def test_cases_are_deterministic():
    first = list(gcx_cases.cases(SEED, 20))
    assert first == list(gcx_cases.cases(SEED, 20))
    assert len({data for _, data in first}) == 20


def test_slice_gives_only_graphc_errors():
    labels: collections.Counter = collections.Counter()
    raw: list[str] = []
    start = time.perf_counter()
    for case_id, data in gcx_cases.cases(SEED, COUNT):
        try:
            labels[gcx_cases.run_case(data)] += 1
        except gc.GraphcError as err:     # run_case lets none through, but the driver would count it
            labels[type(err).__name__] += 1
        except Exception as err:          # noqa: BLE001 - what the fuzzer looks for
            raw.append(f"{case_id}: {type(err).__name__}: {str(err)[:300]}")
    assert not raw, "\n".join(raw)
    assert sum(labels.values()) == COUNT
    # the slice exercises both sides: files refused and graphs that load and run
    assert labels["GraphFileError"] > COUNT // 2 and labels["ok"] > 10, labels
    assert time.perf_counter() - start < 120

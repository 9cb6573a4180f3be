"""Every registered op is exercised by some test module (each declares TESTED_OPS)."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import tests
from graphc.ops import all_ops


def _declared() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    skipped = []
    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        try:
            module = importlib.import_module(info.name)
        except pytest.skip.Exception:   # a module needing an extra that is not installed
            skipped.append(info.name)
            continue
        except ModuleNotFoundError as err:   # a helper module importing such an extra
            if (err.name or "graphc").split(".")[0] in ("graphc", "tests"):
                raise
            skipped.append(info.name)
            continue
        ops = getattr(module, "TESTED_OPS", None)
        if ops:
            found[info.name] = set(ops)
    found["(skipped)"] = set(skipped)
    return found


def test_every_op_is_tested():
    declared = _declared()
    skipped = declared.pop("(skipped)")
    if skipped:
        pytest.skip(f"test modules {sorted(skipped)} need the test extras; without them coverage cannot be counted")
    tested = set().union(*declared.values())
    missing = sorted(set(all_ops()) - tested)
    assert not missing, f"ops without tests: {missing}"


def test_declarations_name_real_ops():
    declared = _declared()
    declared.pop("(skipped)")
    unknown = {m: sorted(ops - set(all_ops())) for m, ops in declared.items() if ops - set(all_ops())}
    assert not unknown, f"TESTED_OPS names that are not ops: {unknown}"

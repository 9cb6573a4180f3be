"""Every registered op is exercised by some test module (each declares TESTED_OPS)."""
from __future__ import annotations

import importlib
import pkgutil

import tests
from graphc.ops import all_ops


def _declared() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        module = importlib.import_module(info.name)
        ops = getattr(module, "TESTED_OPS", None)
        if ops:
            found[info.name] = set(ops)
    return found


def test_every_op_is_tested():
    declared = _declared()
    tested = set().union(*declared.values())
    missing = sorted(set(all_ops()) - tested)
    assert not missing, f"ops without tests: {missing}"


def test_declarations_name_real_ops():
    unknown = {m: sorted(ops - set(all_ops())) for m, ops in _declared().items() if ops - set(all_ops())}
    assert not unknown, f"TESTED_OPS names that are not ops: {unknown}"

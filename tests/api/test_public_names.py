"""gc, gc.nn and gc.train expose public names only (`__all__`), each of them real."""
import types

import pytest

import graphc as gc

INTERNAL = {"annotations", "np", "Any", "Sequence", "Callable", "numbers", "api", "ir", "ops", "passes", "lower",
            "codegen", "runtime", "backends", "program", "autodiff", "compiled", "feeds", "source", "session",
            "errors", "profile", "array", "math", "control"}


@pytest.mark.parametrize("module", [gc, gc.nn, gc.train], ids=["gc", "gc.nn", "gc.train"])
def test_all_lists_public_names_only(module):
    names = module.__all__
    assert len(names) == len(set(names))
    assert not set(names) & INTERNAL, set(names) & INTERNAL
    for name in names:
        value = getattr(module, name)          # every listed name exists
        if isinstance(value, types.ModuleType):
            assert value.__name__.startswith("graphc."), name


def test_star_import_gives_the_api():
    namespace: dict = {}
    exec("from graphc import *", namespace)
    assert {"placeholder", "Session", "nn", "train", "float32", "GraphcError", "debugprint"} <= set(namespace)
    assert not {"annotations", "ir", "runtime"} & set(namespace)
    assert "print" not in namespace            # gc.print exists, but `import *` keeps Python's print

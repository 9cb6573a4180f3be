"""TF1's variable scopes: gc.variable_scope and gc.get_variable, so layers share or create
their variables by name (`dense/kernel`).

variable_scope(name, reuse=None) prefixes both the variables get_variable makes and the ops
built inside (its name scope). get_variable(name) in scope "a/b" means variable "a/b/name":
- reuse=None (the default): create it; an existing one is an error (two layers would share
  weights by accident);
- reuse=True: it must exist, and is returned;
- reuse=gc.AUTO_REUSE: returned if it exists, created otherwise.
Reuse is inherited by nested scopes, as in TF1.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import GraphcError
from ..ir.dtypes import as_dtype, float32
from ..ir.graph import Graph, get_default_graph
from .initializers import glorot_uniform_initializer
from .variables import Variable, global_variables


class _AutoReuse:
    def __repr__(self) -> str:
        return "gc.AUTO_REUSE"


AUTO_REUSE = _AutoReuse()
_local = threading.local()


def _stack(graph: Graph) -> list[tuple[str, Any, Any]]:
    """(scope name, reuse, default initializer) frames of `graph`, in this thread."""
    stacks = getattr(_local, "stacks", None)
    if stacks is None:
        stacks = _local.stacks = {}
    return stacks.setdefault(id(graph), [])


def get_variable_scope_name(graph: Graph | None = None) -> str:
    return "/".join(name for name, _, _ in _stack(graph or get_default_graph()) if name)


@contextlib.contextmanager
def variable_scope(name_or_scope: Any, default_name: str | None = None, reuse: Any = None,
                   initializer: Any = None, values: Any = None) -> Iterator[str]:
    """Enter scope `name_or_scope` (or a fresh `default_name`, `default_name_1`, ...)."""
    graph = get_default_graph()
    stack = _stack(graph)
    name = name_or_scope
    if not name:
        if not default_name:
            raise GraphcError("variable_scope needs a name or a default_name")
        prefix = get_variable_scope_name(graph)
        taken = {v.op.name for v in global_variables(graph)}
        k, name = 0, default_name
        while any(t == f"{prefix}/{name}".lstrip("/") or t.startswith(f"{prefix}/{name}/".lstrip("/")) for t in taken):
            k += 1
            name = f"{default_name}_{k}"
    inherited = stack[-1][1] if stack else None
    chosen = reuse if reuse is not None else inherited
    default_init = initializer if initializer is not None else (stack[-1][2] if stack else None)
    stack.append((str(name), chosen, default_init))
    try:
        with graph.name_scope(str(name)):
            yield get_variable_scope_name(graph)
    finally:
        stack.pop()


def get_variable(name: str, shape: Any = None, dtype: Any = float32, initializer: Any = None,
                 trainable: bool = True, collections: Any = None) -> Variable:
    """The variable `scope/name`, created (with `initializer`, the scope's, or Glorot uniform)
    or reused as the scope's reuse flag says (see the module docstring)."""
    graph = get_default_graph()
    stack = _stack(graph)
    reuse = stack[-1][1] if stack else None
    full = "/".join(p for p in (get_variable_scope_name(graph), name) if p)
    existing = next((v for v in global_variables(graph) if v.op.name == full), None)
    if existing is not None:
        if reuse is True or reuse is AUTO_REUSE:
            if shape is not None and existing.shape is not None and tuple(existing.shape) != tuple(shape):
                raise GraphcError(f"variable {full!r} exists with shape {tuple(existing.shape)}, asked for "
                                  f"{tuple(shape)}")
            return existing
        raise GraphcError(f"variable {full!r} already exists, and reuse is not set",
                          hint="enter gc.variable_scope(..., reuse=True) (or gc.AUTO_REUSE) to share it, or use "
                               "another name")
    if reuse is True:
        raise GraphcError(f"variable {full!r} does not exist, and the scope says reuse=True",
                          hint="create it first, or use reuse=gc.AUTO_REUSE")
    if shape is None and not hasattr(initializer, "shape"):
        raise GraphcError(f"get_variable({full!r}) needs a shape (or an initial value as initializer)")
    init = initializer if initializer is not None else (stack[-1][2] if stack and stack[-1][2] is not None
                                                        else glorot_uniform_initializer())
    dtype = as_dtype(dtype)
    with graph.name_scope(None):
        if callable(init):
            value = init([int(d) for d in shape], dtype=dtype)
        else:
            value = init
        return Variable(value, dtype=dtype, name=full, trainable=trainable)


class GraphKeys:
    """TF1's collection names."""

    GLOBAL_VARIABLES = "variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    UPDATE_OPS = "update_ops"
    SUMMARIES = "summaries"


def get_collection(key: str, scope: str | None = None) -> list[Any]:
    """The default graph's collection `key` (items whose name starts with `scope`, if given)."""
    items = get_default_graph().get_collection(key)
    if scope:
        items = [i for i in items if getattr(getattr(i, "op", None) or getattr(i, "node", None), "name", "")
                 .startswith(scope)]
    return items


def add_to_collection(key: str, value: Any) -> None:
    get_default_graph().add_to_collection(key, value)


__all__ = ["AUTO_REUSE", "GraphKeys", "add_to_collection", "get_collection", "get_variable", "variable_scope"]

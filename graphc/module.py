"""gc.Module: subclass it (as in Chainer or Keras), assign layers, variables and other modules
as attributes (also inside lists, tuples and dicts), define __call__; `variables`,
`trainable_variables` and `submodules` are found by attribute, in assignment order.

Names come from the attributes: a layer assigned as `self.encoder` inside a module named `net`
makes its variables under `net/encoder/...`; the module's __call__ runs inside its variable
scope, so layers and gc.get_variable calls there are prefixed too.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from .api.layer_objects import Layer
from .api.scopes import AUTO_REUSE, variable_scope
from .api.variables import Variable


def _leaves(value: Any) -> Iterator[Any]:
    """Layers, variables and modules in value (itself, or inside lists, tuples, dicts)."""
    if isinstance(value, (Module, Layer, Variable)):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)


class Module:
    """A container of layers, variables and modules found by attribute."""

    def __init__(self, name: str | None = None) -> None:
        object.__setattr__(self, "_name", name or _snake(type(self).__name__))
        object.__setattr__(self, "_order", [])

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None:
            @functools.wraps(call)
            def scoped(self: Module, *args: Any, **kw: Any) -> Any:
                with variable_scope(self.name, reuse=AUTO_REUSE):
                    return call(self, *args, **kw)
            cls.__call__ = scoped   # type: ignore[method-assign]

    @property
    def name(self) -> str:
        return self.__dict__.get("_name") or _snake(type(self).__name__)

    def __setattr__(self, key: str, value: Any) -> None:
        if "_order" not in self.__dict__:   # a subclass that did not call super().__init__()
            Module.__init__(self)
        for k, leaf in enumerate(_leaves(value)):
            if isinstance(leaf, Layer) and leaf.name is None and not leaf.built:
                leaf.name = key if not isinstance(value, (list, tuple, dict)) else f"{key}_{k}"
            if isinstance(leaf, Module) and leaf.__dict__.get("_name") == _snake(type(leaf).__name__):
                object.__setattr__(leaf, "_name", key)
        if key not in self._order and not key.startswith("_"):
            self._order.append(key)
        object.__setattr__(self, key, value)

    def _children(self) -> Iterator[Any]:
        for key in self.__dict__.get("_order", []):
            yield from _leaves(self.__dict__.get(key))

    @property
    def submodules(self) -> list[Module]:
        found: list[Module] = []
        for child in self._children():
            if isinstance(child, Module):
                found.append(child)
                found.extend(child.submodules)
        return found

    @property
    def variables(self) -> list[Variable]:
        out: list[Variable] = []
        for child in self._children():
            items = [child] if isinstance(child, Variable) else child.variables
            out.extend(v for v in items if all(v is not o for o in out))
        return out

    @property
    def trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables if v.trainable]

    @property
    def layers(self) -> list[Layer]:
        out: list[Layer] = []
        for child in self._children():
            if isinstance(child, Layer):
                out.append(child)
            elif isinstance(child, Module):
                out.extend(child.layers)
        return out


def _snake(name: str) -> str:
    out = []
    for k, ch in enumerate(name):
        if ch.isupper() and k and not name[k - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


__all__ = ["Module"]

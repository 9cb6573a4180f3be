"""Gradient clipping as TF1 defines it: gc.clip_by_norm and gc.clip_by_global_norm.

clip_by_norm(t, c) = t * c / max(||t||_2, c): t itself when its norm is at most c.
clip_by_global_norm(ts, c) scales every tensor by c / max(global_norm, c), where the global
norm is sqrt(sum of ||t||^2) over all of them (None entries stay None), and also returns the
global norm: what a training loop clips its gradients with so that their direction survives.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ir.tensor import Tensor
from . import math
from .convert import convert_to_tensor


def clip_by_norm(t: Any, clip_norm: Any, axes: Any = None, name: str | None = None) -> Tensor:
    """t scaled so that its L2 norm (over `axes`, default all) is at most clip_norm."""
    x = convert_to_tensor(t)
    c = math.cast(convert_to_tensor(clip_norm), x.dtype)
    norm = math.sqrt(math.reduce_sum(math.square(x), axis=axes, keepdims=True))
    return math.multiply(x, math.divide(c, math.maximum(norm, c)), name=name)


def global_norm(t_list: Sequence[Any], name: str | None = None) -> Tensor:
    """sqrt(sum of the squared L2 norms) of the tensors that are not None."""
    present = [convert_to_tensor(t) for t in t_list if t is not None]
    if not present:
        raise ValueError("global_norm needs at least one tensor")
    squares = [math.cast(math.reduce_sum(math.square(t)), present[0].dtype) for t in present]
    return math.sqrt(math.add_n(squares) if len(squares) > 1 else squares[0], name=name)


def clip_by_global_norm(t_list: Sequence[Any], clip_norm: Any, use_norm: Any = None,
                        name: str | None = None) -> tuple[list[Tensor | None], Tensor]:
    """(the tensors scaled by clip_norm / max(global norm, clip_norm), the global norm)."""
    norm = convert_to_tensor(use_norm) if use_norm is not None else global_norm(t_list)
    c = math.cast(convert_to_tensor(clip_norm), norm.dtype)
    scale = math.divide(c, math.maximum(norm, c))
    clipped = [None if t is None else math.multiply(convert_to_tensor(t), math.cast(scale, convert_to_tensor(t).dtype))
               for t in t_list]
    return clipped, norm


__all__ = ["clip_by_global_norm", "clip_by_norm", "global_norm"]

"""Collectives as graph ops (and on NumPy arrays): allreduce, broadcast, allgather; gradients
fused into a few large allreduces (buckets); broadcasting every variable from one rank."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api.array import concat, reshape, split
from ..api.control import group
from ..api.convert import apply1, convert_to_tensor
from ..api.variables import Variable, global_variables
from ..errors import GraphcError
from ..ir.function import FuncGraph
from ..ir.graph import get_default_graph
from ..ir.node import Node
from ..ir.tensor import Tensor
from .world import current

DEFAULT_BUCKET_BYTES = 4 << 20


def _collective(op: str, x: Any, attrs: dict[str, Any], name: str | None, default: str) -> Tensor:
    t = convert_to_tensor(x)
    graph = t.graph
    if isinstance(graph, FuncGraph):
        raise GraphcError(f"{op} inside a loop body or a branch ('{graph.name}') is not supported",
                          hint="exchange the loop's results after the loop")
    world = current()
    with graph.as_default():
        key = graph.unique_name(name or default, mark_as_used=False)
        return apply1(op, [t], {**attrs, "key": key, "rank": world.rank, "size": world.size}, name=key)


def allreduce(x: Any, average: bool = True, name: str | None = None) -> Any:
    """The sum over every rank (average=False) or the average (Horovod's default). A NumPy
    array gives a NumPy array now; a tensor gives a graph op (its gradient: an allreduce)."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return current().allreduce_array(np.asarray(x), average)
    return _collective("MpiAllreduce", x, {"reduce": "average" if average else "sum"}, name, "allreduce")


def broadcast(x: Any, root_rank: int = 0, name: str | None = None) -> Any:
    """The value of rank `root_rank`, on every rank (NumPy now, or a graph op)."""
    _check_root(root_rank)
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return current().broadcast_array(np.asarray(x), root_rank)
    return _collective("MpiBroadcast", x, {"root": int(root_rank)}, name, "broadcast")


def allgather(x: Any, name: str | None = None) -> Any:
    """Every rank's x stacked along a new first axis, in rank order (NumPy now, or a graph op)."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return current().allgather_array(np.asarray(x))
    return _collective("MpiAllgather", x, {}, name, "allgather")


def _check_root(root: int) -> None:
    size = current().size
    if not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise GraphcError(f"root_rank must be a rank of this world (0 to {size - 1}), got {root!r}")


def bucketed_allreduce(tensors: Sequence[Tensor], average: bool, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                       name: str = "allreduce") -> list[Tensor]:
    """The allreduce of each tensor, sent as a few large messages: tensors of one dtype are
    flattened and joined into buckets of at most `bucket_bytes` (one allreduce each), then split
    back. Buckets fill in reverse order, the order in which a backward pass produces gradients."""
    results: dict[int, Tensor] = {}
    buckets: list[list[int]] = []
    open_bucket: dict[str, tuple[list[int], int]] = {}
    for i in reversed(range(len(tensors))):
        t = tensors[i]
        size = int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize
        members, used = open_bucket.get(t.dtype.name, ([], 0))
        if members and used + size > bucket_bytes:
            buckets.append(members)
            members, used = [], 0
        members.append(i)
        open_bucket[t.dtype.name] = (members, used + size)
    buckets.extend(members for members, _ in open_bucket.values() if members)
    for j, members in enumerate(buckets):
        parts = [tensors[i] for i in members]
        if len(parts) == 1:
            results[members[0]] = allreduce(parts[0], average, name=f"{name}_{j}")
            continue
        sizes = [int(np.prod(p.shape, dtype=np.int64)) for p in parts]
        joined = concat([reshape(p, [-1]) for p in parts], axis=0)
        reduced = allreduce(joined, average, name=f"{name}_{j}")
        for i, piece, p in zip(members, split(reduced, sizes, axis=0), parts):
            results[i] = reshape(piece, list(p.shape))
    return [results[i] for i in range(len(tensors))]


def broadcast_global_variables(root_rank: int = 0, variables: Sequence[Variable] | None = None) -> Node:
    """An op setting every global variable (or `variables`) to its value on `root_rank`: run it
    once after initializing, so every rank starts from the same weights. One broadcast per
    dtype and bucket, not one per variable."""
    _check_root(root_rank)
    variables = list(variables) if variables is not None else global_variables(get_default_graph())
    if not variables:
        raise GraphcError("broadcast_global_variables: the graph has no variables yet; build the model first")
    assigns = []
    by_dtype: dict[str, list[Variable]] = {}
    for v in variables:
        by_dtype.setdefault(v.dtype.name, []).append(v)
    for dtype, group_vars in by_dtype.items():
        values = [v.read_value() for v in group_vars]
        sizes = [int(np.prod(v.shape, dtype=np.int64)) for v in group_vars]
        joined = concat([reshape(x, [-1]) for x in values], axis=0) if len(values) > 1 else reshape(values[0], [-1])
        shared = broadcast(joined, root_rank, name=f"broadcast_{dtype}_variables")
        pieces = split(shared, sizes, axis=0) if len(values) > 1 else [shared]
        for v, piece in zip(group_vars, pieces):
            assigns.append(v.assign(reshape(piece, list(v.shape))))
    return group(*assigns, name="broadcast_global_variables")

"""DistributedOptimizer: any gc.train optimizer, with its gradients averaged (or summed) over
every rank inside the compiled training step, as Horovod's DistributedOptimizer does."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import GraphcError
from .collectives import DEFAULT_BUCKET_BYTES, bucketed_allreduce
from .world import current


class DistributedOptimizer:
    """Wraps `optimizer`: compute_gradients adds, after the gradients, one allreduce per bucket
    of gradients (`bucket_bytes` each), so a step sends a few large messages; apply_gradients
    and the slots are the wrapped optimizer's. op="average" (the default) gives every rank the
    mean of the ranks' gradients; op="sum" their sum (for a loss already divided by the global
    number of examples)."""

    def __init__(self, optimizer: Any, op: str = "average", bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 name: str = "DistributedOptimizer") -> None:
        if op not in ("average", "sum"):
            raise GraphcError(f"DistributedOptimizer: op must be 'average' or 'sum', got {op!r}")
        if isinstance(optimizer, DistributedOptimizer):
            raise GraphcError("this optimizer is already a DistributedOptimizer")
        if not hasattr(optimizer, "compute_gradients") or not hasattr(optimizer, "apply_gradients"):
            raise GraphcError(f"DistributedOptimizer wraps a gc.train optimizer, got {type(optimizer).__name__}")
        self.optimizer, self.op, self.bucket_bytes, self.name = optimizer, op, int(bucket_bytes), name

    def compute_gradients(self, loss: Any, var_list: Sequence[Any] | None = None) -> list[tuple[Any, Any]]:
        pairs = self.optimizer.compute_gradients(loss, var_list)
        if current().size == 1:
            return pairs   # alone: nothing to exchange
        present = [(i, g) for i, (g, _) in enumerate(pairs) if g is not None]
        reduced = bucketed_allreduce([g for _, g in present], self.op == "average", self.bucket_bytes,
                                     name=f"{self.name}/allreduce")
        out = list(pairs)
        for (i, _), r in zip(present, reduced):
            out[i] = (r, pairs[i][1])
        return out

    def apply_gradients(self, grads_and_vars: Sequence[tuple[Any, Any]], global_step: Any = None,
                        name: str | None = None) -> Any:
        return self.optimizer.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    def minimize(self, loss: Any, global_step: Any = None, var_list: Sequence[Any] | None = None,
                 name: str | None = None) -> Any:
        return self.apply_gradients(self.compute_gradients(loss, var_list), global_step=global_step, name=name)

    def __getattr__(self, name: str) -> Any:   # get_slot, get_slot_names, learning_rate, ...
        return getattr(self.optimizer, name)

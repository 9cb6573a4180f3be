"""Model.fit under mpirun: data parallelism for Keras-style models (graphc.distributed).

When graphc.distributed has started a world of several processes, a model's training step is
built so that every rank computes exactly what one process would on the whole batch:

- each rank reads its shard of every epoch's shuffled order (rank r takes rows r, r + size, ...;
  the same seed on every rank gives the same order), padded with weight-0 rows to the longest
  shard, so every rank runs the same number of steps; `batch_size` is per rank (Horovod's
  convention): one step covers size x batch_size rows;
- the loss is divided by the number of real rows of the whole step (an allreduce of the weight
  sums), and the gradients are summed over ranks (a DistributedOptimizer with op="sum"), so
  uneven shards weigh each row alike;
- the fetched loss and metrics are summed over ranks in the step (one small allreduce), so
  every rank logs the same global values; the progress bar and the callbacks that write files
  run on rank 0 only;
- the variables are broadcast from rank 0 once, when the training step is first built.
Alone (no mpirun, or a world of one) nothing changes.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np


def data_parallel_world() -> Any:
    """graphc.distributed's world when it has several processes, else None (never imports it)."""
    world = sys.modules.get("graphc.distributed.world")
    if world is None or not world.started():
        return None
    current = world.current()
    return current if current.size > 1 else None


def global_count(weights_sum: Any) -> Any:
    from .distributed import allreduce

    return allreduce(weights_sum, average=False, name="sample_count")


def summing_optimizer(optimizer: Any) -> Any:
    from .distributed import DistributedOptimizer

    inner = optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer
    return DistributedOptimizer(inner, op="sum")


def global_fetches(fetches: dict[str, Any]) -> dict[str, Any]:
    """The loss and metrics (each this rank's share of the step's mean) summed over ranks."""
    from .api.array import stack, unstack
    from .distributed import allreduce

    names = [k for k in fetches if k != "step"]
    summed = unstack(allreduce(stack([fetches[k] for k in names]), average=False, name="step_metrics"))
    out = dict(zip(names, summed))
    if "step" in fetches:
        out["step"] = fetches["step"]
    return out


def broadcast_variables(variables: list[Any]) -> Any:
    from .distributed import broadcast_global_variables

    return broadcast_global_variables(0, variables)


def shards(order: np.ndarray, world: Any) -> tuple[np.ndarray, int, list[int]]:
    """This rank's rows of `order` padded to the longest shard, how many are real, and every
    rank's real count."""
    if world is None:
        return order, len(order), [len(order)]
    lengths = [len(order[r::world.size]) for r in range(world.size)]
    mine = order[world.rank::world.size]
    longest = max(lengths)
    if len(mine) < longest:
        filler = mine[:1] if len(mine) else order[:1]
        mine = np.concatenate([mine, np.repeat(filler, longest - len(mine))])
    return mine, lengths[world.rank], lengths


def steps_of(lengths: list[int], batch_size: int) -> int:
    return -(-max(lengths) // batch_size) if lengths else 0


def real_rows(lengths: list[int], first: int, batch_size: int) -> int:
    """Real rows of the step starting at row `first` of each shard, over all ranks."""
    return sum(min(max(n - first, 0), batch_size) for n in lengths)

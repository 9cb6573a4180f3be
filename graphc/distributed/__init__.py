"""graphc.distributed: data-parallel training over MPI, Horovod-style (`pip install
"graphc[mpi]"`, then `mpirun -n N python train.py`).

    import graphc.distributed as gd
    gd.init()
    opt = gd.DistributedOptimizer(gc.train.AdamOptimizer(0.001))
    train_op = opt.minimize(loss)
    sync = gd.broadcast_global_variables(0)
    sess.run(gc.global_variables_initializer()); sess.run(sync)

Collectives are graph ops that compiled programs run between kernels (graphc/ops/collective.py,
graphc/runtime/host_calls.py); gradients travel in buckets; every exchange has a deadline and
the ranks check that they run the same graph (world.py). A process not started by mpirun is a
world of one, and graphc without this module imported works as before.
"""
from __future__ import annotations

from .collectives import allgather, allreduce, broadcast, broadcast_global_variables, bucketed_allreduce
from .optimizer import DistributedOptimizer
from .world import DEFAULT_TIMEOUT, current, started


def init(timeout: float | None = None) -> None:
    """Join the MPI world (a world of one outside mpirun). `timeout`: seconds any exchange may
    take before DistributedError (default 30, or GRAPHC_MPI_TIMEOUT)."""
    from .world import start

    start(timeout)


def rank() -> int:
    return current().rank


def size() -> int:
    return current().size


def local_rank() -> int:
    """This process's rank among those on its machine (which GPU it should use)."""
    return current().local_rank


def is_initialized() -> bool:
    return started()


__all__ = ["DEFAULT_TIMEOUT", "DistributedOptimizer", "allgather", "allreduce", "broadcast",
           "broadcast_global_variables", "bucketed_allreduce", "init", "is_initialized", "local_rank", "rank",
           "size"]

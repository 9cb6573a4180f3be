"""How many CPUs this process may use: what the thread pool and the compile workers size to.

Why not os.cpu_count(): a container or a pinned process may use fewer cores than the host has;
sized to the host, a pool's threads would queue behind each other on the cores it does have.
"""
from __future__ import annotations

import math
import os


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask (taskset, a container's cpuset), capped
    by a cgroup CPU quota (cgroup v2 cpu.max, v1 cfs_quota_us / cfs_period_us) rounded up; not
    the host's core count, which a container or a pinned process may not have."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cgroup_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs' worth of time the cgroup quota allows, or None when there is no limit: cgroup v2's
    cpu.max ("quota period"), else v1's cpu.cfs_quota_us and cpu.cfs_period_us."""
    fields = (_read(os.path.join(root, "cpu.max")) or "").split()
    if len(fields) >= 2:
        quota, period = fields[:2]
    else:
        quota, period = (_read(os.path.join(root, "cpu", name)) for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
        if quota is None or period is None:
            return None
    if quota in ("max", "-1"):
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None

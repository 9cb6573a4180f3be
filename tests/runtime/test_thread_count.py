"""The pool's size follows the CPUs this process may use (affinity, cgroup quota), not the
host's core count; GRAPHC_NUM_THREADS overrides it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphc.runtime import threads

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import os, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # pinned to one CPU, like taskset -c
import graphc.runtime.threads as t
print(t.available_cpus(), t.pool().size)
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity (Linux)")
def test_a_process_pinned_to_one_cpu_gets_one_thread():
    env = {k: v for k, v in os.environ.items() if k != "GRAPHC_NUM_THREADS"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]
    env["GRAPHC_NUM_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.stdout.split() == ["1", "3"]


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000"}, None),
    ({"cpu.max": "150000 100000"}, 1.5),
    ({"cpu.max": "50000 100000"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3.0),
    ({}, None),
    ({"cpu.max": "garbage"}, None),
])
def test_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    assert threads._cgroup_quota(str(tmp_path)) == expected


def test_the_quota_caps_the_affinity(monkeypatch):
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.5)
    assert threads.available_cpus() == min(2, len(os.sched_getaffinity(0)))
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.2)
    assert threads.available_cpus() == 1


def test_bad_thread_setting(monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "many")
    with pytest.raises(Exception, match="whole number"):
        threads.configured_threads()

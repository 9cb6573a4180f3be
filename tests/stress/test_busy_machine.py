"""A few fresh processes run their first parallel kernel beside busy processes: none may hang
(the full run, 20 processes, is `python -m tests.stress.busy_machine`)."""
from tests.stress.busy_machine import run


def test_first_parallel_kernel_beside_busy_processes():
    assert run(processes=4, busy=2, timeout=120, threads=2) == {"finished": 4, "hung": 0, "failed": 0}

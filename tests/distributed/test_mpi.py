"""graphc.distributed under `mpirun -n 2` (tests/distributed/mpi_worker.py on each rank): 20
training steps give the weights one process gets on the whole batch (ranks starting from
different weights, an uneven split; TF1 code and Model.fit), and a rank that raises, is
killed, stalls or builds another graph stops the job with a clear error within the timeout.
Skipped only where the mpi extra (mpi4py, Open MPI) is not installed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from tests.distributed import mpi_worker

pytest.importorskip("mpi4py", reason='the mpi extra is not installed: pip install -e ".[mpi]"')
MPIRUN = shutil.which("mpirun") or str(Path(sys.executable).parent / "mpirun")
if not Path(MPIRUN).exists():
    pytest.skip("mpirun is not installed (the mpi extra installs Open MPI)", allow_module_level=True)

TESTED_OPS = {"MpiAllreduce", "MpiBroadcast"}
ROOT = Path(__file__).resolve().parents[2]


def run_ranks(mode: str, out: Path, ranks: int = 2, timeout_s: float | None = None,
              limit: float = 240) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe",
               GRAPHC_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [MPIRUN, "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "tests.distributed.mpi_worker",
               mode, str(out)] + ([str(timeout_s)] if timeout_s is not None else [])
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=limit, env=env, cwd=ROOT, check=False)
    return done, time.monotonic() - started


def _one_process_tf1() -> list[np.ndarray]:
    x_all, y_all = mpi_worker.data()
    with gc.Graph().as_default():
        x, y, count, loss, weights = mpi_worker.tf1_model(seed=100)   # rank 0's initial weights
        step = gc.train.AdamOptimizer(0.05).minimize(loss)
        with gc.Session() as sess:
            sess.run(gc.global_variables_initializer())
            for _ in range(mpi_worker.STEPS):
                sess.run(step, {x: x_all, y: y_all, count: float(len(x_all))})
            return sess.run(weights)


def test_two_ranks_train_as_one_process_on_the_whole_batch(tmp_path):
    done, _ = run_ranks("tf1", tmp_path / "w.npz")
    assert done.returncode == 0, done.stdout + done.stderr
    got = np.load(tmp_path / "w.npz")
    expected = _one_process_tf1()
    for i, e in enumerate(expected):
        np.testing.assert_allclose(got[f"arr_{i}"], e, rtol=1e-5, atol=1e-8)
    start = np.random.default_rng(100).normal(size=(6, 8)) * 0.5       # rank 0's initial w1
    assert np.abs(got["arr_0"] - start).max() > 0.05                      # it trained


def test_fit_is_data_parallel_and_matches_one_process(tmp_path):
    done, _ = run_ranks("fit", tmp_path / "fit.npz")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("Epoch 1/7") == 1                      # rank 0 alone shows progress
    got = np.load(tmp_path / "fit.npz")
    x_all, y_all = mpi_worker.data()
    gc.set_random_seed(3)
    model = gc.Sequential([gc.layers.Dense(8, activation="tanh"), gc.layers.Dense(1)])
    model.compile(gc.train.AdamOptimizer(0.05), "mse")
    history = model.fit(x_all, y_all, batch_size=10, epochs=7, seed=11, verbose=0)   # 2 ranks x 5 rows
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(got[f"arr_{i}"], w, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got["loss"], history.history["loss"], rtol=1e-6)


@pytest.mark.parametrize("mode, message", [
    ("raise", "rank 1 fails on purpose"),
    ("kill", ""),
    ("mismatch", "the ranks run different graphs"),
    ("stall", "did not complete within 5 s"),
])
def test_a_failing_rank_stops_every_rank_in_bounded_time(tmp_path, mode, message):
    done, seconds = run_ranks(mode, tmp_path / "never.npz", timeout_s=5.0, limit=120)
    assert done.returncode != 0
    assert seconds < 30, f"{mode}: took {seconds:.1f} s"
    assert message in done.stdout + done.stderr, done.stdout + done.stderr
    assert not (tmp_path / "never.npz").exists()

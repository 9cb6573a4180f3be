"""Run fuzz cases in worker processes, so that a hang, a crash or runaway memory is an outcome
that is counted, not the end of the run.

    python -m tests.fuzz.driver gcx --count 10000 --seed 1
    python -m tests.fuzz.driver onnx --count 3000 --seed 1 --jobs 2

A case module (tests/fuzz/gcx_cases.py, onnx_cases.py) gives `cases(seed, count)`, yielding
(case id, bytes of a mutated file), and `run_case(bytes) -> label`, which loads the file and runs
it if it loads; it returns "ok" or the name of the GraphcError subclass raised, and lets every
other exception through. The driver writes each case to a folder, hands its path to a worker
over a pipe and waits at most --timeout seconds for the answer. A worker that dies is a "crash",
one that does not answer is killed as a "hang", one whose peak resident memory passed --rss-mb
is "rss"; any of the three, or an exception that is not a GraphcError, is a failure, saved under
--keep for reproduction. The exit status is 1 when there was any failure.
"""
from __future__ import annotations

import argparse
import collections
import importlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAILURES = ("crash", "hang", "rss", "exception")
STARTUP_SECONDS = 300   # importing graphc (and onnx) on a busy machine


def _worker(kind: str) -> None:
    """Answer one JSON line per case path read from stdin: {"label", "rss_mb"[, "error"]}."""
    import resource
    import traceback

    import graphc as gc

    module = importlib.import_module(f"tests.fuzz.{kind}_cases")
    out = sys.stdout
    sys.stdout = sys.stderr   # whatever a case prints must not garble the answers
    out.write("ready\n")     # imports done: from now on the driver times the cases alone
    out.flush()
    for line in sys.stdin:
        data = Path(line.strip()).read_bytes()
        answer: dict = {}
        try:
            answer["label"] = module.run_case(data)
        except gc.GraphcError as err:
            answer["label"] = type(err).__name__
        except BaseException as err:   # the failures the fuzzer looks for
            answer["label"] = "exception"
            answer["error"] = f"{type(err).__name__}: {str(err)[:300]}"
            answer["trace"] = traceback.format_exc()[-3000:]
        answer["rss_mb"] = _peak_rss_mb(resource)
        out.write(json.dumps(answer) + "\n")
        out.flush()


def _peak_rss_mb(resource) -> float:
    """This process's peak resident memory. /proc's VmHWM belongs to the process image, whereas
    getrusage's ru_maxrss survives exec: a worker started by a big process (a pytest worker)
    would report its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Worker:
    kind: str
    proc: subprocess.Popen = field(init=False)

    def __post_init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.driver", "--worker", self.kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env, cwd=REPO)
        if not self._wait_readable(STARTUP_SECONDS) or self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError(f"a {self.kind} fuzz worker did not start")

    def _wait_readable(self, timeout: float) -> bool:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        return bool(ready)

    def ask(self, path: Path, timeout: float) -> dict:
        try:
            self.proc.stdin.write(f"{path}\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"label": "crash", "error": f"worker exited with {self.proc.poll()}"}
        if not self._wait_readable(timeout):
            self.stop()
            return {"label": "hang", "error": f"no answer in {timeout:.0f} s"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return {"label": "crash", "error": f"worker exited with {code}"}
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run(kind: str, seed: int, count: int, timeout: float, rss_mb: float, keep: Path | None,
        log=sys.stderr) -> dict:
    """Run `count` cases of `kind` from `seed`; a summary {labels, failures, seconds}."""
    module = importlib.import_module(f"tests.fuzz.{kind}_cases")
    labels: collections.Counter = collections.Counter()
    failures: list[dict] = []
    started = time.perf_counter()
    worker: Worker | None = None
    with tempfile.TemporaryDirectory(prefix="graphc-fuzz-") as tmp:
        try:
            for i, (case_id, data) in enumerate(module.cases(seed, count)):
                path = Path(tmp) / f"case-{i}"
                path.write_bytes(data)
                if worker is None:
                    worker = Worker(kind)
                answer = worker.ask(path, timeout)
                label = answer["label"]
                if label not in ("crash", "hang") and answer.get("rss_mb", 0) > rss_mb:
                    label = "rss"
                if label in ("crash", "hang", "rss"):
                    worker.stop()
                    worker = None     # a fresh process for the next case
                labels[label] += 1
                if label in FAILURES:
                    failure = {"case": case_id, "label": label, **{k: v for k, v in answer.items() if k != "label"}}
                    failures.append(failure)
                    if keep is not None:
                        keep.mkdir(parents=True, exist_ok=True)
                        (keep / f"{kind}-{seed}-{i}.bin").write_bytes(data)
                    print(f"FAIL {case_id}: {label} {answer.get('error', '')}", file=log)
                if (i + 1) % 500 == 0:
                    print(f"{kind}: {i + 1} cases, {dict(labels)}", file=log)
                path.unlink()
        finally:
            if worker is not None:
                worker.stop()
    return {"kind": kind, "seed": seed, "cases": sum(labels.values()), "labels": dict(labels),
            "failures": failures, "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["gcx", "onnx", "selftest"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take")
    parser.add_argument("--rss-mb", type=float, default=1024.0, help="peak resident memory a case may reach")
    parser.add_argument("--keep", type=Path, default=None, help="folder to save failing cases in")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.kind)
        return 0
    summary = run(args.kind, args.seed, args.count, args.timeout, args.rss_mb, args.keep)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['kind']} seed {summary['seed']}: {summary['cases']} cases in {summary['seconds']} s: "
              f"{summary['labels']}; {len(summary['failures'])} failures")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if len(sys.argv) > 1 else None))

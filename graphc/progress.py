"""Keras' per-epoch progress display for Model.fit: a bar redrawn per step on a terminal
(steps, ETA, the running loss and metrics), one line per epoch otherwise."""
from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """One epoch's display; `step` after each batch, `done` at the end of the epoch."""

    def __init__(self, out: TextIO, epoch: int, epochs: int) -> None:
        self.out, self.tty = out, bool(getattr(out, "isatty", lambda: False)())
        self.started = time.perf_counter()
        print(f"Epoch {epoch + 1}/{epochs}", file=out)
        self.steps = 0

    def step(self, step: int, steps: int, logs: dict[str, float]) -> None:
        self.steps = steps
        if not self.tty:
            return
        width = 30
        filled = int(width * step / steps)
        elapsed = time.perf_counter() - self.started
        eta = elapsed / step * (steps - step)
        metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        self.out.write(f"\r{step}/{steps} [{'=' * filled}{'.' * (width - filled)}] - ETA: {eta:.0f}s - {metrics}")
        self.out.flush()

    def done(self, logs: dict[str, float], seconds: float) -> None:
        per_step = seconds / max(self.steps, 1)
        pace = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else f"{per_step * 1e6:.0f}us/step"
        metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        line = f"{self.steps}/{self.steps} [{'=' * 30}] - {seconds:.0f}s {pace} - {metrics}"
        self.out.write(("\r" if self.tty else "") + line + "\n")
        self.out.flush()

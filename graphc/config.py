"""gc.ConfigProto: TF1's session configuration, for the settings graphc honours.

    sess = gc.Session(config=gc.ConfigProto(intra_op_parallelism_threads=1))

`intra_op_parallelism_threads`: how many of the process's pool threads one run may use (0: all
of them; the pool itself has GRAPHC_NUM_THREADS threads, else one per CPU this process may use).
`inter_op_parallelism_threads`, `allow_soft_placement` and `log_device_placement` are accepted
so TF1 code runs unchanged; graphc runs one kernel at a time and places nothing, so they change
nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidArgumentError


@dataclass
class ConfigProto:
    intra_op_parallelism_threads: int = 0
    inter_op_parallelism_threads: int = 0
    allow_soft_placement: bool = False
    log_device_placement: bool = False

    def __post_init__(self) -> None:
        for name in ("intra_op_parallelism_threads", "inter_op_parallelism_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidArgumentError(f"ConfigProto {name} must be a whole number >= 0, got {value!r}")

    @property
    def threads(self) -> int | None:
        """The thread limit of a run (None: the whole pool)."""
        return self.intra_op_parallelism_threads or None

"""Turning a compiled program's error record into the error the user sees: the check that
failed (by its code, graphc.lower.kernel.number_checks), the offending value and iteration, the
op, its node and the source line that created it. Shared by the CPU and CUDA executables."""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from ..lower.kernel import KernelProgram, walk_kernels


def check_failure(kp: KernelProgram, code: int, value: int, where: int) -> InvalidArgumentError:
    check = kp.errors[code - 1]
    kernel = next(k for k in walk_kernels(kp.kernels) if check in getattr(k, "checks", ()))
    iteration = tuple(int(i) for i in np.unravel_index(where, kernel.space)) if kernel.space else ()
    index = list(check.where(iteration)) if check.where is not None else list(iteration)
    node = check.node
    message = check.message(value, index) if callable(check.message) else check.message.format(value=value, index=index)
    return InvalidArgumentError(message, op_type=node.type, node_name=node.name, source=node.source)

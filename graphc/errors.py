"""The errors graphc raises on purpose.

Every error names, where it can, the op type, the node's name and the line of user code that
created the node, so that a newcomer can find the mistake in their own code rather than in a
traceback through graphc's internals. Errors raised while a graph is being built capture the
user's line themselves; errors about an existing node carry that node's recorded line.

The classes also derive from the matching built-in exception (ValueError, TypeError, ...) so
that code written against NumPy habits (`except ValueError`) keeps working.
"""
from __future__ import annotations

from typing import Any

from .source import SourceLocation, capture_source


class GraphcError(Exception):
    """Base class of every error graphc raises deliberately."""

    def __init__(
        self,
        message: str,
        *,
        op_type: str | None = None,
        node_name: str | None = None,
        source: SourceLocation | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.op_type = op_type
        self.node_name = node_name
        self.source = source if source is not None else capture_source(2)
        self.hint = hint

    def attach_node(self, op_type: str, node_name: str, source: SourceLocation | None) -> "GraphcError":
        """Fill in the node this error is about, unless it already names one."""
        if self.node_name is None:
            self.op_type = op_type
            self.node_name = node_name
            if source is not None:
                self.source = source
        return self

    def __str__(self) -> str:
        head = self.message
        if self.node_name is not None:
            head = f"{self.op_type} '{self.node_name}': {self.message}"
        lines = [head]
        if self.source is not None:
            code = self.source.code()
            where = f"  node created at {self.source}" if self.node_name else f"  at {self.source}"
            lines.append(where + (f"\n    {code}" if code else ""))
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.op_type, self.node_name, self.source, self.hint))


def _rebuild(cls, message, op_type, node_name, source, hint):  # pragma: no cover - pickling support
    return cls(message, op_type=op_type, node_name=node_name, source=source, hint=hint)


class ShapeError(GraphcError, ValueError):
    """Shapes that cannot work together (found at build time where the shapes are known)."""


class DTypeError(GraphcError, TypeError):
    """A dtype an op cannot take, or a mix NumPy would reject."""


class FeedError(GraphcError, ValueError):
    """A bad feed_dict or function argument: missing, wrong dtype, wrong shape, not a tensor."""


class CompileError(GraphcError):
    """The graph cannot be compiled for the requested fetches, feeds and backend."""


class GraphFileError(GraphcError, ValueError):
    """A graph file that is not valid (never executes code from the file)."""


class InvalidAttributeError(GraphcError, ValueError):
    """An op attribute of the wrong type or out of range (a misused low-level API, or a graph
    file whose node carries a value no builder makes)."""


class InvalidArgumentError(GraphcError, ValueError):
    """Data found bad while running (an index out of range, a failed numerics check)."""


class FailedPreconditionError(GraphcError, RuntimeError):
    """Running needs state that is missing, e.g. a variable that was never initialized."""


class BackendUnavailableError(GraphcError, RuntimeError):
    """A backend cannot run here: a piece it needs (PyCUDA, a GPU, a compiler) is missing."""


class ResourceExhaustedError(GraphcError, MemoryError):
    """A device ran out of memory (TF1's ResourceExhaustedError)."""


class DeviceError(GraphcError, RuntimeError):
    """The device failed while running compiled code (a CUDA launch or copy error)."""


class DistributedError(GraphcError, RuntimeError):
    """Processes training together (graphc.distributed, MPI) failed to agree: a rank stopped or
    failed, a collective timed out, or the ranks run different graphs."""


def internal_error(message: str) -> GraphcError:
    """An invariant of graphc itself broke: the message asks for a bug report."""
    return CompileError(f"internal error: {message} (this is a graphc bug; please report it)")

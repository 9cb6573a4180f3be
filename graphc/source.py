"""Where in the user's code something happened.

Every node records the line of user code that created it, so that an error found much later
(at compile time, at run time, in a loaded file) can still point at the line the user wrote.
"User code" is the first stack frame outside the graphc package itself.
"""
from __future__ import annotations

import linecache
import os
import sys
from dataclasses import dataclass

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A file, line and function of user code."""

    filename: str
    lineno: int
    function: str = ""

    def code(self) -> str:
        """The text of the line, stripped, or "" when the file is not readable."""
        return linecache.getline(self.filename, self.lineno).strip()

    def __str__(self) -> str:
        where = f"{self.filename}:{self.lineno}"
        if self.function and self.function != "<module>":
            where += f" in {self.function}"
        return where


def capture_source(skip: int = 1) -> SourceLocation | None:
    """The innermost stack frame whose code lies outside the graphc package.

    Walking frames is cheap (well under a microsecond per frame) and happens once per node.
    """
    try:
        frame = sys._getframe(skip)
    except ValueError:
        return None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<frozen "):
            return SourceLocation(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None

"""Where in the user's code something happened.

Every node records the line of user code that created it, so that an error found much later
(at compile time, at run time, in a loaded file) can still point at the line the user wrote.
"User code" is the first stack frame outside the graphc package itself.

A location captured in this process reads its line's text lazily from the file (linecache), as a
traceback does. A location that came from elsewhere (a loaded graph file) carries the text that
was recorded when it was saved, in `text`, and never opens a file: the file name in an untrusted
graph could name anything (/etc/passwd, /dev/zero, a FIFO).
"""
from __future__ import annotations

import linecache
import os
import sys
from dataclasses import dataclass, field

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
MAX_CODE_CHARS = 200   # of a source line's text kept in a graph file


def shorten_code(text: str, limit: int = MAX_CODE_CHARS) -> str:
    """`text` stripped and cut to at most `limit` characters, the last being an ellipsis when
    it was cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A file, line and function of user code, and for a recorded location its line's text.

    `text` is None for a location captured in this process (its text is read from the file when
    asked for); a string, possibly empty, for a location recorded elsewhere, whose file must
    never be opened. It takes no part in equality: it is a copy of what the file says.
    """

    filename: str
    lineno: int
    function: str = ""
    text: str | None = field(default=None, compare=False)

    def code(self) -> str:
        """The text of the line, stripped: the recorded text when there is one, else the line
        read from the file ("" when the file is not readable)."""
        if self.text is not None:
            return self.text
        return linecache.getline(self.filename, self.lineno).strip()

    def recorded_code(self, limit: int = MAX_CODE_CHARS) -> str:
        """The line's text as a graph file records it: stripped, at most `limit` characters
        (longer lines end in an ellipsis)."""
        return shorten_code(self.code(), limit)

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

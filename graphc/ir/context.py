"""The default session stack, kept in the IR so that `Tensor.eval()` can find a session.

Sessions push themselves here (`with gc.Session() as sess:` or `sess.as_default()`); the IR only
calls `.run` on what it finds, and never imports the session module.
"""
from __future__ import annotations

import threading
from typing import Any

from ..errors import GraphcError

_local = threading.local()


def _stack() -> list[Any]:
    stack = getattr(_local, "sessions", None)
    if stack is None:
        stack = _local.sessions = []
    return stack


def push_session(session: Any) -> None:
    _stack().append(session)


def pop_session(session: Any) -> None:
    stack = _stack()
    if stack and stack[-1] is session:
        stack.pop()
    elif session in stack:
        stack.remove(session)


def get_default_session() -> Any | None:
    stack = _stack()
    return stack[-1] if stack else None


def session_for(session: Any | None) -> Any:
    """`session` if given, else the default session, else a clear error."""
    if session is not None:
        return session
    default = get_default_session()
    if default is None:
        raise GraphcError(
            "eval() needs a session: none was passed and no default session is active",
            hint="use `with gc.Session() as sess:` around the call, or pass session=sess",
        )
    return default

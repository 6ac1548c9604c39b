"""Per-request trace context, held in one contextvar so a log line pays for a single lookup.

The middleware sets it for the duration of a request; asyncio tasks and Starlette's threadpool copy the
context, so library code, sync endpoints and background tasks of that request see the same ids.
"""

from __future__ import annotations

import contextvars
from typing import NamedTuple


class TraceContext(NamedTuple):
    trace_id: str
    span_id: str
    request_id: str | None = None


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("obskit_trace_context", default=None)


def get_trace_context() -> TraceContext | None:
    """The trace context of the request (or span) being served, or ``None`` outside one."""
    return _current.get()


def set_trace_context(ctx: TraceContext | None) -> contextvars.Token[TraceContext | None]:
    return _current.set(ctx)


def reset_trace_context(token: contextvars.Token[TraceContext | None]) -> None:
    _current.reset(token)

"""W3C trace context (``traceparent``), request ids, and the active OpenTelemetry span."""

from __future__ import annotations

import random
import re
import sys
from typing import Any

# version "00" is the one defined; later versions must still start with these four fields (W3C §3.2.4)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[0-9a-f].*)?")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._~:/+=@-]{1,128}")
_getrandbits = random.getrandbits
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """``(trace_id, parent_span_id, flags)`` of a well-formed header, else ``None``.

    Rejected, per the W3C spec: wrong lengths, uppercase hex, an all-zero trace or span id, version
    ``ff``, and extra fields on version ``00``.
    """
    if len(value) > 512:
        return None
    m = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


def new_trace_id() -> str:
    # Like OpenTelemetry's RandomIdGenerator: ids must be unique, not secret, and os.urandom's syscall
    # would cost more than the rest of id handling. The random module reseeds itself after fork().
    return f"{_getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{_getrandbits(64) or 1:016x}"


def valid_request_id(value: str) -> bool:
    """A short printable token: 1-128 characters of letters, digits and ``._~:/+=@-``."""
    return _REQUEST_ID.fullmatch(value) is not None


def otel_span() -> Any:
    """The active, valid OpenTelemetry span, or ``None`` (never imports OpenTelemetry itself)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    try:
        span = trace.get_current_span()
        return span if span.get_span_context().is_valid else None
    except Exception:
        return None


def otel_mark_failed(span: Any, exc: BaseException) -> None:
    """Record ``exc`` on the span and set its status to error, as OpenTelemetry's conventions ask."""
    try:
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}"))
    except Exception:  # noqa: S110 - tracing must never break the request
        pass

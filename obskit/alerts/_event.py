"""The alert event every hook is built from (SPEC §6, ``schemas/alert.schema.json``)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

import orjson

Severity = Literal["critical", "error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "error", "warning", "info")

# Bounds keep one event small whatever the exception says: PagerDuty caps summaries at 1024 characters,
# Standard Webhooks advises payloads under ~20 KB.
MAX_TITLE = 1024
MAX_MESSAGE = 4096
MAX_FIELD = 512


class ErrorDict(TypedDict):
    type: str
    message: str


class RequestDict(TypedDict):
    method: str
    path: str


class AlertDict(TypedDict):
    id: str
    fingerprint: str
    service: str
    environment: str | None
    severity: Severity
    title: str
    error: ErrorDict
    trace_id: str | None
    request: RequestDict | None
    first_seen: str
    last_seen: str
    count: int
    timestamp: str
    code: NotRequired[str]
    known: NotRequired[bool]


def new_event_id() -> str:
    # A UUID holds no '.', which Standard Webhooks forbids in a webhook-id.
    return str(uuid.uuid4())


def format_time(ts: float) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z``, as every obskit timestamp."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


_TRACE_ID = re.compile(r"(?!0{32})[0-9a-f]{32}")


def valid_trace_id(value: str | None) -> str | None:
    """A W3C trace id (32 lowercase hex, not all zero) or ``None``: alerts never carry a malformed one."""
    return value if value is not None and _TRACE_ID.fullmatch(value) else None


def normalize_severity(value: str) -> Severity:
    """Map any level name onto the four alert severities; unknown names become ``error``."""
    v = value.lower()
    if v in ("critical", "fatal", "emergency", "alert"):
        return "critical"
    if v in ("warning", "warn"):
        return "warning"
    if v in ("info", "debug", "notice"):
        return "info"
    return "error"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One routing decision about one bug: the first occurrence, or a follow-up with the count so far.

    ``id`` is unique per decision and stays the same across every delivery attempt and spool replay,
    so receivers can use it as an idempotency key. Times are Unix seconds (UTC).
    """

    id: str
    fingerprint: str
    service: str
    environment: str | None
    severity: Severity
    title: str
    error_type: str
    error_message: str
    trace_id: str | None
    method: str | None
    path: str | None
    first_seen: float
    last_seen: float
    count: int
    timestamp: float
    code: str | None = None
    known: bool = False

    @property
    def summary(self) -> str:
        """``"<type>: <message>"``, the one-line description hooks show."""
        msg = self.error_message.splitlines()[0] if self.error_message else ""
        return f"{self.error_type}: {msg}" if msg else self.error_type

    def to_dict(self) -> AlertDict:
        """The SPEC §6 shape: what the ``Webhook`` hook posts and what the test fixture records."""
        out: AlertDict = {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "service": self.service,
            "environment": self.environment,
            "severity": self.severity,
            "title": self.title,
            "error": {"type": self.error_type, "message": self.error_message},
            "trace_id": self.trace_id,
            "request": (
                None
                if self.method is None and self.path is None
                else {"method": self.method or "", "path": self.path or ""}
            ),
            "first_seen": format_time(self.first_seen),
            "last_seen": format_time(self.last_seen),
            "count": self.count,
            "timestamp": format_time(self.timestamp),
        }
        if self.code is not None:
            out["code"] = self.code
        if self.known:
            out["known"] = True
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertEvent:
        """Rebuild an event from :meth:`to_dict` output (spool replay); raises on a malformed dict."""
        error = data["error"]
        request = data.get("request") or {}
        severity = data["severity"]
        if severity not in SEVERITIES:
            raise ValueError(f"bad severity {severity!r}")
        count = data["count"]
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"bad count {count!r}")
        return cls(
            id=str(data["id"]),
            fingerprint=str(data["fingerprint"]),
            service=str(data["service"]),
            environment=data.get("environment"),
            severity=severity,
            title=str(data["title"]),
            error_type=str(error["type"]),
            error_message=str(error["message"]),
            trace_id=data.get("trace_id"),
            method=request.get("method"),
            path=request.get("path"),
            first_seen=parse_time(data["first_seen"]),
            last_seen=parse_time(data["last_seen"]),
            count=count,
            timestamp=parse_time(data["timestamp"]),
            code=data.get("code"),
            known=bool(data.get("known", False)),
        )

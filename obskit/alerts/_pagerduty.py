"""PagerDuty Events API v2: a ``trigger`` whose ``dedup_key`` is the fingerprint.

Repeats and follow-ups carry the same ``dedup_key`` and so land in the already-open PagerDuty alert
instead of paging again. Success is ``202``; 429 and 5xx are retried, other 4xx are not.
"""

from __future__ import annotations

import hashlib
import socket
from typing import TYPE_CHECKING, Any

import orjson

from obskit.alerts._delivery import check_http_url, hook_attempts, hook_timeout, http_post, redacted_url
from obskit.alerts._event import format_time, truncate

if TYPE_CHECKING:
    from obskit.alerts._types import Delivery

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024
MAX_BODY = 512 * 1024


class PagerDuty:
    """Trigger a PagerDuty alert per bug.

    Args:
        routing_key: The integration (routing) key. Never logged or shown in ``repr``.
        url: Full enqueue URL (override for EU or for tests).
        timeout: Seconds for one attempt.
        max_attempts: Attempts before the alert is dropped.
        source: ``payload.source``; defaults to the host name.

    Raises:
        ValueError: An empty routing key or a non-http(s) URL.
    """

    wants_exception = False

    def __init__(
        self,
        routing_key: str,
        *,
        url: str = DEFAULT_URL,
        timeout: float = 10.0,
        max_attempts: int = 8,
        source: str | None = None,
    ) -> None:
        if not isinstance(routing_key, str) or not routing_key.strip():
            raise ValueError("PagerDuty: routing_key must be a non-empty string (the integration key)")
        self._routing_key = routing_key
        self.url = check_http_url(url, "PagerDuty")
        self.timeout = hook_timeout(timeout, "PagerDuty")
        self.max_attempts = hook_attempts(max_attempts, "PagerDuty")
        self.source = source or socket.gethostname() or "obskit"
        self.name = f"pagerduty {redacted_url(url)}"
        self.key = "pagerduty-" + hashlib.sha256(f"{url}\0{routing_key}".encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"PagerDuty(routing_key='***', url={redacted_url(self.url)!r})"

    def build(self, delivery: Delivery) -> dict[str, Any]:
        e = delivery.event
        summary = f"[{e.service}] {e.title}"
        if e.count > 1:
            summary += f" ({e.count} occurrences)"
        details: dict[str, Any] = {
            "alert_id": e.id,
            "fingerprint": e.fingerprint,
            "count": e.count,
            "first_seen": format_time(e.first_seen),
            "last_seen": format_time(e.last_seen),
            "error_type": e.error_type,
            "error_message": e.error_message,
            "trace_id": e.trace_id,
            "request_method": e.method,
            "request_path": e.path,
            "environment": e.environment,
        }
        if e.code is not None:
            details["code"] = e.code
        payload: dict[str, Any] = {
            "summary": truncate(summary, MAX_SUMMARY),
            "source": self.source,
            "severity": e.severity,  # obskit's four severities are exactly PagerDuty's
            "timestamp": format_time(e.timestamp),
            "component": e.service,
            "class": e.error_type,
            "custom_details": {k: v for k, v in details.items() if v is not None},
        }
        if e.environment:
            payload["group"] = e.environment
        return {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": e.fingerprint,
            "payload": payload,
            "client": "obskit",
        }

    async def send(self, delivery: Delivery) -> None:
        body = orjson.dumps(self.build(delivery))
        if len(body) >= MAX_BODY:  # cannot happen with obskit's field bounds; keep the page anyway
            doc = self.build(delivery)
            doc["payload"]["custom_details"] = {"note": "details dropped: over PagerDuty's 512 KB limit"}
            body = orjson.dumps(doc)
        await http_post(
            delivery, self.url, timeout=self.timeout, content=body, headers={"content-type": "application/json"}
        )

"""Prometheus Alertmanager ``POST /api/v2/alerts``, to every configured Alertmanager.

Labels (the alert's identity, low cardinality, snake_case names as Alertmanager requires):
``alertname``, ``service``, ``environment``, ``severity``, ``fingerprint``, ``error_type``. Everything
else is an annotation (latest wins). ``startsAt`` is ``first_seen``; ``endsAt`` is the later of
``last_seen`` and the time of the attempt, plus ``resolve_after`` (default: twice the router's
``dedup_window``), so the alert resolves by itself once the bug has been quiet. Twice, not once: follow-ups
go out at window ends, and a bug that fired early in one window and again in the next would otherwise flap
to resolved in between (ALERTING.md §6.10). The attempt time, not the event's: an alert delivered late (a
retry after an Alertmanager outage, a spool replay after a restart) would otherwise arrive with ``endsAt``
in the past, which Alertmanager stores as resolved and never notifies (ALERTING.md §1.1).

Each URL is its own delivery target with its own retries ("send every alert to every Alertmanager, do not
load-balance"); Alertmanager's HA dedups the copies. 400 and 422 are permanent (Alertmanager stores the
valid part of a batch anyway).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from obskit.alerts._delivery import check_http_url, hook_attempts, hook_timeout, http_post, redacted_url
from obskit.alerts._event import format_time

if TYPE_CHECKING:
    from obskit.alerts._types import AlertHook, Delivery

ALERTNAME = "ObskitUnhandledException"


def build_alert(delivery: Delivery, *, alertname: str, resolve_after: float | None, now: float) -> dict[str, Any]:
    """The alert object for one attempt sent at ``now`` (unix seconds)."""
    e = delivery.event
    labels = {
        "alertname": alertname,
        "service": e.service,
        "environment": e.environment or "",
        "severity": e.severity,
        "fingerprint": e.fingerprint,
        "error_type": e.error_type,
    }
    annotations = {
        "summary": e.title,
        "description": e.summary,
        "error_message": e.error_message,
        "trace_id": e.trace_id or "",
        "request_method": e.method or "",
        "request_path": e.path or "",
        "count": str(e.count),
        "first_seen": format_time(e.first_seen),
        "last_seen": format_time(e.last_seen),
        "obskit_alert_id": e.id,
        "code": e.code or "",
    }
    window = resolve_after if resolve_after is not None else 2 * delivery.dedup_window
    ends = max(e.last_seen, now) + window
    return {
        # Empty values would be dropped by Alertmanager anyway; leaving them out keeps the identity clear.
        "labels": {k: v for k, v in labels.items() if v},
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": format_time(e.first_seen),
        "endsAt": format_time(ends),
    }


class _AlertmanagerTarget:
    wants_exception = False

    def __init__(self, base: str, parent: Alertmanager) -> None:
        self.base = base
        self.url = base.rstrip("/") + "/api/v2/alerts"
        self.parent = parent
        self.timeout = parent.timeout
        self.max_attempts = parent.max_attempts
        self.name = f"alertmanager {redacted_url(base)}"
        self.key = "alertmanager-" + hashlib.sha256(base.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"<Alertmanager target {redacted_url(self.base)}>"

    async def send(self, delivery: Delivery) -> None:
        alert = build_alert(
            delivery, alertname=self.parent.alertname, resolve_after=self.parent.resolve_after, now=time.time()
        )
        await http_post(
            delivery,
            self.url,
            timeout=self.timeout,
            content=orjson.dumps([alert]),
            headers={"content-type": "application/json"},
        )


class Alertmanager:
    """Send alerts to one or several Prometheus Alertmanagers (API v2).

    Args:
        url: A base URL (``http://alertmanager:9093``) or a list of them; the alert is POSTed to
            ``<url>/api/v2/alerts`` on each, each with its own retries.
        alertname: The ``alertname`` label.
        resolve_after: Seconds after ``last_seen`` (or after the delivery, when that is later) at which
            Alertmanager resolves the alert (default: twice the router's ``dedup_window``).
        timeout: Seconds for one attempt.
        max_attempts: Attempts per URL before the alert is dropped for that URL.

    Raises:
        ValueError: No URL, or a URL that is not http(s).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        alertname: str = ALERTNAME,
        resolve_after: float | None = None,
        timeout: float = 10.0,
        max_attempts: int = 8,
    ) -> None:
        urls: list[Any] = [url] if isinstance(url, str) or not isinstance(url, Sequence) else list(url)
        if not urls:
            raise ValueError("Alertmanager: give at least one base URL, e.g. 'http://127.0.0.1:9093'")
        self.urls = tuple(check_http_url(u, "Alertmanager") for u in urls)
        if not alertname or not alertname.strip():
            raise ValueError("Alertmanager: alertname must be a non-empty string")
        if resolve_after is not None and not resolve_after > 0:
            raise ValueError("Alertmanager: resolve_after must be a positive number of seconds or None")
        self.alertname = alertname
        self.resolve_after = resolve_after
        self.timeout = hook_timeout(timeout, "Alertmanager")
        self.max_attempts = hook_attempts(max_attempts, "Alertmanager")
        self._targets = tuple(_AlertmanagerTarget(u, self) for u in self.urls)

    def __repr__(self) -> str:
        return f"Alertmanager(url={[redacted_url(u) for u in self.urls]!r})"

    def targets(self) -> Sequence[AlertHook]:
        """One delivery target per URL, so a down Alertmanager never delays the others."""
        return self._targets

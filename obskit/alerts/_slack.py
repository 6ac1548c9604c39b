"""Slack incoming webhook: ``text`` (the notification fallback) plus Block Kit ``blocks``.

Kept inside Slack's documented limits: header text ≤ 150 characters, section text ≤ 3000, section
fields ≤ 10 of ≤ 2000 each, a handful of blocks (≤ 50). ``&``, ``<`` and ``>`` are escaped as Slack's
mrkdwn requires. The URL is the credential, so it is never logged.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from obskit.alerts._delivery import check_http_url, hook_attempts, hook_timeout, http_post, redacted_url
from obskit.alerts._event import format_time, truncate

if TYPE_CHECKING:
    from obskit.alerts._types import Delivery

MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_TEXT = 3000
_EMOJI = {
    "critical": ":rotating_light:",
    "error": ":red_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
}


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Slack:
    """Post a message per alert to a Slack incoming webhook.

    Args:
        url: The incoming-webhook URL (a secret: never logged, hidden in ``repr``).
        timeout: Seconds for one attempt.
        max_attempts: Attempts before the alert is dropped.

    Raises:
        ValueError: ``url`` is not http(s).
    """

    wants_exception = False

    def __init__(self, url: str, *, timeout: float = 10.0, max_attempts: int = 8) -> None:
        self.url = check_http_url(url, "Slack")
        self.timeout = hook_timeout(timeout, "Slack")
        self.max_attempts = hook_attempts(max_attempts, "Slack")
        self.name = f"slack {redacted_url(url)}"
        self.key = "slack-" + hashlib.sha256(url.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Slack(url={redacted_url(self.url)!r})"

    def build(self, delivery: Delivery) -> dict[str, Any]:
        e = delivery.event
        times = f" (x{e.count})" if e.count > 1 else ""
        where = f" · {e.environment}" if e.environment else ""
        text = truncate(f"{_EMOJI[e.severity]} [{e.severity}] {e.service}{where}: {e.title}{times}", MAX_TEXT)
        fields = [
            ("Service", e.service),
            ("Environment", e.environment or "—"),
            ("Severity", e.severity),
            ("Occurrences", str(e.count)),
        ]
        if e.method is not None or e.path is not None:
            fields.append(("Request", f"{e.method or ''} {e.path or ''}".strip()))
        if e.trace_id:
            fields.append(("Trace id", e.trace_id))
        message = (e.error_message or "(no message)").replace("```", "'''")
        context = (
            f"fingerprint `{e.fingerprint}` · first seen {format_time(e.first_seen)}"
            f" · last seen {format_time(e.last_seen)} · alert {e.id}"
        )
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(e.title or e.error_type, MAX_HEADER)}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": truncate(f"*{k}*\n{escape(v)}", MAX_FIELD)} for k, v in fields],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "```" + truncate(escape(f"{e.error_type}: {message}"), MAX_SECTION - 6) + "```",
                },
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(escape(context), MAX_FIELD)}]},
        ]
        return {"text": escape(text), "blocks": blocks}

    async def send(self, delivery: Delivery) -> None:
        body = orjson.dumps(self.build(delivery))
        await http_post(
            delivery, self.url, timeout=self.timeout, content=body, headers={"content-type": "application/json"}
        )

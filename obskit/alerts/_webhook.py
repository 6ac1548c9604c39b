"""Generic webhook: the SPEC alert event as JSON, signed per Standard Webhooks when a secret is set.

Standard Webhooks v1: headers ``webhook-id`` (the event id, the same on every attempt, so receivers can
dedup), ``webhook-timestamp`` (Unix seconds of *this* attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with the base64-decoded part of a
``whsec_…`` secret). The body is serialised once per event and those exact bytes are signed and sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import TYPE_CHECKING

from obskit.alerts._delivery import check_http_url, hook_attempts, hook_timeout, http_post, redacted_url
from obskit.alerts._types import Delivery, WebhookVerificationError

if TYPE_CHECKING:
    from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def _decode_secret(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise ValueError("secret must be a non-empty 'whsec_<base64>' string")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret must be 'whsec_' followed by base64 (Standard Webhooks format)") from None
    if not key:
        raise ValueError("secret must be 'whsec_' followed by base64 (Standard Webhooks format)")
    return key


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> None:
    """Verify a Standard Webhooks request as sent by :class:`Webhook` (for receivers of obskit alerts).

    Args:
        secret: The shared ``whsec_…`` secret.
        headers: The request headers (any key case).
        body: The raw request body, exactly as received.
        tolerance: Maximum distance in seconds between ``webhook-timestamp`` and ``now``.
        now: Current Unix time (defaults to ``time.time()``).

    Raises:
        WebhookVerificationError: A header is missing, the timestamp is outside the tolerance, or no
            ``v1`` signature matches.
        ValueError: ``secret`` is not a valid ``whsec_`` secret.
    """
    key = _decode_secret(secret)
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    timestamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the allowed tolerance")
    expected = sign(key, msg_id, timestamp, body).encode()
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no matching v1 signature")


class Webhook:
    """POST the SPEC §6 alert event as JSON to ``url``.

    Args:
        url: ``http(s)://`` endpoint. Treated as a secret: logs and ``repr`` show only its host.
        secret: Standard Webhooks secret (``whsec_<base64>``); when set every request is signed.
        timeout: Seconds for one attempt (connect, send and answer).
        max_attempts: Attempts before the alert is dropped (counted ``dropped_max_attempts``).
        headers: Extra request headers (for example an ``Authorization`` the receiver wants).

    Raises:
        ValueError: ``url`` is not http(s), or the secret is malformed.
    """

    wants_exception = False

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 8,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = check_http_url(url, "Webhook")
        self._key = _decode_secret(secret) if secret is not None else None
        if self._key is not None and not 24 <= len(self._key) <= 64:
            # Standard Webhooks: a signing secret is 24 to 64 random bytes; a shorter one is guessable.
            raise ValueError(f"secret must hold 24 to 64 bytes after 'whsec_', got {len(self._key)}")
        self.timeout = hook_timeout(timeout, "Webhook")
        self.max_attempts = hook_attempts(max_attempts, "Webhook")
        self._headers = dict(headers or {})
        self.name = f"webhook {redacted_url(url)}"
        self.key = "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        secret = "'***'" if self._key is not None else "None"
        return f"Webhook(url={redacted_url(self.url)!r}, secret={secret})"

    async def send(self, delivery: Delivery) -> None:
        body = delivery.event_json()
        msg_id = delivery.event.id
        timestamp = str(int(time.time()))  # per attempt: verifiers reject stale timestamps
        headers = {
            **self._headers,
            "content-type": "application/json",
            "user-agent": "obskit-alerts",
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
        }
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, msg_id, timestamp, body)
        await http_post(delivery, self.url, timeout=self.timeout, content=body, headers=headers)

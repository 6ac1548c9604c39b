"""Sentry, through the real ``sentry-sdk``: one event per alert with the exception, its trace id and
``fingerprint=[<obskit fingerprint>]`` so Sentry groups exactly as obskit does.

With a ``dsn`` the hook owns a dedicated ``sentry_sdk.Client`` (no default integrations, no local
variables, no PII) that never touches the application's own Sentry setup. That client only *builds* the
envelope (event processing, serialisation, scrubbing); its transport hands the envelope back instead of
queueing it, and obskit POSTs it to the DSN's envelope endpoint itself. The SDK's own transport would
report success on enqueue, drop on a full 100-slot queue and never retry; obskit's delivery retries
connection errors, timeouts, 429 and 5xx (honouring ``Retry-After``) and counts every drop. The event id
derives from the alert id, so a retried or replayed alert is the same Sentry event and Sentry dedups it.

Without a ``dsn`` the hook uses the client the application already initialised, and delivery is that
SDK's: best-effort, with no retries and no drop counts from obskit. Local variables are never sent either
way, exception messages are redacted like logs, and obskit's own ``obskit.alerts`` logger is excluded
from Sentry's logging integration so delivery problems never become Sentry events themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import threading
import uuid
from typing import TYPE_CHECKING, Any

from obskit.alerts._delivery import hook_attempts, hook_timeout, http_post
from obskit.alerts._event import format_time
from obskit.alerts._types import Delivery, DeliveryError

if TYPE_CHECKING:
    from obskit.alerts._event import AlertEvent

_LEVELS = {"critical": "fatal", "error": "error", "warning": "warning", "info": "info"}
MAX_TAG_VALUE = 200  # Sentry's documented limit; longer values (and ones with newlines) are discarded
DEFAULT_RATE_LIMIT = 60.0  # Sentry's rate-limiting spec: a 429 without Retry-After means wait 60 s


def _sdk() -> Any:
    try:
        import sentry_sdk  # noqa: PLC0415 - optional dependency, imported where used
    except ImportError:
        raise ImportError("obskit.alerts.Sentry needs sentry-sdk: pip install 'obskit[sentry]'") from None
    return sentry_sdk


def _redact(text: str) -> str:
    try:
        from obskit._redact import redact_text  # noqa: PLC0415
    except ImportError:  # pragma: no cover - ships with obskit
        return text
    return redact_text(text)


def _event_id(alert_id: str) -> str:
    """Sentry's 32-hex event id, derived from the alert id so every attempt and replay share it."""
    try:
        return uuid.UUID(alert_id).hex
    except ValueError:
        return hashlib.sha256(alert_id.encode()).hexdigest()[:32]


def _tag(value: str) -> str:
    return value.replace("\n", " ")[:MAX_TAG_VALUE]


def _hand_back_transport() -> Any:
    from sentry_sdk.transport import Transport  # noqa: PLC0415 - optional dependency

    class HandBack(Transport):
        """Hands each envelope back to the thread that captured it, so obskit delivers it (no SDK queue)."""

        def __init__(self) -> None:
            super().__init__()
            self.held = threading.local()

        def capture_envelope(self, envelope: Any) -> None:
            # Only the capture obskit is waiting for; envelopes from the SDK's own threads (sessions,
            # batchers) carry no alert and are discarded.
            if getattr(self.held, "waiting", False):
                self.held.envelope = envelope

    return HandBack()


class Sentry:
    """Report each alert to Sentry.

    Args:
        dsn: A Sentry DSN for a dedicated client that obskit delivers through (retried, counted), or
            ``None`` to hand events to the SDK client the application already initialised
            (``sentry_sdk.init``); that SDK then sends them best-effort, outside obskit's retries and stats.
        timeout: Seconds for one attempt (building the event and, with a ``dsn``, the HTTP request).
        max_attempts: Attempts before the alert is dropped.
        environment: The dedicated client's environment (defaults to the alert's, then to
            ``SENTRY_ENVIRONMENT``; never the SDK's made-up ``"production"``).

    Raises:
        ImportError: sentry-sdk is not installed.
        ValueError: The DSN is malformed.
    """

    wants_exception = True

    def __init__(
        self,
        dsn: str | None = None,
        *,
        timeout: float = 10.0,
        max_attempts: int = 3,
        environment: str | None = None,
    ) -> None:
        sdk = _sdk()
        from sentry_sdk.integrations.logging import ignore_logger  # noqa: PLC0415

        if dsn is not None:
            try:
                sdk.utils.Dsn(dsn)
            except Exception:
                raise ValueError("Sentry: dsn is not a valid DSN (https://<key>@<host>/<project id>)") from None
        self._dsn = dsn
        self._environment = environment
        self._client: Any = None
        self._transport: Any = None
        self._url = ""
        self._headers: dict[str, str] = {}
        if dsn is not None:
            auth = sdk.utils.Dsn(dsn).to_auth(f"sentry.python/{sdk.VERSION}")
            self._url = auth.get_api_url()  # .../api/<project>/envelope/: the key travels in a header only
            self._headers = {
                "content-type": "application/x-sentry-envelope",
                "user-agent": "obskit-alerts",
                "x-sentry-auth": auth.to_header(),
            }
        self.timeout = hook_timeout(timeout, "Sentry")
        self.max_attempts = hook_attempts(max_attempts, "Sentry")
        self.name = "sentry (dedicated client)" if dsn else "sentry (application client)"
        self.key = "sentry-" + hashlib.sha256((dsn or "<sdk>").encode()).hexdigest()[:12]
        ignore_logger("obskit.alerts")

    def __repr__(self) -> str:
        return f"Sentry(dsn={'***' if self._dsn else None})"

    def _get_client(self) -> Any:
        sdk = _sdk()
        if self._dsn is None:
            return sdk.get_client()
        if self._client is None:
            self._transport = _hand_back_transport()
            client = sdk.Client(
                dsn=self._dsn,
                transport=self._transport,
                default_integrations=False,
                auto_enabling_integrations=False,
                integrations=[],
                include_local_variables=False,
                # send_default_pii is deprecated in sentry-sdk 2.x and its default (None) already means
                # no PII: the SDK installs its EventScrubber. Passing it would only raise a warning.
                environment=self._environment,
                # Nothing for these to do: obskit sends, and its stats are the loss report.
                send_client_reports=False,
                enable_backpressure_handling=False,
                auto_session_tracking=False,
            )
            # With no environment the SDK fills in "production"; an unset one must stay unset.
            client.options["environment"] = self._environment or os.environ.get("SENTRY_ENVIRONMENT") or None
            self._client = client
        return self._client

    def build(
        self, event: AlertEvent, exc: BaseException | None, options: dict[str, Any]
    ) -> tuple[dict[str, Any], Any]:
        from sentry_sdk.utils import event_from_exception  # noqa: PLC0415

        opts = {**options, "include_local_variables": False}
        hint: Any = None
        if exc is not None:
            built, hint = event_from_exception(exc, client_options=opts)
            sentry_event: dict[str, Any] = dict(built)
            for value in sentry_event.get("exception", {}).get("values", []):
                if isinstance(value.get("value"), str):
                    value["value"] = _redact(value["value"])
        else:
            # A follow-up or a replayed alert: the live exception is gone, its type and message are not.
            module, _, name = event.error_type.rpartition(".")
            sentry_event = {
                "exception": {
                    "values": [{"type": name, "value": event.error_message, **({"module": module} if module else {})}]
                }
            }
        sentry_event["event_id"] = _event_id(event.id)
        # When the bug happened, not when this attempt runs: retries and replays stay the same event.
        sentry_event["timestamp"] = dt.datetime.fromtimestamp(event.last_seen, tz=dt.UTC)
        sentry_event["level"] = _LEVELS[event.severity]
        sentry_event["fingerprint"] = [event.fingerprint]
        tags = {
            "trace_id": event.trace_id,
            "service": event.service,
            "obskit.fingerprint": event.fingerprint,
            "obskit.alert_id": event.id,
            "code": event.code,
        }
        sentry_event["tags"] = {key: _tag(value) for key, value in tags.items() if value}
        sentry_event["extra"] = {
            "count": event.count,
            "first_seen": format_time(event.first_seen),
            "last_seen": format_time(event.last_seen),
            "title": event.title,
            "request_method": event.method,
            "request_path": event.path,
        }
        if event.trace_id:
            sentry_event["contexts"] = {"trace": {"trace_id": event.trace_id, "span_id": event.trace_id[:16]}}
        if event.environment and self._environment is None:
            sentry_event["environment"] = event.environment
        return sentry_event, hint

    def _capture(self, event: AlertEvent, exc: BaseException | None) -> bytes | None:
        """Capture through the SDK client; with a dedicated client, return the envelope to send."""
        client = self._get_client()
        if not client.is_active():
            raise DeliveryError("sentry_not_initialised", retryable=False, detail="call sentry_sdk.init() or pass dsn")
        held = self._transport.held if self._dsn is not None else None
        if held is not None:
            held.waiting, held.envelope = True, None
        try:
            sentry_event, hint = self.build(event, exc, dict(client.options))
            # No scope: the delivery thread's scope holds nothing of the request, and none should leak in.
            # capture_event calls the transport synchronously, so the envelope is held when it returns.
            event_id = client.capture_event(sentry_event, hint=hint, scope=None)
            envelope = held.envelope if held is not None else None
        finally:
            if held is not None:
                held.waiting, held.envelope = False, None
        if event_id is None or (held is not None and envelope is None):
            raise DeliveryError("sentry_discarded", retryable=False, detail="dropped by before_send or sampling")
        return envelope.serialize() if envelope is not None else None

    async def send(self, delivery: Delivery) -> None:
        # Building the event reads source files for the stack: keep that off the delivery loop.
        body = await asyncio.to_thread(self._capture, delivery.event, delivery.exception)
        if body is None:  # the application's client took it: its own transport sends it
            return
        try:
            await http_post(delivery, self._url, timeout=self.timeout, content=body, headers=self._headers)
        except DeliveryError as exc:
            if exc.reason == "http_429" and exc.retry_after is None:
                raise DeliveryError(
                    exc.reason, retryable=True, retry_after=DEFAULT_RATE_LIMIT, detail=exc.detail
                ) from None
            raise

    def flush(self, timeout: float) -> None:
        client = self._client if self._dsn is not None else _sdk().get_client()
        if client is not None:
            client.flush(timeout=timeout)

    def close(self) -> None:
        if self._client is not None:
            self._client.close(timeout=2.0)
            self._client = None
            self._transport = None

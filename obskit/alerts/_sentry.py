"""Sentry, through the real ``sentry-sdk``: one event per alert with the exception, its trace id and
``fingerprint=[<obskit fingerprint>]`` so Sentry groups exactly as obskit does.

With a ``dsn`` the hook owns a dedicated ``sentry_sdk.Client`` (no default integrations, no local
variables, no PII) that never touches the application's own Sentry setup. Without one it uses the client
the application already initialised. Local variables are never sent either way, exception messages are
redacted like logs, and obskit's own ``obskit.alerts`` logger is excluded from Sentry's logging
integration so delivery problems never become Sentry events themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any

from obskit.alerts._delivery import hook_attempts, hook_timeout
from obskit.alerts._event import format_time
from obskit.alerts._types import Delivery, DeliveryError

if TYPE_CHECKING:
    from obskit.alerts._event import AlertEvent

_LEVELS = {"critical": "fatal", "error": "error", "warning": "warning", "info": "info"}


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


class Sentry:
    """Report each alert to Sentry.

    Args:
        dsn: A Sentry DSN for a dedicated client, or ``None`` to use the SDK client the application
            already initialised (``sentry_sdk.init``).
        timeout: Seconds for one attempt (handing the event to the SDK; the SDK's transport sends it).
        max_attempts: Attempts before the alert is dropped.
        environment: The dedicated client's environment (defaults to the alert's).

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
            self._client = sdk.Client(
                dsn=self._dsn,
                default_integrations=False,
                auto_enabling_integrations=False,
                integrations=[],
                include_local_variables=False,
                # send_default_pii is deprecated in sentry-sdk 2.x and its default (None) already means
                # no PII: the SDK installs its EventScrubber. Passing it would only raise a warning.
                environment=self._environment,
            )
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
        sentry_event["level"] = _LEVELS[event.severity]
        sentry_event["fingerprint"] = [event.fingerprint]
        sentry_event["tags"] = {
            "trace_id": event.trace_id or "",
            "service": event.service,
            "obskit.fingerprint": event.fingerprint,
            "obskit.alert_id": event.id,
            **({"code": event.code} if event.code else {}),
        }
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

    def _capture(self, event: AlertEvent, exc: BaseException | None) -> None:
        client = self._get_client()
        if not client.is_active():
            raise DeliveryError("sentry_not_initialised", retryable=False, detail="call sentry_sdk.init() or pass dsn")
        sentry_event, hint = self.build(event, exc, dict(client.options))
        # No scope: the delivery thread's scope holds nothing of the request, and none should leak in.
        if client.capture_event(sentry_event, hint=hint, scope=None) is None:
            raise DeliveryError("sentry_discarded", retryable=False, detail="dropped by before_send or sampling")

    async def send(self, delivery: Delivery) -> None:
        # Building the event reads source files for the stack: keep that off the delivery loop.
        await asyncio.to_thread(self._capture, delivery.event, delivery.exception)

    def flush(self, timeout: float) -> None:
        client = self._client if self._dsn is not None else _sdk().get_client()
        if client is not None:
            client.flush(timeout=timeout)

    def close(self) -> None:
        if self._client is not None:
            self._client.close(timeout=2.0)
            self._client = None

"""The public surface of obskit.alerts: exactly these names, nothing private leaks into __all__."""

from __future__ import annotations

import inspect

import obskit.alerts
from obskit.alerts import AlertEvent, AlertRouter, Route


def test_exported_members() -> None:
    assert set(obskit.alerts.__all__) == {
        "AlertEvent",
        "AlertHook",
        "AlertRouter",
        "Alertmanager",
        "Delivery",
        "DeliveryError",
        "PagerDuty",
        "Route",
        "Sentry",
        "Severity",
        "Slack",
        "Twilio",
        "Webhook",
        "WebhookVerificationError",
        "verify_webhook",
    }
    for name in obskit.alerts.__all__:
        assert getattr(obskit.alerts, name) is not None


def test_spec_signatures() -> None:
    assert str(inspect.signature(AlertRouter.__init__)).startswith(
        "(self, routes: 'Sequence[Route]', *, dedup_window: 'float' = 300.0, queue_size: 'int' = 10000, "
        "spool_dir: 'str | os.PathLike[str] | None' = None"
    )
    assert list(inspect.signature(Route.__init__).parameters) == ["self", "hooks", "match", "rate_limit"]
    params = inspect.signature(AlertRouter.capture).parameters
    assert list(params) == [
        "self",
        "fingerprint",
        "error_type",
        "error_message",
        "severity",
        "title",
        "trace_id",
        "method",
        "path",
        "code",
        "known",
        "exc",
    ]
    assert all(p.kind is p.KEYWORD_ONLY for name, p in params.items() if name != "self")
    for name in ("flush", "aclose"):
        assert inspect.iscoroutinefunction(getattr(AlertRouter, name))
    assert AlertEvent.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert hasattr(AlertEvent, "__slots__")


def test_hook_constructors() -> None:
    sig = {
        name: list(inspect.signature(getattr(obskit.alerts, name).__init__).parameters)[1:]
        for name in ("Webhook", "PagerDuty", "Slack", "Alertmanager", "Sentry", "Twilio")
    }
    assert sig["Webhook"][:2] == ["url", "secret"]
    assert sig["PagerDuty"][:2] == ["routing_key", "url"]
    assert sig["Slack"][:1] == ["url"]
    assert sig["Alertmanager"][:1] == ["url"]
    assert sig["Sentry"][:1] == ["dsn"]
    assert sig["Twilio"][:5] == ["account_sid", "auth_token", "from_", "to", "base_url"]
    assert (
        inspect.signature(obskit.alerts.PagerDuty).parameters["url"].default
        == "https://events.pagerduty.com/v2/enqueue"
    )
    assert inspect.signature(obskit.alerts.Twilio).parameters["base_url"].default == "https://api.twilio.com"
    assert inspect.signature(obskit.alerts.Sentry).parameters["dsn"].default is None

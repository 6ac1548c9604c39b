"""Alert routing: unknown errors reach PagerDuty, SMS, Slack, webhooks, Alertmanager and Sentry, once per bug.

::

    router = AlertRouter(
        [
            Route([PagerDuty("<routing key>")], match={"severity": "critical"}),
            Route([Slack("https://hooks.slack.com/services/…")], rate_limit="30/min"),
        ],
        spool_dir="/var/lib/myapp/alerts",
    )
    obskit.configure(service="checkout", alerts=router)

See :class:`AlertRouter` for the guarantees (never blocks the request path, dedup per fingerprint,
retries with backoff, bounded memory, spool) and :func:`verify_webhook` for receivers of :class:`Webhook`.
"""

from obskit.alerts._alertmanager import Alertmanager
from obskit.alerts._event import AlertEvent, Severity
from obskit.alerts._pagerduty import PagerDuty
from obskit.alerts._router import AlertRouter, Route
from obskit.alerts._sentry import Sentry
from obskit.alerts._slack import Slack
from obskit.alerts._twilio import Twilio
from obskit.alerts._types import AlertHook, Delivery, DeliveryError, WebhookVerificationError
from obskit.alerts._webhook import Webhook, verify_webhook

__all__ = [
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
]

"""Wall-clock timestamps follow freezegun; the delivery loop's timers keep real time."""

from __future__ import annotations

import asyncio
from typing import Any

from freezegun import freeze_time

from obskit.alerts import Route, Webhook
from tests.alerts.conftest import MakeRouter, capture
from tests.alerts.receiver import Receiver, Respond


def test_frozen_time_stamps_events_and_retries_still_fire(
    obskit_alerts: list[dict[str, Any]], receiver: Receiver, make_router: MakeRouter
) -> None:
    receiver.script(Respond(503))  # the retry needs a timer on the delivery loop
    with freeze_time("2026-01-02T03:04:05.678Z"):
        # group_wait: both captures make one event, however fast the delivery thread routes the first.
        router = make_router([Route(Webhook(receiver.url))], dedup_window=0.2, group_wait=0.05)
        capture(router)
        capture(router)
        assert asyncio.run(router.flush(5.0))
    requests = receiver.settle()
    assert len(requests) == 2
    (event,) = obskit_alerts
    assert event["first_seen"] == event["last_seen"] == event["timestamp"] == "2026-01-02T03:04:05.678Z"
    assert requests[1].json() == event
    assert requests[0].headers["webhook-timestamp"] == "1767323045"

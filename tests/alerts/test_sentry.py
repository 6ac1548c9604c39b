"""Sentry delivery with a DSN: the real sentry-sdk builds the envelope, obskit sends it (retries, stats).

The local receiver plays Sentry's ingest endpoint (``POST /api/<project>/envelope/``).
"""

from __future__ import annotations

import asyncio
import gzip
import uuid
from typing import Any

import orjson
import pytest

from obskit.alerts import Route, Sentry
from tests.alerts.conftest import FP, TRACE, MakeRouter, capture
from tests.alerts.receiver import Receiver, Recorded, Respond, refused_url

pytest.importorskip("sentry_sdk")


def dsn_for(receiver: Receiver) -> str:
    return f"http://public@127.0.0.1:{receiver.port}/1"


def envelope(request: Recorded) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The envelope's header and its event item (``None`` for an SDK client report)."""
    raw = request.body
    if request.headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    header_line, _, rest = raw.partition(b"\n")
    events = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item = orjson.loads(item_line)
        if "length" in item:
            payload, rest = rest[: item["length"]], rest[item["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        if item.get("type") == "event":
            events.append(orjson.loads(payload))
    assert len(events) <= 1
    return orjson.loads(header_line), events[0] if events else None


def sent(receiver: Receiver) -> list[tuple[Recorded, dict[str, Any], dict[str, Any]]]:
    """Each request that carried an event, with the envelope header and the event, once requests stop."""
    out = []
    for request in receiver.settle(quiet=0.1, timeout=10.0):
        header, event = envelope(request)
        if event is not None:
            out.append((request, header, event))
    return out


def test_a_503_is_retried_and_the_retry_is_the_same_sentry_event(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Respond(503))
    router = make_router([Route(Sentry(dsn_for(receiver)))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    (first, _, first_event), (second, header, event) = sent(receiver)
    assert (first.path, second.path) == ("/api/1/envelope/", "/api/1/envelope/")
    assert first.headers["content-type"] == "application/x-sentry-envelope"
    assert first.headers["x-sentry-auth"].startswith("Sentry sentry_key=public, sentry_version=7")
    assert first_event["event_id"] == event["event_id"]
    assert header["event_id"] == event["event_id"] == uuid.UUID(event["tags"]["obskit.alert_id"]).hex
    stats = router.stats()
    assert (stats["delivered"], stats["retried"], stats["dropped"]) == (1, 1, 0)


def test_a_429_waits_for_retry_after(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Respond(429, {"retry-after": "1"}))
    router = make_router([Route(Sentry(dsn_for(receiver)))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    (first, _, first_event), (second, _, second_event) = sent(receiver)
    assert second.at - first.at >= 0.95
    assert first_event["event_id"] == second_event["event_id"]
    assert (router.stats()["delivered"], router.stats()["retried"]) == (1, 1)


def test_a_429_without_retry_after_waits_as_sentry_asks(receiver: Receiver, make_router: MakeRouter) -> None:
    # Sentry's rate-limit spec says 60 s; the router's max_retry_after caps it so the test stays short.
    receiver.script(Respond(429))
    router = make_router([Route(Sentry(dsn_for(receiver)))], max_retry_after=0.5)
    capture(router)
    assert asyncio.run(router.flush(5.0))
    (first, _, _), (second, _, _) = sent(receiver)
    assert second.at - first.at >= 0.45
    assert router.stats()["delivered"] == 1


def test_a_400_is_a_counted_permanent_failure_not_retried(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.default = Respond(400, body=b'{"detail":"invalid event envelope"}')
    router = make_router([Route(Sentry(dsn_for(receiver)))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(sent(receiver)) == 1
    stats = router.stats()
    assert (stats["delivered"], stats["retried"], stats["dropped_permanent_error"]) == (0, 0, 1)


def test_connection_refused_is_retried_then_counted_as_dropped(make_router: MakeRouter) -> None:
    dsn = refused_url().replace("http://", "http://public@") + "/1"
    router = make_router([Route(Sentry(dsn, max_attempts=3))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    stats = router.stats()
    assert (stats["delivered"], stats["retried"], stats["dropped_max_attempts"]) == (0, 2, 1)


def test_a_burst_of_distinct_bugs_all_arrive(receiver: Receiver, make_router: MakeRouter) -> None:
    # The SDK's own transport queues 100 envelopes and silently drops the rest.
    router = make_router([Route(Sentry(dsn_for(receiver)))])
    for i in range(300):
        capture(router, fingerprint=f"{i:016x}")
    assert asyncio.run(router.flush(60.0))
    fingerprints = {event["fingerprint"][0] for _, _, event in sent(receiver)}
    assert fingerprints == {f"{i:016x}" for i in range(300)}
    assert (router.stats()["delivered"], router.stats()["dropped"]) == (300, 0)


def test_the_event_carries_obskit_grouping_and_sentry_sized_tags(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Sentry(dsn_for(receiver)))])
    capture(router, severity="critical", code="x" * 300)
    capture(router, fingerprint="fedcba9876543210", trace_id=None)
    assert asyncio.run(router.flush(5.0))
    (traced,), (untraced,) = sorted(
        ([event] for _, _, event in sent(receiver)), key=lambda e: e[0]["fingerprint"] != [FP]
    )
    assert traced["fingerprint"] == [FP]
    assert traced["level"] == "fatal"
    assert traced["tags"]["trace_id"] == TRACE
    assert traced["tags"]["service"] == "checkout"
    assert traced["tags"]["obskit.fingerprint"] == FP
    assert traced["tags"]["code"] == "x" * 200  # Sentry discards longer tag values
    assert untraced["fingerprint"] == ["fedcba9876543210"]
    assert untraced["level"] == "error"
    assert "trace_id" not in untraced["tags"]


def test_without_an_environment_the_event_has_none(
    receiver: Receiver, make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTRY_ENVIRONMENT", raising=False)
    router = make_router([Route(Sentry(dsn_for(receiver)))])
    router.bind("checkout", None)
    capture(router)
    assert asyncio.run(router.flush(5.0))
    ((_, _, event),) = sent(receiver)
    assert "environment" not in event  # not the SDK's default "production"


def test_the_environment_comes_from_the_hook_then_the_alert(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route([Sentry(dsn_for(receiver), environment="staging"), Sentry(dsn_for(receiver) + "0")])])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    environments = {request.path: event["environment"] for request, _, event in sent(receiver)}
    assert environments == {"/api/1/envelope/": "staging", "/api/10/envelope/": "test"}

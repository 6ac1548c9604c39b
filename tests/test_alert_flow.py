"""The documented flow end to end: unknown errors through the middleware reach a real receiver, once per bug."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route as HttpRoute

import obskit
from obskit.alerts import AlertRouter, Route, Webhook
from obskit.schema import validate_alert
from tests.alerts.receiver import Receiver

pytestmark = pytest.mark.anyio


class Declined(obskit.KnownError):
    status = 402


class LedgerCorrupt(obskit.KnownError):
    status = 503
    level = "error"
    alert = True


async def boom(request: Request) -> Response:
    raise ZeroDivisionError("division by zero")


async def other(request: Request) -> Response:
    raise KeyError("sku")


def sync_boom(request: Request) -> Response:
    raise RuntimeError("sync failure api_key=k-42")


async def declined(request: Request) -> Response:
    raise Declined("card declined")


async def ledger(request: Request) -> Response:
    raise LedgerCorrupt("ledger out of balance")


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def make_app() -> Starlette:
    app = Starlette(
        routes=[
            HttpRoute("/boom", boom),
            HttpRoute("/other", other),
            HttpRoute("/sync-boom", sync_boom),
            HttpRoute("/declined", declined),
            HttpRoute("/ledger", ledger),
            HttpRoute("/ok", ok),
        ]
    )
    app.add_middleware(obskit.ObskitMiddleware)
    return app


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def router(receiver: Receiver) -> Iterator[AlertRouter]:
    r = AlertRouter([Route([Webhook(receiver.url + "/hook")])], backoff_base=0.01, backoff_cap=0.05)
    obskit.configure(service="checkout", environment="test", alerts=r)
    yield r
    r.close(timeout=2.0)


async def hit(app: Any, paths: list[str]) -> list[int]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return [(await c.get(p)).status_code for p in paths]


async def test_a_burst_of_one_bug_is_one_alert_with_its_count(
    receiver: Receiver, obskit_alerts: list[dict[str, Any]]
) -> None:
    # group_wait holds a new bug's first alert so the burst arrives as one; shutdown routes it at once
    router = AlertRouter([Route([Webhook(receiver.url + "/hook")])], group_wait=60.0)
    obskit.configure(service="checkout", environment="test", alerts=router)
    statuses = await hit(make_app(), ["/boom"] * 1000)
    assert set(statuses) == {500}
    assert receiver.requests == []
    assert await router.aclose(5.0)
    hooks = [r for r in receiver.requests if r.path == "/hook"]
    assert len(hooks) == 1
    event = hooks[0].json()
    assert validate_alert(event) == []
    assert event["count"] == 1000
    assert event["service"] == "checkout"
    assert event["environment"] == "test"
    assert event["error"]["type"] == "ZeroDivisionError"
    assert event["request"] == {"method": "GET", "path": "/boom"}
    stats = router.stats()
    assert stats["enqueued"] == 1
    assert stats["deduplicated"] == 999
    assert stats["delivered"] == 1
    assert [a["count"] for a in obskit_alerts] == [1000]


async def test_different_bugs_alert_separately_and_known_errors_do_not(router: AlertRouter, receiver: Receiver) -> None:
    await hit(make_app(), ["/boom", "/other", "/declined", "/ok", "/sync-boom", "/boom"])
    assert await router.flush(5.0)
    types = sorted(r.json()["error"]["type"] for r in receiver.requests)
    assert types == ["KeyError", "RuntimeError", "ZeroDivisionError"]
    sync = next(r.json() for r in receiver.requests if r.json()["error"]["type"] == "RuntimeError")
    assert "k-42" not in sync["error"]["message"]  # alerts are redacted like logs


async def test_known_errors_marked_alert_are_routed(router: AlertRouter, receiver: Receiver) -> None:
    await hit(make_app(), ["/ledger"])
    assert await router.flush(5.0)
    [event] = [r.json() for r in receiver.requests]
    assert event["error"]["type"] == "tests.test_alert_flow.LedgerCorrupt"
    assert event["severity"] == "error"


async def test_the_request_path_is_not_slowed_by_a_hanging_receiver(receiver: Receiver) -> None:
    from tests.alerts.receiver import Hang

    receiver.default = Hang(10.0)
    r = AlertRouter([Route([Webhook(receiver.url + "/hook", timeout=5.0)])], backoff_base=0.01, backoff_cap=0.05)
    obskit.configure(service="checkout", alerts=r)
    app = make_app()
    try:
        await hit(app, ["/ok"] * 20)  # warm-up
        start = time.perf_counter()
        await hit(app, ["/ok"] * 200)
        quiet = time.perf_counter() - start
        start = time.perf_counter()
        await hit(app, ["/boom" for _ in range(100)] + ["/other"] * 100)
        noisy = time.perf_counter() - start
        # error requests do more work than /ok (stack, problem body): a loose bound, the bench has figures
        assert noisy < quiet * 6 + 0.5
    finally:
        r.close(timeout=0.5)


async def test_lifespan_shutdown_flushes_alerts(receiver: Receiver) -> None:
    r = AlertRouter([Route([Webhook(receiver.url + "/hook")])], group_wait=30.0)
    obskit.configure(service="checkout", alerts=r)
    app = make_app()
    await hit(app, ["/boom"])
    assert receiver.requests == []  # held by group_wait
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
        queue.put_nowait(message)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send), 10)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert len(receiver.requests) == 1
    r.close(timeout=1.0)


def test_shutdown_reports_the_count_of_a_window_still_open(receiver: Receiver) -> None:
    r = AlertRouter([Route([Webhook(receiver.url + "/hook")])], dedup_window=300.0)
    r.bind("checkout", None)
    fields: dict[str, Any] = {
        "fingerprint": "0123456789abcdef",
        "error_type": "ZeroDivisionError",
        "error_message": "division by zero",
        "severity": "critical",
        "title": "ZeroDivisionError: division by zero",
        "trace_id": None,
        "method": "GET",
        "path": "/boom",
    }
    r.capture(**fields)
    deadline = time.monotonic() + 10
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(99):
        r.capture(**fields)
    assert r.close(timeout=5.0)
    assert [req.json()["count"] for req in receiver.requests] == [1, 100]

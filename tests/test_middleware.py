"""ObskitMiddleware in-process: problems for every error, trace context, access records (SPEC §1, §4, §5)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import obskit
from obskit import _processors
from obskit.schema import validate_problem, validate_record
from obskit.testing import LogRecords

pytestmark = pytest.mark.anyio

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
SECRET = "hunter2-very-secret"


class OutOfStock(obskit.KnownError):
    status = 409
    title = "Out of stock"


class PaymentGatewayDown(obskit.KnownError):
    status = 503
    level = "error"
    alert = True


class LegacyQuotaError(Exception):
    pass


async def ok(request: Request) -> Response:
    import logging

    logging.getLogger("payments.client").info("charging card")
    obskit.get_logger("app").info("in handler", order=7)
    return JSONResponse({"ok": True})


def sync_ok(request: Request) -> Response:
    import logging

    logging.getLogger("payments.sync").info("from the threadpool")
    return PlainTextResponse("sync")


async def known(request: Request) -> Response:
    raise OutOfStock("sku 42 is sold out", sku=42, card_token="tok_123")


async def plain_known(request: Request) -> Response:
    raise OutOfStock


async def unknown(request: Request) -> Response:
    raise ZeroDivisionError(f"division by zero while using password={SECRET}")


def sync_unknown(request: Request) -> Response:
    raise RuntimeError(f"sync failure {SECRET}")


async def http_error(request: Request) -> Response:
    raise HTTPException(401, "token expired", headers={"WWW-Authenticate": "Bearer"})


async def plain_500(request: Request) -> Response:
    return PlainTextResponse(f"database said {SECRET}", status_code=500)


async def registered(request: Request) -> Response:
    raise LegacyQuotaError("quota")


async def group_unknown(request: Request) -> Response:
    raise ExceptionGroup("two failures", [OutOfStock("gone"), KeyError("missing")])


async def group_known(request: Request) -> Response:
    raise ExceptionGroup("known failures", [OutOfStock("gone"), OutOfStock("also gone")])


async def stream_fail(request: Request) -> Response:
    async def body() -> Any:
        yield b"first chunk\n"
        raise RuntimeError(f"stream broke token={SECRET}")

    return StreamingResponse(body())


async def with_background(request: Request) -> Response:
    def later() -> None:
        obskit.get_logger("bg").info("background work")

    return PlainTextResponse("queued", background=BackgroundTask(later))


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo: {text}")
    await websocket.close()


ROUTES = [
    Route("/ok", ok),
    Route("/sync", sync_ok),
    Route("/orders/{order_id}", ok),
    Route("/known", known),
    Route("/unknown", unknown),
    Route("/sync-unknown", sync_unknown),
    Route("/http", http_error),
    Route("/plain500", plain_500),
    Route("/registered", registered),
    Route("/group-unknown", group_unknown),
    Route("/group-known", group_known),
    Route("/stream", stream_fail),
    Route("/background", with_background),
    Mount("/api", routes=[Route("/items/{item_id}", ok)]),
    WebSocketRoute("/ws", ws_echo),
]


def make_app(**middleware_options: Any) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.add_middleware(obskit.ObskitMiddleware, **middleware_options)
    return app


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://testserver"
    )


async def get(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    async with client(app) as c:
        return await c.get(path, **kwargs)


def access(logs: LogRecords) -> list[dict[str, Any]]:
    return [r for r in logs if r.get("logger") == "obskit.access"]


def served(logs: LogRecords) -> list[dict[str, Any]]:
    """Records of the app under test (the httpx client of the test logs its own requests too)."""
    return [r for r in logs if r.get("logger") != "httpx"]


@pytest.fixture(autouse=True)
def _configured() -> None:
    obskit.configure(service="shop")


async def test_unknown_error_is_a_generic_problem_with_nothing_of_the_exception(obskit_logs: LogRecords) -> None:
    r = await get(make_app(), "/unknown", headers={"traceparent": TRACEPARENT})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert validate_problem(body) == []
    assert body["code"] == "internal_error"
    assert body["instance"] == "/unknown"
    assert body["trace_id"] == TRACE
    raw = r.content + b"".join(k + v for k, v in r.headers.raw)
    for leak in (SECRET.encode(), b"ZeroDivisionError", b"division by zero", b"Traceback", b"unknown.py"):
        assert leak not in raw
    [record] = access(obskit_logs)
    assert record["level"] == "error"
    assert record["trace_id"] == TRACE
    assert record["error"]["type"] == "ZeroDivisionError"
    assert record["error"]["known"] is False
    assert record["error"]["stack"][-1]["function"] == "unknown"
    assert SECRET not in record["error"]["message"]
    assert record["http"]["status"] == 500


async def test_sync_endpoint_errors_take_the_same_flow(obskit_logs: LogRecords) -> None:
    r = await get(make_app(), "/sync-unknown")
    assert r.status_code == 500
    assert SECRET.encode() not in r.content
    assert access(obskit_logs)[0]["error"]["type"] == "RuntimeError"


async def test_known_error_keeps_its_status_and_public_detail_and_logs_extra(obskit_logs: LogRecords) -> None:
    r = await get(make_app(), "/known")
    assert r.status_code == 409
    body = r.json()
    assert validate_problem(body) == []
    assert (body["title"], body["detail"], body["code"]) == ("Out of stock", "sku 42 is sold out", "out_of_stock")
    assert b"tok_123" not in r.content
    assert b"sku" not in r.content.replace(b"sku 42 is sold out", b"")
    [record] = access(obskit_logs)
    assert record["level"] == "warning"
    assert record["error"]["known"] is True
    assert record["error"]["code"] == "out_of_stock"
    assert "stack" not in record["error"]
    assert record["sku"] == 42
    assert record["card_token"] == "[REDACTED]"


async def test_error_records_of_a_path_over_the_value_limit_are_cut_and_masked(obskit_logs: LogRecords) -> None:
    # A failure's message spells out the path: past max_value_chars it is cut with the marker, after the
    # secret patterns ran on it, for an exception and for a framework error response alike.
    obskit.configure(service="shop", max_value_chars=256)
    app = Starlette(routes=[*ROUTES, Route("/long/{rest:path}", unknown)])
    app.add_middleware(obskit.ObskitMiddleware)
    tail = "x" * 600
    raised = await get(app, f"/long/api_key={SECRET}/{tail}")
    unmatched = await get(app, f"/nothing/api_key={SECRET}/{tail}")
    assert (raised.status_code, unmatched.status_code) == (500, 404)
    first, second = access(obskit_logs)
    for record, prefix in ((first, "/long/"), (second, "/nothing/")):
        assert validate_record(record) == []
        assert record["message"].startswith(f"GET {prefix}api_key=[REDACTED]")
        assert re.search(r"…\[truncated \d+ chars\]$", record["message"])
        assert SECRET not in record["message"]
    assert first["error"]["type"] == "ZeroDivisionError"
    assert second["error"]["code"] == "not_found"


async def test_a_known_error_without_extra_fields_has_the_same_record_shape(obskit_logs: LogRecords) -> None:
    app = Starlette(routes=[Route("/plain-known", plain_known)])
    app.add_middleware(obskit.ObskitMiddleware)
    r = await get(app, "/plain-known")
    assert r.status_code == 409
    [record] = access(obskit_logs)
    assert validate_record(record) == []
    assert record["message"] == "GET /plain-known 409 tests.test_middleware.OutOfStock"
    assert record["level"] == "warning"
    assert record["trace_id"] == r.json()["trace_id"]
    assert record["span_id"] == r.headers["traceparent"].split("-")[2]
    assert record["request_id"] == r.headers["x-request-id"]
    assert record["error"] == {
        "type": "tests.test_middleware.OutOfStock",
        "message": "Out of stock",
        "known": True,
        "code": "out_of_stock",
        "fingerprint": record["error"]["fingerprint"],
    }
    assert re.fullmatch(r"[0-9a-f]{16}", record["error"]["fingerprint"])
    assert record["http"]["route"] == "/plain-known"
    assert list(record)[:8] == [
        "timestamp",
        "level",
        "service",
        "trace_id",
        "message",
        "span_id",
        "request_id",
        "logger",
    ]


async def test_http_exception_keeps_status_detail_and_headers(obskit_logs: LogRecords) -> None:
    r = await get(make_app(), "/http")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    body = r.json()
    assert validate_problem(body) == []
    assert (body["detail"], body["code"]) == ("token expired", "unauthorized")
    assert access(obskit_logs)[0]["level"] == "warning"
    assert access(obskit_logs)[0]["error"]["known"] is True


async def test_framework_404_and_405_become_problems() -> None:
    app = make_app()
    r404 = await get(app, "/no/such/route")
    assert r404.status_code == 404
    assert r404.headers["content-type"] == "application/problem+json"
    assert validate_problem(r404.json()) == []
    assert r404.json()["code"] == "not_found"
    async with client(app) as c:
        r405 = await c.post("/ok")
    assert r405.status_code == 405
    assert sorted(r405.headers["allow"].split(", ")) == ["GET", "HEAD"]
    assert r405.json()["code"] == "method_not_allowed"
    assert int(r405.headers["content-length"]) == len(r405.content)


async def test_an_explicit_5xx_body_from_the_app_is_not_echoed() -> None:
    r = await get(make_app(), "/plain500")
    assert r.status_code == 500
    assert SECRET.encode() not in r.content
    assert validate_problem(r.json()) == []


async def test_registered_third_party_exception_is_known() -> None:
    obskit.register_known(LegacyQuotaError, status=429, code="quota_exceeded", title="Too many orders")
    r = await get(make_app(), "/registered")
    assert r.status_code == 429
    assert r.json()["code"] == "quota_exceeded"
    assert r.json()["title"] == "Too many orders"


async def test_exception_groups_are_unknown_if_any_member_is(obskit_logs: LogRecords) -> None:
    app = make_app()
    r = await get(app, "/group-unknown")
    assert r.status_code == 500
    error = access(obskit_logs)[0]["error"]
    assert [m["type"] for m in error["exceptions"]] == ["tests.test_middleware.OutOfStock", "KeyError"]
    r = await get(app, "/group-known")
    assert r.status_code == 409


async def test_debug_adds_type_and_message_only_when_asked() -> None:
    assert "debug" not in (await get(make_app(), "/unknown")).json()
    body = (await get(make_app(debug=True), "/unknown")).json()
    assert body["debug"]["type"] == "ZeroDivisionError"
    assert validate_problem(body) == []


class Card(BaseModel):
    number: str
    amount: float


async def test_validation_errors_are_422_problems_without_the_input(obskit_logs: LogRecords) -> None:
    api = FastAPI()

    @api.post("/pay")
    async def pay(card: Card) -> dict[str, str]:
        return {"ok": card.number}

    api.add_middleware(obskit.ObskitMiddleware)
    async with client(api) as c:
        r = await c.post("/pay", json={"number": SECRET, "amount": "lots"})
    assert r.status_code == 422
    body = r.json()
    assert validate_problem(body) == []
    assert body["code"] == "validation_error"
    assert body["errors"] == [
        {
            "loc": ["body", "amount"],
            "msg": "Input should be a valid number, unable to parse string as a number",
            "type": "float_parsing",
        }
    ]
    assert SECRET.encode() not in r.content
    assert b"lots" not in r.content


async def test_fastapi_http_exception_and_unknown_errors() -> None:
    from fastapi import HTTPException as FastAPIHTTPException

    api = FastAPI()

    @api.get("/missing")
    async def missing() -> None:
        raise FastAPIHTTPException(404, "order 7 not found")

    @api.get("/boom")
    def boom() -> None:
        raise ValueError(SECRET)

    api.add_middleware(obskit.ObskitMiddleware)
    r = await get(api, "/missing")
    assert (r.status_code, r.json()["detail"]) == (404, "order 7 not found")
    r = await get(api, "/boom")
    assert r.status_code == 500
    assert SECRET.encode() not in r.content


async def test_works_in_any_middleware_order_and_as_a_plain_wrapper() -> None:
    inner = Starlette(routes=ROUTES, middleware=[Middleware(obskit.ObskitMiddleware), Middleware(GZipMiddleware)])
    outer = Starlette(routes=ROUTES, middleware=[Middleware(GZipMiddleware), Middleware(obskit.ObskitMiddleware)])
    wrapped = obskit.ObskitMiddleware(Starlette(routes=ROUTES))
    for app in (inner, outer, wrapped):
        for path, status in (("/nope", 404), ("/unknown", 500), ("/known", 409)):
            r = await get(app, path)
            assert r.status_code == status
            assert r.headers["content-type"] == "application/problem+json"
            assert validate_problem(r.json()) == []


# -- trace context -------------------------------------------------------------------------------------


async def test_incoming_traceparent_is_honoured_everywhere(obskit_logs: LogRecords) -> None:
    r = await get(make_app(), "/ok", headers={"traceparent": TRACEPARENT})
    version, trace_id, span_id, flags = r.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id != PARENT
    assert len(span_id) == 16
    records = served(obskit_logs)
    assert [r["logger"] for r in records] == ["payments.client", "app", "obskit.access"]
    assert {rec["trace_id"] for rec in records} == {TRACE}
    assert {rec["span_id"] for rec in records} == {span_id}


@pytest.mark.parametrize(
    "header",
    [
        f"00-{TRACE.upper()}-{PARENT}-01",  # uppercase
        f"00-{TRACE[:-1]}-{PARENT}-01",  # short trace id
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE}-{PARENT}-01",  # forbidden version
        f"00-{TRACE}-{PARENT}-01-extra",  # extra field on version 00
        "garbage",
        "",
    ],
)
async def test_malformed_traceparent_is_ignored(header: str, obskit_logs: LogRecords) -> None:
    r = await get(make_app(), "/ok", headers={"traceparent": header})
    trace_id = r.headers["traceparent"].split("-")[1]
    assert trace_id != TRACE
    assert len(trace_id) == 32
    assert access(obskit_logs)[0]["trace_id"] == trace_id


async def test_future_traceparent_version_with_extra_fields_is_accepted() -> None:
    r = await get(make_app(), "/ok", headers={"traceparent": f"01-{TRACE}-{PARENT}-01-future"})
    assert r.headers["traceparent"].split("-")[1] == TRACE


async def test_error_responses_carry_the_trace_headers_too() -> None:
    app = make_app()
    for path in ("/unknown", "/known", "/nope", "/http"):
        r = await get(app, path, headers={"traceparent": TRACEPARENT, "x-request-id": "req-123"})
        assert r.headers["traceparent"].split("-")[1] == TRACE
        assert r.headers["x-request-id"] == "req-123"
        assert r.json()["trace_id"] == TRACE


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123_XYZ.7", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("has space", False),
        ("new\nline", False),
        ("\x1b[31m", False),
        ("", False),
    ],
)
async def test_request_id_is_accepted_only_when_a_short_printable_token(
    incoming: str, kept: bool, obskit_logs: LogRecords
) -> None:
    app = make_app()
    scope_headers = [(b"x-request-id", incoming.encode())]
    messages = await call_asgi(app, "/ok", scope_headers)
    start = next(m for m in messages if m["type"] == "http.response.start")
    returned = dict(start["headers"])[b"x-request-id"].decode()
    assert (returned == incoming) is kept
    assert access(obskit_logs)[0]["http"]["request_id"] == returned


async def test_a_replaced_request_id_names_the_request(obskit_logs: LogRecords) -> None:
    """Without a usable x-request-id: the trace id when the request starts the trace; its own id when the
    trace came from upstream, where every request of the trace shares the trace id."""
    app = make_app()

    async def ids(headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        start = next(m for m in await call_asgi(app, "/ok", headers) if m["type"] == "http.response.start")
        sent = dict(start["headers"])
        return sent[b"x-request-id"].decode(), sent[b"traceparent"].decode().split("-")[1]

    rid, trace = await ids([])
    assert rid == trace
    upstream = [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    (rid1, trace1), (rid2, trace2) = await ids(upstream), await ids(upstream)
    assert trace1 == trace2 == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len({rid1, rid2, trace1}) == 3
    assert all(len(r) == 32 and int(r, 16) for r in (rid1, rid2))
    assert [r["http"]["request_id"] for r in access(obskit_logs)] == [rid, rid1, rid2]


async def call_asgi(
    app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None, *, timeout: float | None = 10
) -> list[dict[str, Any]]:
    """Drive the app with raw ASGI messages; returns every message it sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        # timeout=None: in the caller's own task (wait_for runs the app in a task of its own)
        await (app(scope, receive, send) if timeout is None else asyncio.wait_for(app(scope, receive, send), timeout))
    except RuntimeError:
        pass  # a stream that failed after it started must reach the server as an exception
    return sent


async def test_streaming_failure_never_sends_a_second_response_start(obskit_logs: LogRecords) -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="stream broke"):
        scope_app = app
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)
            return {}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/stream",
            "headers": [],
            "query_string": b"",
            "root_path": "",
        }
        await asyncio.wait_for(scope_app(scope, receive, send), timeout=10)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1
    assert starts[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert all(m.get("more_body") for m in bodies)  # the stream never completed normally
    [record] = access(obskit_logs)
    assert record["level"] == "error"
    assert record["error"]["type"] == "RuntimeError"
    assert SECRET not in record["error"]["message"]
    # and the app serves the next request normally
    assert (await get(app, "/ok")).status_code == 200


async def test_client_disconnect_cancellation_is_not_an_error(obskit_logs: LogRecords) -> None:
    started = asyncio.Event()

    async def slow(request: Request) -> Response:
        started.set()
        await asyncio.sleep(30)
        return PlainTextResponse("late")

    app = obskit.ObskitMiddleware(Starlette(routes=[Route("/slow", slow)]))
    task = asyncio.ensure_future(call_asgi(app, "/slow"))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [record] = access(obskit_logs)
    assert record["level"] == "info"
    assert record["http"]["status"] == 499
    assert "error" not in record


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_are_never_swallowed(exc_type: type[BaseException]) -> None:
    async def interrupt(request: Request) -> Response:
        raise exc_type

    app = obskit.ObskitMiddleware(Starlette(routes=[Route("/int", interrupt)]))
    # Outside the anyio runner: asyncio lets these escape the loop, as a server would.
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(call_asgi(app, "/int", timeout=None))
        with pytest.raises(exc_type):
            loop.run_until_complete(task)
        # Retrieved here: left alone, the task would log "exception was never retrieved" whenever it is
        # collected, into a later test's records.
        assert isinstance(task.exception(), exc_type)
    finally:
        loop.close()


# -- access records ------------------------------------------------------------------------------------


async def test_access_record_has_the_http_object(obskit_logs: LogRecords) -> None:
    # Not a hex-looking value: random trace and span ids contain "abc" about once in a hundred requests.
    await get(
        make_app(), "/orders/42?token=query-secret-xyz", headers={"user-agent": "curl/8.0", "x-request-id": "r-1"}
    )
    [record] = access(obskit_logs)
    http = record["http"]
    assert http["method"] == "GET"
    assert http["path"] == "/orders/42"
    assert http["route"] == "/orders/{order_id}"
    assert http["status"] == 200
    assert 0 <= http["duration_ms"] < 5000
    assert http["client_ip"] == "127.0.0.1"
    assert http["user_agent"] == "curl/8.0"
    assert http["request_id"] == "r-1"
    assert record["level"] == "info"
    assert "query-secret-xyz" not in str(served(obskit_logs))  # the query string is never logged


async def test_access_record_timestamp_is_the_request_end_in_utc(obskit_logs: LogRecords) -> None:
    before = dt.datetime.now(dt.UTC)
    await get(make_app(), "/ok")
    after = dt.datetime.now(dt.UTC)
    stamp = access(obskit_logs)[0]["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert before <= dt.datetime.fromisoformat(stamp) <= after


async def test_access_record_timestamp_keeps_its_fraction_on_a_whole_second(
    obskit_logs: LogRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    # orjson writes a datetime with no microseconds without a fraction: the record must not.
    monkeypatch.setattr(_processors, "_utcnow", lambda: dt.datetime(2026, 1, 2, 3, 4, 5))  # noqa: DTZ001
    await get(make_app(), "/ok")
    assert re.fullmatch(r".*T\d\d:\d\d:\d\d\.\d{6}Z", access(obskit_logs)[0]["timestamp"])


async def test_access_record_timestamp_is_exact_under_freezegun(obskit_logs: LogRecords) -> None:
    with freeze_time("2026-01-02T03:04:05.678901Z"):
        await get(make_app(), "/ok")
    assert access(obskit_logs)[0]["timestamp"] == "2026-01-02T03:04:05.678901Z"


@pytest.mark.parametrize("how", ["console", "longer than max_record_bytes", "lone surrogate in the path"])
async def test_an_access_record_the_renderer_takes_over_keeps_its_timestamp(
    how: str, obskit_logs: LogRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    out = io.BytesIO()
    if how == "console":
        obskit.configure(service="shop", stream=out, format="console")
    else:
        obskit.configure(service="shop", stream=out, max_record_bytes=1024)
    path = {"console": "/ok", "longer than max_record_bytes": "/orders/" + "9" * 2000}.get(how, "/orders/\ud800")
    app = make_app()
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "scheme": "http",
        "http_version": "1.1",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    before = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat()
    await app(scope, receive, send)
    [line] = [x for x in out.getvalue().decode("utf-8", "replace").splitlines() if "obskit.access" in x or "GET" in x]
    if how == "console":
        assert line.startswith(before[:16])  # the console line starts with the time, as text
        assert "datetime" not in line
    else:
        record = orjson.loads(line)
        assert record["logger"] == "obskit.access"
        assert re.fullmatch(r".*T\d\d:\d\d:\d\d\.\d{6}Z", record["timestamp"])
        assert validate_record(record) == []
        assert len(line.encode()) < 1024


async def test_route_template_inside_a_mount(obskit_logs: LogRecords) -> None:
    await get(make_app(), "/api/items/9")
    assert access(obskit_logs)[0]["http"]["route"] == "/api/items/{item_id}"


async def test_forwarded_for_is_believed_only_from_trusted_proxies(obskit_logs: LogRecords) -> None:
    headers = {"x-forwarded-for": "203.0.113.7, 10.0.0.2"}
    await get(make_app(), "/ok", headers=headers)
    await get(make_app(trusted_proxies=["127.0.0.1", "10.0.0.2"]), "/ok", headers=headers)
    assert [r["http"]["client_ip"] for r in access(obskit_logs)] == ["127.0.0.1", "203.0.113.7"]


async def test_health_checks_can_be_excluded_unless_they_fail(obskit_logs: LogRecords) -> None:
    app = make_app(exclude_paths=["/ok", "/unknown"])
    await get(app, "/ok")
    await get(app, "/unknown")
    await get(app, "/sync")
    assert [r["http"]["path"] for r in access(obskit_logs)] == ["/unknown", "/sync"]


async def test_threadpool_and_background_records_carry_the_request_trace(obskit_logs: LogRecords) -> None:
    app = make_app()
    await get(app, "/sync", headers={"traceparent": TRACEPARENT})
    await get(app, "/background", headers={"traceparent": TRACEPARENT})
    by_message = {r["message"]: r for r in obskit_logs}
    assert by_message["from the threadpool"]["trace_id"] == TRACE
    assert by_message["background work"]["trace_id"] == TRACE


async def test_records_outside_requests_have_a_null_trace(obskit_logs: LogRecords) -> None:
    await get(make_app(), "/ok", headers={"traceparent": TRACEPARENT})
    obskit.get_logger().info("after")
    assert obskit_logs.by_message("after")[0]["trace_id"] is None


async def test_concurrent_requests_never_mix_trace_ids(obskit_logs: LogRecords) -> None:
    app = make_app()
    ids = [f"{i:032x}" for i in range(1, 201)]
    async with client(app) as c:
        responses = await asyncio.gather(
            *(
                c.get("/ok", headers={"traceparent": f"00-{t}-{PARENT}-01", "x-request-id": f"r{i}"})
                for i, t in enumerate(ids)
            )
        )
    assert [r.headers["traceparent"].split("-")[1] for r in responses] == ids
    for record in served(obskit_logs):
        i = int(record["request_id"][1:])
        assert record["trace_id"] == ids[i]
    assert len(access(obskit_logs)) == 200


# -- other scopes --------------------------------------------------------------------------------------


async def test_websocket_and_lifespan_pass_through(obskit_logs: LogRecords) -> None:
    from contextlib import asynccontextmanager

    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(routes=ROUTES, lifespan=lifespan)
    app.add_middleware(obskit.ObskitMiddleware)

    # lifespan, driven the way a server does
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: list[dict[str, Any]] = []
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
        to_app.put_nowait(message)

    async def lifespan_send(message: dict[str, Any]) -> None:
        from_app.append(message)

    await asyncio.wait_for(app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, lifespan_send), 10)
    assert [m["type"] for m in from_app] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup", "shutdown"]

    # a websocket echo
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in (
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hello"},
        {"type": "websocket.disconnect", "code": 1000},
    ):
        incoming.put_nowait(message)
    outgoing: list[dict[str, Any]] = []

    async def ws_send(message: dict[str, Any]) -> None:
        outgoing.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": [],
        "query_string": b"",
        "root_path": "",
        "subprotocols": [],
    }
    await asyncio.wait_for(app(scope, incoming.get, ws_send), 10)
    assert [m["type"] for m in outgoing] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert outgoing[1]["text"] == "echo: hello"
    assert access(obskit_logs) == []  # websockets get no HTTP record


@pytest.mark.parametrize("obskit_access", [True, False], ids=["obskit-access-log", "uvicorn-access-log"])
def test_uvicorn_does_no_access_log_work_when_obskit_logs_access(
    obskit_logs: LogRecords, monkeypatch: pytest.MonkeyPatch, obskit_access: bool
) -> None:
    """uvicorn builds its access line's arguments per request whenever its access logger can reach a handler."""
    from uvicorn.protocols.http import h11_impl, httptools_impl

    from tests.servers import serve

    calls: list[str] = []
    for module in (h11_impl, httptools_impl):
        real = module.get_path_with_query_string
        monkeypatch.setattr(
            module, "get_path_with_query_string", lambda scope, real=real: calls.append("x") or real(scope)
        )
    with serve(make_app(access_log=obskit_access)) as base, httpx.Client(base_url=base, timeout=10) as c:
        for _ in range(3):
            assert c.get("/ok").status_code == 200
    uvicorn_access = [r for r in obskit_logs if r.get("logger") == "uvicorn.access"]
    if obskit_access:
        assert calls == []
        assert uvicorn_access == []
        assert len(access(obskit_logs)) == 3
    else:  # obskit's own access record off: uvicorn's comes through, as a JSON record with the trace id
        assert len(calls) == 3
        assert len(uvicorn_access) == 3
        assert all(r["trace_id"] for r in uvicorn_access)


def test_bad_middleware_options_are_clear_errors() -> None:
    with pytest.raises(TypeError, match="list of strings"):
        obskit.ObskitMiddleware(Starlette(), trusted_proxies="10.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="flush_timeout"):
        obskit.ObskitMiddleware(Starlette(), flush_timeout=-1)


async def test_unconfigured_obskit_configures_itself_on_first_request(obskit_logs: LogRecords) -> None:
    obskit.reset()
    r = await get(make_app(), "/ok")
    assert r.status_code == 200
    assert access(obskit_logs)[0]["service"] == "unknown-service"


# -- edge cases from review: compression, disconnects, nesting, headers, timing, routes, proxies -----------


async def test_a_compressed_error_page_from_inside_becomes_a_readable_problem() -> None:
    api = FastAPI()

    @api.post("/cards")
    async def create(card: Card) -> dict[str, str]:
        return {"number": card.number}

    api.add_middleware(GZipMiddleware, minimum_size=10)  # inside: it compresses the 422 page
    api.add_middleware(obskit.ObskitMiddleware)
    async with client(api) as c:
        r = await c.post("/cards", json={}, headers={"accept-encoding": "gzip"})
    assert r.status_code == 422
    assert "content-encoding" not in r.headers  # the problem replaced the gzip body, and its encoding
    body = r.json()
    assert validate_problem(body) == []
    assert body["code"] == "validation_error"
    assert sorted(e["loc"][-1] for e in body["errors"]) == ["amount", "number"]  # read through the gzip


async def test_a_client_that_leaves_mid_upload_is_not_an_error(obskit_logs: LogRecords) -> None:
    from obskit.alerts import AlertRouter, Webhook
    from obskit.alerts import Route as AlertRoute

    async def upload(request: Request) -> Response:
        return PlainTextResponse(str(len(await request.body())))

    router = AlertRouter([AlertRoute([Webhook("http://127.0.0.1:9/hook")])], group_wait=60.0)
    obskit.configure(service="shop", alerts=router)
    app = obskit.ObskitMiddleware(Starlette(routes=[Route("/upload", upload, methods=["POST"])]))
    messages = [{"type": "http.request", "body": b"x" * 100, "more_body": True}, {"type": "http.disconnect"}]
    scope = {"type": "http", "method": "POST", "path": "/upload", "headers": [], "query_string": b"", "root_path": ""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await asyncio.wait_for(app(scope, receive, send), 10)  # Starlette raised ClientDisconnect: absorbed
        [record] = access(obskit_logs)
        assert (record["level"], record["http"]["status"]) == ("info", 499)
        assert "error" not in record
        assert sent == []  # nobody is there to read an answer
        assert router.stats()["enqueued"] == 0  # and nobody is paged
    finally:
        router.close(timeout=0.5)


async def test_an_obskit_app_mounted_in_an_obskit_app_gives_one_trace_and_one_record(
    obskit_logs: LogRecords,
) -> None:
    async def fail(request: Request) -> Response:
        obskit.get_logger("inner").info("about to fail")
        raise RuntimeError("inner failure")

    def build(routes: list[Any]) -> Starlette:  # one factory for the service and its sub-apps
        app = Starlette(routes=routes)
        app.add_middleware(obskit.ObskitMiddleware)
        return app

    app = build([Mount("/v2", app=build([Route("/fail", fail)]))])
    r = await get(app, "/v2/fail")
    assert r.status_code == 500
    trace_id = r.headers["traceparent"].split("-")[1]
    assert r.json()["trace_id"] == r.headers["x-request-id"] == trace_id
    [record] = access(obskit_logs)
    assert record["trace_id"] == trace_id
    assert [rec["trace_id"] for rec in obskit_logs.by_message("about to fail")] == [trace_id]


async def test_http_exception_headers_go_out_when_the_exception_reaches_the_middleware() -> None:
    async def raw(scope: Any, receive: Any, send: Any) -> None:  # no Starlette exception handling inside
        raise HTTPException(
            401, "login required", headers={"WWW-Authenticate": 'Bearer realm="api"', "X-Bad": "a\r\nb"}
        )

    r = await get(obskit.ObskitMiddleware(raw), "/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    assert "x-bad" not in r.headers  # a value the server would refuse is left out, not the response
    assert r.json()["detail"] == "login required"


async def test_an_error_response_goes_out_before_its_background_task_runs() -> None:
    order: list[str] = []

    async def denied(request: Request) -> Response:
        return JSONResponse({"detail": "no"}, 401, background=BackgroundTask(lambda: order.append("background")))

    app = obskit.ObskitMiddleware(Starlette(routes=[Route("/denied", denied)]))
    scope = {"type": "http", "method": "GET", "path": "/denied", "headers": [], "query_string": b"", "root_path": ""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        order.append(message["type"])

    await asyncio.wait_for(app(scope, receive, send), 10)
    assert order == ["http.response.start", "http.response.body", "background"]


async def test_a_5xx_http_exception_keeps_its_detail_and_is_known(obskit_logs: LogRecords) -> None:
    api = FastAPI()

    @api.get("/maintenance")
    async def maintenance() -> None:
        raise HTTPException(503, "down for maintenance until 14:00 UTC", headers={"Retry-After": "120"})

    api.add_middleware(obskit.ObskitMiddleware)
    r = await get(api, "/maintenance")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "120"
    assert (r.json()["detail"], r.json()["code"]) == ("down for maintenance until 14:00 UTC", "service_unavailable")
    [record] = access(obskit_logs)
    assert (record["level"], record["error"]["known"]) == ("warning", True)


async def test_a_file_sent_through_pathsend_gets_its_response_start_first() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.pathsend", "path": "/srv/404.html"})

    sent = await call_asgi(obskit.ObskitMiddleware(app), "/missing")
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[0]["status"] == 404


async def test_route_templates_name_a_mounts_parameters_and_leave_out_the_servers_root_path(
    obskit_logs: LogRecords,
) -> None:
    tenants = Mount("/tenants/{tenant}", routes=[Route("/items/{item_id}", ok)])
    versions = Mount("/v{version}", routes=[Mount("/shards/{shard:int}", routes=[Route("/items/{item_id}", ok)])])
    app = make_app()
    app.router.routes += [tenants, versions]
    await get(app, "/tenants/acme/items/1")
    await get(app, "/tenants/globex/items/2")
    await get(app, "/vabc/shards/007/items/3")  # part of a segment, a converted value, nested Mounts
    transport = httpx.ASGITransport(app=app, root_path="/shop")  # uvicorn --root-path /shop
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await c.get("/shop/orders/7")
        await c.get("/shop/api/items/9")
    assert [r["http"]["route"] for r in access(obskit_logs)] == [
        "/tenants/{tenant}/items/{item_id}",
        "/tenants/{tenant}/items/{item_id}",
        "/v{version}/shards/{shard:int}/items/{item_id}",
        "/orders/{order_id}",
        "/api/items/{item_id}",
    ]


async def test_trusted_proxies_take_networks_and_a_star_and_hops_lose_their_port(obskit_logs: LogRecords) -> None:
    cases = [
        (["10.0.0.0/8", "127.0.0.0/8"], "203.0.113.7, 10.1.2.3"),
        (["*"], "203.0.113.8"),
        (["127.0.0.1"], "[2001:db8::1]:4711"),
        (["127.0.0.1"], "203.0.113.9:8080"),
        (["192.168.0.0/16"], "203.0.113.10"),  # the peer is not in it: the header is not believed
    ]
    for trusted, header in cases:
        await get(make_app(trusted_proxies=trusted), "/ok", headers={"x-forwarded-for": header})
    assert [r["http"]["client_ip"] for r in access(obskit_logs)] == [
        "203.0.113.7",
        "203.0.113.8",
        "2001:db8::1",
        "203.0.113.9",
        "127.0.0.1",
    ]


def test_default_codes_split_acronyms_and_private_classes_are_allowed() -> None:
    class APIKeyInvalid(obskit.KnownError):
        pass

    class HTTP2Error(obskit.KnownError):
        pass

    class _InternalError(obskit.KnownError):  # raised ValueError at class definition before
        pass

    assert (APIKeyInvalid.code, HTTP2Error.code, _InternalError.code) == ("api_key_invalid", "http2", "internal")
    assert OutOfStock(42).detail == "42"  # type: ignore[arg-type]  # a detail is a string in the problem


async def test_configured_level_is_the_minimum_for_request_records_too(obskit_logs: LogRecords) -> None:
    obskit.configure(service="shop", level="warning")
    app = make_app()
    await get(app, "/ok")
    await get(app, "/no/such/route")
    assert [(r["level"], r["http"]["status"]) for r in access(obskit_logs)] == [("warning", 404)]


REUSED = RuntimeError("backend unavailable")  # some code raises one module-level instance


async def test_an_exception_instance_raised_again_is_handled_afresh(obskit_logs: LogRecords) -> None:
    async def plain(request: Request) -> Response:
        raise REUSED

    async def streamed(request: Request) -> Response:
        async def body() -> Any:
            yield b"first\n"
            raise REUSED

        return StreamingResponse(body())

    app = obskit.ObskitMiddleware(Starlette(routes=[Route("/plain", plain), Route("/stream", streamed)]))
    assert (await get(app, "/plain")).status_code == 500
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/stream", "headers": [], "query_string": b"", "root_path": ""}
    with pytest.raises(RuntimeError, match="backend unavailable"):  # the stream must still be aborted
        await asyncio.wait_for(app(scope, receive, send), 10)
    assert all(m.get("more_body") for m in sent if m["type"] == "http.response.body")

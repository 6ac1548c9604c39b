"""The app the hostile-input battery serves, an in-process driver for raw ASGI scopes, and the checks.

Raw scopes let the tests hand the middleware what no HTTP client would send (header values with NUL or
ESC, invalid UTF-8, 64 KiB values, paths with lone surrogates), the way a lenient or buggy server could.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import obskit
from obskit.schema import validate_problem, validate_record
from tests.reliability.hostile_strategies import SECRET_MARK

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from obskit.testing import LogRecords

TRACEPARENT_OUT = re.compile(rb"00-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-0[01]")
REQUEST_ID_OUT = re.compile(rb"[\x21-\x7e]{1,128}")
ASGI_DEADLINE = 10.0
_types = itertools.count()


class OutOfStock(obskit.KnownError):
    status = 409
    title = "Out of stock"


@dataclass
class Script:
    """What the routes do in the current example (examples run one after another)."""

    error_message: str = "boom"
    known_extra: dict[str, Any] = field(default_factory=dict)
    raised: int = 0  # unknown errors raised, each of a fresh type (a fingerprint, and an alert, of its own)

    def unknown(self) -> Exception:
        self.raised += 1
        cls = type(f"HostileError{next(_types)}", (RuntimeError,), {"__module__": __name__})
        return cls(self.error_message)


def make_app(script: Script, **middleware_options: Any) -> obskit.ObskitMiddleware:
    async def ok(request: Request) -> Response:
        # What real handlers do with what they were sent: log it, under secret-looking keys and not. Read
        # straight from the scope: Starlette's own helpers raise on some of these bytes (request.url on a
        # query string that is not UTF-8), which would make this route fail by itself.
        query = request.scope["query_string"].decode("latin-1")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        cookie = headers.get("cookie", "")
        logging.getLogger("hostile.app").info(
            "query %s", query, extra={"headers": headers, "params": dict(parse_qsl(query, keep_blank_values=True))}
        )
        obskit.get_logger("hostile.app").info(
            "ok",
            authorization=headers.get("authorization"),
            cookies=dict(c.strip().partition("=")[::2] for c in cookie.split(";")),
            user_agent=headers.get("user-agent"),
            tracestate=headers.get("tracestate"),
        )
        return PlainTextResponse("ok")

    def sync_ok(request: Request) -> Response:
        api_key = [v for k, v in request.scope["headers"] if k == b"x-api-key"]
        logging.getLogger("hostile.sync").info("sync", extra={"x_api_key": api_key})
        return PlainTextResponse("ok")

    async def known(request: Request) -> Response:
        raise OutOfStock("sku 42 is sold out", **script.known_extra)

    async def unknown(request: Request) -> Response:
        raise script.unknown()

    def sync_unknown(request: Request) -> Response:
        raise script.unknown()

    async def http_error(request: Request) -> Response:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})

    async def stream(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first chunk\n"
            raise script.unknown()

        return StreamingResponse(body())

    routes = [
        Route("/ok", ok),
        Route("/sync-ok", sync_ok),
        Route("/known", known),
        Route("/unknown", unknown),
        Route("/sync-unknown", sync_unknown),
        Route("/http", http_error),
        Route("/stream", stream),
    ]
    return obskit.ObskitMiddleware(Starlette(routes=routes), **middleware_options)


# -- the driver ----------------------------------------------------------------------------------------


@dataclass
class Exchange:
    """Every message the app sent for one request, and what it raised (a stream aborted on purpose)."""

    messages: list[dict[str, Any]]
    raised: BaseException | None

    @property
    def starts(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "http.response.start"]

    @property
    def status(self) -> int:
        return int(self.starts[0]["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(bytes(k), bytes(v)) for k, v in self.starts[0].get("headers", [])]

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")

    def raw(self) -> bytes:
        """Status line, headers and body, as the client would see them."""
        head = b"".join(k + b": " + v + b"\r\n" for k, v in self.headers)
        return f"HTTP/1.1 {self.status}\r\n".encode() + head + b"\r\n" + self.body


async def call(
    app: Any,
    *,
    method: str = "GET",
    path: str = "/ok",
    raw_path: bytes | None = None,
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    client: tuple[str, int] | None = ("10.0.0.1", 40000),
) -> Exchange:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode("utf-8", "surrogatepass"),
        "query_string": query,
        "root_path": "",
        "headers": list(headers),
        "client": client,
        "server": ("testserver", 80),
        "state": {},
    }
    messages: list[dict[str, Any]] = []
    done = asyncio.Event()
    sent_request = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    raised: BaseException | None = None
    try:
        await asyncio.wait_for(app(scope, receive, send), ASGI_DEADLINE)
    except Exception as exc:  # the one legitimate case, a stream that failed half-way, is checked by the caller
        raised = exc
    finally:
        done.set()
    return Exchange(messages, raised)


# -- the properties ------------------------------------------------------------------------------------


def check_response(ex: Exchange) -> None:
    """SPEC §4, §5: one response start, trace headers well-formed, every error a valid problem document."""
    assert len(ex.starts) == 1, f"expected one http.response.start, got {len(ex.starts)} ({ex.raised!r})"
    [traceparent] = ex.header(b"traceparent")
    assert TRACEPARENT_OUT.fullmatch(traceparent), traceparent
    [request_id] = ex.header(b"x-request-id")
    assert REQUEST_ID_OUT.fullmatch(request_id), request_id
    if ex.status >= 400:
        assert ex.raised is None, ex.raised
        assert ex.header(b"content-type") == [b"application/problem+json"]
        body = orjson.loads(ex.body)
        assert validate_problem(body) == [], (body, validate_problem(body))
        assert body["status"] == ex.status
        assert body["trace_id"].encode() == traceparent[3:35]
        assert ex.header(b"content-length") == [str(len(ex.body)).encode()]


def check_lines(lines: list[bytes], max_bytes: int = 64 * 1024) -> list[dict[str, Any]]:
    """SPEC §3: every line one valid JSON record, one newline at its end and none inside, bounded."""
    records = []
    for line in lines:
        assert line.endswith(b"\n"), line[-200:]
        assert line.count(b"\n") == 1, line[:200]
        assert b"\r" not in line, line[:200]
        assert len(line) <= max_bytes, (len(line), line[:200])
        record = orjson.loads(line)
        assert isinstance(record, dict)
        assert validate_record(record) == [], (validate_record(record), line[:300])
        records.append(record)
    return records


def assert_no_secret(where: str, data: bytes | str) -> None:
    blob = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    at = blob.find(SECRET_MARK.encode())
    assert at < 0, f"a secret leaked into {where}: …{blob[max(0, at - 120) : at + 40]!r}…"


def new_lines(logs: LogRecords, start: int) -> list[bytes]:
    return logs.lines[start:]


def check_request_records(records: list[dict[str, Any]], ex: Exchange) -> None:
    """One access record per request, and every record of the request carries the response's trace id."""
    trace_id = ex.header(b"traceparent")[0][3:35].decode()
    served = [r for r in records if r.get("logger") != "httpx"]
    access = [r for r in served if r.get("logger") == "obskit.access"]
    assert len(access) == 1, [r.get("message") for r in served]
    assert access[0]["http"]["status"] == (ex.status if ex.raised is None else access[0]["http"]["status"])
    assert {r["trace_id"] for r in served} == {trace_id}

"""The apps in ``examples/`` over real HTTP: uvicorn on a free loopback port, httpx and raw sockets."""

from __future__ import annotations

import asyncio
import importlib
import shlex
import shutil
import signal
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

import httpx
import orjson
import pytest

from obskit.schema import validate_problem, validate_record
from obskit.testing import LogRecords
from tests.servers import REPO, raw_request, run_server_process, serve, validate_with_cli

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01"
SECRET = "hunter2"
PROBLEM = "application/problem+json"
EXAMPLES = ["examples.starlette_app", "examples.fastapi_app"]

# (method, path, json body, status, content type) served by both examples
COMMON = [
    ("GET", "/", None, 200, "application/json"),
    ("GET", "/orders/7", None, 200, "application/json"),
    ("GET", "/out-of-stock", None, 409, PROBLEM),
    ("GET", "/crash", None, 500, PROBLEM),
    ("GET", "/report", None, 200, "text/plain"),
    ("POST", "/signup", None, 200, "application/json"),
    ("GET", "/no-such-page", None, 404, PROBLEM),
    ("DELETE", "/out-of-stock", None, 405, PROBLEM),
]
FASTAPI_ONLY = [
    ("POST", "/orders", {"sku": "A1", "quantity": 2}, 201, "application/json"),
    ("POST", "/orders", {"sku": "", "quantity": 0}, 422, PROBLEM),
    ("GET", "/orders/not-a-number", None, 422, PROBLEM),
]


def routes_of(module: ModuleType) -> list[tuple[str, str, Any, int, str]]:
    return COMMON + (FASTAPI_ONLY if module.__name__.endswith("fastapi_app") else [])


@pytest.fixture(params=EXAMPLES, ids=["starlette", "fastapi"])
def example(request: pytest.FixtureRequest) -> ModuleType:
    # Reloaded per test: the module's own obskit.configure() runs again after the previous test's reset,
    # and each test gets a fresh app, exactly as `uvicorn examples.…:app` would build it.
    return importlib.reload(importlib.import_module(request.param))


def trace_of(response: httpx.Response) -> str:
    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert (version, len(trace_id), len(span_id), len(flags)) == ("00", 32, 16, 2)
    return trace_id


def wait_for_access(logs: LogRecords, request_id: str, deadline: float = 10.0) -> dict[str, Any]:
    """The request's access record; it is written after the response (and its background tasks) finished."""
    end = time.monotonic() + deadline
    while True:
        for record in list(logs):
            if record.get("logger") == "obskit.access" and record["http"]["request_id"] == request_id:
                return record
        if time.monotonic() > end:
            raise TimeoutError(f"no access record for request {request_id} within {deadline}s")
        time.sleep(0.01)


def records_of(logs: LogRecords, request_id: str) -> list[dict[str, Any]]:
    return [r for r in list(logs) if r.get("request_id") == request_id]


# -- statuses, bodies, headers -------------------------------------------------------------------------


def test_every_route_answers_with_its_status_content_type_and_trace_headers(
    example: ModuleType, obskit_logs: LogRecords
) -> None:
    with serve(example.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for method, path, body, status, content_type in routes_of(example):
            response = client.request(method, path, json=body)
            assert (method, path, status) == (method, path, response.status_code)
            assert response.headers["content-type"].startswith(content_type)
            trace_id = trace_of(response)
            request_id = response.headers["x-request-id"]
            assert request_id
            if content_type == PROBLEM:
                problem = response.json()
                assert validate_problem(problem) == []
                assert problem["status"] == status
                assert problem["instance"] == path
                assert problem["trace_id"] == trace_id
            access = wait_for_access(obskit_logs, request_id)
            assert access["http"]["status"] == status
            assert access["trace_id"] == trace_id
    assert obskit_logs.problems() == []


def test_known_error_carries_its_public_detail_and_logs_extra_redacted(
    example: ModuleType, obskit_logs: LogRecords
) -> None:
    with serve(example.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        response = client.get("/out-of-stock")
    assert response.status_code == 409
    body = response.json()
    assert (body["title"], body["detail"], body["code"]) == ("Out of stock", "sku 42 is sold out", "out_of_stock")
    assert b"tok_live_123" not in response.content
    record = wait_for_access(obskit_logs, response.headers["x-request-id"])
    assert record["level"] == "warning"
    assert record["error"]["known"] is True
    assert record["error"]["code"] == "out_of_stock"
    assert "stack" not in record["error"]
    assert (record["sku"], record["card_token"]) == (42, "[REDACTED]")


def test_fastapi_validation_errors_list_the_fields_without_echoing_the_input(obskit_logs: LogRecords) -> None:
    module = importlib.reload(importlib.import_module("examples.fastapi_app"))
    with serve(module.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        response = client.post("/orders", json={"sku": "", "quantity": -5, "note": "s3cr3t-input"})
    assert response.status_code == 422
    body = response.json()
    assert validate_problem(body) == []
    assert body["code"] == "validation_error"
    assert sorted(tuple(e["loc"]) for e in body["errors"]) == [("body", "quantity"), ("body", "sku")]
    assert b"s3cr3t-input" not in response.content
    assert b"-5" not in response.content


def test_the_unknown_errors_secret_appears_in_no_response_byte(example: ModuleType, obskit_logs: LogRecords) -> None:
    request = b"GET /crash HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with serve(example.app) as base:
        raw = raw_request(base, request)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"content-type: application/problem+json" in head.lower()
    for leaked in (SECRET.encode(), b"password", b"ZeroDivisionError", b"rate / 0", b"crash("):
        assert leaked not in raw
    problem = orjson.loads(body)
    assert validate_problem(problem) == []
    [record] = [r for r in obskit_logs if r.get("logger") == "obskit.access"]
    assert record["level"] == "error"
    assert record["error"]["type"] == "ZeroDivisionError"
    assert record["error"]["known"] is False
    assert record["error"]["stack"][-1]["function"] == "crash"
    assert record["trace_id"] == problem["trace_id"]
    # The log keeps the message but redacts the secret in it.
    assert all(SECRET.encode() not in line for line in obskit_logs.lines)


# -- trace context -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("incoming", [TRACEPARENT, None], ids=["traceparent", "fresh"])
def test_body_header_and_every_record_of_a_request_share_one_trace_id(
    example: ModuleType, incoming: str | None, obskit_logs: LogRecords
) -> None:
    # Each route logs from a different place: structlog, a library logger, the threadpool, a background
    # task, the middleware's error record.
    expected_records = {
        "/": "saying hello",
        "/orders/7": "charging card for order 7",
        "/report": "building the report in a worker thread",
        "/signup": "welcome email sent",
        "/crash": None,
        "/out-of-stock": None,
    }
    headers = {"traceparent": incoming} if incoming else {}
    seen_traces = set()
    with serve(example.app) as base, httpx.Client(base_url=base, timeout=10, headers=headers) as client:
        for path, message in expected_records.items():
            response = client.request("POST" if path == "/signup" else "GET", path)
            trace_id = trace_of(response)
            seen_traces.add(trace_id)
            if incoming:
                assert trace_id == TRACE
            if response.status_code >= 400:
                assert response.json()["trace_id"] == trace_id
            request_id = response.headers["x-request-id"]
            wait_for_access(obskit_logs, request_id)
            records = records_of(obskit_logs, request_id)
            assert {r["trace_id"] for r in records} == {trace_id}, path
            span_ids = {r["span_id"] for r in records}
            assert len(span_ids) == 1
            assert response.headers["traceparent"].split("-")[2] in span_ids
            loggers = {r["logger"] for r in records}
            assert "obskit.access" in loggers
            if message is not None:
                assert message in [r["message"] for r in records], path
    if not incoming:
        assert len(seen_traces) == len(expected_records)  # a fresh id per request


def test_200_concurrent_requests_never_mix_up_trace_ids(example: ModuleType, obskit_logs: LogRecords) -> None:
    n = 200
    traces = [f"{i + 1:08x}" + "ab" * 12 for i in range(n)]

    async def load(base: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        gate = asyncio.Semaphore(50)
        async with httpx.AsyncClient(base_url=base, timeout=20, limits=limits) as client:

            async def one(i: int) -> httpx.Response:
                async with gate:
                    headers = {"traceparent": f"00-{traces[i]}-{i + 1:016x}-01", "x-request-id": f"req-{i}"}
                    return await client.get(f"/orders/{i}", headers=headers)

            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout=60)

    with serve(example.app) as base:
        responses = asyncio.run(load(base))
        for i in range(n):
            wait_for_access(obskit_logs, f"req-{i}")
    assert [r.status_code for r in responses] == [200] * n
    assert [trace_of(r) for r in responses] == traces
    assert [r.headers["x-request-id"] for r in responses] == [f"req-{i}" for i in range(n)]
    by_request: dict[str, list[dict[str, Any]]] = {}
    for record in obskit_logs:
        if record.get("request_id") is not None:
            by_request.setdefault(record["request_id"], []).append(record)
    assert len(by_request) == n
    for i in range(n):
        records = by_request[f"req-{i}"]
        assert sorted(r["message"] for r in records) == sorted([f"GET /orders/{i} 200", f"charging card for order {i}"])
        assert {r["trace_id"] for r in records} == {traces[i]}
        [access] = [r for r in records if r["logger"] == "obskit.access"]
        assert access["http"]["path"] == f"/orders/{i}"


# -- streaming failure ---------------------------------------------------------------------------------


def test_a_stream_failing_after_its_first_chunk_is_aborted_and_the_server_carries_on(
    example: ModuleType, obskit_logs: LogRecords
) -> None:
    with serve(example.app) as base:
        with httpx.Client(base_url=base, timeout=10) as client, client.stream("GET", "/stream") as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete"):
                response.read()
        # On the wire: one response start, the first chunk, and no terminating zero-length chunk.
        raw = raw_request(base, b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert raw.count(b"HTTP/1.1 ") == 1
        assert raw.startswith(b"HTTP/1.1 200 ")
        assert b"row 1\n" in raw
        assert not raw.endswith(b"0\r\n\r\n")
        assert b"application/problem+json" not in raw
        # The server answers the next request on a new connection normally.
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/").status_code == 200
        record = wait_for_access(obskit_logs, request_id)
    assert record["level"] == "error"
    assert record["http"]["status"] == 200
    assert record["error"]["type"] == "RuntimeError"
    assert record["error"]["known"] is False
    # Logged once, by obskit, with the request's ids; uvicorn's "Exception in ASGI application" is not repeated.
    errors = [r for r in obskit_logs if r["level"] == "error"]
    assert [r["logger"] for r in errors] == ["obskit.access", "obskit.access"]
    assert all(r["trace_id"] is not None for r in errors)


# -- the commands users run ------------------------------------------------------------------------------


def hit_every_route(base: str, module_name: str) -> None:
    module = importlib.import_module(module_name)
    with httpx.Client(base_url=base, timeout=10) as client:
        for method, path, body, status, _ in routes_of(module):
            assert client.request(method, path, json=body).status_code == status
        with client.stream("GET", "/stream") as response, pytest.raises(httpx.RemoteProtocolError):
            response.read()
        assert client.get("/", headers={"traceparent": TRACEPARENT}).status_code == 200


def assert_every_line_validates(output: bytes) -> list[dict[str, Any]]:
    result = validate_with_cli(output)
    assert (result.returncode, result.stdout) == (0, b""), result.stdout.decode()[:2000]
    lines = output.splitlines()
    records = [orjson.loads(line) for line in lines]
    assert [validate_record(r) for r in records] == [[] for _ in records]
    return records


@pytest.mark.parametrize("module_name", EXAMPLES, ids=["starlette", "fastapi"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_every_line_uvicorn_prints_for_an_example_is_a_valid_record(module_name: str, sig: int) -> None:
    argv = [sys.executable, "-m", "uvicorn", f"{module_name}:app", "--host", "127.0.0.1", "--port", "{port}"]
    with run_server_process(argv) as server:
        hit_every_route(server.base_url, module_name)
        server.stop(sig)
    # uvicorn's CLI applies its default logging config before importing the app; the app's configure()
    # and the middleware's lifespan startup take its loggers over, so nothing reaches its stderr handler.
    assert server.stderr == b""
    records = assert_every_line_validates(server.stdout)
    messages = [r["message"] for r in records]
    uvicorn_messages = [r["message"] for r in records if r["logger"].startswith("uvicorn")]
    assert any(m.startswith("Started server process") for m in uvicorn_messages)
    assert any(m.startswith("Uvicorn running on") for m in uvicorn_messages)
    assert any(m.startswith("Finished server process") for m in uvicorn_messages)
    assert "GET /crash 500 ZeroDivisionError" in messages
    assert "GET /stream 200 RuntimeError" in messages
    assert not [r for r in records if r["logger"] == "uvicorn.access"]  # obskit's access record replaces it
    assert server.stdout.count(SECRET.encode()) == 0
    # uvicorn re-raises the signal once it shut down gracefully: SIGINT ends in exit 0, SIGTERM in -15.
    assert server.returncode in (0, -sig)


# -- examples/README.md ------------------------------------------------------------------------------------

README = REPO / "examples" / "README.md"
README_BASE = "http://127.0.0.1:8000"


def readme_blocks(language: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in README.read_text().splitlines():
        if current is None and line == f"```{language}":
            current = []
        elif current is not None and line == "```":
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def readme_curl_lines(module: ModuleType) -> list[tuple[str, int]]:
    """``(command, expected status)`` for the README's curl lines that apply to ``module``."""
    curl_blocks = [b for b in readme_blocks("sh") if b and b[0].startswith("curl ")]
    common, fastapi_only = curl_blocks
    lines = common + (fastapi_only if module.__name__.endswith("fastapi_app") else [])
    out = []
    for line in lines:
        command, _, comment = line.partition("  # ")
        out.append((command.strip(), int(comment.split(",")[0])))
    return out


def test_the_readme_has_a_curl_line_for_every_route(example: ModuleType) -> None:
    documented = set()
    for command, status in readme_curl_lines(example):
        argv = shlex.split(command)
        method = argv[argv.index("-X") + 1] if "-X" in argv else "GET"
        path = next(a for a in argv if a.startswith(README_BASE)).removeprefix(README_BASE)
        documented.add((method, path, status))
    expected = {(m, p, s) for m, p, _, s, _ in routes_of(example)} | {("GET", "/stream", 200)}
    assert documented == expected


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_the_readmes_curl_lines_print_what_it_says(example: ModuleType, obskit_logs: LogRecords) -> None:
    shown_problems = {}
    for block in readme_blocks("json"):
        for line in block:
            if not line.startswith('{"type":"about:blank"'):
                continue  # shortened log records, not complete documents
            body = orjson.loads(line)
            shown_problems[body["instance"], body["status"]] = body
    assert len(shown_problems) == 3
    with serve(example.app) as base:
        for command, status in readme_curl_lines(example):
            argv = [*shlex.split(command.replace(README_BASE, base)), "-sS", "--max-time", "10"]
            result = subprocess.run(argv, capture_output=True, timeout=20, check=False)
            head, _, body = result.stdout.partition(b"\r\n\r\n")
            assert head.split(b" ")[1] == str(status).encode(), command
            if "/stream" in command:
                assert result.returncode == 18  # "transfer closed with outstanding read data remaining"
                assert b"transfer closed with outstanding read data remaining" in result.stderr
                continue
            assert result.returncode == 0, (command, result.stderr)
            if b"application/problem+json" in head:
                problem = orjson.loads(body)
                shown = shown_problems.get((problem["instance"], problem["status"]))
                if shown is not None:
                    assert problem == {**shown, "trace_id": problem["trace_id"]}

"""An active OpenTelemetry span's ids win, and unknown errors mark it failed (real opentelemetry-sdk)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.instrumentation.asgi")

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import obskit
from obskit.testing import LogRecords

pytestmark = pytest.mark.anyio

PROVIDER = TracerProvider()
EXPORTER = InMemorySpanExporter()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


async def ok(request: Request) -> Response:
    obskit.get_logger("app").info("inside span")
    return PlainTextResponse("ok")


async def boom(request: Request) -> Response:
    raise RuntimeError("token=abc broke")


def make_app() -> OpenTelemetryMiddleware:
    app = Starlette(routes=[Route("/ok", ok), Route("/boom", boom)])
    app.add_middleware(obskit.ObskitMiddleware)
    return OpenTelemetryMiddleware(app, tracer_provider=PROVIDER)


async def request(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get(path, headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})


async def test_span_ids_are_used_for_records_and_headers(
    obskit_logs: LogRecords, exporter: InMemorySpanExporter
) -> None:
    obskit.configure(service="svc")
    r = await request("/ok")
    server_span = next(s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER)
    trace_id = f"{server_span.context.trace_id:032x}"
    span_id = f"{server_span.context.span_id:016x}"
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # OTel honoured the incoming parent
    assert r.headers["traceparent"] == f"00-{trace_id}-{span_id}-01"
    app_records = [rec for rec in obskit_logs if rec["logger"] in ("app", "obskit.access")]
    assert [(rec["trace_id"], rec["span_id"]) for rec in app_records] == [(trace_id, span_id)] * 2


async def test_unknown_error_marks_the_span_failed(obskit_logs: LogRecords, exporter: InMemorySpanExporter) -> None:
    obskit.configure(service="svc")
    r = await request("/boom")
    assert r.status_code == 500
    server_span = next(s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER)
    assert server_span.status.status_code == StatusCode.ERROR
    [event] = [e for e in server_span.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert r.json()["trace_id"] == f"{server_span.context.trace_id:032x}"


def test_records_inside_a_plain_span_carry_its_ids(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    tracer = PROVIDER.get_tracer("test")
    with tracer.start_as_current_span("job") as span:
        obskit.get_logger().info("in a job")
    obskit.get_logger().info("after the job")
    ctx = span.get_span_context()
    assert obskit_logs[0]["trace_id"] == f"{ctx.trace_id:032x}"
    assert obskit_logs[0]["span_id"] == f"{ctx.span_id:016x}"
    assert obskit_logs[1]["trace_id"] is None


async def test_otel_false_leaves_the_active_span_alone(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc", otel=False)
    app = obskit.ObskitMiddleware(Starlette(routes=[Route("/ok", ok)]))
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with PROVIDER.get_tracer("test").start_as_current_span("caller"):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/ok", headers={"traceparent": incoming})
    assert r.headers["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"  # not the span's
    [record] = [rec for rec in obskit_logs if rec["logger"] == "obskit.access"]
    assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"

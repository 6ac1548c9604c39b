"""``obskit demo``: a small shop served by uvicorn with obskit configured, every route showing one behaviour.

The demo app lives here rather than in ``examples/`` because the wheel ships only the package. Every line
the process prints is a JSON log record (uvicorn's own included): the welcome message with the URLs and
curl commands is a record too, so ``obskit demo | obskit validate`` exits 0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import obskit
from obskit._errors import KnownError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

    from obskit.alerts import AlertRouter

SERVICE = "obskit-demo"
INSTALL_HINT = "obskit demo needs uvicorn: pip install 'obskit[demo]'\n"

log = obskit.get_logger("obskit.demo")


class OutOfStockError(KnownError):
    """A known error: 409 with its public detail, logged as a warning, not alerted."""

    status = 409
    title = "Out of stock"


# (method, path, what it shows): the welcome record and the index page list these.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/", "200 with this list; an access record"),
    ("GET", "/orders/42", "200; a library logger's record inside the request carries its trace id"),
    ("GET", "/out-of-stock", "known error: 409 problem with its public detail; warning record"),
    (
        "GET",
        "/crash",
        (
            "unknown error: generic 500 problem, nothing of the exception; error record with the stack; "
            "one alert to the local receiver however often it fires"
        ),
    ),
    ("GET", "/stream", "streaming body that fails after its first chunk: the connection is aborted"),
    ("GET", "/report", "sync endpoint logging from the threadpool, same trace id"),
    ("POST", "/signup", "background task logging after the response, same trace id"),
    ("GET", "/no-such-page", "the framework's own 404, as a problem document"),
)


def curl_lines(base_url: str) -> list[str]:
    """One curl command per demo route."""
    out = []
    for method, path, _ in ROUTES:
        flag = "" if method == "GET" else f"-X {method} "
        out.append(f"curl -i {flag}{base_url}{path}")
    return out


DEMO_SECRET = "whsec_" + base64.b64encode(b"obskit-demo-signing-key-32-bytes").decode()
receiver_log = obskit.get_logger("obskit.demo.receiver")


class _ReceiverHandler(BaseHTTPRequestHandler):
    """The demo's stand-in for a pager: verifies the Standard Webhooks signature, logs what arrived."""

    def do_POST(self) -> None:
        from obskit.alerts import WebhookVerificationError, verify_webhook  # noqa: PLC0415

        length = min(int(self.headers.get("content-length") or 0), 1 << 20)
        body = self.rfile.read(length)
        try:
            verify_webhook(DEMO_SECRET, dict(self.headers.items()), body)
            event = orjson.loads(body)
        except (WebhookVerificationError, orjson.JSONDecodeError) as exc:
            receiver_log.warning("demo receiver rejected a delivery", reason=str(exc))
            self.send_response(400)
            self.end_headers()
            return
        receiver_log.warning(
            f"ALERT received: {event['title']} (x{event['count']})",
            alert_id=event["id"],
            fingerprint=event["fingerprint"],
            count=event["count"],
            severity=event["severity"],
            alert_trace_id=event["trace_id"],
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silence http.server's own stderr lines: the record above says it all."""


def _alerts() -> tuple[AlertRouter, ThreadingHTTPServer] | None:
    """A local receiver on a free loopback port, and a router whose webhook posts to it.

    group_wait gathers a burst of one bug into a single alert; the 30 s window makes the follow-up with
    the accumulated count visible while a newcomer is still watching.
    """
    from obskit.alerts import AlertRouter, Route, Webhook  # noqa: PLC0415

    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="obskit-demo-receiver", daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    router = AlertRouter([Route([Webhook(url, secret=DEMO_SECRET)])], dedup_window=30.0, group_wait=2.0)
    return router, server


async def _index(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "service": SERVICE,
            "routes": [{"method": m, "path": p, "shows": s} for m, p, s in ROUTES],
            "curl": curl_lines(base),
        }
    )


async def _order(request: Request) -> Response:
    order_id = request.path_params["order_id"]
    logging.getLogger("payments.client").info("charging card for order %s", order_id)
    return JSONResponse({"order": order_id, "status": "paid"})


async def _out_of_stock(_request: Request) -> Response:
    raise OutOfStockError("sku 42 is sold out", sku=42, card_token="tok_demo_123")  # noqa: S106 - fake, logged redacted


async def _crash(_request: Request) -> Response:
    dsn = "postgres://shop:password=hunter2@db/shop"
    raise ZeroDivisionError(f"rate / 0 while connecting to {dsn}")


async def _stream(_request: Request) -> Response:
    async def rows() -> AsyncIterator[bytes]:
        yield b"row 1\n"
        await asyncio.sleep(0)
        raise RuntimeError("the database connection dropped mid-stream")

    return StreamingResponse(rows(), media_type="text/plain")


def _report(_request: Request) -> Response:
    logging.getLogger("reports.builder").info("building the report in a worker thread")
    return PlainTextResponse("report ready\n")


async def _signup(_request: Request) -> Response:
    def send_welcome_email() -> None:
        logging.getLogger("mailer").info("welcome email sent")

    return JSONResponse({"signed_up": True}, background=BackgroundTask(send_welcome_email))


def make_app(base_url: str) -> Starlette:
    """The demo app; ``base_url`` is what the welcome record advertises."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        welcome = f"obskit demo: try {base_url}/ (every line printed here is a JSON log record)"
        log.info(
            welcome,
            urls=[f"{base_url}{path}" for _, path, _ in ROUTES],
            curl=curl_lines(base_url),
        )
        yield

    app = Starlette(
        routes=[
            Route("/", _index),
            Route("/orders/{order_id}", _order),
            Route("/out-of-stock", _out_of_stock),
            Route("/crash", _crash),
            Route("/stream", _stream),
            Route("/report", _report),
            Route("/signup", _signup, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(obskit.ObskitMiddleware)
    return app


def run(*, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve the demo app with uvicorn until interrupted.

    Args:
        host: Interface to bind.
        port: Port to bind.

    Returns:
        The exit status: 0 after a clean shutdown, 1 when uvicorn is missing, and uvicorn's own status
        (3) when the server could not start, for example because the port is taken.
    """
    try:
        import uvicorn  # noqa: PLC0415 - the demo extra
    except ImportError:
        sys.stderr.write(INSTALL_HINT)
        return 1
    router, receiver = _alerts() or (None, None)
    obskit.configure(service=SERVICE, environment="demo", version=obskit.__version__, alerts=router)
    shown = f"[{host}]" if ":" in host else host
    app = make_app(f"http://{shown}:{port}")
    try:
        # log_config=None: uvicorn keeps its hands off logging, so its records go through obskit's chain.
        # access_log=False: obskit's access record already carries everything uvicorn's would, and the ids.
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind or start; its reason is logged
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        if receiver is not None:
            receiver.shutdown()
    return 0

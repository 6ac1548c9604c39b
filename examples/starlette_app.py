"""A Starlette app with obskit: run ``uvicorn examples.starlette_app:app`` from the repository root.

Every route shows one thing obskit does; ``examples/README.md`` has a curl line for each and what it prints.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import obskit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

obskit.configure(service="example-starlette")

log = obskit.get_logger(__name__)
payments = logging.getLogger("payments.client")  # a library that logs with the standard library


class OutOfStock(obskit.KnownError):
    """Expected: the client gets a 409 with this detail; logged as a warning, never alerted."""

    status = 409
    title = "Out of stock"


async def hello(request: Request) -> Response:
    log.info("saying hello", who=request.query_params.get("name", "world"))
    return JSONResponse({"hello": request.query_params.get("name", "world")})


async def order(request: Request) -> Response:
    order_id = request.path_params["order_id"]
    # Library records carry the request's trace id too.
    payments.info("charging card for order %s", order_id)
    return JSONResponse({"order": order_id, "status": "paid"})


async def out_of_stock(_request: Request) -> Response:
    # `detail` goes to the client; keyword arguments are logged only (and redacted when they look secret).
    raise OutOfStock("sku 42 is sold out", sku=42, card_token="tok_live_123")


async def crash(_request: Request) -> Response:
    # An unknown error: the client gets a generic 500 that holds nothing of this message.
    settings = {"password": "hunter2"}
    raise ZeroDivisionError(f"rate / 0 while connecting with password={settings['password']}")


async def stream(_request: Request) -> Response:
    async def rows() -> AsyncIterator[bytes]:
        yield b"row 1\n"
        await asyncio.sleep(0)
        raise RuntimeError("the database connection dropped mid-stream")

    # The 200 has already gone out when the generator fails: the connection is aborted instead.
    return StreamingResponse(rows(), media_type="text/plain")


def report(_request: Request) -> Response:
    # A sync endpoint runs in the threadpool; its records still carry the request's trace id.
    logging.getLogger("reports.builder").info("building the report in a worker thread")
    return PlainTextResponse("report ready\n")


async def signup(_request: Request) -> Response:
    def send_welcome_email() -> None:
        # Runs after the response was sent, still with the request's trace id.
        logging.getLogger("mailer").info("welcome email sent")

    return JSONResponse({"signed_up": True}, background=BackgroundTask(send_welcome_email))


app = Starlette(
    routes=[
        Route("/", hello),
        Route("/orders/{order_id}", order),
        Route("/out-of-stock", out_of_stock),
        Route("/crash", crash),
        Route("/stream", stream),
        Route("/report", report),
        Route("/signup", signup, methods=["POST"]),
    ]
)
app.add_middleware(obskit.ObskitMiddleware)

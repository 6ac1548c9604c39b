"""A FastAPI app with obskit: run ``uvicorn examples.fastapi_app:app`` from the repository root.

The same routes as ``examples/starlette_app.py``, plus a pydantic body model whose validation failures
become 422 problem responses; ``examples/README.md`` has a curl line for each.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

import obskit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

obskit.configure(service="example-fastapi")

log = obskit.get_logger(__name__)
payments = logging.getLogger("payments.client")  # a library that logs with the standard library


class OutOfStock(obskit.KnownError):
    """Expected: the client gets a 409 with this detail; logged as a warning, never alerted."""

    status = 409
    title = "Out of stock"


class Order(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


app = FastAPI(title="obskit example")
app.add_middleware(obskit.ObskitMiddleware)


@app.get("/")
async def hello(name: str = "world") -> dict[str, str]:
    log.info("saying hello", who=name)
    return {"hello": name}


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, object]:
    # Library records carry the request's trace id too.
    payments.info("charging card for order %s", order_id)
    return {"order": order_id, "status": "paid"}


@app.post("/orders", status_code=201)
async def create_order(order: Order) -> dict[str, object]:
    # A body that fails validation never gets here: the client gets a 422 problem with `errors`.
    log.info("order accepted", sku=order.sku, quantity=order.quantity)
    return {"sku": order.sku, "quantity": order.quantity}


@app.get("/out-of-stock")
async def out_of_stock() -> None:
    # `detail` goes to the client; keyword arguments are logged only (and redacted when they look secret).
    raise OutOfStock("sku 42 is sold out", sku=42, card_token="tok_live_123")


@app.get("/crash")
async def crash() -> None:
    # An unknown error: the client gets a generic 500 that holds nothing of this message.
    settings = {"password": "hunter2"}
    raise ZeroDivisionError(f"rate / 0 while connecting with password={settings['password']}")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def rows() -> AsyncIterator[bytes]:
        yield b"row 1\n"
        await asyncio.sleep(0)
        raise RuntimeError("the database connection dropped mid-stream")

    # The 200 has already gone out when the generator fails: the connection is aborted instead.
    return StreamingResponse(rows(), media_type="text/plain")


@app.get("/report", response_class=PlainTextResponse)
def report() -> str:
    # A sync endpoint runs in the threadpool; its records still carry the request's trace id.
    logging.getLogger("reports.builder").info("building the report in a worker thread")
    return "report ready\n"


@app.post("/signup")
async def signup(background: BackgroundTasks) -> dict[str, bool]:
    def send_welcome_email() -> None:
        # Runs after the response was sent, still with the request's trace id.
        logging.getLogger("mailer").info("welcome email sent")

    background.add_task(send_welcome_email)
    return {"signed_up": True}

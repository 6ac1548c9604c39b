"""The app under load for ``tests/reliability/test_load.py``: ``uvicorn tests.reliability.load_app:app``.

Every handler logs the ``x-request-id`` it saw (``seen_rid``) through ``obskit.get_logger`` and through a
standard-library "library" logger, so the test can attribute each record to the request that produced it
and check its ``trace_id`` against the ``traceparent`` that request carried. Unknown errors are routed to
an ``AlertRouter`` whose ``Webhook`` posts to ``LOAD_WEBHOOK_URL`` (the test's receiver), with
``LOAD_DEDUP_WINDOW`` seconds of dedup. ``/debug/state`` reports what the leak and count checks need.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import obskit
from obskit.alerts import AlertRouter, Webhook
from obskit.alerts import Route as AlertRoute

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

DEBUG_PATH = "/debug/state"
_webhook = os.environ.get("LOAD_WEBHOOK_URL")
router = (
    AlertRouter(
        [AlertRoute(Webhook(_webhook))],
        dedup_window=float(os.environ.get("LOAD_DEDUP_WINDOW", "300")),
    )
    if _webhook
    else None
)
obskit.configure(service="load-test", alerts=router, access_log_exclude=[DEBUG_PATH])

log = obskit.get_logger("load.app")
lib = logging.getLogger("load.library")  # a third-party library logging with the standard library

# Occurrences of each storm bug as the server saw them (the alert counts are checked against these).
occurrences: collections.Counter[str] = collections.Counter()


class OutOfStock(obskit.KnownError):
    status = 409
    title = "Out of stock"


def _rid(request: Request) -> str:
    return request.headers.get("x-request-id", "")


async def ok_async(request: Request) -> Response:
    rid = _rid(request)
    log.info("async handler", seen_rid=rid)
    lib.info("library call for %s", rid, extra={"seen_rid": rid})
    return JSONResponse({"rid": rid})


def ok_sync(request: Request) -> Response:
    # Runs in Starlette's threadpool: both records must still carry this request's trace id.
    rid = _rid(request)
    log.info("sync handler", seen_rid=rid)
    lib.info("library call for %s", rid, extra={"seen_rid": rid})
    return JSONResponse({"rid": rid})


async def known(request: Request) -> Response:
    rid = _rid(request)
    log.info("about to refuse", seen_rid=rid)
    raise OutOfStock("sku 42 is sold out", sku=42)


async def unknown(request: Request) -> Response:
    rid = _rid(request)
    log.info("about to fail", seen_rid=rid)
    raise RuntimeError("the load test's unknown error")


async def stream_fail(request: Request) -> Response:
    rid = _rid(request)
    log.info("starting a stream", seen_rid=rid)

    async def rows() -> AsyncIterator[bytes]:
        yield b"row 1\n"
        await asyncio.sleep(0)
        lib.info("stream half-way for %s", rid, extra={"seen_rid": rid})
        raise ConnectionError("the database connection dropped mid-stream")

    return StreamingResponse(rows(), media_type="text/plain")


async def ok(_request: Request) -> Response:
    return PlainTextResponse("ok\n")


# Three distinct bugs (distinct types and code locations, so distinct fingerprints) for the error storm,
# and a fourth one used only to warm the error path up before the storm.
def _parse_price(raw: str) -> float:
    return float(raw)


async def bug_a(_request: Request) -> Response:
    occurrences["a"] += 1
    _parse_price("twelve")
    return PlainTextResponse("unreachable")


_prices: dict[str, str] = {}


async def bug_b(_request: Request) -> Response:
    occurrences["b"] += 1
    return PlainTextResponse(_prices["missing-key"])


async def bug_c(_request: Request) -> Response:
    occurrences["c"] += 1
    return PlainTextResponse(str(1 // len("")))


async def bug_warm(_request: Request) -> Response:
    occurrences["warm"] += 1
    raise LookupError("warm-up bug")


async def debug_state(_request: Request) -> Response:
    names = collections.Counter(t.name.rstrip("0123456789_ -") for t in threading.enumerate())
    limiter = anyio.to_thread.current_default_thread_limiter()
    return JSONResponse(
        {
            "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(),
            "thread_kinds": dict(names),
            "threadpool_size": int(limiter.total_tokens),
            "occurrences": dict(occurrences),
            "alerts": dict(router.stats()) if router is not None else None,
        }
    )


app = Starlette(
    routes=[
        Route("/ok", ok),
        Route("/ok-async", ok_async),
        Route("/ok-sync", ok_sync),
        Route("/known", known),
        Route("/unknown", unknown),
        Route("/stream-fail", stream_fail),
        Route("/bug/a", bug_a),
        Route("/bug/b", bug_b),
        Route("/bug/c", bug_c),
        Route("/bug/warm", bug_warm),
        Route(DEBUG_PATH, debug_state),
    ]
)
app.add_middleware(obskit.ObskitMiddleware)

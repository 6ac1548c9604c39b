"""The app the fault tests run under uvicorn: ``python -m uvicorn tests.reliability.faults_app:app``.

Configured by the environment, so one module serves every subprocess scenario of ``test_faults.py``:

* ``FAULTS_HOOK_URL``: unknown errors go to a ``Webhook`` there (``FAULTS_HOOK_TIMEOUT`` seconds per
  attempt), through an ``AlertRouter`` with ``FAULTS_SPOOL_DIR`` (optional) and ``FAULTS_GROUP_WAIT``;
* ``FAULTS_FLUSH_TIMEOUT``: the middleware's ``flush_timeout`` at lifespan shutdown;
* ``FAULTS_LOG_BUFFER``: the log sink's backlog bound in bytes; ``FAULTS_PAD``: bytes of padding in the
  record ``/ok`` logs, to fill a pipe quickly.

Routes: ``/ok`` logs one record (with ``seq``, its request number); ``/boom/{n}`` raises an exception of
a class made for ``n``, so each ``n`` is a distinct bug (fingerprint); ``/stats`` answers the sink's and
the router's counters. Every line handed to the log sink is counted (``produced``), and when lifespan
shutdown is complete one JSON line of final counts goes to stderr for the test to reconcile.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import obskit
from obskit._logsetup import sink
from obskit.alerts import AlertRouter, Webhook
from obskit.alerts import Route as AlertRoute
from tests.reliability.faults_proc import EXIT_MARK

produced = 0


def _count(line: bytes) -> None:
    global produced  # noqa: PLW0603 - one process, one counter
    produced += 1


sink.captures.append(_count)
if "FAULTS_LOG_BUFFER" in os.environ:
    sink.max_buffer_bytes = int(os.environ["FAULTS_LOG_BUFFER"])

_hook_url = os.environ.get("FAULTS_HOOK_URL")
router = (
    AlertRouter(
        [AlertRoute(Webhook(_hook_url, timeout=float(os.environ.get("FAULTS_HOOK_TIMEOUT", "10"))))],
        spool_dir=os.environ.get("FAULTS_SPOOL_DIR") or None,
        group_wait=float(os.environ.get("FAULTS_GROUP_WAIT", "0")),
        backoff_base=0.2,
        backoff_cap=1.0,
    )
    if _hook_url
    else None
)
obskit.configure(service="faults", alerts=router)
log = obskit.get_logger("faults.app")
PAD = "x" * int(os.environ.get("FAULTS_PAD", "0"))
_seq = itertools.count()
_bugs: dict[int, type[Exception]] = {}


async def ok(request: Request) -> Response:
    log.info("served", seq=next(_seq), pad=PAD)
    return PlainTextResponse("ok")


async def boom(request: Request) -> Response:
    n = int(request.path_params["n"])
    bug = _bugs.get(n)
    if bug is None:
        bug = _bugs[n] = type(f"Bug{n}", (RuntimeError,), {})
    raise bug(f"bug number {n}")


async def stats(request: Request) -> Response:
    return JSONResponse(_counts())


def _counts() -> dict[str, Any]:
    return {
        "produced": produced,
        "dropped": sink.dropped,
        "failures": sink.failures,
        "pending": sink.pending,
        "alerts": dict(router.stats()) if router is not None else None,
    }


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The app, plus one thing: once lifespan shutdown is complete, the final counts go to stderr.

    Not at ``atexit``: uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies of the
    signal and ``atexit`` hooks never run. ``shutdown.complete`` passes through here after the
    middleware's own shutdown work (the alert flush), so the counts are final.
    """

    async def send_then_report(message: Any) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            sys.stderr.write(EXIT_MARK + orjson.dumps(_counts()).decode() + "\n")
            sys.stderr.flush()
        await send(message)

    await _app(scope, receive, send_then_report if scope["type"] == "lifespan" else send)


_app = obskit.ObskitMiddleware(
    Starlette(routes=[Route("/ok", ok), Route("/boom/{n:int}", boom), Route("/stats", stats)]),
    flush_timeout=float(os.environ.get("FAULTS_FLUSH_TIMEOUT", "5")),
)

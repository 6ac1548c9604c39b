"""Fault injection: what obskit guarantees when the log stream or an alert receiver fails, or the process dies.

1. Log stream faults (closed, ``BrokenPipeError``, a ``write`` that raises, a pipe nobody reads): requests
   are served within a deadline, every lost line is counted, and the failure is reported once on stderr.
2. Alert receiver faults (refused, reset before and in the middle of a response, 429 + ``Retry-After``,
   5xx, 4xx, a hang past the timeout, a redirect): the exact number of attempts, the same idempotency key
   on each, and never two successful deliveries under one key.
3. SIGTERM while alerts are queued: the process exits within the flush timeout (plus a margin) with every
   accepted alert delivered or in the spool.
4. SIGKILL while alerts are spooled: a new process delivers all of them with their original ids.
5. Corrupt, truncated or orphaned spool files: skipped and counted, or adopted; the rest delivered.

Single receiver faults one at a time are pinned in ``tests/alerts/test_delivery.py``; this module adds
the ones missing there and runs them as a scripted storm against a model of the retry policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import itertools
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route as HttpRoute

import obskit
from obskit._logsetup import sink
from obskit.alerts import AlertRouter, PagerDuty, Route, Webhook
from obskit.alerts._spool import MAX_FILE_BYTES
from tests.alerts import conftest as alerts_conftest
from tests.alerts.conftest import capture
from tests.alerts.receiver import Action, Hang, Receiver, Reset, ResetAfterHeaders, Respond, refused_url
from tests.reliability.faults_proc import run_app, spool_files, spooled_events, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from starlette.requests import Request

    from obskit.testing import LogRecords
    from tests.alerts.conftest import MakeRouter

make_router = alerts_conftest.make_router  # the fixtures, shared with tests/alerts
receiver = alerts_conftest.receiver

EXIT_MARGIN = 4.0  # uvicorn's shutdown and the interpreter's exit, on a loaded CI machine
REPORT_FAILED = "obskit: writing a log line failed"
REPORT_DROPPED = "obskit: the log stream is not accepting writes"


@pytest.fixture(autouse=True)
def _fresh_sink() -> Iterator[None]:
    bound = sink.max_buffer_bytes
    sink.reset_failures()
    yield
    sink.max_buffer_bytes = bound
    sink.reset_failures()


# --- 1. log stream faults ------------------------------------------------------------------------------


def logging_app() -> Any:
    log = obskit.get_logger("faults")
    library = logging.getLogger("faults.library")

    async def ok(request: Request) -> Response:
        log.info("handled", n=request.query_params.get("n"))
        library.info("library line")
        return PlainTextResponse("ok")

    return obskit.ObskitMiddleware(Starlette(routes=[HttpRoute("/ok", ok)]))


def serve_in_thread(app: Any, paths: list[str], deadline: float) -> list[int]:
    """Run the requests on a thread of their own, so a blocked write fails the test instead of hanging it."""
    statuses: list[int] = []

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for p in paths:
                statuses.append((await client.get(p)).status_code)  # one by one: the count shows progress on timeout

    worker = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    worker.start()
    worker.join(deadline)
    assert not worker.is_alive(), f"{len(statuses)}/{len(paths)} requests answered within {deadline}s"
    return statuses


class FlakyRaw(io.RawIOBase):
    """A binary stream whose ``write`` raises ``OSError(EIO)`` once broken."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.broken = False

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.broken:
            raise OSError(errno.EIO, "Input/output error")
        self.data += bytes(b)
        return len(b)


class FlakyText(io.StringIO):
    """A text stream whose ``write`` raises ``RuntimeError`` once broken."""

    broken = False

    def write(self, s: str) -> int:
        if self.broken:
            raise RuntimeError("the stream is gone")
        return super().write(s)


@dataclass
class StreamFault:
    stream: Any
    written: Callable[[], bytes]  # what reached the stream's reader so far
    inject: Callable[[], None]
    cleanup: Callable[[], None]


def pipe_fault(kind: str) -> StreamFault:
    r, w = os.pipe()
    os.set_blocking(r, False)
    writer = os.fdopen(w, "wb")  # closed by the fault or the cleanup
    got = bytearray()
    state = {"r": r}

    def written() -> bytes:
        try:
            while chunk := os.read(r, 1 << 16):
                got.extend(chunk)
        except BlockingIOError:
            pass
        return bytes(got)

    def inject() -> None:
        if kind == "closed":
            writer.close()
        else:  # the reader went away: writes fail with EPIPE (Python ignores SIGPIPE)
            written()
            os.close(r)
            state["r"] = -1

    def cleanup() -> None:
        writer.close()
        if state["r"] >= 0:
            os.close(r)

    return StreamFault(writer, written, inject, cleanup)


def raw_fault() -> StreamFault:
    raw = FlakyRaw()
    return StreamFault(raw, lambda: bytes(raw.data), lambda: setattr(raw, "broken", True), lambda: None)


def text_fault() -> StreamFault:
    text = FlakyText()
    return StreamFault(text, lambda: text.getvalue().encode(), lambda: setattr(text, "broken", True), lambda: None)


STREAM_FAULTS: dict[str, Callable[[], StreamFault]] = {
    "stream closed": lambda: pipe_fault("closed"),
    "BrokenPipeError": lambda: pipe_fault("broken"),
    "write raises OSError(EIO)": raw_fault,
    "text write raises RuntimeError": text_fault,
}


@pytest.mark.parametrize("name", STREAM_FAULTS)
def test_a_failing_log_stream_loses_no_request_and_is_reported_once(
    name: str, obskit_logs: LogRecords, capfd: pytest.CaptureFixture[str]
) -> None:
    fault = STREAM_FAULTS[name]()
    try:
        obskit.configure(service="faults", stream=fault.stream)
        app = logging_app()
        before = serve_in_thread(app, [f"/ok?n={i}" for i in range(5)], deadline=10)
        healthy = list(obskit_logs.lines)
        assert fault.written() == b"".join(healthy)  # whole lines, in order, until the fault
        fault.inject()
        after = serve_in_thread(app, [f"/ok?n={i}" for i in range(5, 25)], deadline=10)
        assert before + after == [200] * 25
        per_request = len(healthy) // 5  # the access record, the app's, the library's, httpx's
        assert len(healthy) == 5 * per_request
        assert per_request >= 3
        lost = len(obskit_logs.lines) - len(healthy)
        assert lost == 20 * per_request
        assert sink.failures == lost
        assert sink.dropped == 0
        assert capfd.readouterr().err.count(REPORT_FAILED) == 1
    finally:
        obskit.reset()
        fault.cleanup()


def read_available(fd: int) -> bytes:
    out = bytearray()
    try:
        while chunk := os.read(fd, 1 << 16):
            out.extend(chunk)
    except BlockingIOError:
        pass
    return bytes(out)


def is_subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


def test_a_pipe_nobody_reads_never_blocks_a_request(obskit_logs: LogRecords, capfd: pytest.CaptureFixture[str]) -> None:
    """In process: the log stream is an ``os.pipe()`` whose reader stops reading (a stalled collector)."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    writer = os.fdopen(w, "wb")  # closed in finally
    sink.max_buffer_bytes = 64 * 1024
    try:
        obskit.configure(service="faults", stream=writer)
        app = logging_app()
        start = time.monotonic()
        statuses = serve_in_thread(app, [f"/ok?n={i}" for i in range(600)], deadline=20)
        assert statuses == [200] * 600
        assert time.monotonic() - start < 20
        produced = len(obskit_logs.lines)
        assert produced >= 600 * 3
        assert sink.dropped > 0  # the pipe (64 KiB) and the backlog (64 KiB) are full
        assert 0 < sink.pending <= 64 * 1024
        assert sink.failures == 0
        err = capfd.readouterr().err
        assert err.count(REPORT_DROPPED) == 1
        assert REPORT_FAILED not in err

        # The reader comes back: the backlog drains in order, nothing torn, every line accounted for.
        got = bytearray()
        deadline = time.monotonic() + 10
        while not sink.flush(0.01):
            got += read_available(r)
            assert time.monotonic() < deadline, "the backlog did not drain"
        got += read_available(r)
        received = bytes(got).splitlines(keepends=True)
        assert len(received) + sink.dropped == produced
        assert is_subsequence(received, obskit_logs.lines)
        assert received[0] == obskit_logs.lines[0]

        # Healthy again: a line is in the pipe as soon as the call returns.
        obskit.get_logger().info("after the stall")
        assert read_available(r) == obskit_logs.lines[-1]
        assert b"after the stall" in obskit_logs.lines[-1]
        assert sink.pending == 0
    finally:
        os.close(r)  # first: a write blocked on the full pipe (the defect) fails with EPIPE and lets go
        obskit.reset()
        writer.close()


STALLED_FLUSH = 1.0  # the middleware's flush_timeout: how long shutdown waits for the log backlog
STALLED_ENV = {"FAULTS_PAD": "2000", "FAULTS_LOG_BUFFER": str(128 * 1024), "FAULTS_FLUSH_TIMEOUT": str(STALLED_FLUSH)}
# uvicorn (>= 0.29) re-raises SIGTERM once its graceful shutdown is over: the process dies of the signal.
TERMINATED = (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def stalled_server_run() -> tuple[list[bytes], dict[str, Any], str, float]:
    """150 requests to a server whose stdout pipe nobody reads, then SIGTERM; what came out of it."""
    with run_app(STALLED_ENV, stdout=subprocess.PIPE) as app:
        statuses = [app.get(f"/ok?i={i}", timeout=5.0).status_code for i in range(150)]
        assert statuses == [200] * 150
        stats = app.get("/stats").json()
        assert stats["dropped"] > 0
        assert stats["failures"] == 0
        assert 0 < stats["pending"] <= 128 * 1024
        assert app.signal(signal.SIGTERM) in TERMINATED
        assert app.exit_seconds is not None
        assert app.proc.stdout is not None
        out = app.proc.stdout.read()  # the process is gone: EOF after what the pipe held
        return out.splitlines(), app.exit_counts(), app.stderr.decode(), app.exit_seconds


def test_uvicorn_with_a_stdout_pipe_nobody_reads_keeps_serving(
    stalled_server_run: tuple[list[bytes], dict[str, Any], str, float],
) -> None:
    """A real server whose stdout is a pipe the test never reads: each request answered within 5 s."""
    lines, counts, stderr, exit_seconds = stalled_server_run
    assert exit_seconds < STALLED_FLUSH + EXIT_MARGIN
    records = [orjson.loads(line) for line in lines]  # whole records only
    seqs = [r["seq"] for r in records if r.get("message") == "served"]
    assert seqs == sorted(seqs)
    assert seqs[0] == 0
    assert counts["failures"] == 0
    assert stderr.count(REPORT_DROPPED) == 1


def test_sigterm_gives_up_on_the_log_backlog_counted_and_reported(
    stalled_server_run: tuple[list[bytes], dict[str, Any], str, float],
) -> None:
    """Lifespan shutdown drains the backlog for flush_timeout, then every line is written or counted.

    Regression: uvicorn re-raises SIGTERM after its graceful shutdown, so the sink's atexit hook never
    ran and the backlog vanished uncounted; then the chunk the writer thread held when shutdown gave up
    was neither written nor counted.
    """
    lines, counts, stderr, _ = stalled_server_run
    assert len(lines) + counts["dropped"] == counts["produced"]
    assert stderr.count("log lines were still waiting for the stream at exit") == 1


# --- 2. alert receiver faults --------------------------------------------------------------------------

RETRYABLE = "retryable"
DELIVERED = "delivered"


def outcome(action: Action) -> str:
    """What the retry policy (ALERTING.md §7 G4) makes of one receiver answer."""
    if isinstance(action, (Hang, Reset, ResetAfterHeaders)):
        return RETRYABLE
    status = action.status
    if 200 <= status < 300:
        return DELIVERED
    if status == 429 or status >= 500:
        return RETRYABLE
    if 300 <= status < 400:
        return "dropped_redirect"
    if status == 410:
        return "dropped_gone"
    return "dropped_permanent_error"


@dataclass
class Expected:
    attempts: list[int]  # per alert, in capture order
    counters: Counter[str]
    delivered_at: list[int]  # request indexes answered 2xx


def model(script: list[Action], alerts: int, max_attempts: int) -> Expected:
    """Feed ``script`` (then 200s) to ``alerts`` alerts delivered one after another by one worker."""
    actions = iter(script)
    attempts: list[int] = []
    counters: Counter[str] = Counter()
    delivered_at: list[int] = []
    request = 0
    for _ in range(alerts):
        n = 0
        while True:
            result = outcome(next(actions, Respond(200)))
            n += 1
            request += 1
            if result == DELIVERED:
                counters["delivered"] += 1
                delivered_at.append(request - 1)
                break
            if result != RETRYABLE:
                counters[result] += 1
                break
            if n == max_attempts:
                counters["dropped_max_attempts"] += 1
                break
            counters["retried"] += 1
        attempts.append(n)
    return Expected(attempts, counters, delivered_at)


def key_of(request: Any, hook: str) -> str:
    return str(request.headers["webhook-id"] if hook == "webhook" else request.json()["dedup_key"])


def check_against_model(receiver: Receiver, expected: Expected, stats: Any, hook: str) -> None:
    requests = receiver.settle(quiet=0.3)
    assert len(requests) == sum(expected.attempts)
    keys = [key_of(r, hook) for r in requests]
    # Attempts of one alert are consecutive and all carry its key; each alert has its own key.
    runs = [len(list(group)) for _, group in itertools.groupby(keys)]
    assert runs == expected.attempts
    assert len(set(keys)) == len(expected.attempts)
    delivered_keys = [keys[i] for i in expected.delivered_at]
    assert len(delivered_keys) == len(set(delivered_keys))  # never twice under one key
    for name in ("delivered", "retried", "dropped_redirect", "dropped_permanent_error", "dropped_max_attempts"):
        assert stats[name] == expected.counters[name], name
    assert stats["delivered"] + stats["dropped"] == len(expected.attempts)  # every alert accounted for


SINGLE_FAULTS: dict[str, tuple[list[Action], int, int, dict[str, int]]] = {
    # name: (script, max_attempts, attempts seen by the receiver, exact counters)
    "reset before the response": ([Reset()], 3, 2, {"delivered": 1, "retried": 1}),
    "reset after the response headers": ([ResetAfterHeaders()], 3, 2, {"delivered": 1, "retried": 1}),
    "reset after headers, every time": (
        [ResetAfterHeaders()] * 3,
        3,
        3,
        {"delivered": 0, "retried": 2, "dropped_max_attempts": 1},
    ),
    "429 with Retry-After: 1": ([Respond(429, {"Retry-After": "1"})], 3, 2, {"delivered": 1, "retried": 1}),
    "5xx then success": ([Respond(500), Respond(503)], 3, 3, {"delivered": 1, "retried": 2}),
    "5xx until max_attempts": ([Respond(502)] * 3, 3, 3, {"retried": 2, "dropped_max_attempts": 1}),
    "4xx": ([Respond(422)], 3, 1, {"dropped_permanent_error": 1, "retried": 0}),
    "hang past the timeout": ([Hang(5)], 3, 2, {"delivered": 1, "retried": 1}),
    "redirect": ([Respond(307, {"Location": "/elsewhere"})], 3, 1, {"dropped_redirect": 1, "retried": 0}),
}


@pytest.mark.parametrize("name", SINGLE_FAULTS)
def test_each_receiver_fault_costs_the_exact_number_of_attempts(name: str, make_router: MakeRouter) -> None:
    script, max_attempts, attempts, counters = SINGLE_FAULTS[name]
    with Receiver() as receiver:
        receiver.script(*script)
        router = make_router([Route(Webhook(receiver.url, timeout=0.3, max_attempts=max_attempts))])
        capture(router)
        assert asyncio.run(router.flush(10.0))
        requests = receiver.settle(quiet=0.3)
        assert len(requests) == attempts
        assert len({r.headers["webhook-id"] for r in requests}) == 1
        assert len({r.body for r in requests}) == 1
        stats = router.stats()
        for key, value in counters.items():
            assert stats[key] == value, key
        if name.startswith("429"):
            assert requests[1].at - requests[0].at >= 1.0
        assert model(script, 1, max_attempts).attempts == [attempts]  # the model agrees with the table


def test_a_refused_receiver_that_comes_back_gets_the_alert_once(make_router: MakeRouter) -> None:
    url = refused_url()
    port = int(url.rsplit(":", 1)[1])
    router = make_router([Route(Webhook(url + "/hook", max_attempts=50))], backoff_base=0.05, backoff_cap=0.1)
    capture(router)
    wait_until(lambda: router.stats()["retried"] >= 2, 5.0, "two refused attempts")
    with Receiver(port=port) as receiver:
        assert asyncio.run(router.flush(5.0))
        requests = receiver.settle(quiet=0.3)
    stats = router.stats()
    assert len(requests) == 1
    assert (stats["delivered"], stats["dropped"]) == (1, 0)
    assert stats["retried"] >= 2


def storm_script(rng: random.Random, length: int) -> list[Action]:
    faults: list[Action] = [
        Respond(500),
        Respond(502),
        Respond(503, {"Retry-After": "0"}),
        Respond(429, {"Retry-After": "0"}),
        Reset(),
        ResetAfterHeaders(),
        Respond(400),
        Respond(404),
        Respond(308, {"Location": "/moved"}),
    ]
    script: list[Action] = []
    hangs = 0
    for _ in range(length):
        if rng.random() < 0.4:
            script.append(rng.choice([Respond(200), Respond(202), Respond(204)]))
        elif hangs < 2 and rng.random() < 0.05:
            script.append(Hang(5))
            hangs += 1
        else:
            script.append(rng.choice(faults))
    return script


@pytest.mark.parametrize("seed", [1, 2])
def test_a_storm_of_receiver_faults_matches_the_retry_model_exactly(seed: int, make_router: MakeRouter) -> None:
    """Two receivers, a Webhook and PagerDuty, each answering a seeded random script of faults."""
    rng = random.Random(seed)
    alerts, max_attempts = 25, 4
    scripts = {hook: storm_script(rng, 60) for hook in ("webhook", "pagerduty")}
    with Receiver() as web, Receiver() as pd:
        web.script(*scripts["webhook"])
        pd.script(*scripts["pagerduty"])
        hooks = [
            Webhook(web.url, timeout=0.3, max_attempts=max_attempts, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            PagerDuty("R0UT1NGKEY00000000000000000000AB", url=pd.url + "/v2/enqueue", timeout=0.3, max_attempts=4),
        ]
        web_router = make_router([Route(hooks[0])])
        pd_router = make_router([Route(hooks[1])])
        for i in range(alerts):
            for router in (web_router, pd_router):
                capture(router, fingerprint=f"{i:016x}")
        assert asyncio.run(web_router.flush(30.0))
        assert asyncio.run(pd_router.flush(30.0))
        check_against_model(web, model(scripts["webhook"], alerts, max_attempts), web_router.stats(), "webhook")
        check_against_model(pd, model(scripts["pagerduty"], alerts, max_attempts), pd_router.stats(), "pagerduty")
        assert [r.json()["dedup_key"] for r in pd.requests] == sorted(r.json()["dedup_key"] for r in pd.requests)


# --- 3. SIGTERM while alerts are queued ----------------------------------------------------------------

FLUSH_TIMEOUT = 1.0


def hit_bugs(app: Any, n: int) -> None:
    for i in range(n):
        assert app.get(f"/boom/{i}").status_code == 500


@pytest.mark.parametrize("receiver_state", ["hanging", "down"])
def test_sigterm_with_an_unreachable_receiver_spools_every_alert(receiver_state: str, tmp_path: Path) -> None:
    bugs = 5
    with contextlib.ExitStack() as stack:
        if receiver_state == "hanging":
            receiver = stack.enter_context(Receiver(default=Hang(30)))
            url = receiver.url + "/hook"
        else:
            url = refused_url() + "/hook"
        env = {"FAULTS_HOOK_URL": url, "FAULTS_SPOOL_DIR": str(tmp_path), "FAULTS_FLUSH_TIMEOUT": str(FLUSH_TIMEOUT)}
        with run_app(env) as app:
            hit_bugs(app, bugs)
            wait_until(lambda: app.get("/stats").json()["alerts"]["spooled"] == bugs, 10, "spooled")
            if receiver_state == "hanging":
                receiver.wait_for(1)  # the first attempt is stuck in the receiver
            assert app.signal(signal.SIGTERM) in TERMINATED
            assert app.exit_seconds is not None
            assert app.exit_seconds < FLUSH_TIMEOUT + EXIT_MARGIN
            counts = app.exit_counts()["alerts"]
            stdout = app.stdout
        events = spooled_events(tmp_path)
        assert sorted(e["error"]["type"].rsplit(".", 1)[-1] for e in events) == [f"Bug{i}" for i in range(bugs)]
        assert len({e["fingerprint"] for e in events}) == bugs
        ids = sorted(e["id"] for e in events)
        assert (counts["enqueued"], counts["shutdown_spooled"], counts["delivered"], counts["dropped"]) == (
            bugs,
            bugs,
            0,
            0,
        )
        assert b"shutdown with 5 undelivered alert deliveries (kept in the spool for the next start)" in stdout

        # Closing the loop: the next start delivers each of them once, with the id the spool kept.
        if receiver_state == "hanging":
            assert {r.headers["webhook-id"] for r in receiver.requests} <= set(ids)
            receiver.default = Respond(200)
        else:
            receiver = stack.enter_context(Receiver(port=int(url.split(":")[2].split("/")[0])))
        before = len(receiver.requests)
        router = AlertRouter([Route(Webhook(url))], spool_dir=tmp_path)
        try:
            assert asyncio.run(router.flush(10.0))
        finally:
            router.close(1.0)
        delivered = receiver.settle()[before:]
        assert sorted(r.headers["webhook-id"] for r in delivered) == ids
        assert spool_files(tmp_path) == []


def test_sigterm_with_the_receiver_up_delivers_everything_before_exit(tmp_path: Path) -> None:
    bugs = 5
    with Receiver() as receiver:
        env = {
            "FAULTS_HOOK_URL": receiver.url + "/hook",
            "FAULTS_SPOOL_DIR": str(tmp_path),
            "FAULTS_GROUP_WAIT": "30",  # every alert is still queued when SIGTERM arrives
            "FAULTS_FLUSH_TIMEOUT": "5",
        }
        with run_app(env) as app:
            hit_bugs(app, bugs)
            stats = app.get("/stats").json()["alerts"]
            assert (stats["enqueued"], stats["delivered"]) == (bugs, 0)
            assert receiver.requests == []
            assert app.signal(signal.SIGTERM) in TERMINATED
            assert app.exit_seconds is not None
            assert app.exit_seconds < 5 + EXIT_MARGIN
            counts = app.exit_counts()["alerts"]
        requests = receiver.requests
        assert len(requests) == bugs
        assert len({r.headers["webhook-id"] for r in requests}) == bugs
        assert len({r.json()["fingerprint"] for r in requests}) == bugs
        assert (counts["delivered"], counts["dropped"], counts["shutdown_spooled"]) == (bugs, 0, 0)
        assert spool_files(tmp_path) == []


def test_closing_again_or_flushing_after_close_answers_at_once(receiver: Receiver) -> None:
    """Lifespan shutdown closes the router, then the app's own teardown (or atexit) closes it again.

    Regression: the second close/flush could land on the loop between its stop and its close, never
    run (``coroutine 'AlertRouter._aclose' was never awaited``) and hang for its timeout + 5 s.
    """
    for i in range(20):
        router = AlertRouter([Route(Webhook(receiver.url))])
        capture(router, fingerprint=f"{i:016x}")
        assert asyncio.run(router.aclose(2.0)) is True
        start = time.monotonic()
        assert router.close(2.0) is True
        assert asyncio.run(router.flush(2.0)) is True
        assert asyncio.run(router.aclose(2.0)) is True
        assert time.monotonic() - start < 1.0
    assert len(receiver.settle()) == 20


def test_a_flush_waiting_when_the_router_closes_returns(make_router: MakeRouter) -> None:
    with Receiver(default=Hang(10)) as receiver:
        router = make_router([Route(Webhook(receiver.url, timeout=5))])
        capture(router)
        receiver.wait_for(1)
        outcome: list[bool] = []
        flusher = threading.Thread(target=lambda: outcome.append(asyncio.run(router.flush(30.0))))
        flusher.start()
        time.sleep(0.1)
        assert router.close(0.2) is False
        flusher.join(2.0)
        assert not flusher.is_alive()
        # False if the loop ended under it; True if it saw the close settle the alert first (counted).
        assert outcome in ([False], [True])
        assert router.stats()["dropped_shutdown"] == 1


# --- 4. SIGKILL while alerts are spooled ---------------------------------------------------------------


def test_sigkill_with_alerts_in_the_spool_loses_none_across_a_restart(tmp_path: Path) -> None:
    bugs = 8
    url = refused_url()
    port = int(url.rsplit(":", 1)[1])
    env = {"FAULTS_HOOK_URL": url + "/hook", "FAULTS_SPOOL_DIR": str(tmp_path)}
    with run_app(env) as app:
        hit_bugs(app, bugs)
        wait_until(lambda: len(spool_files(tmp_path)) == bugs, 30, f"{bugs} spool files")
        assert app.signal(signal.SIGKILL) == -signal.SIGKILL
    events = spooled_events(tmp_path)
    ids = {e["id"] for e in events}
    assert len(ids) == bugs
    assert len({e["fingerprint"] for e in events}) == bugs

    with Receiver(port=port) as receiver, run_app(env) as app:
        requests = receiver.wait_for(bugs, timeout=30)
        wait_until(lambda: spool_files(tmp_path) == [], 30, "spool emptied")
        stats = app.get("/stats").json()["alerts"]
        assert app.signal(signal.SIGTERM) in TERMINATED
        requests = receiver.settle()
    assert sorted(r.headers["webhook-id"] for r in requests) == sorted(ids)  # each once, its original id
    assert {r.json()["id"] for r in requests} == ids
    assert (stats["replayed"], stats["delivered"], stats["dropped"]) == (bugs, bugs, 0)


# --- 5. corrupt, truncated and orphaned spool files ----------------------------------------------------


def _corruptions(good: bytes) -> dict[str, bytes]:
    doc = orjson.loads(good)
    no_event_id = {**doc, "event": {k: v for k, v in doc["event"].items() if k != "id"}}
    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "garbage": b"\x00\xff garbage",
        "invalid utf-8": good.replace(b'"v"', b'"\xff"'),
        "not an object": b"[1, 2, 3]",
        "unknown version": orjson.dumps({**doc, "v": 99}),
        "event missing its id": orjson.dumps(no_event_id),
        "event not an object": orjson.dumps({**doc, "event": "nope"}),
        "too large": b" " * (MAX_FILE_BYTES + 1) + good,
    }


def test_corrupt_and_truncated_spool_files_are_skipped_counted_and_the_rest_delivered(
    tmp_path: Path, make_router: MakeRouter
) -> None:
    with Receiver(default=Respond(503)) as receiver:
        url = receiver.url + "/hook"
        first = make_router([Route(Webhook(url))], spool_dir=tmp_path, backoff_base=60, backoff_cap=60)
        for i in range(3):
            capture(first, fingerprint=f"{i:016x}")
        wait_until(lambda: first.stats()["spooled"] == 3, 5, "spooled")
        first.close(0.1)
        good = spool_files(tmp_path)
        assert len(good) == 3
        slot = good[0].parent
        bad = _corruptions(good[0].read_bytes())
        for n, content in enumerate(bad.values()):
            (slot / f"0000000000000000000{n}-bad{n}-{good[0].name.rsplit('-', 1)[-1]}").write_bytes(content)
        (slot / "00000000000000000099-dir.json").mkdir()  # not even a file

        receiver.default = Respond(200)
        before = len(receiver.requests)
        second = make_router([Route(Webhook(url))], spool_dir=tmp_path)
        assert asyncio.run(second.flush(5.0))
        delivered = receiver.settle()[before:]
        assert sorted(r.json()["fingerprint"] for r in delivered) == [f"{i:016x}" for i in range(3)]
        stats = second.stats()
        assert stats["dropped_spool_corrupt"] == len(bad) + 1
        assert (stats["replayed"], stats["delivered"]) == (3, 3)
        assert spool_files(tmp_path) == [slot / "00000000000000000099-dir.json"]  # a directory: left alone


def test_spool_files_of_a_process_that_is_not_restarted_are_delivered(tmp_path: Path, make_router: MakeRouter) -> None:
    """Two workers spooled (slot-0, slot-1); one process restarts: it adopts the orphaned slot.

    Regression: only the restarted process's own slot was replayed, so a restart with fewer workers left
    the other slots' alerts on disk for ever.
    """
    with Receiver(default=Respond(503)) as receiver:
        url = receiver.url + "/hook"
        workers = [
            make_router([Route(Webhook(url))], spool_dir=tmp_path, backoff_base=60, backoff_cap=60) for _ in range(2)
        ]
        for n, worker in enumerate(workers):
            capture(worker, fingerprint=f"{n:016x}")
        wait_until(lambda: all(w.stats()["spooled"] == 1 for w in workers), 5, "spooled")
        for worker in workers:
            worker.close(0.1)
        assert sorted(p.parent.name for p in spool_files(tmp_path)) == ["slot-0", "slot-1"]
        ids = {e["id"] for e in spooled_events(tmp_path)}

        receiver.default = Respond(200)
        before = len(receiver.requests)
        restarted = make_router([Route(Webhook(url))], spool_dir=tmp_path)
        assert asyncio.run(restarted.flush(5.0))
        delivered = receiver.settle()[before:]
        assert sorted(r.headers["webhook-id"] for r in delivered) == sorted(ids)
        assert (restarted.stats()["replayed"], restarted.stats()["delivered"]) == (2, 2)
        assert spool_files(tmp_path) == []


def test_a_live_process_keeps_its_own_spool_slot(tmp_path: Path, make_router: MakeRouter) -> None:
    with Receiver(default=Respond(503)) as receiver:
        url = receiver.url + "/hook"
        live = make_router([Route(Webhook(url))], spool_dir=tmp_path, backoff_base=60, backoff_cap=60)
        capture(live)
        wait_until(lambda: live.stats()["spooled"] == 1, 5, "spooled")
        other = make_router([Route(Webhook(url))], spool_dir=tmp_path)
        assert asyncio.run(other.flush(2.0))
        assert other.stats()["replayed"] == 0
        assert [p.parent.name for p in spool_files(tmp_path)] == ["slot-0"]
        live.close(0.1)

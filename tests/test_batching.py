"""One write per event-loop turn: the lines a loop logs while serving requests go out together.

The log stream here is a real pipe (as stdout is under Docker or Kubernetes) and the writes are counted
where they reach the kernel, ``os.pwritev``/``os.write`` on the pipe's descriptor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import patch

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import obskit
from obskit import _logsetup
from obskit._context import TraceContext
from obskit._context import _current as obskit_context
from obskit._logsetup import BATCH_SECONDS, sink
from obskit.testing import LogRecords

pytestmark = pytest.mark.anyio


class Pipe:
    """A pipe whose write end is the log stream; counts the system calls that wrote to it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.r, w = os.pipe()
        os.set_blocking(self.r, False)
        self.stream = os.fdopen(w, "wb")
        self.writes = 0
        fd = w
        real_pwritev, real_write = os.pwritev, os.write

        def pwritev(f: int, buffers: Any, *args: Any) -> int:
            if f == fd:
                self.writes += 1
            return real_pwritev(f, buffers, *args)

        def write(f: int, data: Any) -> int:
            if f == fd:
                self.writes += 1
            return real_write(f, data)

        monkeypatch.setattr(_logsetup.os, "pwritev", pwritev)
        monkeypatch.setattr(_logsetup.os, "write", write)

    def raw(self) -> bytes:
        out = bytearray()
        try:
            while chunk := os.read(self.r, 1 << 16):
                out += chunk
        except BlockingIOError:
            pass
        return bytes(out)

    def read(self) -> list[dict[str, Any]]:
        out = self.raw()
        assert out.endswith(b"\n") or not out  # whole lines only
        records = [orjson.loads(line) for line in out.splitlines()]
        return [r for r in records if r.get("logger") != "httpx"]

    def close(self) -> None:
        os.close(self.r)
        self.stream.close()


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipe]:
    # The test client logs each request it made, outside any request: such a line is written at once
    # (and takes what was held with it), which is right, but not what these tests count.
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.WARNING)
    p = Pipe(monkeypatch)
    try:
        yield p
    finally:
        obskit.reset()
        p.close()


async def hello(request: Request) -> Response:
    obskit.get_logger("app").info("handling", n=request.query_params.get("n"))
    return JSONResponse({"ok": True})


async def fails(_request: Request) -> Response:
    logging.getLogger("app").info("before the error")
    logging.getLogger("app").error("payment provider refused")
    return JSONResponse({"ok": False})


async def blocks(_request: Request) -> Response:
    obskit.get_logger("app").info("about to block the loop")
    time.sleep(6 * BATCH_SECONDS)  # a blocking call in a coroutine: the loop cannot come back
    return JSONResponse({"ok": True})


def app() -> Starlette:
    a = Starlette(routes=[Route("/hello", hello), Route("/fails", fails), Route("/blocks", blocks)])
    a.add_middleware(obskit.ObskitMiddleware)
    return a


def client(a: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://test")


async def test_a_turn_of_requests_is_one_write_made_when_the_loop_comes_back(pipe: Pipe) -> None:
    obskit.configure(service="svc", stream=pipe.stream)
    a = app()
    async with client(a) as c:
        writes = pipe.writes
        responses = await asyncio.gather(*(c.get(f"/hello?n={i}") for i in range(10)))
        assert [r.status_code for r in responses] == [200] * 10
        await asyncio.sleep(0)  # the loop turns: what was held is written
        records = pipe.read()
    assert sink.failures == sink.dropped == 0
    assert len(records) == 20  # each request: the app's line and the access record
    assert sorted(r["n"] for r in records if r["message"] == "handling") == [str(i) for i in range(10)]
    assert pipe.writes - writes <= 3  # 20 records of ~400 bytes: whole-line chunks of at most PIPE_BUF
    access = [r for r in records if r["logger"] == "obskit.access"]
    for r in access:  # every request's own lines come before its access record
        mine = [x for x in records if x.get("trace_id") == r["trace_id"]]
        assert mine[-1] is r


async def test_an_error_is_written_at_once_after_what_was_held(pipe: Pipe) -> None:
    obskit.configure(service="svc", stream=pipe.stream)
    seen: list[list[str]] = []

    async def probe(_request: Request) -> Response:
        logging.getLogger("app").info("held")
        seen.append([r["message"] for r in pipe.read()])  # nothing yet: the turn is not over
        logging.getLogger("app").error("not held")
        seen.append([r["message"] for r in pipe.read()])
        return JSONResponse({})

    a = Starlette(routes=[Route("/probe", probe)])
    a.add_middleware(obskit.ObskitMiddleware)
    async with client(a) as c:
        assert (await c.get("/probe")).status_code == 200
    assert seen == [[], ["held", "not held"]]


async def test_lines_outside_a_request_are_never_held(pipe: Pipe) -> None:
    obskit.configure(service="svc", stream=pipe.stream)
    obskit.get_logger().info("startup line in a coroutine")
    logging.getLogger("uvicorn.error").info("Finished server process [%d]", 1)
    assert [r["message"] for r in pipe.read()] == ["startup line in a coroutine", "Finished server process [1]"]


async def test_another_threads_line_waits_for_the_held_ones(pipe: Pipe) -> None:
    obskit.configure(service="svc", stream=pipe.stream)
    order: list[str] = []

    async def endpoint(_request: Request) -> Response:
        obskit.get_logger("app").info("first, on the loop")
        thread = threading.Thread(target=lambda: obskit.get_logger("worker").info("second, from a thread"))
        thread.start()
        thread.join()
        order.extend(r["message"] for r in pipe.read())
        return JSONResponse({})

    a = Starlette(routes=[Route("/x", endpoint)])
    a.add_middleware(obskit.ObskitMiddleware)
    async with client(a) as c:
        await c.get("/x")
    assert order == ["first, on the loop", "second, from a thread"]


async def test_a_blocked_loop_still_gets_its_lines_out(pipe: Pipe) -> None:
    obskit.configure(service="svc", stream=pipe.stream)
    got: list[str] = []
    seen_at: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for r in pipe.read():
                got.append(r["message"])
                seen_at.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        async with client(app()) as c:
            start = time.monotonic()
            assert (await c.get("/blocks")).status_code == 200
    finally:
        stop.set()
        thread.join()
    assert got[0] == "about to block the loop"
    # written by the watchdog while the loop was still blocked (6 * BATCH_SECONDS)
    assert seen_at[0] - start < 4 * BATCH_SECONDS


async def lines_seen_inside_the_request(count: Callable[[], int]) -> int:
    """Serve one request whose handler logs a line, then counts the lines its stream holds so far."""
    seen: list[int] = []

    async def endpoint(_request: Request) -> Response:
        obskit.get_logger("app").info("one")
        seen.append(count())
        return JSONResponse({})

    a = Starlette(routes=[Route("/x", endpoint)])
    a.add_middleware(obskit.ObskitMiddleware)
    async with client(a) as c:
        await c.get("/x")
    return seen[0]


async def test_batching_off_writes_every_line_at_once(pipe: Pipe) -> None:
    obskit.configure(service="svc", stream=pipe.stream, batch_writes=False)
    assert await lines_seen_inside_the_request(lambda: len(pipe.read())) == 1
    assert len(pipe.read()) == 1  # the access record, written as the request ended


async def test_an_in_memory_stream_sees_each_line_at_once(obskit_logs: LogRecords) -> None:
    import io

    out = io.BytesIO()
    obskit.configure(service="svc", stream=out)
    assert await lines_seen_inside_the_request(lambda: out.getvalue().count(b"\n")) == 1


def test_held_lines_are_written_by_flush_and_never_twice_after_fork(pipe: Pipe) -> None:
    obskit.configure(service="svc", stream=pipe.stream)

    async def serve() -> None:
        async with client(app()) as c:
            await c.get("/hello?n=1")
        # The loop has not turned since the access record was held: fork now.
        pid = os.fork()
        if pid == 0:  # the child must not write the parent's held lines again
            sink.flush(1.0)
            os._exit(0)
        os.waitpid(pid, 0)
        assert sink.flush(1.0)

    asyncio.run(serve())
    assert [r["message"] for r in pipe.read()] == ["handling", "GET /hello 200"]


async def test_the_watchdog_thread_ends_when_nothing_is_held(pipe: Pipe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_logsetup, "_WATCH_IDLE_SECONDS", 3 * BATCH_SECONDS)
    obskit.configure(service="svc", stream=pipe.stream)

    def watchdogs() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "obskit-log-flush"]

    async with client(app()) as c:
        await c.get("/hello?n=1")
        assert len(watchdogs()) == 1
        deadline = time.monotonic() + 30 * BATCH_SECONDS
        while watchdogs():
            assert time.monotonic() < deadline, "the watchdog did not end"
            await asyncio.sleep(BATCH_SECONDS)
        await c.get("/hello?n=2")  # the next held line starts another one
        assert len(watchdogs()) == 1
        await asyncio.sleep(0)
    assert [r["message"] for r in pipe.read()] == ["handling", "GET /hello 200"] * 2


class _SlowTake(list):  # type: ignore[type-arg]
    """The held list, where another thread's flush waits, just after copying it, for the loop's next line."""

    def __init__(self) -> None:
        super().__init__()
        self.appended = threading.Event()

    def append(self, line: Any) -> None:
        super().append(line)
        self.appended.set()

    def __getitem__(self, key: Any) -> Any:
        taken = super().__getitem__(key)
        if isinstance(key, slice) and threading.current_thread() is not threading.main_thread():
            self.appended.clear()
            self.appended.wait(0.005)  # a preemption between copying the lines and taking them out
        return taken


def test_lines_held_while_another_thread_flushes_are_each_written_once_in_order(pipe: Pipe) -> None:
    # Holding a line takes no lock: the loop appends while another thread's line flushes what is held.
    # A flusher that cleared the list after copying it would lose the lines appended in between.
    obskit.configure(service="svc", stream=pipe.stream)
    from_thread = 300
    from_loop: list[int] = []
    got = bytearray()
    stop = threading.Event()

    def reader() -> None:  # keeps the pipe from filling
        while not stop.is_set():
            got.extend(pipe.raw())
            time.sleep(0.0005)

    def line(side: bytes, i: int) -> bytes:
        return (
            b'{"timestamp":"2026-11-29T13:00:00.000000Z","level":"info","service":"svc","trace_id":"%s",'
            b'"message":"%s","i":%d}\n' % (b"a" * 32, side, i)
        )

    def other_thread() -> None:
        for i in range(from_thread):
            sink.write(line(b"thread", i))
            time.sleep(0.0002)  # the loop holds lines meanwhile

    async def loop_side() -> None:
        token = obskit_context.set(TraceContext("a" * 32, "b" * 16, "c" * 32))  # as inside a request
        try:
            worker = threading.Thread(target=other_thread)
            worker.start()
            while worker.is_alive() and len(from_loop) < 100_000:
                from_loop.append(len(from_loop))
                sink.write(line(b"loop", from_loop[-1]))
                if len(from_loop) % 16 == 0:
                    await asyncio.sleep(0.0001)  # a turn, at a pace the reader keeps up with
            worker.join()
        finally:
            obskit_context.reset(token)

    thread = threading.Thread(target=reader)
    thread.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # the thread's lines preempt the loop's between two of its lines
    try:
        with patch.object(sink, "_held", _SlowTake()):
            asyncio.run(loop_side())
            assert sink.flush(5.0)
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        thread.join()
    records = [orjson.loads(line) for line in bytes(got + pipe.raw()).splitlines()]
    assert sink.failures == sink.dropped == 0
    assert [r["i"] for r in records if r["message"] == "thread"] == list(range(from_thread))
    assert [r["i"] for r in records if r["message"] == "loop"] == from_loop


def test_no_line_lands_between_the_pieces_of_a_record_longer_than_pipe_buf(
    pipe: Pipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pipe with room for one page takes that much of a 20 KB record; the rest follows later. A short
    # line another thread logs meanwhile must go after the whole record, never between its pieces.
    if not _logsetup._NOWAIT:
        pytest.skip("the pwritev2(RWF_NOWAIT) path")
    obskit.configure(service="svc", stream=pipe.stream)
    fd = pipe.stream.fileno()
    counted_write = os.write  # the fixture's: the pipe is empty, so no write here blocks
    other = threading.Thread(target=lambda: obskit.get_logger("other").info("short"))

    def pwritev(f: int, buffers: Any, *_args: Any) -> int:
        data = b"".join(buffers)
        if f == fd and len(data) > _logsetup._CHUNK and other.ident is None:
            n = counted_write(f, data[: _logsetup._CHUNK])  # a partial write: the first page fitted
            other.start()
            other.join(0.5)  # a line that does not wait for the rest of this one is written by now
            return n
        return counted_write(f, data)

    monkeypatch.setattr(_logsetup.os, "pwritev", pwritev)
    obskit.get_logger("long").info("long", pad="y" * 20_000)
    other.join(5)
    assert sink.flush(5.0)
    lines = pipe.raw().splitlines()
    assert [orjson.loads(line)["message"] for line in lines] == ["long", "short"]
    assert sink.failures == sink.dropped == 0

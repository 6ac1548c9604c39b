"""Load generators for ``tests/reliability/test_load.py``: a mixed-route client, a latency probe, and wrk.

``run_mixed`` sends ``n`` requests over ``concurrency`` keep-alive connections (``concurrency`` workers
pulling from one queue, each with its own ``httpx.AsyncClient`` limited to one connection),
each with its own ``traceparent`` and ``x-request-id``, and records what came back. ``probe`` hits one
route at a fixed low rate over its own connection and returns the client-observed latency of each call.
``run_wrk`` runs ``wrk`` with ``load_storm.lua`` (paths rotated, optional per-connection delay) and parses
its summary. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

HERE = Path(__file__).resolve().parent
STORM_SCRIPT = HERE / "load_storm.lua"

# The mix, in the order requests are issued (request i is KINDS[i % len(KINDS)]): 40% answered 200
# (half async, half sync endpoints), 20% known errors, 20% unknown errors, 20% streams that fail half-way.
KINDS = ("ok-async", "ok-sync", "known", "unknown", "stream-fail")
EXPECTED_STATUS = {"ok-async": 200, "ok-sync": 200, "known": 409, "unknown": 500, "stream-fail": 200}


@dataclass(frozen=True)
class Sent:
    rid: str
    trace_id: str
    kind: str


@dataclass
class Outcome:
    sent: Sent
    status: int | None = None
    aborted: bool = False  # the body ended abnormally (the streaming-failure route)
    body: bytes = b""
    resp_rid: str | None = None
    resp_traceparent: str | None = None
    error: str | None = None  # anything unexpected on the client side (timeouts, resets, ...)


def new_request(prefix: str, i: int) -> Sent:
    trace_id = secrets.token_hex(16)
    while trace_id == "0" * 32:  # the all-zero id is invalid in W3C trace context
        trace_id = secrets.token_hex(16)
    return Sent(f"{prefix}-{i:06d}", trace_id, KINDS[i % len(KINDS)])


def headers_for(sent: Sent) -> dict[str, str]:
    span = secrets.token_hex(8)
    return {"traceparent": f"00-{sent.trace_id}-{span}-01", "x-request-id": sent.rid}


async def _one(client: httpx.AsyncClient, sent: Sent) -> Outcome:
    out = Outcome(sent)
    try:
        async with client.stream("GET", f"/{sent.kind}", headers=headers_for(sent)) as resp:
            out.status = resp.status_code
            out.resp_rid = resp.headers.get("x-request-id")
            out.resp_traceparent = resp.headers.get("traceparent")
            chunks = []
            try:
                async for chunk in resp.aiter_raw():
                    chunks.append(chunk)
            except httpx.RemoteProtocolError as exc:
                # h11 under uvicorn: the chunked body never got its last chunk; the connection was closed.
                out.aborted = True
                out.error = None if sent.kind == "stream-fail" else f"aborted: {exc!r}"
            out.body = b"".join(chunks)
    except Exception as exc:
        out.error = repr(exc)
    return out


async def run_mixed(
    base_url: str, n: int, *, concurrency: int, prefix: str, deadline: float
) -> tuple[list[Outcome], float]:
    """``(outcomes, seconds)`` for ``n`` mixed requests; raises ``TimeoutError`` past ``deadline`` seconds."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(30.0)
    queue: asyncio.Queue[Sent] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(new_request(prefix, i))
    outcomes: list[Outcome] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                sent = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            outcomes.append(await _one(client, sent))

    # One client per connection: httpcore's pool scans every connection it holds on each request, which
    # makes one client with 100 connections cost ~7 ms of client CPU per request (measured) and turns the
    # test into a benchmark of the client. 100 clients of one connection each cost ~0.5 ms per request.
    async with contextlib.AsyncExitStack() as stack:
        tls = ssl.create_default_context()  # unused on http://, but httpx builds one per client otherwise (27 ms)
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, verify=tls)
            )
            for _ in range(concurrency)
        ]
        start = time.perf_counter()
        async with asyncio.timeout(deadline):
            await asyncio.gather(*(worker(client) for client in clients))
        elapsed = time.perf_counter() - start
    return outcomes, elapsed


async def get_json(base_url: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        resp = await client.get(path)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


async def probe(base_url: str, path: str, *, rate: float, seconds: float) -> list[float]:
    """Client-observed latency (seconds) of ``GET path`` at ``rate`` requests/s for ``seconds``.

    One keep-alive connection, requests sent on a fixed schedule (not back to back), each one timed from
    just before the request is written until its whole body is read. Any non-200 answer raises.
    """
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        (await client.get(path)).raise_for_status()  # connect outside the measurement
        next_at = loop.time()
        end = next_at + seconds
        while next_at < end:
            t0 = time.perf_counter()
            resp = await client.get(path)
            latencies.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise AssertionError(f"probe {path} answered {resp.status_code}")
            next_at += 1.0 / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))
    return latencies


async def run_probe(url: str, path: str, *, rate: float, seconds: float, cpu: int | None = 1) -> list[float]:
    """:func:`probe` in its own process (pinned and boosted like the other load generators)."""
    argv = [
        *boost(),
        *(pin(cpu) if cpu is not None else []),
        sys.executable,
        "-m",
        "tests.reliability.load_client",
        "probe",
        url,
        path,
        f"{rate:g}",
        f"{seconds:g}",
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=HERE.parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise AssertionError(f"the probe failed ({proc.returncode}):\n{err.decode()}")
    return [float(x) for x in orjson.loads(out)]


def boost() -> list[str]:
    """The argv prefix that runs a command ahead of the machine's other work (see ``load_boost.py``)."""
    return [sys.executable, str(HERE / "load_boost.py")]


# -- wrk ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_2xx: int
    socket_errors: str | None
    per_path: dict[str, int]  # 500 answers whose problem document names each path
    other: int  # answers that were not a 500 naming one of the paths
    output: str


def pin(cpu: int) -> list[str]:
    """``taskset -c cpu`` when available on a machine with more than one CPU, else nothing."""
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(cpu)] if taskset and (os.cpu_count() or 1) > 1 else []


async def run_wrk(
    url: str, paths: list[str], *, seconds: float, connections: int, delay_ms: float = 0.0, cpu: int | None = 1
) -> WrkResult:
    """``wrk -t1 -c<connections> -d<seconds>s`` rotating ``paths``; with ``delay_ms`` each connection waits
    that long before each request (wrk's Lua ``delay()``), which caps the rate."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    argv = [
        *boost(),
        *(pin(cpu) if cpu is not None else []),
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(STORM_SCRIPT),
        url,
        "--",
        f"{delay_ms:g}",
        *paths,
    ]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out_b, err_b = await asyncio.wait_for(proc.communicate(), seconds + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    out = out_b.decode() + err_b.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}")
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    counts = re.search(r"^STORM (.*)$", out, re.MULTILINE)
    if m is None or rate is None or counts is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    fields = dict(kv.split("=") for kv in counts.group(1).split())
    other = int(fields.pop("other"))
    return WrkResult(
        requests=int(m.group(1)),
        seconds=float(m.group(2)) * unit,
        rps=float(rate.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sock.group(1) if sock else None,
        per_path={k: int(v) for k, v in fields.items()},
        other=other,
        output=out,
    )


def main(argv: list[str]) -> None:
    """``python -m tests.reliability.load_client probe URL PATH RATE SECONDS``: latencies as a JSON list."""
    command, url, path, rate, seconds = argv
    if command != "probe":
        raise SystemExit(f"unknown command {command!r}")
    latencies = asyncio.run(probe(url, path, rate=float(rate), seconds=float(seconds)))
    sys.stdout.write(orjson.dumps(latencies).decode())


if __name__ == "__main__":
    main(sys.argv[1:])

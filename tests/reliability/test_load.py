"""Load and isolation (issue 5, point 3): real uvicorn in a subprocess on loopback, every bound asserted.

The server (``tests/reliability/load_app.py``, ``python -m uvicorn``) runs pinned to CPU 0 with its stdout
in a temporary file; the load generators (this process, ``wrk``, the latency probe's process) are pinned to
CPU 1, so the server's figures (RSS from ``/proc/<pid>/status``, CPU time from ``/proc/<pid>/stat``) are its
own. The server, wrk and the probe also run ahead of the machine's other jobs when allowed
(``load_boost.py``: a new session, hence autogroup, with a lower nice value), so a neighbour's busy loop
does not time-slice the server's core during a latency measurement.

``test_mixed_load_isolated_valid_and_flat``: 1,000 warm-up + 5,000 measured requests at 100 concurrent
connections, mixed 200 (async and sync endpoints) / known error (409) / unknown error (500) / streams that
fail half-way, each with its own ``traceparent`` and ``x-request-id``. Every answer is the expected one,
every record of every request is present and carries that request's trace id (none carries another's),
every line the server printed is a valid record, RSS is flat after warm-up, no task or thread leaks.

``test_error_storm``: three bugs hammered by ``wrk`` at the server's full rate, with an ``AlertRouter``
posting to a local receiver: one alert per bug during the storm, then one follow-up per bug whose
``count`` is exactly the server's count of that bug, nothing dropped, RSS bounded, every error record
present. Then a storm capped at about half the server's capacity: the 200 route's p50 latency stays
within 2x its quiet value (see the test's docstring for why the cap).

``test_shutdown_reports_what_open_windows_counted``: a server stopped while a bug's dedup window is open
still reports the bug's full count.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from obskit.schema import validate_record
from tests.alerts.receiver import Receiver
from tests.reliability.load_client import (
    EXPECTED_STATUS,
    KINDS,
    Outcome,
    Sent,
    boost,
    get_json,
    pin,
    run_mixed,
    run_probe,
    run_wrk,
)
from tests.servers import run_server_process, validate_with_cli

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.servers import ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS and CPU time from /proc"),
]

MiB = 1024 * 1024

# -- the bounds asserted -------------------------------------------------------------------------------------
WARMUP_REQUESTS = 1_000
LOAD_REQUESTS = 5_000
CONCURRENCY = 100
LOAD_DEADLINE = 120.0  # seconds for the 5,000 (measured 5-19 s); a hang fails instead of stalling CI
# RSS growth allowed from the end of the warm-up to the end of the 5,000 requests (measured +0.5 to +1.5 MiB).
# Buffers sized by the peak concurrency (100 connections, up to 40 threadpool threads) are reached during
# the warm-up. 4 MiB is what a leak of ~840 bytes per request would add (a retained traceback with its
# frames is several KiB, a leaked record dict or context ~1 KiB), while leaving ~2.5 MiB of allocator noise.
LOAD_RSS_GROWTH = 4 * MiB

STORM_BUGS = ("/bug/a", "/bug/b", "/bug/c")
STORM_SECONDS = 4.0
STORM_CONNECTIONS = 100
# The full-rate storm is whatever one core of this server answers: 1,800-3,050 unknown errors/s measured
# here (uvicorn on asyncio + h11, no uvloop/httptools; each error logged with its structured stack and
# captured by the alert router). The bound is the floor of "thousands per second"; it fails if the error
# path or alert capture gets 2-3x slower, or if anything on it blocks.
STORM_MIN_RPS = 1_000.0
# The dedup window opens at each bug's first occurrence and must outlast the storm sequence (4 s full rate,
# ~1 s of measurements, 6 s capped: ~11.5 s, asserted): one alert per bug during it, then one follow-up
# per bug with the accumulated count ~6 s after the storm ended.
DEDUP_WINDOW = 18.0
# RSS growth from the end of the warm-up to the end of both storms (~20,000 unknown errors; measured
# +0.6 to +1.2 MiB): a leak of ~210 bytes per error would cross it.
STORM_RSS_GROWTH = 4 * MiB
CAPPED_FRACTION = 0.5  # the capped storm's target rate, as a fraction of the full-rate storm's measured rate
CAPPED_CONNECTIONS = 10
CAPPED_MIN_RPS = 400.0  # measured 730-1,380/s (half the full rate); "unsaturated" is asserted from CPU time
CAPPED_BUSY_MAX = 0.9  # the server's CPU share during the capped storm (measured 0.48-0.69)
CAPPED_SECONDS = 6.0
QUIET_SECONDS = 3.0
PROBE_RATE = 20.0  # requests/s on the 200 route, one keep-alive connection, its own process
LATENCY_RATIO = 2.0  # the bound: p50 during the (capped) storm <= 2x the quiet p50 (measured 0.9-1.2x)


# -- helpers ------------------------------------------------------------------------------------------------


@pytest.fixture
def on_cpu1() -> Iterator[None]:
    """Pin this process's main thread (and the threads it starts: the receiver) to CPU 1, like wrk."""
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if before is not None and (os.cpu_count() or 1) > 1 and 1 in before:
        os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


def server_argv() -> list[str]:
    app = "tests.reliability.load_app:app"
    return [*boost(), *pin(0), sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}"]


def rss(pid: int) -> int:
    """Resident set size in bytes (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def run_delay(pid: int) -> float:
    """Seconds the process's main thread (the server's event loop) has waited on a CPU run queue."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def state(server: ServerProcess) -> dict[str, Any]:
    return asyncio.run(get_json(server.base_url, "/debug/state"))


def settled_state(server: ServerProcess, tasks: int, timeout: float = 5.0) -> dict[str, Any]:
    """``/debug/state`` once the task count is back to ``tasks`` (or the last one seen at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        current = state(server)
        if current["tasks"] <= tasks or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def parse_lines(output: bytes) -> list[dict[str, Any]]:
    result = validate_with_cli(output)
    assert (result.returncode, result.stdout) == (0, b""), result.stdout.decode()[:2000]
    lines = output.count(b"\n")
    assert result.stderr == f"{lines} lines, 0 invalid\n".encode(), result.stderr
    records = [orjson.loads(line) for line in output.splitlines()]
    assert all(isinstance(r, dict) for r in records)
    return records


def p50(values: list[float]) -> float:
    return statistics.median(values)


# What each request of each kind must have left in the log: (logger, level) of every record.
EXPECTED_RECORDS = {
    "ok-async": sorted([("load.app", "info"), ("load.library", "info"), ("obskit.access", "info")]),
    "ok-sync": sorted([("load.app", "info"), ("load.library", "info"), ("obskit.access", "info")]),
    "known": sorted([("load.app", "info"), ("obskit.access", "warning")]),
    "unknown": sorted([("load.app", "info"), ("obskit.access", "error")]),
    "stream-fail": sorted([("load.app", "info"), ("load.library", "info"), ("obskit.access", "error")]),
}


def check_outcome(out: Outcome) -> list[str]:
    """Every way one answer differs from what its request should have got (empty when none)."""
    sent = out.sent
    bad: list[str] = []
    if out.error is not None:
        bad.append(f"client error {out.error}")
    if out.status != EXPECTED_STATUS[sent.kind]:
        bad.append(f"status {out.status}")
    if out.resp_rid != sent.rid:
        bad.append(f"x-request-id {out.resp_rid!r}")
    if out.resp_traceparent is None or out.resp_traceparent.split("-")[1:2] != [sent.trace_id]:
        bad.append(f"traceparent {out.resp_traceparent!r}")
    if sent.kind == "stream-fail":
        if not out.aborted or out.body != b"row 1\n":
            bad.append(f"stream not aborted after its first row: aborted={out.aborted} body={out.body[:80]!r}")
    elif out.aborted:
        bad.append("aborted")
    elif sent.kind in ("known", "unknown"):
        problem = orjson.loads(out.body)
        if problem.get("trace_id") != sent.trace_id or problem.get("status") != out.status:
            bad.append(f"problem {problem}")
        if sent.kind == "unknown" and (b"load test" in out.body or b"RuntimeError" in out.body):
            bad.append("the unknown error's message leaked into the response")
    elif orjson.loads(out.body) != {"rid": sent.rid}:
        bad.append(f"body {out.body[:80]!r}")
    return [f"{sent.rid} ({sent.kind}): {b}" for b in bad]


Records = list[dict[str, Any]]


def attribute(records: Records, sent: dict[str, Sent]) -> tuple[dict[str, Records], Records, Records]:
    """Group records by the request they belong to.

    A record belongs to request R when it says so: ``seen_rid`` (the handler logged the ``x-request-id`` it
    received) or ``http.request_id`` (the middleware's access/error record). Returns ``(by_rid, foreign,
    orphans)``: ``foreign`` are records whose ``trace_id`` is not their request's (or whose request was
    never sent), ``orphans`` are records with a ``trace_id`` that belong to no request at all.
    """
    by_rid: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    foreign: list[dict[str, Any]] = []
    orphans: list[dict[str, Any]] = []
    for r in records:
        http = r.get("http")
        rid = r.get("seen_rid") or (http.get("request_id") if isinstance(http, dict) else None)
        if rid is None:
            if r.get("trace_id") is not None:
                orphans.append(r)
            continue
        request = sent.get(rid)
        if request is None or r.get("trace_id") != request.trace_id:
            foreign.append(r)
            continue
        by_rid[rid].append(r)
    return by_rid, foreign, orphans


# -- 1. load and isolation ------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_mixed_load_isolated_valid_and_flat(on_cpu1: None) -> None:
    with (
        Receiver() as receiver,
        run_server_process(server_argv(), env={"LOAD_WEBHOOK_URL": receiver.url, "LOAD_DEDUP_WINDOW": "300"}) as server,
    ):
        pid = server.proc.pid
        cold = state(server)
        warm_out, _ = asyncio.run(
            run_mixed(server.base_url, WARMUP_REQUESTS, concurrency=CONCURRENCY, prefix="warm", deadline=LOAD_DEADLINE)
        )
        warm = settled_state(server, cold["tasks"])
        rss_warm = rss(pid)
        cpu0 = cpu_seconds(pid)
        outcomes, elapsed = asyncio.run(
            run_mixed(server.base_url, LOAD_REQUESTS, concurrency=CONCURRENCY, prefix="load", deadline=LOAD_DEADLINE)
        )
        cpu1 = cpu_seconds(pid)
        after = settled_state(server, cold["tasks"])
        rss_after = rss(pid)
        alerts = receiver.settle()
        server.stop()

    rps = LOAD_REQUESTS / elapsed
    growth = rss_after - rss_warm
    print(
        f"\nload: {LOAD_REQUESTS} requests at {CONCURRENCY} connections in {elapsed:.2f}s = {rps:.0f} req/s; "
        f"server CPU {1e6 * (cpu1 - cpu0) / LOAD_REQUESTS:.0f} us/request; "
        f"RSS {rss_warm / MiB:.1f} -> {rss_after / MiB:.1f} MiB ({growth / MiB:+.2f} MiB); "
        f"tasks {cold['tasks']}/{warm['tasks']}/{after['tasks']}, threads {cold['threads']}/{warm['threads']}/"
        f"{after['threads']} {after['thread_kinds']} (cold/warm/after); lines {len(server.stdout.splitlines())}"
    )

    # Every request got the answer its route gives, with its own trace context; streams aborted.
    outcomes = warm_out + outcomes
    assert len(outcomes) == WARMUP_REQUESTS + LOAD_REQUESTS
    problems = [p for out in outcomes for p in check_outcome(out)]
    assert problems == [], problems[:20]
    assert collections.Counter(o.sent.kind for o in outcomes) == dict.fromkeys(KINDS, len(outcomes) // len(KINDS))

    # Every line the server printed is one valid record: `obskit validate -` on the whole stdout, exit 0.
    assert server.stderr == b""
    records = parse_lines(server.stdout)
    assert [validate_record(r) for r in records if validate_record(r)] == []

    # Isolation: every record of a request carries that request's trace id; none carries another's; no
    # record with a trace id is left unattributed; and each request left exactly its expected records.
    sent = {o.sent.rid: o.sent for o in outcomes}
    assert len(sent) == len(outcomes)
    assert len({s.trace_id for s in sent.values()}) == len(sent)
    by_rid, foreign, orphans = attribute(records, sent)
    assert foreign == [], foreign[:5]
    assert orphans == [], orphans[:5]
    missing = {
        rid: (s.kind, sorted((r["logger"], r["level"]) for r in by_rid.get(rid, [])))
        for rid, s in sent.items()
        if sorted((r["logger"], r["level"]) for r in by_rid.get(rid, [])) != EXPECTED_RECORDS[s.kind]
    }
    assert missing == {}, list(missing.items())[:10]
    threadpool_records = [r for rid, rs in by_rid.items() if sent[rid].kind == "ok-sync" for r in rs]
    assert len(threadpool_records) == 3 * len(outcomes) // len(KINDS)
    for rid, rs in by_rid.items():
        access = [r for r in rs if r["logger"] == "obskit.access"]
        assert access[0]["http"]["status"] == EXPECTED_STATUS[sent[rid].kind]
        assert len({r["span_id"] for r in rs}) == 1  # one span per request, shared by its records
    assert len([r for r in records if r.get("trace_id") is not None]) == sum(len(rs) for rs in by_rid.values())

    # Alerts: the two bugs of the mix (unknown error, failed stream) alerted once each (300 s window).
    fingerprints = {a.json()["fingerprint"] for a in alerts}
    assert len(alerts) == len(fingerprints) == 2
    assert after["alerts"]["dropped"] == 0
    assert after["alerts"]["delivered"] == 2

    # Memory flat after warm-up.
    assert growth < LOAD_RSS_GROWTH, f"RSS grew {growth / MiB:.2f} MiB over {LOAD_REQUESTS} requests"

    # No leaked tasks: back to the cold count (the serving task + this debug request's own task ...).
    assert after["tasks"] == cold["tasks"], (cold, after)
    # No leaked threads: the main thread, obskit's one delivery thread, at most one log-flush watchdog
    # (it writes held lines of a blocked loop, and ends after 30 s without any), and at most the
    # threadpool's size of AnyIO workers (Starlette runs sync endpoints there); nothing else.
    pool = after["threadpool_size"]
    assert after["threads"] <= cold["threads"] + pool + 2, after
    kinds = dict(after["thread_kinds"])
    assert kinds.pop("MainThread") == 1
    assert kinds.pop("obskit-alerts") == 1
    assert kinds.pop("obskit-log-flush", 0) <= 1
    assert kinds.pop("AnyIO worker thread", 0) <= pool
    assert kinds == {}, after["thread_kinds"]
    assert warm["threads"] <= cold["threads"] + pool + 2, warm


# -- 2. error storm ---------------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_error_storm(on_cpu1: None) -> None:
    """Three bugs at the server's full rate for 4 s, then at half of it for 4 s, with alerting on.

    Latency: the probe is ``GET /ok`` at 20 requests/s on its own keep-alive connection, timed on the client
    (request written -> body read), p50 over the phase; the probe runs in its own process, the same for the
    quiet and the storm phases. Server and load generators share 2 cores: the server is pinned to CPU 0, wrk
    and the probe to CPU 1. At the full rate the server's one core is saturated by
    the storm itself (100 connections always have a request queued), so a probe request waits behind ~100
    others whatever obskit does; there the probe must only always succeed. The 2x bound is asserted where it
    is a statement about obskit rather than about queueing theory: during a storm capped at about half the
    full rate (the server below saturation), where the alerting path is the dedup path every repeat takes.
    """
    with (
        Receiver() as receiver,
        run_server_process(
            server_argv(), env={"LOAD_WEBHOOK_URL": receiver.url, "LOAD_DEDUP_WINDOW": str(DEDUP_WINDOW)}
        ) as server,
    ):
        pid = server.proc.pid
        base = server.base_url

        async def storm_phase(
            seconds: float, connections: int, delay_ms: float
        ) -> tuple[Any, list[float], float, float]:
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            wrk_task = asyncio.create_task(
                run_wrk(base, list(STORM_BUGS), seconds=seconds, connections=connections, delay_ms=delay_ms)
            )
            await asyncio.sleep(0.3)  # probe once wrk's connections are up (the probe starts in ~0.3 s)
            lat = await run_probe(base, "/ok", rate=PROBE_RATE, seconds=seconds - 1.2)
            result = await wrk_task
            busy = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            return result, lat, busy, time.monotonic()

        def quiet_phase() -> tuple[list[float], float]:
            wait0 = run_delay(pid)
            lat = asyncio.run(run_probe(base, "/ok", rate=PROBE_RATE, seconds=QUIET_SECONDS))
            return lat, run_delay(pid) - wait0

        # Warm the error path and the 200 route up with a fourth bug; its alert goes out now.
        warmup = asyncio.run(run_wrk(base, ["/bug/warm", "/ok"], seconds=2, connections=20))
        receiver.wait_for(1, timeout=10)
        rss0 = rss(pid)
        quiet, wait_quiet = quiet_phase()

        storm_start = time.monotonic()
        full, lat_full, busy_full, full_end = asyncio.run(storm_phase(STORM_SECONDS, STORM_CONNECTIONS, 0))
        rss1 = rss(pid)
        target = max(CAPPED_MIN_RPS, CAPPED_FRACTION * full.rps)
        wait0 = run_delay(pid)
        capped, lat_capped, busy_capped, storm_end = asyncio.run(
            storm_phase(CAPPED_SECONDS, CAPPED_CONNECTIONS, CAPPED_CONNECTIONS * 1000 / target)
        )
        wait_capped = run_delay(pid) - wait0
        rss2 = rss(pid)
        during = list(receiver.requests)
        quiet_after, wait_quiet_after = quiet_phase()

        # The windows end DEDUP_WINDOW after each bug's first occurrence: then one follow-up per bug.
        alerts = receiver.wait_for(8, timeout=DEDUP_WINDOW + 15)
        time.sleep(0.5)
        final = state(server)
        extra = receiver.requests[8:]
        server.stop()

    occ = final["occurrences"]
    stats = final["alerts"]
    posts = [(a.at, a.json()) for a in alerts]
    by_path: dict[str, list[tuple[float, dict[str, Any]]]] = collections.defaultdict(list)
    for at, body in posts:
        by_path[body["request"]["path"]].append((at, body))
    # The quiet reference pools the probes of the 3 s before and the 3 s after the storm, so a neighbour's
    # load that comes and goes on the shared machine weighs on both sides of the comparison alike.
    q50, s50, f50 = p50(quiet + quiet_after), p50(lat_capped), p50(lat_full)
    q50_before, q50_after = p50(quiet), p50(quiet_after)
    print(
        f"\nstorm: full {full.requests} errors in {full.seconds:.2f}s = {full.rps:.0f}/s (server CPU busy "
        f"{busy_full:.0%}), capped {capped.requests} in {capped.seconds:.2f}s = {capped.rps:.0f}/s (busy "
        f"{busy_capped:.0%}); occurrences {occ}; RSS {rss0 / MiB:.1f} -> {rss1 / MiB:.1f} -> {rss2 / MiB:.1f} MiB; "
        f"alerts {[(b['request']['path'], b['count'], round(at - storm_start, 2)) for at, b in posts]}; "
        f"probe p50 quiet {q50 * 1e3:.2f} ms (before {q50_before * 1e3:.2f}, after {q50_after * 1e3:.2f}), capped storm {s50 * 1e3:.2f} ms "
        f"({s50 / q50:.2f}x), full storm {f50 * 1e3:.1f} ms; server run-queue wait quiet {wait_quiet * 1e3:.0f}+"
        f"{wait_quiet_after * 1e3:.0f} ms, capped {wait_capped * 1e3:.0f} ms; stats enqueued={stats['enqueued']} "
        f"deduplicated={stats['deduplicated']} delivered={stats['delivered']} dropped={stats['dropped']}"
    )

    # The warm-up answered as it should.
    assert warmup.per_path["/bug/warm"] == warmup.non_2xx > 0
    assert warmup.other == warmup.requests - warmup.non_2xx > 0  # the /ok answers
    # The storm: every answer a 500 problem naming its bug, no socket error, at the rate bound.
    for run in (full, capped):
        assert run.socket_errors is None, run.output
        assert run.other == 0, run.output
        assert run.non_2xx == run.requests == sum(run.per_path.values()), run.output
    assert full.rps >= STORM_MIN_RPS, full.output
    assert capped.rps >= CAPPED_MIN_RPS, capped.output

    # Exactly one alert per bug while the storm lasted (dedup window longer than the storm), none dropped.
    assert storm_end < storm_start + DEDUP_WINDOW - 2, "the storm outlasted the dedup window: timing assumption broken"
    storm_alerts = [r for r in during if r.json()["request"]["path"] in STORM_BUGS]
    assert sorted(r.json()["request"]["path"] for r in storm_alerts) == sorted(STORM_BUGS), [r.json() for r in during]
    assert all(r.at >= storm_start for r in storm_alerts)
    assert [r.json()["request"]["path"] for r in during if r.at < storm_start] == ["/bug/warm"]
    for bug in STORM_BUGS:
        (first_at, first), (follow_at, follow) = by_path[bug]
        assert storm_start <= first_at <= full_end, "a storm bug's first alert was not delivered during the storm"
        assert follow_at > storm_end  # the follow-up comes once the window closes, after the storm
        assert first["fingerprint"] == follow["fingerprint"]
        assert first["first_seen"] == follow["first_seen"]
        # Counts are exact: the follow-up carries every occurrence the server counted, and the client saw
        # at most that many 500s (requests still in flight when wrk stopped are served but not counted).
        name = bug.rsplit("/", 1)[1]
        seen = full.per_path[bug] + capped.per_path[bug]
        assert follow["count"] == occ[name]
        assert 0 <= occ[name] - seen <= STORM_CONNECTIONS + CAPPED_CONNECTIONS
        assert 1 <= first["count"] <= follow["count"]
    (_, warm_first), (_, warm_follow) = by_path["/bug/warm"]
    assert 1 <= warm_first["count"] < warm_follow["count"] == occ["warm"]
    assert len({b["fingerprint"] for _, b in posts}) == 4
    assert extra == []
    assert stats["dropped"] == 0
    assert stats["delivered"] == len(alerts) == 8
    assert stats["enqueued"] == 8  # 4 first alerts + 4 window follow-ups
    assert stats["deduplicated"] == sum(occ.values()) - 4

    # Memory bounded through the storm.
    assert rss2 - rss0 < STORM_RSS_GROWTH, f"RSS grew {(rss2 - rss0) / MiB:.2f} MiB during the storm"

    # Latency of the 200 route: every probe answered (asserted in probe()), p50 within 2x the quiet p50
    # while the storm runs below saturation.
    assert len(lat_full) > 0
    assert min(len(quiet), len(quiet_after)) >= QUIET_SECONDS * PROBE_RATE - 1
    assert len(lat_capped) >= (CAPPED_SECONDS - 1.2) * PROBE_RATE - 1
    assert busy_capped < CAPPED_BUSY_MAX, f"the capped storm saturated the server ({busy_capped:.0%} of a core)"
    assert s50 <= LATENCY_RATIO * q50, (
        f"p50 {s50 * 1e3:.2f} ms during the capped storm vs {q50 * 1e3:.2f} ms quiet; the server's event loop "
        f"waited {wait_capped * 1e3:.0f} ms on a run queue during the storm ({wait_quiet * 1e3:.0f} ms and "
        f"{wait_quiet_after * 1e3:.0f} ms during the quiet phases): more than a few ms means another process "
        "took its core"
    )

    # Every error of the storm was logged once, valid, with the same fingerprint as its alert.
    assert server.stderr == b""
    records = parse_lines(server.stdout)
    for bug in STORM_BUGS:
        errs = [r for r in records if (r.get("http") or {}).get("path") == bug]
        assert len(errs) == occ[bug.rsplit("/", 1)[1]]
        assert {r["level"] for r in errs} == {"error"}
        assert {r["error"]["fingerprint"] for r in errs} == {by_path[bug][0][1]["fingerprint"]}


# -- 3. shutdown under a storm -------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_shutdown_reports_what_open_windows_counted(on_cpu1: None) -> None:
    """A bug alerted once, then repeated N times inside its (300 s) window, then the server stops (SIGTERM,
    as on every deploy): the receiver must learn the bug's total count, not just its first occurrence."""
    with (
        Receiver() as receiver,
        run_server_process(server_argv(), env={"LOAD_WEBHOOK_URL": receiver.url, "LOAD_DEDUP_WINDOW": "300"}) as server,
    ):
        assert httpx.get(f"{server.base_url}/bug/a", timeout=10).status_code == 500
        (first,) = receiver.wait_for(1, timeout=10)
        burst = asyncio.run(run_wrk(server.base_url, ["/bug/a"], seconds=1, connections=10))
        occurrences = state(server)["occurrences"]["a"]
        server.stop(signal.SIGTERM)
    alerts = [r.json() for r in receiver.settle()]
    print(f"\nshutdown: {occurrences} occurrences, alerts {[a['count'] for a in alerts]}")
    assert server.returncode in (0, -signal.SIGTERM)
    assert burst.per_path["/bug/a"] > 100
    assert first.json()["count"] == 1
    assert {a["fingerprint"] for a in alerts} == {first.json()["fingerprint"]}
    assert alerts[-1]["count"] == occurrences

"""Alert pipeline cost: ``capture()`` on the request path, and alerts/s delivered to a local receiver.

Two measurements:

* **capture() cost**, in µs per call, for (a) a repeat of a fingerprint whose dedup window is open (the
  common case while a bug fires: a dict lookup and a counter bump under a lock), (b) a *new* fingerprint
  (allocates the dedup entry, appends to the inbox, wakes the delivery thread when the inbox was empty;
  routing itself happens on that thread), and (c) the floor: calling an empty function with the same
  eleven keyword arguments. The router has one ``Webhook`` route to a local receiver process; for (b) it
  really delivers in the background, as in production. Runs are interleaved: each round times ``--n`` calls of
  each variant in a shuffled order; the table gives the median, min and IQR over rounds.
* **throughput**: ``--alerts`` distinct alerts captured at once, timed until ``flush()`` reports all of
  them delivered to a local receiver (a trivial ASGI app under uvicorn, in its own process), for one hook,
  four hooks (each its own worker: 4 deliveries per alert), and one hook with a ``spool_dir`` (every
  delivery written with fsync before its first attempt). The receiver shares the machine's CPUs.

Run from the repository root::

    python bench/alert_throughput.py            # prints the markdown tables
    python bench/alert_throughput.py --write    # also rewrites the "## alerts" section of bench/README.md
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from _readme import write_section  # noqa: E402

from obskit.alerts import AlertRouter, Route, Webhook  # noqa: E402

README = ROOT / "bench" / "README.md"
SECTION = "## alerts"

FIELDS: dict[str, Any] = {
    "error_type": "builtins.ZeroDivisionError",
    "error_message": "division by zero",
    "severity": "error",
    "title": "ZeroDivisionError: division by zero",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "method": "GET",
    "path": "/orders/42",
    "code": None,
    "known": False,
    "exc": None,
}


def floor(**kwargs: Any) -> None:
    pass


# The receiver runs in its own process (uvicorn, a trivial ASGI app answering 200 and counting POSTs), so
# that what is measured is the pipeline, not a receiver fighting it for the GIL.
RECEIVER = """
import sys, uvicorn
count = 0
async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST":
        count += 1
    body = str(count).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


class ReceiverProcess:
    def __enter__(self) -> Self:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url + "/count", timeout=1)
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the benchmark receiver did not start") from None
                time.sleep(0.05)
            else:
                return self

    def count(self) -> int:
        return int(httpx.get(self.url + "/count", timeout=5).text)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def time_capture(n: int, rounds: int) -> dict[str, list[float]]:
    with ReceiverProcess() as receiver:
        router = AlertRouter(
            [Route(Webhook(receiver.url))], dedup_window=3600, queue_size=10**7, max_fingerprints=10**7
        )
        router.bind("bench", "bench")
        router.capture(fingerprint="f" * 16, **FIELDS)  # the repeated bug, window now open
        asyncio.run(router.flush(10))
        capture = router.capture
        counter = iter(range(10**9))

        def timed(calls: Any) -> tuple[float, float]:
            # Wall clock, and this thread's CPU time: the latter ignores time spent descheduled by other
            # processes and waiting for the GIL while the delivery thread works.
            c0, t0 = time.thread_time(), time.perf_counter()
            calls()
            return (time.perf_counter() - t0) / n, (time.thread_time() - c0) / n

        def repeat() -> tuple[float, float]:
            def calls() -> None:
                for _ in range(n):
                    capture(fingerprint="ffffffffffffffff", **FIELDS)

            return timed(calls)

        def new() -> tuple[float, float]:
            fps = [f"{next(counter):016x}" for _ in range(n)]

            def calls() -> None:
                for fp in fps:
                    capture(fingerprint=fp, **FIELDS)

            return timed(calls)

        def empty() -> tuple[float, float]:
            def calls() -> None:
                for _ in range(n):
                    floor(fingerprint="ffffffffffffffff", **FIELDS)

            return timed(calls)

        variants = {"repeat": repeat, "new": new, "floor": empty}
        results: dict[str, list[float]] = {k + suffix: [] for k in variants for suffix in ("", "_cpu")}
        for _ in range(rounds):
            order = list(variants)
            random.shuffle(order)
            for name in order:
                gc.collect()
                wall, cpu = variants[name]()
                results[name].append(wall * 1e6)
                results[name + "_cpu"].append(cpu * 1e6)
            asyncio.run(router.flush(60))  # let the new fingerprints drain between rounds
        stats = router.stats()
        assert stats["dropped"] == 0, stats
        router.close(10)
    return results


def time_throughput(alerts: int, hooks: int, spool: bool) -> tuple[float, dict[str, int]]:
    with ReceiverProcess() as receiver, tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        router = AlertRouter(
            [Route([Webhook(f"{receiver.url}/{i}") for i in range(hooks)])],
            dedup_window=3600,
            queue_size=10**6,
            spool_dir=tmp if spool else None,
        )
        router.bind("bench", "bench")
        router.start()
        asyncio.run(router.flush(10))
        t0 = time.perf_counter()
        for i in range(alerts):
            router.capture(fingerprint=f"{i:016x}", **FIELDS)
        ok = asyncio.run(router.flush(300))
        elapsed = time.perf_counter() - t0
        stats = dict(router.stats())
        router.close(10)
        assert ok, stats
        assert stats["delivered"] == alerts * hooks, stats
        assert receiver.count() == alerts * hooks
    return alerts / elapsed, stats


def time_raw_httpx(alerts: int) -> float:
    """The floor for one hook: sequential POSTs of an event-sized body with a bare httpx.AsyncClient."""
    body = b"x" * 500
    with ReceiverProcess() as receiver:

        async def main() -> float:
            async with httpx.AsyncClient() as client:
                t0 = time.perf_counter()
                for _ in range(alerts):
                    await client.post(receiver.url, content=body, headers={"content-type": "application/json"})
                return alerts / (time.perf_counter() - t0)

        return asyncio.run(main())


def row(name: str, cpu: list[float], wall: list[float]) -> str:
    q = statistics.quantiles(cpu, n=4) if len(cpu) > 1 else [cpu[0]] * 3
    return (
        f"| {name} | {statistics.median(cpu):.2f} | {min(cpu):.2f} | {q[2] - q[0]:.2f} | "
        f"{statistics.median(wall):.2f} |"
    )


def machine() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (
        f"`nproc` = {os.cpu_count()}, Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{platform.machine()}), obskit at commit {commit}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="captures per variant per round")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--alerts", type=int, default=2000, help="distinct alerts for the throughput runs")
    parser.add_argument("--write", action="store_true", help=f"rewrite '{SECTION}' in bench/README.md")
    args = parser.parse_args()

    cap = time_capture(args.n, args.rounds)
    lines = [
        SECTION,
        "",
        (
            f"Command: `python bench/alert_throughput.py --write` (from the repository root; `--n {args.n} "
            f"--rounds {args.rounds} --alerts {args.alerts}`)."
        ),
        "",
        f"Machine: {machine()}.",
        "",
        (
            "`AlertRouter.capture()` on the request path, µs per call (interleaved rounds; the router has one "
            "`Webhook` route to a local receiver and delivers in the background during the runs):"
        ),
        "",
        "| call | median µs (thread CPU) | min µs | IQR µs | median µs (wall) |",
        "|---|---:|---:|---:|---:|",
        row("repeat of an open fingerprint (dedup: count += 1)", cap["repeat_cpu"], cap["repeat"]),
        row("new fingerprint (entry + inbox + wake-up)", cap["new_cpu"], cap["new"]),
        row("(floor) empty function, same keyword arguments", cap["floor_cpu"], cap["floor"]),
        "",
        (
            f"Delivered alerts/s: {args.alerts} distinct alerts captured in a burst, timed until `flush()` "
            "reports every delivery done, to a trivial ASGI app under uvicorn in another process on the "
            "same machine (each hook has one worker, so one hook is bounded by the round trip):"
        ),
        "",
        "| pipeline | alerts/s | deliveries/s |",
        "|---|---:|---:|",
    ]
    for name, hooks, spool in [
        ("1 `Webhook` hook", 1, False),
        ("4 `Webhook` hooks (one worker each)", 4, False),
        ("1 `Webhook` hook + `spool_dir` (fsync per delivery)", 1, True),
    ]:
        rate, _ = time_throughput(args.alerts, hooks, spool)
        lines.append(f"| {name} | {rate:,.0f} | {rate * hooks:,.0f} |")
    raw = time_raw_httpx(args.alerts)
    lines.append(f"| (reference) bare `httpx.AsyncClient`, sequential POSTs, same receiver | {raw:,.0f} | {raw:,.0f} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += [
        "",
        (
            f"1-minute load average at the end of the run: {load:.2f}. The throughput rows are wall-clock rates and "
            "move with the machine's load (other work shares the CPUs); compare them with the bare-httpx "
            "reference row of the same run, not across runs. The capture rows' thread CPU time is robust to it."
        ),
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(SECTION, section)
        print(f"wrote {README.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()

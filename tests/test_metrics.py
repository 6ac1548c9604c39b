"""Prometheus metrics through the real prometheus-client: what a scrape of ``metrics_app()`` shows (SPEC §1, §7)."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

import obskit
from obskit import _metrics
from obskit.alerts import AlertRouter, DeliveryError
from obskit.alerts import Route as AlertRoute

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent
SUBPROCESS_DEADLINE = 60.0
Samples = dict[tuple[tuple[str, str], ...], float]


class OutOfStock(obskit.KnownError):
    status = 409


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def order(request: Request) -> Response:
    raise OutOfStock("sold out")


async def boom(request: Request) -> Response:
    raise ZeroDivisionError("division by zero")


async def crash(request: Request) -> Response:
    raise KeyError("missing")


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/ok", ok),
            Route("/orders/{order_id}", order),
            Route("/boom", boom),
            Route("/crash", crash),
            Mount("/metrics", app=_metrics.metrics_app()),
        ]
    )


@pytest.fixture(autouse=True)
def _metrics_clean() -> Iterator[None]:
    _metrics.reset_for_tests()  # other modules may have left metrics on
    yield
    _metrics.reset_for_tests()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = obskit.ObskitMiddleware(make_app())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def scrape(client: httpx.AsyncClient) -> dict[str, Samples]:
    response = await client.get("/metrics/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def parse(text: str) -> dict[str, Samples]:
    """Sample name -> {sorted label pairs: value}."""
    out: dict[str, Samples] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def labels(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kv.items()))


class Recorder:
    """An alert hook that fails as told: ``ZeroDivisionError`` once retryably, ``KeyError`` for good."""

    name = "recorder"
    key = "recorder"
    timeout = 5.0
    max_attempts = 3
    wants_exception = False

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    async def send(self, delivery: Any) -> None:
        deadline = time.monotonic() + 10.0
        while not self.gate.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        error_type = delivery.event.error_type
        self.attempts.append(error_type)
        if error_type == "KeyError":
            raise DeliveryError("http_400", retryable=False)
        if error_type == "ZeroDivisionError" and self.attempts.count(error_type) == 1:
            raise DeliveryError("http_503", retryable=True)


@pytest.fixture
def router() -> Iterator[tuple[AlertRouter, Recorder]]:
    hook = Recorder()
    r = AlertRouter([AlertRoute([hook])], backoff_base=0.01, backoff_cap=0.05)
    yield r, hook
    r.close(timeout=2.0)


# --- requests and errors --------------------------------------------------------------------------------


async def test_requests_are_counted_by_method_route_template_and_status(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    for path, times in (("/ok", 3), ("/orders/7", 1), ("/orders/8", 1), ("/boom", 2), ("/no/such/page", 1)):
        for _ in range(times):
            await client.get(path)
    await client.post("/ok")

    samples = await scrape(client)

    assert samples["obskit_requests_total"] == {
        labels(method="GET", route="/ok", status="200"): 3.0,
        labels(method="GET", route="/orders/{order_id}", status="409"): 2.0,
        labels(method="GET", route="/boom", status="500"): 2.0,
        labels(method="GET", route="<unmatched>", status="404"): 1.0,
        labels(method="POST", route="/ok", status="405"): 1.0,
    }


async def test_the_scrape_itself_is_counted_under_its_mount_path(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    await scrape(client)

    samples = await scrape(client)

    assert samples["obskit_requests_total"] == {labels(method="GET", route="/metrics", status="200"): 1.0}


async def test_mounted_with_route_it_answers_at_the_exact_path() -> None:
    obskit.configure(service="checkout", metrics=True)
    app = obskit.ObskitMiddleware(Starlette(routes=[Route("/metrics", _metrics.metrics_app())]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await client.get("/metrics")
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert parse(response.text)["obskit_requests_total"] == {labels(method="GET", route="/metrics", status="200"): 1.0}


async def test_an_unknown_method_is_counted_as_other(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    await client.request("BREW", "/ok")

    samples = await scrape(client)

    assert list(samples["obskit_requests_total"]) == [labels(method="other", route="/ok", status="405")]


async def test_durations_fill_the_histogram_buckets(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    for _ in range(4):
        await client.get("/ok")

    samples = await scrape(client)

    buckets = {dict(k)["le"]: v for k, v in samples["obskit_request_duration_seconds_bucket"].items()}
    assert list(buckets) == [*(str(float(b)) for b in _metrics.BUCKETS), "+Inf"]
    assert buckets["+Inf"] == 4.0
    assert list(buckets.values()) == sorted(buckets.values())
    assert samples["obskit_request_duration_seconds_count"] == {labels(method="GET", route="/ok"): 4.0}
    total = samples["obskit_request_duration_seconds_sum"][labels(method="GET", route="/ok")]
    assert 0.0 < total < 5.0


async def test_errors_are_counted_known_by_code_and_unknown_by_type(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    for path in ("/orders/1", "/orders/2", "/orders/3", "/boom", "/boom", "/crash", "/missing"):
        await client.get(path)

    samples = await scrape(client)

    assert samples["obskit_errors_total"] == {
        labels(known="true", code="out_of_stock", type="tests.test_metrics.OutOfStock"): 3.0,
        labels(known="false", code="", type="ZeroDivisionError"): 2.0,
        labels(known="false", code="", type="KeyError"): 1.0,
        labels(known="true", code="not_found", type="HTTPError"): 1.0,
    }


async def test_nothing_is_counted_before_metrics_are_enabled(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout")
    await client.get("/ok")
    await client.get("/boom")

    response = await client.get("/metrics/")

    assert response.status_code == 200
    assert "obskit_requests_total" not in response.text
    assert not _metrics.state.active


async def test_configure_twice_registers_once_and_keeps_counting(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    await client.get("/ok")
    obskit.configure(service="checkout", metrics=True, level="debug")
    await client.get("/ok")

    samples = await scrape(client)

    assert samples["obskit_requests_total"] == {labels(method="GET", route="/ok", status="200"): 2.0}


async def test_reset_for_tests_lets_a_new_enable_start_from_zero(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    await client.get("/ok")
    _metrics.reset_for_tests()
    obskit.configure(service="checkout", metrics=True)
    await client.get("/ok")

    samples = await scrape(client)

    assert samples["obskit_requests_total"] == {labels(method="GET", route="/ok", status="200"): 1.0}


# --- alert pipeline -----------------------------------------------------------------------------------------


async def test_alert_outcomes_and_drops_are_read_from_the_router_at_scrape_time(
    client: httpx.AsyncClient, router: tuple[AlertRouter, Recorder]
) -> None:
    r, hook = router
    obskit.configure(service="checkout", metrics=True, alerts=r)
    for path in ("/boom", "/boom", "/boom", "/crash"):
        await client.get(path)
    assert await r.flush(5.0)

    samples = await scrape(client)

    stats = r.stats()
    assert samples["obskit_alerts_total"] == {
        labels(outcome="enqueued"): 2.0,
        labels(outcome="deduplicated"): 2.0,
        labels(outcome="delivered"): 1.0,
        labels(outcome="retried"): 1.0,
        labels(outcome="dropped"): 1.0,
    }
    assert {k: float(stats[k]) for k in _metrics.OUTCOMES} == {
        dict(k)["outcome"]: v for k, v in samples["obskit_alerts_total"].items()
    }
    drops = {dict(k)["reason"]: v for k, v in samples["obskit_alerts_dropped_total"].items()}
    assert drops == {k.removeprefix("dropped_"): float(v) for k, v in stats.items() if k.startswith("dropped_")}
    assert drops["permanent_error"] == 1.0
    assert sum(drops.values()) == 1.0
    assert samples["obskit_alert_queue_depth"] == {(): 0.0}
    assert sorted(hook.attempts) == ["KeyError", "ZeroDivisionError", "ZeroDivisionError"]


async def test_queue_depth_shows_alerts_waiting_for_a_stuck_hook(
    client: httpx.AsyncClient, router: tuple[AlertRouter, Recorder]
) -> None:
    r, hook = router
    hook.gate.clear()
    obskit.configure(service="checkout", metrics=True, alerts=r)
    await client.get("/boom")
    await client.get("/crash")

    deadline = time.monotonic() + 5.0
    depth = 0.0
    while time.monotonic() < deadline:
        depth = (await scrape(client))["obskit_alert_queue_depth"][()]
        if depth == 2.0:
            break
        await asyncio.sleep(0.01)
    assert depth == 2.0
    hook.gate.set()
    assert await r.flush(5.0)
    assert (await scrape(client))["obskit_alert_queue_depth"] == {(): 0.0}


async def test_without_a_router_alert_outcomes_read_zero(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    await client.get("/boom")

    samples = await scrape(client)

    assert samples["obskit_alerts_total"] == {labels(outcome=o): 0.0 for o in _metrics.OUTCOMES}
    assert samples["obskit_alert_queue_depth"] == {(): 0.0}
    assert "obskit_alerts_dropped_total" not in samples


# --- the endpoint -------------------------------------------------------------------------------------------


async def test_metrics_app_speaks_gzip_openmetrics_head_and_name_filters(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    await client.get("/ok")

    zipped = await client.get("/metrics/", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "obskit_requests_total" in zipped.text  # httpx decodes it
    raw = await client.send(client.build_request("GET", "/metrics/", headers={"accept-encoding": "gzip"}), stream=True)
    body = b"".join([chunk async for chunk in raw.aiter_raw()])
    await raw.aclose()
    assert gzip.decompress(body).startswith(b"# HELP")

    om = await client.get("/metrics/", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")

    head = await client.head("/metrics/")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0

    only = await client.get("/metrics/", params={"name[]": "obskit_requests_total"})
    assert list(parse(only.text)) == ["obskit_requests_total"]

    post = await client.post("/metrics/")
    assert post.status_code == 405


def test_metrics_app_is_public_api() -> None:
    assert "metrics_app" in obskit.__all__
    assert obskit.metrics_app is _metrics.metrics_app


def test_import_obskit_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, obskit, obskit._metrics, obskit._middleware; obskit.configure(service='x');"
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE, check=True
    )
    assert out.stdout.splitlines()[-1] == "False"


def test_metrics_without_prometheus_client_fail_with_the_install_command() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if not installed
        import obskit
        from obskit import _metrics
        for call in (lambda: obskit.configure(service="x", metrics=True), _metrics.metrics_app):
            try:
                call()
            except ImportError as exc:
                print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE, check=True
    )
    expected = "obskit's metrics need prometheus-client: pip install 'obskit[prometheus]'"
    assert out.stdout.splitlines() == [expected, expected]


# --- multiprocess -------------------------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    import obskit
    from obskit.alerts import AlertRouter, Route as AlertRoute

    class Hook:
        name = key = "sink"
        timeout = 5.0
        max_attempts = 1
        wants_exception = False
        async def send(self, delivery):
            pass

    async def ok(request):
        return PlainTextResponse("ok")

    async def boom(request):
        raise ZeroDivisionError("boom")

    async def main(n_ok, n_boom):
        # group_wait: the two /boom of a process are one alert however soon the delivery thread would
        # have routed the first (routed first, the second would be a follow-up sent at close)
        router = AlertRouter([AlertRoute([Hook()])], group_wait=60.0)
        obskit.configure(service="checkout", metrics=True, alerts=router)
        app = obskit.ObskitMiddleware(Starlette(routes=[Route("/ok", ok), Route("/boom", boom)]))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
            for _ in range(n_ok):
                assert (await client.get("/ok")).status_code == 200
            for _ in range(n_boom):
                assert (await client.get("/boom")).status_code == 500
        assert await router.aclose(5.0)  # routes what group_wait holds, at once, and delivers it
        # No scrape here: the alert stats reach the shared files through the exit-time mirror.

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
    """
)

SCRAPER = textwrap.dedent(
    """
    import asyncio, httpx
    from obskit import _metrics

    async def main():
        app = _metrics.metrics_app()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
            response = await client.get("/")
            response.raise_for_status()
            print(response.text, end="")

    asyncio.run(main())
    """
)


def test_multiprocess_mode_sums_what_every_process_counted(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "OBSKIT_LOG_LEVEL": "critical"}
    env.pop("prometheus_multiproc_dir", None)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, n_ok, n_boom],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n_ok, n_boom in (("3", "2"), ("5", "1"))
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=SUBPROCESS_DEADLINE)
        assert worker.returncode == 0, err
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per process

    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPER],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_DEADLINE,
        check=True,
    )
    samples = parse(scraped.stdout)

    assert samples["obskit_requests_total"] == {
        labels(method="GET", route="/ok", status="200"): 8.0,
        labels(method="GET", route="/boom", status="500"): 3.0,
    }
    assert samples["obskit_request_duration_seconds_count"] == {
        labels(method="GET", route="/ok"): 8.0,
        labels(method="GET", route="/boom"): 3.0,
    }
    assert samples["obskit_errors_total"] == {labels(known="false", code="", type="ZeroDivisionError"): 3.0}
    # Each process has its own router: one alert each, the second /boom of the first deduplicated.
    assert samples["obskit_alerts_total"] == {
        labels(outcome="enqueued"): 2.0,
        labels(outcome="deduplicated"): 1.0,
        labels(outcome="delivered"): 2.0,
        labels(outcome="retried"): 0.0,
        labels(outcome="dropped"): 0.0,
    }
    assert set(samples["obskit_alerts_dropped_total"].values()) == {0.0}
    assert samples["obskit_alert_queue_depth"] == {(): 0.0}


FORKER = textwrap.dedent(
    """
    import os, sys
    import obskit
    from obskit import _metrics

    class Stats:  # stands in for the router: only stats() is read
        def __init__(self):
            self.values = {"enqueued": 5, "dropped_queue_full": 1, "queue_depth": 3}
        def stats(self):
            return dict(self.values)

    router = Stats()
    obskit.configure(service="checkout", metrics=True, alerts=router)
    pid = os.fork()
    if pid == 0:
        # The child inherits the router's counts, which the parent already mirrored before the fork:
        # only what the child adds on top is its own.
        router.values = {"enqueued": 7, "dropped_queue_full": 1, "queue_depth": 0}
        _metrics._sync_now()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    router.values = {"enqueued": 6, "dropped_queue_full": 2, "queue_depth": 0}
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_multiprocess_mode_counts_a_forked_child_only_for_what_it_adds(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "OBSKIT_LOG_LEVEL": "critical"}
    env.pop("prometheus_multiproc_dir", None)
    subprocess.run(
        [sys.executable, "-c", FORKER], env=env, cwd=REPO, capture_output=True, timeout=SUBPROCESS_DEADLINE, check=True
    )
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPER],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_DEADLINE,
        check=True,
    )
    samples = parse(scraped.stdout)

    # parent: 5 before the fork + 1 after; child: 7 - 5 = 2.
    assert samples["obskit_alerts_total"][labels(outcome="enqueued")] == 8.0
    assert samples["obskit_alerts_dropped_total"] == {labels(reason="queue_full"): 2.0}
    # Both processes have exited and were not marked dead: their last depth (0) still counts.
    assert samples["obskit_alert_queue_depth"] == {(): 0.0}


async def test_configure_metrics_false_after_true_stops_counting(client: httpx.AsyncClient) -> None:
    obskit.configure(service="checkout", metrics=True)
    await client.get("/ok")
    obskit.configure(service="checkout", metrics=False)
    await client.get("/ok")
    samples = await scrape(client)
    assert samples["obskit_requests_total"][labels(method="GET", route="/ok", status="200")] == 1.0


def test_a_configure_that_fails_on_metrics_leaves_the_previous_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = obskit.configure(service="before")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="PROMETHEUS_MULTIPROC_DIR"):
        obskit.configure(service="after", metrics=True)
    assert obskit.settings() is before

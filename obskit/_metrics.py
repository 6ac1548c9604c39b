"""Prometheus metrics (the ``prometheus`` extra); every function is a no-op until :func:`enable` is called.

``obskit.configure(metrics=True)`` calls :func:`enable`; the user mounts :func:`metrics_app` at ``/metrics``.
``import obskit`` never imports ``prometheus_client``: :func:`enable` and :func:`metrics_app` import it and
raise ``ImportError`` with the install command when it is missing.

Metrics, on ``prometheus_client.REGISTRY`` so that an application's own metrics share the endpoint::

    obskit_requests_total{method, route, status}      counter
    obskit_request_duration_seconds{method, route}    histogram, buckets BUCKETS (1 ms ... 30 s)
    obskit_errors_total{known, code, type}            counter
    obskit_alerts_total{outcome}                      counter: enqueued, deduplicated, delivered, retried, dropped
    obskit_alerts_dropped_total{reason}               counter, one series per ``dropped_<reason>`` key of stats()
    obskit_alert_queue_depth                          gauge

Labels keep cardinality bounded:

* ``route`` is the matched route template (``/orders/{order_id}``), or ``<unmatched>`` when no route
  matched (404s, scanners): never the raw path.
* ``method`` is the request method when it is a standard one, otherwise ``other``.
* ``status`` is the response status as a string (``"200"``).
* ``known`` is ``"true"`` or ``"false"``. ``type`` is always the error's type name (``module.QualName``,
  builtins bare, ``HTTPError`` for error responses the framework made itself, such as its 404).
  ``code`` is the known error's code (``out_of_stock``, ``not_found``) and always ``""`` for an unknown
  error. The rule: a known error is identified by its code, an unknown one by its type.

The alert metrics come from the alert router's ``stats()`` (``obskit.settings().alerts``). Its counters
start at zero with the router, so a new router looks like a counter reset to Prometheus, which ``rate()``
and ``increase()`` handle. Without a router the outcomes read 0.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, as with gunicorn or ``uvicorn --workers``):

* Set the variable to an empty directory in the environment of the server before it starts (prometheus-client
  reads it at import) and wipe the directory on every start.
* Request and error metrics use prometheus-client's file-backed values: every process writes its own
  files, and :func:`metrics_app` answers with a ``MultiProcessCollector`` that sums all of them, exited
  processes included, as counters and histograms should.
* The alert router lives in each process, and custom collectors do not work in this mode (only the process
  answering the scrape would be seen). So each process mirrors its router's ``stats()`` into file-backed
  counters (adding the increase since its last mirror) and its queue depth into a gauge with
  ``multiprocess_mode="livesum"`` (the sum over live processes). It mirrors on a daemon thread every
  :data:`SYNC_INTERVAL` seconds, right before a scrape it answers, before ``os.fork()``, and at exit.
* Call ``prometheus_client.multiprocess.mark_process_dead(pid)`` when a worker exits (gunicorn's
  ``child_exit`` hook) so an exited worker's queue depth stops counting.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry
    from starlette.types import Receive, Scope, Send

__all__ = ["BUCKETS", "SYNC_INTERVAL", "UNMATCHED", "enable", "error", "metrics_app", "request_done", "reset_for_tests"]

INSTALL_HINT: Final = "obskit's metrics need prometheus-client: pip install 'obskit[prometheus]'"
UNMATCHED: Final = "<unmatched>"
# Latency of web requests: 1 ms to 30 s, roughly x2.5 per step, so p50/p95/p99 stay readable from
# fast handlers to slow ones without more than 14 series per (method, route).
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OUTCOMES: Final = ("enqueued", "deduplicated", "delivered", "retried", "dropped")
SYNC_INTERVAL: Final = 5.0
_METHODS: Final = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"))
_DROPPED: Final = "dropped_"
_HELP_ALERTS: Final = "Alerts by pipeline outcome (stats() of the alert router)."
_HELP_DROPS: Final = "Alerts dropped, by reason (stats() of the alert router)."
_HELP_DEPTH: Final = "Alerts waiting in the alert router's queue and delivery workers."


class _State:
    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = False


state = _State()
_lock = threading.Lock()
_m: _Metrics | None = None
_fork_hooks_installed = False


def multiproc_dir() -> str | None:
    """The multiprocess directory, as prometheus-client itself detects it (``None`` outside that mode)."""
    # The lower-case name is prometheus-client's deprecated spelling, which it still honours.
    lower = os.environ.get("prometheus_multiproc_dir")  # noqa: SIM112
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or lower or None


def _import() -> Any:
    try:
        import prometheus_client  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return prometheus_client


def _router_stats() -> tuple[Any, Mapping[str, Any]]:
    from obskit import _config  # noqa: PLC0415

    settings = _config.settings()
    router = settings.alerts if settings is not None else None
    if router is None:
        return None, {}
    try:
        stats = router.stats()
    except Exception:
        # A broken router must not break the scrape; its absence shows as zeros.
        return router, {}
    return router, stats


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _drop_reasons(stats: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    for key in sorted(stats):
        if key.startswith(_DROPPED) and len(key) > len(_DROPPED):
            value = _number(stats[key])
            if value is not None:
                yield key[len(_DROPPED) :], value


class _AlertCollector:
    """Single-process mode: reads the router's ``stats()`` at scrape time."""

    def describe(self) -> list[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        return [
            CounterMetricFamily("obskit_alerts", _HELP_ALERTS, labels=["outcome"]),
            CounterMetricFamily("obskit_alerts_dropped", _HELP_DROPS, labels=["reason"]),
            GaugeMetricFamily("obskit_alert_queue_depth", _HELP_DEPTH),
        ]

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        _, stats = _router_stats()
        alerts = CounterMetricFamily("obskit_alerts", _HELP_ALERTS, labels=["outcome"])
        for outcome in OUTCOMES:
            alerts.add_metric([outcome], _number(stats.get(outcome)) or 0.0)
        drops = CounterMetricFamily("obskit_alerts_dropped", _HELP_DROPS, labels=["reason"])
        for reason, value in _drop_reasons(stats):
            drops.add_metric([reason], value)
        yield alerts
        yield drops
        yield GaugeMetricFamily("obskit_alert_queue_depth", _HELP_DEPTH, value=_number(stats.get("queue_depth")) or 0.0)


class _AlertMirror:
    """Multiprocess mode: adds the increase of the router's counters to file-backed metrics."""

    def __init__(self, pc: Any, registry: CollectorRegistry) -> None:
        self.alerts = pc.Counter("obskit_alerts", _HELP_ALERTS, ("outcome",), registry=registry)
        self.drops = pc.Counter("obskit_alerts_dropped", _HELP_DROPS, ("reason",), registry=registry)
        self.depth = pc.Gauge("obskit_alert_queue_depth", _HELP_DEPTH, registry=registry, multiprocess_mode="livesum")
        for outcome in OUTCOMES:
            self.alerts.labels(outcome)  # present at 0 from the start, so increase() sees the first alert
        self._lock = threading.Lock()
        self._router: Callable[[], Any] | None = None
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        router, stats = _router_stats()
        with self._lock:
            previous = self._router() if self._router is not None else None
            # A different router starts from zero; no router (between configure() calls) changes nothing, so
            # the same router coming back is not counted twice.
            if router is not None and router is not previous:
                self._last = {}
                self._router = _ref(router)
            last = self._last
            for outcome in OUTCOMES:
                self._add(self.alerts.labels(outcome), last, outcome, stats.get(outcome))
            for reason, _ in _drop_reasons(stats):
                key = _DROPPED + reason
                self._add(self.drops.labels(reason), last, key, stats[key])
            self.depth.set(_number(stats.get("queue_depth")) or 0.0)

    @staticmethod
    def _add(child: Any, last: dict[str, float], key: str, raw: Any) -> None:
        value = _number(raw)
        if value is None:
            return
        delta = value - last.get(key, 0.0)
        if delta < 0:  # the router's counter went back: a reset, whose new value is all new
            delta = value
        if delta > 0:
            child.inc(delta)
        last[key] = value

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="obskit-metrics", daemon=True)
        self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(SYNC_INTERVAL):
            _quietly(self.sync)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


def _ref(obj: Any) -> Callable[[], Any] | None:
    if obj is None:
        return None
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        # Metrics never hurt the host: a failed mirror is retried on the next tick.
        return


class _Metrics:
    def __init__(self, pc: Any, directory: str | None) -> None:
        registry: CollectorRegistry = pc.REGISTRY
        self.registry = registry
        self.directory = directory
        self.requests = pc.Counter(
            "obskit_requests",
            "HTTP requests served, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.duration = pc.Histogram(
            "obskit_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by method and route template.",
            ("method", "route"),
            buckets=BUCKETS,
            registry=registry,
        )
        self.errors = pc.Counter(
            "obskit_errors",
            'Errors of the documented flow: known="true" by code, known="false" by type.',
            ("known", "code", "type"),
            registry=registry,
        )
        self.collector: _AlertCollector | None = None
        self.mirror: _AlertMirror | None = None
        if directory is None:
            self.collector = _AlertCollector()
            registry.register(self.collector)
        else:
            self.mirror = _AlertMirror(pc, registry)
            self.mirror.start()
        # Label lookups cached per label set (as bounded as the labels themselves): skips
        # prometheus-client's validation and lock on every request.
        self.children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.error_children: dict[tuple[str, str, str], Any] = {}

    def unregister(self) -> None:
        if self.mirror is not None:
            self.mirror.stop()
        for collector in (
            self.requests,
            self.duration,
            self.errors,
            self.collector,
            *((self.mirror.alerts, self.mirror.drops, self.mirror.depth) if self.mirror else ()),
        ):
            if collector is not None:
                with contextlib.suppress(KeyError):
                    self.registry.unregister(collector)


def enable() -> None:
    """Create and register obskit's metrics (idempotent); called by ``configure(metrics=True)``.

    Raises:
        ImportError: prometheus-client is not installed (``pip install 'obskit[prometheus]'``).
        ValueError: ``PROMETHEUS_MULTIPROC_DIR`` is set but is not a directory.
    """
    global _m, _fork_hooks_installed  # noqa: PLW0603
    with _lock:
        if _m is not None:
            state.active = True
            return
        pc = _import()
        directory = multiproc_dir()
        if directory is not None and not Path(directory).is_dir():
            raise ValueError(f"PROMETHEUS_MULTIPROC_DIR={directory!r} is not a directory; create it (empty) first")
        _m = _Metrics(pc, directory)
        if directory is not None and not _fork_hooks_installed:
            # Mirror before a fork so the child starts from what the parent already counted, and give the
            # child its own mirror thread (threads do not survive fork).
            os.register_at_fork(before=_sync_now, after_in_child=_restart_mirror)
            atexit.register(_sync_now)
            _fork_hooks_installed = True
        state.active = True


def _sync_now() -> None:
    m = _m
    if m is not None and m.mirror is not None:
        _quietly(m.mirror.sync)


def _restart_mirror() -> None:
    m = _m
    if m is not None and m.mirror is not None:
        # The parent's mirror thread may have held this lock at the fork; the child's copy would stay taken.
        m.mirror._lock = threading.Lock()
        _quietly(m.mirror.start)


def request_done(method: str, route: str | None, status: int, duration_s: float) -> None:
    """Count one finished request (called by the middleware only when ``state.active``)."""
    m = _m
    if m is None:
        return
    try:
        key = (method if method in _METHODS else "other", route or UNMATCHED, str(status))
        children = m.children.get(key)
        if children is None:
            children = (m.requests.labels(*key), m.duration.labels(key[0], key[1]))
            m.children[key] = children
        children[0].inc()
        children[1].observe(duration_s)
    except Exception:
        # Never hurt the host: a metrics failure must not turn a served request into an error.
        return


def error(*, known: bool, code: str | None, type_name: str) -> None:
    """Count one error of the documented flow (``obskit_errors_total``)."""
    m = _m
    if m is None:
        return
    try:
        key = ("true", code or "", type_name) if known else ("false", "", type_name)
        child = m.error_children.get(key)
        if child is None:
            child = m.error_children[key] = m.errors.labels(*key)
        child.inc()
    except Exception:
        return


def reset_for_tests() -> None:
    """Unregister obskit's metrics and stop counting, so that a later :func:`enable` starts from zero."""
    global _m
    with _lock:
        state.active = False
        m, _m = _m, None
    if m is not None:
        m.unregister()


# --- the /metrics endpoint ----------------------------------------------------------------------------


class _MetricsApp:
    def __init__(self, pc: Any, registry: Any) -> None:
        self._pc = pc
        self._registry = registry
        self._multi: dict[str, CollectorRegistry] = {}

    def _source(self) -> Any:
        if self._registry is not None:
            return self._registry
        directory = multiproc_dir()
        if directory is None:
            return self._pc.REGISTRY
        registry = self._multi.get(directory)
        if registry is None:
            from prometheus_client import multiprocess  # noqa: PLC0415

            registry = self._pc.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            self._multi[directory] = registry
        return registry

    def _render(self, accept: str, names: list[str]) -> tuple[bytes, str]:
        from prometheus_client.exposition import choose_encoder  # noqa: PLC0415

        _sync_now()  # this process's alert stats are current in what it answers
        registry = self._source()
        if names:
            registry = registry.restricted_registry(names)
        encoder, content_type = choose_encoder(accept)
        return encoder(registry), content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            body = b"Method Not Allowed\n"
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [
                        (b"allow", b"GET, HEAD"),
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        accept = b",".join(v for k, v in scope["headers"] if k == b"accept").decode("latin-1")
        encoding = b",".join(v for k, v in scope["headers"] if k == b"accept-encoding").decode("latin-1")
        names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name[]", [])
        import anyio.to_thread  # noqa: PLC0415

        # Collection reads every process's files in multiprocess mode: keep that off the event loop.
        output, content_type = await anyio.to_thread.run_sync(self._render, accept, names)
        headers = [(b"content-type", content_type.encode("latin-1"))]
        if "gzip" in encoding.lower():
            output = gzip.compress(output)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(output)).encode()))
        headers.append((b"vary", b"accept, accept-encoding"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else output})


def metrics_app(*, registry: Any = None) -> Callable[[Scope, Receive, Send], Any]:
    """An ASGI app serving the metrics in Prometheus' text format (OpenMetrics when the scraper asks for it).

    Mount it where Prometheus scrapes::

        obskit.configure(service="checkout", metrics=True)
        app = Starlette(routes=[..., Mount("/metrics", app=obskit.metrics_app())])
        # FastAPI: app.mount("/metrics", obskit.metrics_app())

    It answers ``GET`` and ``HEAD`` on any path below the mount, honours ``Accept-Encoding: gzip`` and
    ``?name[]=`` filters, and in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) sums the files of
    every process (see the module documentation).

    Args:
        registry: What to expose. By default ``prometheus_client.REGISTRY`` (obskit's metrics and the
            application's own), or every process's metrics in multiprocess mode.

    Returns:
        The ASGI application.

    Raises:
        ImportError: prometheus-client is not installed (``pip install 'obskit[prometheus]'``).
    """
    return _MetricsApp(_import(), registry)

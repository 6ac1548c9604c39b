"""The alert pipeline: capture on the request path, dedup, routing, rate limits, delivery, spool.

Threads and loops. ``capture()`` runs on whatever thread serves the request (the event loop, or a
Starlette threadpool thread for sync endpoints). It takes one short ``threading.Lock``: a repeat of a
fingerprint whose window is open only bumps ``count``/``last_seen`` and returns; a new fingerprint is
appended to a bounded inbox and, if the inbox was empty, the delivery loop is woken with
``call_soon_threadsafe``. Everything else happens on a dedicated daemon thread (``obskit-alerts``) that
runs its own asyncio loop, started lazily by the first ``capture()`` (or by ``start()``, or at once when
``spool_dir`` is set so pending alerts are replayed): routing, windows, rate limits, one worker per hook,
the spool. A blocked application loop therefore never stalls delivery, and sync apps work unchanged.
``flush``/``aclose`` are awaitable from any loop (bridged with ``asyncio.wrap_future``); ``close`` is the
blocking twin for atexit and CLIs (an atexit hook closes every open router with a 2 s budget). After a
``fork`` (gunicorn ``--preload``) the child starts over: fresh locks, empty queues and counters, its own
spool slot, and no thread until its first capture, unless ``spool_dir`` is set: then it starts at once, so a
replacement worker replays the slot of the one it replaces. A running router with a spool also adopts the
slots of processes that died since it started, every ``RESCAN_SECONDS``.

Rate limits. A route over its limit holds the event (coalesced per fingerprint) until a token returns. With
a spool, held deliveries are written there when held, marked with the route, and removed when coalesced; a
restart (or a kill) replays them into that route's hold, never straight to the hook.

Dedup. Each fingerprint has a window of ``dedup_window`` seconds that opens when its first occurrence is
routed. Occurrences inside the window only count. When the window ends, if the bug fired again meanwhile,
one follow-up event carrying the accumulated ``count`` (since ``first_seen``) is routed and a new window
opens; if it stayed quiet the window closes and the next occurrence is a new alert (``count`` 1). The table
is an LRU bounded by ``max_fingerprints``.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures

# Imported before this module registers its own at-fork handler, so that the executor's handler (which
# re-creates its global lock, held by the forking thread) runs first in a child: ours starts the child's
# delivery thread, which would otherwise block on that lock for ever in its first asyncio.to_thread().
import concurrent.futures.thread
import contextlib
import fnmatch
import functools
import importlib
import logging
import math
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final

import httpx

from obskit._renderers import utf8_safe
from obskit.alerts._delivery import THREAD_NAME, Counters, Job, Target, install_log_filter
from obskit.alerts._event import (
    MAX_FIELD,
    MAX_MESSAGE,
    MAX_TITLE,
    SEVERITIES,
    AlertEvent,
    Severity,
    new_event_id,
    normalize_severity,
    truncate,
    valid_trace_id,
)
from obskit.alerts._spool import Spool, Spooled, SpoolError
from obskit.alerts._types import AlertHook, Delivery

logger = logging.getLogger("obskit.alerts")

# freezegun patches ``time.monotonic`` (and asyncio's loop clock with it); the delivery loop must keep real
# time even when a test freezes the clock, or no retry timer would ever fire. clock_gettime is left alone.
_real_monotonic: Final[Callable[[], float]] = (
    functools.partial(time.clock_gettime, time.CLOCK_MONOTONIC) if hasattr(time, "clock_gettime") else time.monotonic
)

Listener = Callable[[dict[str, Any]], None]
_listeners: tuple[Listener, ...] = ()
_listeners_lock = threading.Lock()

RESCAN_SECONDS = 30.0  # how often a router with a spool looks for slots of processes that died

DROP_REASONS: Final = (
    "queue_full",
    "rate_limited",
    "permanent_error",
    "redirect",
    "gone",
    "hook_disabled",
    "max_attempts",
    "max_age",
    "shutdown",
    "closed",
    "spool_corrupt",
    "spool_orphan",
    "internal_error",
)
COUNTERS: Final = (
    "enqueued",
    "deduplicated",
    "routed",
    "unrouted",
    "delivered",
    "retried",
    "rate_limited",
    "coalesced",
    "spooled",
    "spool_full",
    "replayed",
    "shutdown_spooled",
    "internal_error",
)


def add_listener(fn: Listener) -> None:
    """Call ``fn(event.to_dict())`` for every routed alert event (testing hook of ``obskit_alerts``).

    Listeners run synchronously on the delivery thread, once per routing decision (after dedup); their
    exceptions are swallowed.
    """
    global _listeners  # noqa: PLW0603
    with _listeners_lock:
        _listeners = (*_listeners, fn)


def remove_listener(fn: Listener) -> None:
    """Undo :func:`add_listener` (no error if ``fn`` is not registered)."""
    global _listeners  # noqa: PLW0603
    with _listeners_lock:
        items = list(_listeners)
        with contextlib.suppress(ValueError):
            items.remove(fn)
        _listeners = tuple(items)


def _notify_listeners(event: AlertEvent) -> None:
    for fn in _listeners:
        try:
            fn(dict(event.to_dict()))
        except Exception:
            logger.debug("obskit.alerts: alert listener raised", exc_info=True)


def _redactor() -> Callable[[str], str]:
    # Looked up at router creation so a test or configure() swapping the redactor module is honoured.
    try:
        from obskit._redact import redact_text  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the redaction module ships with obskit
        return lambda s: s
    return redact_text


# --- rate limits ---------------------------------------------------------------------------------------

_RATE = re.compile(r"^\s*([1-9][0-9]*)\s*/\s*(s|min|h)\s*$")
_PERIODS: Final = {"s": 1.0, "min": 60.0, "h": 3600.0}


def parse_rate_limit(value: str) -> tuple[int, float]:
    """``"10/min"`` → ``(10, 60.0)``: at most N deliveries per period, bursts up to N."""
    m = _RATE.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"rate_limit must look like 'N/s', 'N/min' or 'N/h' with N a positive integer, got {value!r}")
    return int(m.group(1)), _PERIODS[m.group(2)]


class TokenBucket:
    """``capacity`` tokens refilled continuously at ``capacity/period`` per second, on ``clock``."""

    __slots__ = ("_clock", "_last", "_tokens", "capacity", "rate")

    def __init__(self, capacity: int, period: float, *, clock: Callable[[], float] = _real_monotonic) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / period
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until one token is available."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)


# --- routes --------------------------------------------------------------------------------------------

MATCH_KEYS: Final = ("severity", "error_type", "code", "path", "environment", "service", "known")
Matcher = Callable[[AlertEvent], bool]


def _as_strings(key: str, value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, Collection) and value and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise ValueError(f"match[{key!r}] must be a string or a non-empty collection of strings, got {value!r}")


def _compile_match(match: Mapping[str, Any] | Matcher | None) -> Matcher | None:
    if match is None:
        return None
    if callable(match):
        return match
    if not isinstance(match, Mapping):
        raise ValueError(  # noqa: TRY004 - the documented contract is ValueError for bad arguments
            "match must be None, a mapping of conditions or a callable taking an AlertEvent"
        )
    unknown = sorted(set(match) - set(MATCH_KEYS))
    if unknown:
        raise ValueError(f"unknown match key(s) {unknown}; allowed: {', '.join(MATCH_KEYS)}")
    checks: list[Matcher] = [_condition(key, value) for key, value in match.items()]
    return lambda e: all(check(e) for check in checks)


def _condition(key: str, value: Any) -> Matcher:
    if key == "known":
        if not isinstance(value, bool):
            raise ValueError(f"match['known'] must be True or False, got {value!r}")
        return lambda e: e.known is value
    wanted = _as_strings(key, value)
    if key == "severity":
        bad = sorted(wanted - set(SEVERITIES))
        if bad:
            raise ValueError(f"match['severity'] has {bad}; allowed: {', '.join(SEVERITIES)}")
        return lambda e: e.severity in wanted
    if key == "error_type":
        # "ZeroDivisionError" matches "builtins.ZeroDivisionError" and the other way round.
        short = frozenset(w.rpartition(".")[2] for w in wanted)
        return lambda e: e.error_type in wanted or e.error_type.rpartition(".")[2] in short
    if key == "path":
        globs = tuple(p for p in wanted if any(c in p for c in "*?["))
        prefixes = tuple(p for p in wanted if p not in globs)

        def path_matches(e: AlertEvent) -> bool:
            return e.path is not None and (
                e.path.startswith(prefixes) or any(fnmatch.fnmatchcase(e.path, g) for g in globs)
            )

        return path_matches
    attr = key  # code, environment, service: exact string match
    return lambda e: getattr(e, attr) in wanted


def _targets_of(hook: Any) -> list[AlertHook]:
    fan_out = getattr(hook, "targets", None)
    if callable(fan_out):
        return list(fan_out())
    return [hook]


class Route:
    """Send matching alerts to ``hooks``.

    Args:
        hooks: One hook or a sequence of hooks (``Webhook``, ``PagerDuty``, ``Slack``, ``Alertmanager``,
            ``Sentry``, ``Twilio`` or anything following :class:`AlertHook`).
        match: ``None`` (everything), a callable ``(AlertEvent) -> bool``, or a mapping whose conditions
            must all hold. Keys: ``severity``, ``error_type`` (full or unqualified name), ``code``,
            ``path`` (a prefix, or a glob when it has ``*``/``?``/``[``), ``environment``, ``service``
            (each a string or a collection of strings, any of which matches) and ``known`` (bool).
        rate_limit: ``"N/s"``, ``"N/min"`` or ``"N/h"``: a token bucket per route. Alerts over the limit
            are held and coalesced per fingerprint (the latest count wins), then sent as tokens return.

    Raises:
        ValueError: An unknown match key, a bad value, a malformed ``rate_limit`` or no hooks.
    """

    def __init__(
        self,
        hooks: AlertHook | Sequence[AlertHook],
        *,
        match: Mapping[str, Any] | Matcher | None = None,
        rate_limit: str | None = None,
    ) -> None:
        hook_list: list[AlertHook] = (
            list(hooks) if isinstance(hooks, Sequence) and not isinstance(hooks, str) else [hooks]
        )
        if not hook_list:
            raise ValueError("Route needs at least one hook")
        for h in hook_list:
            if not callable(getattr(h, "targets", None)) and not isinstance(h, AlertHook):
                raise ValueError(  # noqa: TRY004 - documented: bad constructor input is a ValueError
                    f"{type(h).__name__} is not a hook: expected Webhook, PagerDuty, Slack, Alertmanager, "
                    "Sentry, Twilio or an object following obskit.alerts.AlertHook"
                )
        self.hooks: tuple[AlertHook, ...] = tuple(hook_list)
        self.match = match
        self.rate_limit = rate_limit
        self._matcher = _compile_match(match)
        self._limit = parse_rate_limit(rate_limit) if rate_limit is not None else None

    def __repr__(self) -> str:
        return f"Route({list(self.hooks)!r}, match={self.match!r}, rate_limit={self.rate_limit!r})"

    def matches(self, event: AlertEvent) -> bool:
        return self._matcher is None or bool(self._matcher(event))


class _RouteState:
    """Per-router runtime state of a route: its targets, bucket and held (rate-limited) events."""

    __slots__ = ("bucket", "held", "index", "release_handle", "route", "targets")

    def __init__(self, route: Route, targets: list[Target], index: int) -> None:
        self.route = route
        self.targets = targets
        self.index = index  # what a held delivery's spool file names, to come back to this hold
        self.bucket = TokenBucket(*route._limit) if route._limit is not None else None
        # fingerprint -> (the latest event, one job per target)
        self.held: collections.OrderedDict[str, tuple[AlertEvent, list[Job]]] = collections.OrderedDict()
        self.release_handle: asyncio.TimerHandle | None = None


# --- the router ----------------------------------------------------------------------------------------


class _Entry:
    """Dedup state of one fingerprint; mutated under the router lock only."""

    fingerprint: str
    gen: int
    open: bool
    count: int
    reported: int
    first_seen: float
    last_seen: float
    severity: str
    title: str
    error_type: str
    error_message: str
    trace_id: str | None
    method: str | None
    path: str | None
    code: str | None
    known: bool

    __slots__ = (
        "code",
        "count",
        "error_message",
        "error_type",
        "fingerprint",
        "first_seen",
        "gen",
        "known",
        "last_seen",
        "method",
        "open",
        "path",
        "reported",
        "severity",
        "title",
        "trace_id",
    )

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.gen = 0
        self.open = False


class _Loop(asyncio.SelectorEventLoop):
    def time(self) -> float:
        return _real_monotonic()


_routers: weakref.WeakSet[AlertRouter] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:  # pragma: no cover - exercised by process exit
    for router in list(_routers):
        with contextlib.suppress(Exception):
            router.close(timeout=2.0)


def _reset_all_after_fork() -> None:
    for router in list(_routers):
        with contextlib.suppress(Exception):
            router._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    # gunicorn --preload and multiprocessing fork a process whose router may already run a delivery
    # thread; the child has the loop object but not the thread, and would queue alerts nobody sends.
    os.register_at_fork(after_in_child=_reset_all_after_fork)


class AlertRouter:
    """Routes unknown errors to hooks, once per bug, without ever touching the request path.

    Args:
        routes: Tried in order; an alert goes to every matching route (one delivery per hook even if
            several routes name it).
        dedup_window: Seconds during which repeats of a fingerprint are only counted (see module docs).
        queue_size: Bound on alerts waiting to be routed, and on each hook's backlog. New alerts beyond
            it are dropped and counted as ``dropped_queue_full``; repeats never need a slot.
        spool_dir: When set, every delivery is written there before its first attempt (or when a route's
            rate limit holds it) and replayed by the next router using that directory, with its original
            id (held ones back into their route's hold). An empty string is refused.
        max_fingerprints: Bound on the dedup table (least recently seen evicted first).
        group_wait: Seconds to wait before routing a new fingerprint, so a burst arrives as one alert
            with its count (like Alertmanager's ``group_wait``). 0 routes at once.
        backoff_base, backoff_cap: Full-jitter exponential backoff between attempts, in seconds.
        max_retry_after: Upper bound on how long a ``Retry-After`` may delay the next attempt.
        max_age: Seconds after which an undelivered alert is dropped (``dropped_max_age``).
        spool_max_files, spool_max_bytes: Bounds of the spool; beyond them deliveries stay in memory only
            (counted ``spool_full``).
        rng: Random source for jitter (tests pass a seeded ``random.Random``).

    Raises:
        ValueError: A bad value; the message lists what is allowed.
    """

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        dedup_window: float = 300.0,
        queue_size: int = 10_000,
        spool_dir: str | os.PathLike[str] | None = None,
        max_fingerprints: int = 10_000,
        group_wait: float = 0.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 120.0,
        max_retry_after: float = 300.0,
        max_age: float = 3600.0,
        spool_max_files: int = 10_000,
        spool_max_bytes: int = 64 * 1024 * 1024,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(routes, (Route, str)) or not isinstance(routes, Iterable):
            raise ValueError("routes must be a sequence of obskit.alerts.Route")  # noqa: TRY004 - documented
        routes = tuple(routes)
        if not all(isinstance(r, Route) for r in routes):
            raise ValueError("routes must be a sequence of obskit.alerts.Route")
        _positive("dedup_window", dedup_window)
        for name, value in (("group_wait", group_wait),):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
        for name, value in (
            ("backoff_base", backoff_base),
            ("backoff_cap", backoff_cap),
            ("max_retry_after", max_retry_after),
            ("max_age", max_age),
        ):
            _positive(name, value)
        for name, ivalue in (
            ("queue_size", queue_size),
            ("max_fingerprints", max_fingerprints),
            ("spool_max_files", spool_max_files),
            ("spool_max_bytes", spool_max_bytes),
        ):
            if not isinstance(ivalue, int) or isinstance(ivalue, bool) or ivalue < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {ivalue!r}")

        if isinstance(spool_dir, str) and not spool_dir.strip():
            # Path("") is ".": an unset variable (os.environ.get("ALERT_SPOOL", "")) would spool into the cwd.
            raise ValueError("spool_dir must be None (no spool) or a directory path, got an empty string")
        self.routes: tuple[Route, ...] = tuple(routes)
        self.dedup_window = float(dedup_window)
        self.queue_size = queue_size
        self.spool_dir = spool_dir
        self.max_fingerprints = max_fingerprints
        self.group_wait = float(group_wait)
        self.service = "unknown-service"
        self.environment: str | None = None

        self._lock = threading.Lock()
        self._table: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._inbox: collections.deque[tuple[_Entry, BaseException | None]] = collections.deque()
        self._backlog = 0  # inbox + waiting for group_wait, bounded by queue_size
        self._wake_pending = False
        self._closed = False
        self._cap: dict[str, int] = {"deduplicated": 0, "enqueued": 0}
        self._cap_drops: dict[str, int] = {"queue_full": 0, "closed": 0, "internal_error": 0}
        self._internal_logged = False

        self._counters = Counters()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._redact = _redactor()
        self._spool = (
            Spool(spool_dir, max_files=spool_max_files, max_bytes=spool_max_bytes) if spool_dir is not None else None
        )
        # One Target per distinct delivery destination, shared by every route naming it.
        self._targets: list[Target] = []
        by_id: dict[int, Target] = {}
        keys: set[str] = set()
        self._route_states: list[_RouteState] = []
        for route in self.routes:
            route_targets: list[Target] = []
            for hook in route.hooks:
                for t in _targets_of(hook):
                    target = by_id.get(id(t))
                    if target is None:
                        target = Target(
                            t,
                            counters=self._counters,
                            spool=self._spool,
                            rng=self._rng,
                            backoff_base=backoff_base,
                            backoff_cap=backoff_cap,
                            max_retry_after=max_retry_after,
                            max_age=max_age,
                            queue_size=queue_size,
                        )
                        # Keys map spooled files back to hooks; make duplicates (same URL twice) distinct.
                        key, n = t.key, 2
                        while key in keys:
                            key, n = f"{t.key}-{n}", n + 1
                        keys.add(key)
                        target.key = key
                        by_id[id(t)] = target
                        self._targets.append(target)
                    if target not in route_targets:
                        route_targets.append(target)
            self._route_states.append(_RouteState(route, route_targets, len(self._route_states)))

        # A fork (gunicorn --preload) while the delivery thread imports a module lazily or loads the CA
        # bundle would leave the child a half-initialised module or OpenSSL's locks held for ever: its
        # delivery thread would crash or hang. Both happen here, on the constructing thread, rather than in
        # start(), which the first capture() may call on the request path.
        _preload_lazy_imports()
        self._ssl_context = httpx.create_ssl_context()
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        # (jobs, submit): held deliveries are only written, the others then go to their targets.
        self._spool_queue: collections.deque[tuple[list[Job], bool]] = collections.deque()
        self._spool_wake: asyncio.Event | None = None
        self._spooling = False
        self._spooling_jobs: list[Job] = []
        self._setup_done = False
        self._routable = False  # the delivery loop's client and targets exist: _drain may route
        self._spool_task: asyncio.Task[None] | None = None
        self._rescan_task: asyncio.Task[None] | None = None
        self._pending_first: dict[_Entry, tuple[asyncio.TimerHandle, BaseException | None]] = {}
        self._stopped: concurrent.futures.Future[bool] | None = None
        # Submissions to the delivery loop vs. its end: see _submit_coro and _thread_main.
        self._submit_lock = threading.Lock()
        self._loop_done = False
        self._close_lock = threading.Lock()
        self._close_fut: concurrent.futures.Future[bool] | None = None
        _routers.add(self)
        if self._spool is not None:
            self.start()

    def __repr__(self) -> str:
        return (
            f"AlertRouter(routes={len(self.routes)}, dedup_window={self.dedup_window}, "
            f"queue_size={self.queue_size}, spool_dir={self.spool_dir!r})"
        )

    # --- request path ----------------------------------------------------------------------------------

    def bind(self, service: str, environment: str | None) -> None:
        """Set the ``service``/``environment`` stamped on events (called by ``obskit.configure``)."""
        self.service = service or "unknown-service"
        self.environment = environment

    def capture(
        self,
        *,
        fingerprint: str,
        error_type: str,
        error_message: str,
        severity: str,
        title: str,
        trace_id: str | None,
        method: str | None,
        path: str | None,
        code: str | None = None,
        known: bool = False,
        exc: BaseException | None = None,
    ) -> None:
        """Record one occurrence of a bug. O(1), no I/O, thread-safe, never raises.

        A repeat inside the fingerprint's window only bumps its count. ``exc`` is handed to hooks that
        want the live exception (Sentry) for a first occurrence, and released once delivered.
        """
        try:
            now = time.time()
            with self._lock:
                entry = self._table.get(fingerprint)
                if entry is not None and entry.open:
                    self._table.move_to_end(fingerprint)  # LRU by last occurrence, not first
                    entry.count += 1
                    entry.last_seen = now
                    # The event reports the latest occurrence's request (SPEC §6 schema).
                    entry.trace_id = trace_id
                    entry.method = None if method is None else _text(method, _MAX_METHOD)
                    entry.path = None if path is None else _text(path, MAX_FIELD)
                    self._cap["deduplicated"] += 1
                    return
                if self._closed:
                    self._cap_drops["closed"] += 1
                    return
                if self._backlog >= self.queue_size:
                    self._cap_drops["queue_full"] += 1
                    return
                if entry is None:
                    entry = _Entry(fingerprint)
                    self._table[fingerprint] = entry
                    if len(self._table) > self.max_fingerprints:
                        self._table.popitem(last=False)
                else:
                    self._table.move_to_end(fingerprint)
                entry.open = True
                entry.count = 1
                entry.reported = 0
                entry.first_seen = entry.last_seen = now
                entry.severity = severity
                entry.title = _text(title, MAX_TITLE)
                entry.error_type = _text(error_type, MAX_FIELD)
                entry.error_message = _text(error_message, MAX_MESSAGE)
                entry.trace_id = trace_id
                entry.method = None if method is None else _text(method, _MAX_METHOD)
                entry.path = None if path is None else _text(path, MAX_FIELD)  # an unmatched raw path can be a megabyte
                entry.code = None if code is None else _text(code, MAX_FIELD)
                entry.known = known
                self._inbox.append((entry, exc))
                self._backlog += 1
                self._cap["enqueued"] += 1
                wake = not self._wake_pending
                self._wake_pending = True
            if wake:
                loop = self._loop
                if loop is None:
                    self.start()
                    loop = self._loop
                if loop is not None:
                    loop.call_soon_threadsafe(self._drain)
        except Exception as error:
            self._internal_error_on_capture(error)

    def _internal_error_on_capture(self, exc: BaseException) -> None:
        try:
            with self._lock:
                self._cap_drops["internal_error"] += 1
                first = not self._internal_logged
                self._internal_logged = True
            if first:  # once: a broken capture would otherwise log on every request
                logger.error("obskit.alerts: internal error in capture(); alert dropped", exc_info=exc)
        except Exception:  # noqa: S110 - the request path must survive even a broken logging setup
            pass

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread now (otherwise the first ``capture()`` does)."""
        with self._start_lock:
            if self._loop is not None or self._stopped is not None:
                return
            loop = _Loop()
            self._stopped = concurrent.futures.Future()
            install_log_filter()
            thread = threading.Thread(target=self._thread_main, args=(loop,), name=THREAD_NAME, daemon=True)
            self._loop = loop
            self._thread = thread
            thread.start()

    def _thread_main(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup())
            loop.run_forever()
        except Exception:
            logger.exception("obskit.alerts: delivery thread crashed")
        finally:
            with self._submit_lock:
                self._loop_done = True  # nothing new is scheduled on this loop from now on
            with contextlib.suppress(Exception):
                loop.run_until_complete(_settle_leftovers())
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            if self._stopped is not None and not self._stopped.done():
                self._stopped.set_result(True)

    async def _setup(self) -> None:
        # No await before the targets run: captures may already be queued behind us. Jobs routed while
        # the spool opens wait in _spool_queue; its worker starts once the spool is usable (or not).
        self._client = httpx.AsyncClient(
            verify=self._ssl_context, follow_redirects=False, limits=httpx.Limits(max_connections=100)
        )
        for target in self._targets:
            target.start()
        self._spool_wake = asyncio.Event()
        self._routable = True
        # The first capture starts this thread and queues its wake-up from its own thread: that wake-up can
        # run before this coroutine's first step (when this thread is descheduled for a moment), and found
        # no client to route with. Routing waits for this point instead; what arrived before goes now.
        self._drain()
        try:
            if self._spool is not None:
                await self._open_spool(self._spool)
        finally:
            self._spool_task = asyncio.get_running_loop().create_task(self._spool_worker(), name="obskit-alerts:spool")
            self._setup_done = True

    async def _open_spool(self, spool: Spool) -> None:
        try:
            await asyncio.to_thread(spool.open)
            loaded, corrupt = await asyncio.to_thread(spool.load)
        except (OSError, SpoolError):
            logger.exception("obskit.alerts: spool_dir unusable, alerts are kept in memory only")
            self._spool = None
            for t in self._targets:
                t._spool = None
            return
        self._replay(spool, loaded, corrupt)
        self._rescan_task = asyncio.get_running_loop().create_task(
            self._rescan_loop(spool), name="obskit-alerts:rescan"
        )

    async def _rescan_loop(self, spool: Spool) -> None:
        # A worker that dies while its siblings live (and is not replaced) would otherwise leave its slot
        # on disk until some process starts.
        while self._spool is spool:
            await asyncio.sleep(RESCAN_SECONDS)
            try:
                loaded, corrupt = await asyncio.to_thread(spool.rescan)
            except (OSError, SpoolError) as exc:
                logger.warning("obskit.alerts: scanning the spool for dead slots failed (%s)", exc)
                continue
            try:
                self._replay(spool, loaded, corrupt)
            except Exception:
                self._counters.add("internal_error")
                logger.exception("obskit.alerts: internal error replaying adopted spool files")

    def _replay(self, spool: Spool, loaded: list[Spooled], corrupt: int) -> None:
        if corrupt:
            self._counters.drop("spool_corrupt", corrupt)
        by_key = {t.key: t for t in self._targets}
        assert self._client is not None
        for item in loaded:
            target = by_key.get(item.target)
            if target is None:
                # The config changed since the file was written: no hook to send it to.
                self._counters.drop("spool_orphan")
                spool.remove(item.path)
                continue
            job = Job(Delivery(item.event, self._client, self.dedup_window), item.created, item.path, target)
            job.spool_tried = True  # already on disk
            self._counters.add("replayed")
            if item.held is not None and self._rehold(item.held, job):
                continue
            if not target.submit(job):
                self._counters.drop("queue_full")
                spool.remove(item.path)
        if loaded:
            logger.info("obskit.alerts: replaying %d spooled deliveries", len(loaded))

    def _rehold(self, index: int, job: Job) -> bool:
        """Put a replayed delivery back into the hold of the route that held it; False if it has none now."""
        state = self._route_states[index] if index < len(self._route_states) else None
        if state is None or state.bucket is None or job.target not in state.targets:
            return False  # the config changed: that route no longer limits this hook
        event = job.delivery.event
        job.held = index
        current = state.held.get(event.fingerprint)
        if current is not None and current[0].id == event.id:
            current[1].append(job)  # the same event for another hook of the route
        elif current is not None and current[0].timestamp > event.timestamp:
            self._discard([job])  # a leftover of an event already coalesced into a newer one
            self._counters.add("coalesced")
        else:
            self._put_held(state, event, [job], count=False)
        return True

    async def flush(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - the documented API
        """Wait until every accepted alert has reached a final outcome, at most ``timeout`` seconds.

        Returns:
            True if nothing is pending any more (each alert delivered, or dropped and counted in
            :meth:`stats`); False on timeout. Window follow-ups that are not due yet are not waited for.
        """
        with self._close_lock:
            closing = self._close_fut
        if closing is not None:  # closed or closing: its outcome is the flush's
            return await asyncio.wrap_future(closing)
        fut = self._submit_coro(self._flush(timeout))
        if fut is None:
            return True
        return await asyncio.wrap_future(fut)

    async def aclose(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - the documented API
        """Flush for up to ``timeout`` seconds, then stop.

        Leftovers stay in the spool (counted ``shutdown_spooled``) when ``spool_dir`` is set, else they
        are dropped and counted as ``dropped_shutdown``. Later captures are counted ``dropped_closed``.

        Returns:
            Whether the flush completed before the timeout.
        """
        fut = self._close_future(timeout)
        if fut is None:
            return True
        return await asyncio.wrap_future(fut)

    def close(self, timeout: float = 5.0) -> bool:
        """Blocking :meth:`aclose` for atexit handlers, CLIs and sync code (not from the delivery thread)."""
        fut = self._close_future(timeout)
        if fut is None:
            return True
        try:
            return fut.result(timeout + 5.0)
        except concurrent.futures.TimeoutError:
            return False

    def _after_fork_in_child(self) -> None:
        """Start over in a forked child: fresh locks, no thread, empty queues, its own spool slot."""
        self._lock = threading.Lock()  # the parent may have held it while forking
        self._start_lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._loop_done = False
        self._close_fut = None
        self._loop = None
        self._thread = None
        self._stopped = None
        self._client = None
        self._inbox.clear()
        self._table.clear()
        self._backlog = 0
        self._wake_pending = False
        self._cap = dict.fromkeys(self._cap, 0)
        self._cap_drops = dict.fromkeys(self._cap_drops, 0)
        self._counters = Counters()
        self._spool_queue.clear()
        self._spooling = False
        self._spooling_jobs = []
        self._setup_done = False
        self._routable = False  # the delivery loop's client and targets exist: _drain may route
        for task in (self._spool_task, self._rescan_task, *(t.task for t in self._targets)):
            if task is not None:
                # The parent's tasks never run here; collected, each would log "Task was destroyed but
                # it is pending!" from every forked child.
                task._log_destroy_pending = False  # type: ignore[attr-defined]
        self._spool_task = None
        self._rescan_task = None
        self._pending_first = {}
        if self._spool is not None:
            self._spool.close_inherited()  # the parent keeps its slot; this process drops its copies
            self._spool = Spool(self._spool.root, max_files=self._spool.max_files, max_bytes=self._spool.max_bytes)
        for target in self._targets:
            target.reset(self._counters, self._spool)
        for state in self._route_states:
            state.held.clear()  # the parent's: their spool files are in the parent's slot
            state.release_handle = None
        if self._spool is not None:
            # gunicorn --preload: this may be the replacement of a worker that crashed with alerts in its
            # slot; waiting for a first capture (maybe never) would leave them there.
            self.start()

    def _close_future(self, timeout: float) -> concurrent.futures.Future[bool] | None:
        # Idempotent: a second close (the app's own after lifespan shutdown's, or atexit's) waits for
        # the first one's outcome instead of scheduling another _aclose on a loop that is stopping.
        with self._close_lock:
            if self._close_fut is not None:
                return self._close_fut
            with self._lock:
                self._closed = True
            _routers.discard(self)
            self._close_fut = self._submit_coro(self._aclose(timeout))
            return self._close_fut

    def _submit_coro(self, coro: Any) -> concurrent.futures.Future[bool] | None:
        """Run ``coro`` on the delivery loop; its future always resolves, even if the loop ends first.

        ``run_coroutine_threadsafe`` would leave the future pending for ever (and the coroutine never
        awaited) when the loop stops between the call and the task's first step.
        """
        loop = self._loop
        if loop is None:
            coro.close()
            return None
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("flush()/close() cannot be awaited from the alert delivery thread")
        fut: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def start() -> None:  # on the delivery thread, in order with the loop's own end
            if self._loop_done or not fut.set_running_or_notify_cancel():
                coro.close()
                if not fut.done():
                    fut.set_result(True)  # the loop ended after a close: nothing is pending any more
                return
            loop.create_task(coro).add_done_callback(functools.partial(_copy_outcome, fut))

        with self._submit_lock:
            if self._loop_done:
                coro.close()
                return None
            try:
                loop.call_soon_threadsafe(start)
            except RuntimeError:  # pragma: no cover - closed without passing through _thread_main
                coro.close()
                return None
        return fut

    # --- stats -----------------------------------------------------------------------------------------

    def stats(self) -> Mapping[str, int]:
        """Counters (a snapshot): ``enqueued``, ``deduplicated``, ``routed``, ``delivered``, ``retried``,
        ``dropped`` (the sum of every ``dropped_<reason>``), ``rate_limited``, ``coalesced``,
        ``spooled``, ``replayed``, ``queue_depth`` and more.

        ``dropped_queue_full``/``dropped_closed``/``dropped_internal_error`` at capture count alerts;
        other counters about delivery count (alert, hook) pairs. No secret ever appears here.
        """
        with self._lock:
            cap = dict(self._cap)
            cap_drops = dict(self._cap_drops)
            backlog = self._backlog
        loop_values = self._counters.snapshot()
        out: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        out.update(dict.fromkeys(("dropped_" + r for r in DROP_REASONS), 0))
        for k, v in loop_values.items():
            out[k] = out.get(k, 0) + v
        out["enqueued"] += cap["enqueued"]
        out["deduplicated"] += cap["deduplicated"]
        for reason, n in cap_drops.items():
            out["dropped_" + reason] += n
        out["internal_error"] += cap_drops["internal_error"]
        out["dropped"] = sum(v for k, v in out.items() if k.startswith("dropped_"))
        out["queue_depth"] = backlog + sum(len(t.queue) + (t.current is not None) for t in self._targets)
        out["spool_files"] = self._spool.count if self._spool is not None else 0
        return out

    # --- delivery loop (runs on the obskit-alerts thread) ----------------------------------------------

    def _drain(self) -> None:
        if not self._routable:
            return  # _setup drains once the client and the targets exist
        with self._lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._wake_pending = False
        loop = asyncio.get_running_loop()
        for entry, exc in items:
            if self.group_wait > 0:
                handle = loop.call_later(self.group_wait, self._route_first_later, entry)
                self._pending_first[entry] = (handle, exc)
            else:
                self._route_first(entry, exc)

    def _route_first_later(self, entry: _Entry) -> None:
        _, exc = self._pending_first.pop(entry)
        self._route_first(entry, exc)

    def _route_first(self, entry: _Entry, exc: BaseException | None) -> None:
        try:
            with self._lock:
                self._backlog -= 1
                event = self._snapshot(entry)
                entry.gen += 1
                gen = entry.gen
            self._arm_window(entry, gen)
            self._route(event, exc)
        except Exception:
            self._counters.add("internal_error")
            logger.exception("obskit.alerts: internal error while routing")

    def _snapshot(self, entry: _Entry) -> AlertEvent:
        # Under the lock: reads a consistent count, and marks it reported.
        entry.reported = entry.count
        return AlertEvent(
            id=new_event_id(),
            fingerprint=entry.fingerprint,
            service=self.service,
            environment=self.environment,
            severity=normalize_severity(entry.severity),
            title=entry.title,
            error_type=entry.error_type,
            error_message=entry.error_message,
            trace_id=valid_trace_id(entry.trace_id),
            method=entry.method,
            path=entry.path,
            first_seen=entry.first_seen,
            last_seen=entry.last_seen,
            count=entry.count,
            timestamp=time.time(),
            code=entry.code,
            known=entry.known,
        )

    def _arm_window(self, entry: _Entry, gen: int) -> None:
        # Pending timers are simply discarded when the loop closes: nothing to keep track of.
        asyncio.get_running_loop().call_later(self.dedup_window, self._window_end, entry, gen)

    def _window_end(self, entry: _Entry, gen: int) -> None:
        try:
            with self._lock:
                if entry.gen != gen:
                    return
                if entry.count <= entry.reported:
                    entry.open = False  # quiet for a whole window: the next occurrence is a new alert
                    return
                event = self._snapshot(entry)
                entry.gen += 1
                gen = entry.gen
            self._counters.add("enqueued")
            self._arm_window(entry, gen)
            self._route(event, None)
        except Exception:
            self._counters.add("internal_error")
            logger.exception("obskit.alerts: internal error at the end of a dedup window")

    def _route(self, event: AlertEvent, exc: BaseException | None) -> None:
        event = self._redacted(event)
        self._counters.add("routed")
        _notify_listeners(event)
        seen: set[int] = set()
        jobs: list[Job] = []
        matched = False
        for state in self._route_states:
            try:
                ok = state.route.matches(event)
            except Exception:
                self._counters.add("internal_error")
                logger.warning("obskit.alerts: match callable of %r raised; route skipped", state.route)
                continue
            if not ok:
                continue
            matched = True
            targets = [t for t in state.targets if id(t) not in seen]
            seen.update(id(t) for t in targets)
            if not targets:
                continue
            if state.bucket is not None and not state.bucket.take():
                self._hold(state, event, targets)
                continue
            jobs.extend(self._job(t, event, exc) for t in targets)
        if not matched:
            self._counters.add("unrouted")
        if jobs:
            self._enqueue_jobs(jobs)

    def _redacted(self, event: AlertEvent) -> AlertEvent:
        try:
            message = self._redact(event.error_message)
            title = self._redact(event.title)
        except Exception:
            # Never ship an unredacted message because the redactor failed.
            message, title = "[redaction failed]", event.error_type
        if message == event.error_message and title == event.title:
            return event
        return AlertEvent(
            **{f: getattr(event, f) for f in AlertEvent.__slots__ if f not in ("error_message", "title")},
            error_message=truncate(message, MAX_MESSAGE),
            title=truncate(title, MAX_TITLE),
        )

    def _job(self, target: Target, event: AlertEvent, exc: BaseException | None) -> Job:
        assert self._client is not None
        delivery = Delivery(
            event,
            self._client,
            self.dedup_window,
            exception=exc if target.hook.wants_exception else None,
        )
        return Job(delivery, time.time(), target=target)

    def _hold(self, state: _RouteState, event: AlertEvent, targets: list[Target]) -> None:
        jobs = [self._job(t, event, None) for t in targets]
        for job in jobs:
            job.held = state.index
        self._put_held(state, event, jobs, count=True)
        if self._spool is not None:
            # On disk while held, marked with the route: a kill must not lose it, and a restart must put
            # it back under this route's limit rather than send it at once.
            self._spool_queue.append((jobs, False))
            assert self._spool_wake is not None
            self._spool_wake.set()

    def _put_held(self, state: _RouteState, event: AlertEvent, jobs: list[Job], *, count: bool) -> None:
        old = state.held.get(event.fingerprint)
        # The newer event carries the accumulated count: it replaces the held one.
        state.held[event.fingerprint] = (event, jobs)
        if old is not None:
            self._discard(old[1])
            self._counters.add("coalesced")
        else:
            if count:
                self._counters.add("rate_limited")
            if len(state.held) > self.queue_size:
                _, (_, old_jobs) = state.held.popitem(last=False)
                self._discard(old_jobs)
                self._counters.drop("rate_limited", len(old_jobs))
        if state.release_handle is None and state.bucket is not None:
            loop = asyncio.get_running_loop()
            state.release_handle = loop.call_later(state.bucket.wait_time(), self._release, state)

    def _discard(self, jobs: list[Job]) -> None:
        # A write still in flight sees the flag and removes its file itself (see _spool_worker).
        for job in jobs:
            job.discarded = True
            job.held = None
            if job.spool_path is not None and self._spool is not None:
                self._spool.remove(job.spool_path)
            job.spool_path = None

    def _release(self, state: _RouteState) -> None:
        state.release_handle = None
        jobs: list[Job] = []
        now = time.time()
        while state.held and state.bucket is not None and state.bucket.take():
            _, (_, held_jobs) = state.held.popitem(last=False)
            for job in held_jobs:
                # Its spool file keeps the held mark: after a crash it waits for a token again, which
                # delays it at worst; max_age counts from now, as for an alert routed now.
                job.held = None
                job.created = now
            jobs.extend(held_jobs)
        if jobs:
            self._enqueue_jobs(jobs)
        if state.held and state.bucket is not None:
            loop = asyncio.get_running_loop()
            state.release_handle = loop.call_later(max(state.bucket.wait_time(), 0.001), self._release, state)

    def _enqueue_jobs(self, jobs: list[Job]) -> None:
        if self._spool is None:
            self._submit_jobs(jobs)
            return
        self._spool_queue.append((jobs, True))
        assert self._spool_wake is not None
        self._spool_wake.set()

    async def _spool_worker(self) -> None:
        # Spool writes fsync, so they run on a worker thread; a single consumer keeps routing order.
        assert self._spool_wake is not None
        while True:
            if not self._spool_queue:
                self._spool_wake.clear()
                await self._spool_wake.wait()
                continue
            jobs, submit = self._spool_queue.popleft()
            self._spooling = True
            self._spooling_jobs = jobs
            try:
                spool = self._spool
                # Released held jobs come back here already written (FIFO: their held write came first).
                todo = [j for j in jobs if not j.spool_tried and not j.discarded]
                if spool is not None and todo:
                    for job in todo:
                        job.spool_tried = True
                    items = [(j.target_key, j.delivery.event, j.created, j.held) for j in todo]
                    try:
                        paths = await asyncio.to_thread(spool.write_many, items)
                    except OSError:
                        logger.exception("obskit.alerts: spool write failed; delivering from memory only")
                        paths = [None] * len(todo)
                    for job, path in zip(todo, paths, strict=True):
                        if job.discarded:  # coalesced while its write was in flight
                            if path is not None:
                                spool.remove(path)
                            continue
                        job.spool_path = path
                        self._counters.add("spooled" if path is not None else "spool_full")
                if submit:
                    self._submit_jobs(jobs)
            except Exception:
                self._counters.add("internal_error")
                logger.exception("obskit.alerts: internal error in the spool writer")
            finally:
                self._spooling = False

    def _submit_jobs(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            target = job.target
            if target is None or not target.submit(job):
                self._counters.drop("queue_full")
                job.delivery.exception = None
                if job.spool_path is not None and self._spool is not None:
                    self._spool.remove(job.spool_path)

    def _idle(self) -> bool:
        with self._lock:
            backlog = self._backlog
        return (
            self._setup_done
            and backlog == 0
            and not self._spool_queue
            and not self._spooling
            and all(t.idle for t in self._targets)
            and not any(s.held for s in self._route_states)
        )

    async def _flush(self, timeout: float) -> bool:  # noqa: ASYNC109 - the documented API
        deadline = _real_monotonic() + max(0.0, timeout)
        while not self._idle():
            if _real_monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        for target in self._targets:
            hook_flush = getattr(target.hook, "flush", None)
            if callable(hook_flush):
                remaining = max(0.0, deadline - _real_monotonic())
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(hook_flush, remaining)
        return True

    async def _aclose(self, timeout: float) -> bool:  # noqa: ASYNC109 - the documented API
        # Route what is waiting for group_wait now, rather than losing it.
        self._drain()
        for entry, (handle, exc) in list(self._pending_first.items()):
            handle.cancel()
            del self._pending_first[entry]
            self._route_first(entry, exc)
        # Windows still open with occurrences not reported yet: send their follow-up now, or the counts
        # die with the process (a deploy restarts it inside a window far more often than not).
        with self._lock:
            due = [(e, e.gen) for e in self._table.values() if e.open and e.count > e.reported]
        for entry, gen in due:
            self._window_end(entry, gen)
        ok = await self._flush(timeout)
        # A spool write in flight runs on a worker thread that cancellation cannot stop: let it land.
        for _ in range(400):  # at most ~2 s
            if not self._spooling:
                break
            await asyncio.sleep(0.005)
        tasks = [t.task for t in self._targets if t.task is not None]
        tasks.extend(t for t in (self._spool_task, self._rescan_task) if t is not None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pending: list[Job] = []
        for target in self._targets:
            if target.current is not None:
                pending.append(target.current)
                target.current = None
            pending.extend(target.queue)
            target.queue.clear()
        if self._spooling:
            pending.extend(self._spooling_jobs)
        for jobs, _ in self._spool_queue:
            pending.extend(jobs)
        self._spool_queue.clear()
        for state in self._route_states:
            if state.release_handle is not None:
                state.release_handle.cancel()
            for _, held_jobs in state.held.values():
                pending.extend(held_jobs)  # still marked held: the next start holds them again
            state.held.clear()
        # A held job can sit both in its hold and in the spool queue (its write): count each once.
        leftovers = [j for j in {id(j): j for j in pending}.values() if not j.discarded]
        for job in leftovers:
            job.delivery.exception = None
            if job.spool_path is None and self._spool is not None:
                with contextlib.suppress(OSError):
                    job.spool_path = self._spool.write(job.target_key, job.delivery.event, job.created, held=job.held)
            if job.spool_path is not None:
                self._counters.add("shutdown_spooled")
            else:
                self._counters.drop("shutdown")
        if leftovers:
            logger.error(
                "obskit.alerts: shutdown with %d undelivered alert deliveries (%s)",
                len(leftovers),
                "kept in the spool for the next start" if self._spool is not None else "dropped",
            )
        for target in self._targets:
            hook_close = getattr(target.hook, "close", None)
            if callable(hook_close):
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(hook_close)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        if self._spool is not None:
            self._spool.close()
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)
        return ok


def _copy_outcome(fut: concurrent.futures.Future[bool], task: asyncio.Task[bool]) -> None:
    if fut.done():
        return
    if task.cancelled():  # cut short by the loop's end (see _settle_leftovers): not all done
        fut.set_result(False)
    elif (exc := task.exception()) is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(task.result())


async def _settle_leftovers() -> None:
    """The delivery loop's last pass: ``start`` callbacks queued before its end resolve their futures
    without running (``_loop_done`` is set), and tasks still waiting (a flush racing a close) are
    cancelled, which their callers see as False, instead of hanging on a loop that is gone."""
    await asyncio.sleep(0)
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# What the delivery thread would otherwise import on first use: httpx's transport and the anyio backend
# httpcore connects with.
_LAZY_IMPORTS: Final = ("httpcore", "anyio._backends._asyncio", "anyio.streams.tls")


def _preload_lazy_imports() -> None:
    for name in _LAZY_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


_MAX_METHOD = 32


def _text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` and valid UTF-8: a lone surrogate (a file name decoded with
    surrogateescape, in an exception message) would make every JSON hook's encoder refuse the alert."""
    value = value[:limit]
    return value if value.isascii() else utf8_safe(value)


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


__all__ = ["AlertRouter", "Route", "Severity", "TokenBucket", "add_listener", "remove_listener"]

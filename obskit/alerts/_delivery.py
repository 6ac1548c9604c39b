"""Per-hook delivery: one worker per target, retries with capped full-jitter backoff and ``Retry-After``.

Each target (a hook, or one URL of a fan-out hook) owns a bounded FIFO and a single worker task, so a
slow or dead receiver only ever delays its own alerts, and a ``Retry-After`` pauses exactly the hook that
was told to wait. Attempts keep the same event (and so the same ``webhook-id`` / ``dedup_key``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import email.utils
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from obskit.alerts._types import AlertHook, Delivery, DeliveryError

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from obskit.alerts._spool import Spool

logger = logging.getLogger("obskit.alerts")

THREAD_NAME = "obskit-alerts"


class _NotFromDeliveryThread(logging.Filter):
    """httpx logs every request's full URL at INFO; for Slack and many webhooks the URL is the secret.

    Only records made on obskit's delivery thread are dropped: the application's own httpx logs stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD_NAME


_httpx_filter = _NotFromDeliveryThread()


def install_log_filter() -> None:
    httpx_logger = logging.getLogger("httpx")
    if _httpx_filter not in httpx_logger.filters:
        httpx_logger.addFilter(_httpx_filter)


MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of a receiver's answer (only logged, truncated)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter ("Exponential Backoff And Jitter"): uniform in ``[0, min(cap, base * 2**(attempt-1))]``."""
    return rng.uniform(0.0, min(cap, base * (2.0 ** min(attempt - 1, 62))))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means an obsolete format
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


def check_response(status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Raise :class:`DeliveryError` unless ``status`` is 2xx, classified per ALERTING.md §4 and §7 G4."""
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        # Never followed: a redirect could lead an alert (and its secret) somewhere unintended.
        raise DeliveryError("redirect", retryable=False, detail=f"HTTP {status}")
    snippet = body[:200].decode("utf-8", "replace")
    if status == 410:
        raise DeliveryError("gone", retryable=False, disable=True, detail=f"HTTP 410 {snippet}")
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"), time.time())
        raise DeliveryError(f"http_{status}", retryable=True, retry_after=retry_after, detail=snippet)
    raise DeliveryError(f"http_{status}", retryable=False, detail=snippet)


async def http_post(
    delivery: Delivery,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a per-request timeout, passed to httpx
    content: bytes,
    headers: Mapping[str, str],
    auth: tuple[str, str] | None = None,
) -> tuple[int, bytes]:
    """POST once without following redirects; map transport failures to retryable :class:`DeliveryError`."""
    client = delivery.client
    try:
        request = client.build_request("POST", url, content=content, headers=headers, timeout=timeout)
        response = await client.send(request, auth=auth, follow_redirects=False, stream=True)
        try:
            body = b""
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) >= MAX_RESPONSE_BYTES:
                    break
        finally:
            await response.aclose()
    except httpx.TimeoutException as exc:
        raise DeliveryError("timeout", retryable=True, detail=type(exc).__name__) from None
    except httpx.TransportError as exc:
        # The type says enough (ConnectError, ReadError, RemoteProtocolError); messages may carry URLs.
        raise DeliveryError("connection_error", retryable=True, detail=type(exc).__name__) from None
    check_response(response.status_code, response.headers, body)
    return response.status_code, body


@dataclass(slots=True, eq=False)
class Job:
    delivery: Delivery
    created: float  # wall clock, for max_age across restarts
    spool_path: str | None = None
    target: Target | None = None
    held: int | None = None  # the index of the route whose rate limit holds it, while it does
    discarded: bool = False  # coalesced or dropped while held: its spool file must go, not be written
    spool_tried: bool = False  # the spool writer already had its go at it (or it came from the spool)

    @property
    def target_key(self) -> str:
        assert self.target is not None
        return self.target.key


class Counters:
    """Counters owned by the delivery loop's thread; read (copied) from any thread."""

    __slots__ = ("_lock", "values")

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.values[name] = self.values.get(name, 0) + n

    def drop(self, reason: str, n: int = 1) -> None:
        self.add("dropped_" + reason, n)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


class Target:
    """One delivery destination with its own queue, worker, retry timer and disabled state."""

    def __init__(
        self,
        hook: AlertHook,
        *,
        counters: Counters,
        spool: Spool | None,
        rng: random.Random,
        backoff_base: float,
        backoff_cap: float,
        max_retry_after: float,
        max_age: float,
        queue_size: int,
    ) -> None:
        self.hook = hook
        self.key = hook.key
        self.queue: collections.deque[Job] = collections.deque()
        self.current: Job | None = None
        self.disabled = False
        self._counters = counters
        self._spool = spool
        self._rng = rng
        self._base = backoff_base
        self._cap = backoff_cap
        self._max_retry_after = max_retry_after
        self._max_age = max_age
        self._queue_size = queue_size
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Target {self.hook.name} queued={len(self.queue)}>"

    def reset(self, counters: Counters, spool: Spool | None) -> None:
        """Forget the (parent process's) loop state after a fork."""
        self.queue.clear()
        self.current = None
        self.task = None
        self._wake = asyncio.Event()
        self._counters = counters
        self._spool = spool

    @property
    def idle(self) -> bool:
        return self.current is None and not self.queue

    def submit(self, job: Job) -> bool:
        if len(self.queue) >= self._queue_size:
            return False
        self.queue.append(job)
        self._wake.set()
        return True

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"obskit-alerts:{self.hook.name}")

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            job = self.queue.popleft()
            self.current = job
            try:
                await self._deliver(job)
            except Exception:
                self._counters.add("internal_error")
                self._finish(job, "internal_error")
                logger.exception("obskit.alerts: internal error delivering to %s", self.hook.name)
            self.current = None

    def _finish(self, job: Job, drop_reason: str | None) -> None:
        if drop_reason is None:
            self._counters.add("delivered")
        else:
            self._counters.drop(drop_reason)
        job.delivery.exception = None  # a traceback pins every frame's locals: let it go now
        if job.spool_path is not None and self._spool is not None:
            self._spool.remove(job.spool_path)
            job.spool_path = None

    async def _deliver(self, job: Job) -> None:
        delivery = job.delivery
        hook = self.hook
        exception = delivery.exception
        attempt = 0
        while True:
            attempt += 1
            if self.disabled:
                self._finish(job, "hook_disabled")
                return
            delivery.attempt = attempt
            delivery.exception = exception if hook.wants_exception else None
            try:
                async with asyncio.timeout(hook.timeout):
                    await hook.send(delivery)
            except DeliveryError as exc:
                error = exc
            except TimeoutError:
                error = DeliveryError("timeout", retryable=True)
            except Exception as exc:
                # A hook bug: retrying the same code path will fail the same way.
                error = DeliveryError("hook_error", retryable=False, detail=type(exc).__name__)
            else:
                self._finish(job, None)
                return

            if not error.retryable:
                if error.disable:
                    self.disabled = True
                    logger.error(
                        "obskit.alerts: %s answered 410 Gone; hook disabled, later alerts are dropped",
                        hook.name,
                    )
                reason = "gone" if error.disable else "redirect" if error.reason == "redirect" else ("permanent_error")
                logger.warning(
                    "obskit.alerts: %s rejected alert %s (%s), not retried: %s",
                    hook.name,
                    delivery.event.id,
                    error.reason,
                    error.detail[:200],
                )
                self._finish(job, reason)
                return
            if attempt >= hook.max_attempts:
                logger.warning(
                    "obskit.alerts: giving up on alert %s to %s after %d attempts (%s)",
                    delivery.event.id,
                    hook.name,
                    attempt,
                    error.reason,
                )
                self._finish(job, "max_attempts")
                return
            delay = backoff_delay(attempt, self._base, self._cap, self._rng)
            if error.retry_after is not None:
                delay = max(delay, min(error.retry_after, self._max_retry_after))
            if time.time() + delay - job.created > self._max_age:
                logger.warning(
                    "obskit.alerts: giving up on alert %s to %s: older than %.0f s (%s)",
                    delivery.event.id,
                    hook.name,
                    self._max_age,
                    error.reason,
                )
                self._finish(job, "max_age")
                return
            self._counters.add("retried")
            logger.info(
                "obskit.alerts: %s failed (%s), attempt %d, retrying in %.2f s",
                hook.name,
                error.reason,
                attempt,
                delay,
            )
            await asyncio.sleep(delay)


def hook_timeout(value: float, name: str) -> float:
    if not value > 0:
        raise ValueError(f"{name}: timeout must be a positive number of seconds, got {value!r}")
    return float(value)


def hook_attempts(value: int, name: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: max_attempts must be an integer >= 1, got {value!r}")
    return value


def check_http_url(url: Any, name: str) -> str:
    """Validate an ``http``/``https`` URL with a host; the error never echoes the (secret) URL itself."""
    if not isinstance(url, str):
        raise ValueError(f"{name}: url must be a string starting with http:// or https://")  # noqa: TRY004
    try:
        parsed = httpx.URL(url)
    except Exception:
        raise ValueError(f"{name}: url is not a valid URL; expected http://host/... or https://host/...") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{name}: url must start with http:// or https:// and name a host")
    return url


def redacted_url(url: str) -> str:
    """Scheme and host only: paths and queries of webhook URLs are often the secret (Slack, Discord)."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}/…"

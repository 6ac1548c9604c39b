"""Delivery against a real local receiver: attempt counts and timing for every failure mode."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import random
import time

import pytest

from obskit.alerts import DeliveryError, Route, Webhook
from obskit.alerts._delivery import backoff_delay, check_response, parse_retry_after
from tests.alerts.conftest import MakeRouter, capture
from tests.alerts.receiver import Hang, Receiver, Reset, Respond, refused_url


class MaxJitter(random.Random):
    """Full jitter pinned to its upper bound, so backoff delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def gaps(receiver: Receiver) -> list[float]:
    at = [r.at for r in receiver.requests]
    return [b - a for a, b in itertools.pairwise(at)]


def test_5xx_is_retried_with_exponential_backoff_and_the_same_id(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Respond(500), Respond(502), Respond(503))
    router = make_router(
        [Route(Webhook(receiver.url, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))],
        backoff_base=0.1,
        backoff_cap=10,
        rng=MaxJitter(),
    )
    capture(router)
    assert asyncio.run(router.flush(5.0))
    requests = receiver.settle()
    assert len(requests) == 4
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    for gap, expected in zip(gaps(receiver), [0.1, 0.2, 0.4], strict=True):
        assert expected <= gap < expected + 0.5
    stats = router.stats()
    assert (stats["delivered"], stats["retried"], stats["dropped"]) == (1, 3, 0)


def test_backoff_is_capped(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(*[Respond(500)] * 4)
    router = make_router([Route(Webhook(receiver.url))], backoff_base=0.1, backoff_cap=0.15, rng=MaxJitter())
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(receiver.settle()) == 5
    assert all(0.1 <= g < 0.6 for g in gaps(receiver))
    assert max(gaps(receiver)[1:]) < 0.6


def test_429_waits_at_least_retry_after_seconds(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Respond(429, {"Retry-After": "1"}))
    router = make_router([Route(Webhook(receiver.url))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(receiver.settle()) == 2
    assert 1.0 <= gaps(receiver)[0] < 2.0


def test_retry_after_as_an_http_date(receiver: Receiver, make_router: MakeRouter) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    receiver.script(Respond(503, {"Retry-After": when}))
    router = make_router([Route(Webhook(receiver.url))])
    capture(router)
    assert asyncio.run(router.flush(6.0))
    assert len(receiver.settle()) == 2
    assert 0.9 <= gaps(receiver)[0] < 3.0  # the date has 1 s resolution


def test_retry_after_is_capped(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Respond(429, {"Retry-After": "3600"}))
    router = make_router([Route(Webhook(receiver.url))], max_retry_after=0.3)
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(receiver.settle()) == 2
    assert 0.3 <= gaps(receiver)[0] < 1.2


def test_retry_after_pauses_the_whole_hook(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Respond(429, {"Retry-After": "1"}))
    router = make_router([Route(Webhook(receiver.url))])
    capture(router, fingerprint="a" * 16)
    receiver.wait_for(1)
    capture(router, fingerprint="b" * 16)
    assert asyncio.run(router.flush(5.0))
    requests = receiver.settle()
    assert [r.json()["fingerprint"][0] for r in requests] == ["a", "a", "b"]
    assert requests[2].at - requests[0].at >= 1.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_are_not_retried(receiver: Receiver, make_router: MakeRouter, status: int) -> None:
    receiver.script(Respond(status, body=b'{"error": "nope"}'))
    router = make_router([Route(Webhook(receiver.url))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(receiver.settle(quiet=0.3)) == 1
    stats = router.stats()
    assert (stats["dropped_permanent_error"], stats["retried"], stats["delivered"]) == (1, 0, 0)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_never_followed(make_router: MakeRouter, status: int) -> None:
    with Receiver() as elsewhere, Receiver(default=Respond(status, {"Location": "/moved"})) as receiver:
        receiver.script(Respond(status, {"Location": elsewhere.url + "/stolen"}))
        router = make_router([Route(Webhook(receiver.url))])
        capture(router)
        assert asyncio.run(router.flush(5.0))
        assert len(receiver.settle(quiet=0.3)) == 1
        assert elsewhere.requests == []
        assert router.stats()["dropped_redirect"] == 1


def test_410_gone_disables_the_hook(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Respond(410))
    router = make_router([Route(Webhook(receiver.url))])
    capture(router, fingerprint="a" * 16)
    assert asyncio.run(router.flush(5.0))
    capture(router, fingerprint="b" * 16)
    assert asyncio.run(router.flush(5.0))
    assert len(receiver.settle(quiet=0.3)) == 1
    stats = router.stats()
    assert (stats["dropped_gone"], stats["dropped_hook_disabled"]) == (1, 1)


def test_connection_refused_is_retried_up_to_max_attempts(make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(refused_url(), max_attempts=4))])
    t0 = time.monotonic()
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert time.monotonic() - t0 < 3.0
    stats = router.stats()
    assert (stats["retried"], stats["dropped_max_attempts"], stats["delivered"]) == (3, 1, 0)


def test_a_hanging_receiver_times_out_and_is_retried(make_router: MakeRouter) -> None:
    with Receiver(default=Hang(10)) as receiver:
        router = make_router([Route(Webhook(receiver.url, timeout=0.3, max_attempts=2))])
        t0 = time.monotonic()
        capture(router)
        assert asyncio.run(router.flush(5.0))
        elapsed = time.monotonic() - t0
        assert len(receiver.requests) == 2
        assert 0.6 <= elapsed < 3.0
        assert router.stats()["dropped_max_attempts"] == 1


def test_a_reset_connection_is_retried(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.script(Reset(), Reset())
    router = make_router([Route(Webhook(receiver.url))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(receiver.settle()) == 3
    assert router.stats()["delivered"] == 1
    assert router.stats()["retried"] == 2


def test_alerts_older_than_max_age_are_dropped(make_router: MakeRouter) -> None:
    with Receiver(default=Respond(500)) as receiver:
        router = make_router(
            [Route(Webhook(receiver.url, max_attempts=100))],
            max_age=0.5,
            backoff_base=0.1,
            backoff_cap=0.1,
            rng=MaxJitter(),
        )
        capture(router)
        assert asyncio.run(router.flush(5.0))
        assert 2 <= len(receiver.requests) <= 6  # fewer if the machine is loaded
        assert router.stats()["dropped_max_age"] == 1


def test_a_dead_or_slow_hook_never_delays_another(make_router: MakeRouter) -> None:
    with Receiver(default=Hang(10)) as slow, Receiver() as fast:
        router = make_router([Route([Webhook(slow.url, timeout=5), Webhook(refused_url()), Webhook(fast.url)])])
        t0 = time.monotonic()
        for i in range(3):
            capture(router, fingerprint=f"{i:016x}")
        # Delayed by the slow hook, the fast one would wait its 5 s timeout; the margin absorbs a busy CI box.
        fast.wait_for(3, timeout=4.0)
        assert time.monotonic() - t0 < 4.0
        slow.wait_for(1)


def test_default_timeout_and_attempts() -> None:
    hook = Webhook("https://example.com/hook")
    assert (hook.timeout, hook.max_attempts) == (10.0, 8)
    with pytest.raises(ValueError, match="timeout must be a positive"):
        Webhook("https://example.com/hook", timeout=0)
    with pytest.raises(ValueError, match="max_attempts must be an integer >= 1"):
        Webhook("https://example.com/hook", max_attempts=0)


# --- units ---------------------------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_delay_is_full_jitter_within_the_capped_exponential() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        bound = min(30.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # spread over the whole range, not clustered
    assert backoff_delay(10_000, 1.0, 60.0, MaxJitter()) == 60.0


@pytest.mark.parametrize(
    ("status", "retryable", "reason"),
    [
        (500, True, "http_500"),
        (503, True, "http_503"),
        (429, True, "http_429"),
        (400, False, "http_400"),
        (404, False, "http_404"),
        (302, False, "redirect"),
        (410, False, "gone"),
    ],
)
def test_check_response_classification(status: int, retryable: bool, reason: str) -> None:
    with pytest.raises(DeliveryError) as info:
        check_response(status, {"retry-after": "7"}, b"body")
    assert (info.value.retryable, info.value.reason) == (retryable, reason)
    if retryable:
        assert info.value.retry_after == 7.0


def test_check_response_accepts_2xx() -> None:
    for status in (200, 201, 202, 204):
        check_response(status, {}, b"")

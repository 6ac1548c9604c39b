"""Capture, dedup windows, follow-ups, routing, rate limits, bounds, flush and close."""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from typing import Any

import pytest

from obskit.alerts import AlertHook, AlertRouter, Delivery, DeliveryError, Route, Webhook
from obskit.alerts._router import TokenBucket, add_listener, parse_rate_limit, remove_listener
from obskit.schema import validate_alert
from tests.alerts.conftest import FP, TRACE, MakeRouter, capture
from tests.alerts.receiver import Hang, Receiver


def test_a_burst_of_one_bug_is_one_delivery_with_the_whole_count(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url))], dedup_window=60, group_wait=0.3)
    for _ in range(1000):
        capture(router)
    assert asyncio.run(router.flush(5.0)) is True
    requests = receiver.settle()
    assert len(requests) == 1
    event = requests[0].json()
    assert event["count"] == 1000
    assert validate_alert(event) == []
    stats = router.stats()
    assert (stats["enqueued"], stats["deduplicated"], stats["delivered"], stats["dropped"]) == (1, 999, 1, 0)


def test_repeats_after_the_first_delivery_are_sent_once_as_a_follow_up_when_the_window_ends(
    receiver: Receiver, make_router: MakeRouter
) -> None:
    router = make_router([Route(Webhook(receiver.url))], dedup_window=0.5)
    capture(router)
    first = receiver.wait_for(1)[0].json()
    for _ in range(999):
        capture(router, trace_id="a" * 32, path="/checkout/43")
    second = receiver.wait_for(2, timeout=3.0)[1].json()
    # The follow-up reports the latest occurrence's request and trace.
    assert (second["trace_id"], second["request"]["path"]) == ("a" * 32, "/checkout/43")
    assert (first["trace_id"], first["request"]["path"]) == (TRACE, "/checkout/42")
    assert first["count"] == 1
    assert second["count"] == 1000
    assert second["id"] != first["id"]
    assert second["first_seen"] == first["first_seen"]
    assert second["last_seen"] >= first["last_seen"]
    # Quiet for a whole window: no further follow-up, and the window closes.
    time.sleep(1.2)
    assert len(receiver.requests) == 2
    capture(router)
    third = receiver.wait_for(3, timeout=3.0)[2].json()
    assert third["count"] == 1
    assert third["first_seen"] > second["last_seen"]


def test_different_bugs_alert_separately(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url))], dedup_window=60)
    for i in range(5):
        for _ in range(20):
            capture(router, fingerprint=f"{i:016x}")
    assert asyncio.run(router.flush(5.0))
    fingerprints = sorted(r.json()["fingerprint"] for r in receiver.settle())
    assert fingerprints == [f"{i:016x}" for i in range(5)]


def test_the_first_capture_is_delivered_when_its_wake_up_runs_before_the_thread_is_set_up(
    receiver: Receiver, make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first capture starts the delivery thread and queues its wake-up from the request's thread; a
    # delivery thread descheduled for a moment runs that wake-up before its own setup (seen under load:
    # the alert was counted as an internal error and never sent). Forced here by delaying the thread.
    started = AlertRouter._thread_main

    def late(self: AlertRouter, loop: asyncio.AbstractEventLoop) -> None:
        time.sleep(0.2)
        started(self, loop)

    monkeypatch.setattr(AlertRouter, "_thread_main", late)
    router = make_router([Route(Webhook(receiver.url))])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(receiver.wait_for(1)) == 1
    stats = router.stats()
    assert (stats["delivered"], stats["internal_error"]) == (1, 0)


def test_captures_from_many_threads_are_all_counted(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url))], dedup_window=60, group_wait=0.5)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(500):
            capture(router)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert asyncio.run(router.flush(5.0))
    requests = receiver.settle()
    assert [r.json()["count"] for r in requests] == [4000]


def test_capture_stays_fast_while_the_receiver_hangs(make_router: MakeRouter) -> None:
    with Receiver(default=Hang(10)) as hanging:
        router = make_router([Route(Webhook(hanging.url, timeout=5))], dedup_window=60)
        capture(router)  # first occurrence: starts the delivery, which now hangs
        hanging.wait_for(1)
        repeat: list[float] = []
        new: list[float] = []
        for i in range(2000):
            t0 = time.perf_counter()
            capture(router)
            repeat.append(time.perf_counter() - t0)
            if i % 20 == 0:
                t0 = time.perf_counter()
                capture(router, fingerprint=f"{i:016x}")
                new.append(time.perf_counter() - t0)
        # Loose bounds: the real figures are in bench/alert_throughput.py.
        assert statistics.median(repeat) < 50e-6
        assert statistics.median(new) < 500e-6
        assert max(repeat) < 0.5  # a descheduled thread, not a wait on delivery


def test_capture_never_raises_and_counts_internal_errors(make_router: MakeRouter) -> None:
    router = make_router([])
    router.capture(
        fingerprint=None,
        error_type=None,
        error_message=None,
        severity=None,
        title=None,  # type: ignore[arg-type]
        trace_id=None,
        method=None,
        path=None,
    )
    assert router.stats()["dropped_internal_error"] == 1
    assert router.stats()["internal_error"] == 1


def test_exception_reference_is_released_after_delivery(receiver: Receiver, make_router: MakeRouter) -> None:
    import gc
    import weakref

    class Boom(Exception):
        pass

    router = make_router([Route(Webhook(receiver.url))], dedup_window=60)
    exc = Boom("x")
    ref = weakref.ref(exc)
    router.capture(
        fingerprint=FP,
        error_type="Boom",
        error_message="x",
        severity="error",
        title="Boom",
        trace_id=None,
        method=None,
        path=None,
        exc=exc,
    )
    assert asyncio.run(router.flush(5.0))
    del exc
    gc.collect()
    assert ref() is None


def test_listeners_see_every_routing_decision_with_its_count(make_router: MakeRouter) -> None:
    seen: list[dict[str, Any]] = []
    add_listener(seen.append)
    try:
        router = make_router([], dedup_window=60, group_wait=0.2)
        for _ in range(3):
            capture(router)
        capture(
            router,
            fingerprint="fedcba9876543210",
            severity="critical",
            trace_id="0" * 32,
            method=None,
            path=None,
            code="boom",
            known=True,
        )
        assert asyncio.run(router.flush(5.0))
    finally:
        remove_listener(seen.append)
    by_fp = {e["fingerprint"]: e for e in seen}
    assert len(seen) == 2
    assert by_fp[FP]["count"] == 3
    assert by_fp[FP]["trace_id"] == TRACE
    other = by_fp["fedcba9876543210"]
    assert (other["trace_id"], other["request"], other["code"], other["known"]) == (None, None, "boom", True)
    assert all(validate_alert(e) == [] for e in seen)
    assert router.stats()["unrouted"] == 2


def test_a_failing_listener_does_not_break_routing(receiver: Receiver, make_router: MakeRouter) -> None:
    def bad(event: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    add_listener(bad)
    try:
        router = make_router([Route(Webhook(receiver.url))])
        capture(router)
        assert asyncio.run(router.flush(5.0))
    finally:
        remove_listener(bad)
    assert len(receiver.settle()) == 1


def test_messages_are_redacted_like_logs(make_router: MakeRouter) -> None:
    seen: list[dict[str, Any]] = []
    add_listener(seen.append)
    try:
        router = make_router([])
        capture(router, error_message="login failed password=hunter2 for bob", title="password=hunter2")
        assert asyncio.run(router.flush(5.0))
    finally:
        remove_listener(seen.append)
    assert "hunter2" not in seen[0]["error"]["message"]
    assert "hunter2" not in seen[0]["title"]
    assert seen[0]["error"]["message"].startswith("login failed password=")


# --- routing -------------------------------------------------------------------------------------------


def _route_and_collect(make_router: MakeRouter, match: Any, **fields: Any) -> int:
    with Receiver() as r:
        router = make_router([Route(Webhook(r.url), match=match)])
        capture(router, **fields)
        assert asyncio.run(router.flush(5.0))
        return len(r.settle(quiet=0.05))


@pytest.mark.parametrize(
    ("match", "fields", "expected"),
    [
        ({"severity": "error"}, {}, 1),
        ({"severity": ["critical", "warning"]}, {}, 0),
        ({"error_type": "ZeroDivisionError"}, {}, 1),
        ({"error_type": "builtins.ZeroDivisionError"}, {}, 1),
        ({"error_type": "KeyError"}, {}, 0),
        ({"code": "payment_failed"}, {"code": "payment_failed"}, 1),
        ({"code": "payment_failed"}, {}, 0),
        ({"path": "/checkout"}, {}, 1),
        ({"path": "/admin"}, {}, 0),
        ({"path": "/checkout/*"}, {}, 1),
        ({"path": "/*/4?"}, {}, 1),
        ({"path": "/checkout"}, {"path": None, "method": None}, 0),
        ({"environment": "test"}, {}, 1),
        ({"environment": "prod"}, {}, 0),
        ({"service": "checkout"}, {}, 1),
        ({"known": False}, {}, 1),
        ({"severity": "error", "path": "/admin"}, {}, 0),
        (lambda e: e.count == 1 and e.path.endswith("42"), {}, 1),
        (None, {}, 1),
    ],
)
def test_routes_match_on_event_fields(make_router: MakeRouter, match: Any, fields: Any, expected: int) -> None:
    assert _route_and_collect(make_router, match, **fields) == expected


def test_an_alert_goes_to_every_matching_route_but_once_per_hook(make_router: MakeRouter) -> None:
    with Receiver() as a, Receiver() as b:
        hook_a = Webhook(a.url)
        router = make_router(
            [
                Route([hook_a], match={"severity": "error"}),
                Route([hook_a, Webhook(b.url)]),
                Route([Webhook(b.url + "/never")], match={"severity": "info"}),
            ]
        )
        capture(router)
        assert asyncio.run(router.flush(5.0))
        assert len(a.settle(quiet=0.05)) == 1
        assert [r.path for r in b.settle(quiet=0.05)] == ["/"]


def test_a_match_callable_that_raises_skips_its_route(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router(
        [Route(Webhook(receiver.url + "/bad"), match=lambda e: 1 / 0 > 0), Route(Webhook(receiver.url + "/good"))]
    )
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert [r.path for r in receiver.settle(quiet=0.05)] == ["/good"]
    assert router.stats()["internal_error"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match": {"sevrity": "error"}}, "unknown match key(s) ['sevrity']; allowed: severity, error_type"),
        ({"match": {"severity": "fatal"}}, "allowed: critical, error, warning, info"),
        ({"match": {"path": 3}}, "must be a string or a non-empty collection of strings"),
        ({"match": {"known": "yes"}}, "must be True or False"),
        ({"match": 42}, "match must be None, a mapping"),
        ({"rate_limit": "10/minute"}, "rate_limit must look like 'N/s', 'N/min' or 'N/h'"),
        ({"rate_limit": "0/s"}, "N a positive integer"),
        ({"rate_limit": "ten/h"}, "'N/s', 'N/min' or 'N/h'"),
    ],
)
def test_bad_route_arguments_raise_value_error_saying_what_is_allowed(kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        Route([Webhook("http://127.0.0.1:1")], **kwargs)
    assert message in str(info.value)


def test_route_needs_hooks() -> None:
    with pytest.raises(ValueError, match="at least one hook"):
        Route([])
    with pytest.raises(ValueError, match="is not a hook"):
        Route(["http://example.com"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dedup_window": -1}, "dedup_window must be a positive number of seconds"),
        ({"dedup_window": 0}, "dedup_window must be a positive"),
        ({"queue_size": 0}, "queue_size must be an integer >= 1"),
        ({"group_wait": -0.1}, "group_wait must be a number of seconds >= 0"),
        ({"backoff_base": float("nan")}, "backoff_base must be a positive"),
        ({"max_fingerprints": 1.5}, "max_fingerprints must be an integer"),
    ],
)
def test_bad_router_arguments_raise_value_error(kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertRouter([], **kwargs)


def test_routes_may_be_any_iterable_of_routes() -> None:
    router = AlertRouter(Route(Webhook("http://127.0.0.1:1")) for _ in range(2))
    assert len(router.routes) == 2


def test_routes_must_be_route_objects() -> None:
    with pytest.raises(ValueError, match=r"sequence of obskit\.alerts\.Route"):
        AlertRouter([Webhook("http://127.0.0.1:1")])  # type: ignore[list-item]


def test_rate_limit_strings() -> None:
    assert parse_rate_limit("10/s") == (10, 1.0)
    assert parse_rate_limit(" 3 / min ") == (3, 60.0)
    assert parse_rate_limit("5/h") == (5, 3600.0)


def test_token_bucket_refills_continuously_on_its_clock() -> None:
    now = [100.0]
    bucket = TokenBucket(2, 60.0, clock=lambda: now[0])
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]
    assert bucket.wait_time() == pytest.approx(30.0)
    now[0] += 29.0
    assert bucket.take() is False
    now[0] += 1.0
    assert bucket.take() is True
    now[0] += 10_000
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]


def test_rate_limited_alerts_are_coalesced_and_sent_when_tokens_return(
    receiver: Receiver, make_router: MakeRouter
) -> None:
    router = make_router([Route(Webhook(receiver.url), rate_limit="2/s")], dedup_window=0.2)
    t0 = time.monotonic()
    for i in range(4):  # 4 bugs, 2 tokens: 2 go now, 2 are held
        capture(router, fingerprint=f"{i:016x}")
    receiver.wait_for(2)
    time.sleep(0.1)
    assert len(receiver.requests) == 2
    # A repeat of a held bug after its window: its follow-up replaces the held event (coalesced).
    time.sleep(0.2)
    capture(router, fingerprint=f"{2:016x}")
    requests = receiver.wait_for(4, timeout=5.0)
    assert asyncio.run(router.flush(5.0))
    requests = receiver.settle()
    assert len(requests) == 4
    assert requests[3].at - t0 >= 0.9  # the 2nd pair waits for tokens: 1 per 0.5 s
    stats = router.stats()
    assert stats["rate_limited"] == 2
    assert stats["dropped"] == 0
    assert sorted(r.json()["fingerprint"] for r in requests) == [f"{i:016x}" for i in range(4)]


# --- bounds --------------------------------------------------------------------------------------------


def test_the_queue_is_bounded_and_overflow_is_counted(make_router: MakeRouter) -> None:
    router = make_router([], queue_size=5, group_wait=30)
    for i in range(8):
        capture(router, fingerprint=f"{i:016x}")
    capture(router, fingerprint=f"{0:016x}")  # a repeat never needs a slot
    stats = router.stats()
    assert (stats["enqueued"], stats["dropped_queue_full"], stats["deduplicated"]) == (5, 3, 1)
    assert stats["dropped"] == 3


def test_the_dedup_table_is_an_lru(make_router: MakeRouter) -> None:
    router = make_router([], max_fingerprints=3, dedup_window=60)
    for i in range(4):
        capture(router, fingerprint=f"{i:016x}")
    assert list(router._table) == [f"{i:016x}" for i in (1, 2, 3)]
    capture(router, fingerprint=f"{0:016x}")  # evicted: a new alert again
    assert router.stats()["enqueued"] == 5


# --- flush and close -----------------------------------------------------------------------------------


def test_flush_returns_false_when_a_delivery_is_still_pending(make_router: MakeRouter) -> None:
    with Receiver(default=Hang(5)) as hanging:
        router = make_router([Route(Webhook(hanging.url, timeout=3))])
        capture(router)
        t0 = time.monotonic()
        assert asyncio.run(router.flush(0.3)) is False
        assert 0.3 <= time.monotonic() - t0 < 3.0


def test_aclose_counts_leftovers_as_shutdown_drops(make_router: MakeRouter) -> None:
    with Receiver(default=Hang(5)) as hanging:
        router = make_router([Route(Webhook(hanging.url, timeout=3))])
        capture(router)
        capture(router, fingerprint="1" * 16)
        t0 = time.monotonic()

        async def main() -> bool:
            return await router.aclose(timeout=0.3)

        assert asyncio.run(main()) is False
        assert time.monotonic() - t0 < 3.0
        stats = router.stats()
        assert stats["dropped_shutdown"] == 2
        capture(router, fingerprint="2" * 16)
        assert router.stats()["dropped_closed"] == 1


def test_flush_on_an_unstarted_router_is_immediate() -> None:
    router = AlertRouter([])
    assert asyncio.run(router.flush(1.0)) is True
    assert router.close(1.0) is True


def test_flush_works_from_the_application_loop_and_from_threads(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url))])

    async def app() -> bool:
        capture(router)
        return await router.flush(5.0)

    assert asyncio.run(app())
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(asyncio.run(router.flush(5.0))))
    t.start()
    t.join(10)
    assert results == [True]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_delivers_with_its_own_thread(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url))], dedup_window=60)
    capture(router, fingerprint="a" * 16)  # the parent's delivery thread is now running
    assert asyncio.run(router.flush(5.0))
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            capture(router, fingerprint="a" * 16)  # the child starts with an empty dedup table
            ok = asyncio.run(router.flush(5.0))
            stats = router.stats()
            code = 0 if ok and (stats["delivered"], stats["enqueued"]) == (1, 1) else 2
            router.close(2.0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [r.json()["fingerprint"] for r in receiver.settle()] == ["a" * 16, "a" * 16]
    assert router.stats()["delivered"] == 1  # the parent's counters are its own


class Recording:
    """A user-written hook following the AlertHook protocol."""

    name = "recording"
    key = "recording"
    timeout = 1.0
    max_attempts = 3
    wants_exception = False

    def __init__(self, fail_with: list[BaseException]) -> None:
        self.fail_with = fail_with
        self.attempts: list[tuple[str, int]] = []

    async def send(self, delivery: Delivery) -> None:
        self.attempts.append((delivery.event.id, delivery.attempt))
        if self.fail_with:
            raise self.fail_with.pop(0)


def test_a_custom_hook_gets_retries_by_its_errors(make_router: MakeRouter) -> None:
    hook = Recording([DeliveryError("busy", retryable=True), DeliveryError("busy", retryable=True, retry_after=0.2)])
    assert isinstance(hook, AlertHook)
    router = make_router([Route(hook)])
    t0 = time.monotonic()
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert [a for _, a in hook.attempts] == [1, 2, 3]
    assert len({i for i, _ in hook.attempts}) == 1
    assert time.monotonic() - t0 >= 0.2
    assert router.stats()["delivered"] == 1


def test_a_hook_that_crashes_is_a_counted_permanent_failure(make_router: MakeRouter) -> None:
    hook = Recording([KeyError("bug in the hook")])
    router = make_router([Route(hook)])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert len(hook.attempts) == 1
    assert router.stats()["dropped_permanent_error"] == 1


def test_rate_limited_alerts_still_held_at_close_are_counted(make_router: MakeRouter) -> None:
    hook = Recording([])
    router = make_router([Route(hook, rate_limit="1/h")])
    capture(router, fingerprint="a" * 16)
    capture(router, fingerprint="b" * 16)
    assert asyncio.run(router.flush(0.3)) is False  # "b" waits for a token an hour away
    assert router.close(2.0) is False
    stats = router.stats()
    assert (stats["delivered"], stats["rate_limited"], stats["dropped_shutdown"]) == (1, 1, 1)


def test_an_undecodable_file_name_in_the_message_and_a_huge_path_still_alert(
    receiver: Receiver, make_router: MakeRouter
) -> None:
    from obskit.alerts import PagerDuty, Slack

    name = b"invoice-\xe9.pdf".decode("utf-8", "surrogateescape")  # os.listdir() on a non-UTF-8 file system
    hooks = [
        Webhook(receiver.url + "/wh"),
        Slack(receiver.url + "/slack"),
        PagerDuty("k" * 32, url=receiver.url + "/pd"),
    ]
    router = make_router([Route(hooks)])
    capture(
        router,
        error_message=f"cannot parse {name}",
        title=f"ValueError: cannot parse {name}",
        path="/" + "a" * 1_000_000,
    )
    assert asyncio.run(router.flush(5.0))
    assert sorted(r.path for r in receiver.requests) == ["/pd", "/slack", "/wh"]
    event = next(r for r in receiver.requests if r.path == "/wh").json()
    assert validate_alert(event) == []
    assert event["error"]["message"] == "cannot parse invoice-\\udce9.pdf"  # escaped, not a reason to drop it
    assert len(event["request"]["path"]) <= 512
    assert router.stats()["delivered"] == 3

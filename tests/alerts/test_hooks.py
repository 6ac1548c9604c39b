"""Each hook's request, checked field by field against its receiver's documented API."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gzip
import hashlib
import hmac
import logging
import re
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from obskit.alerts import (
    Alertmanager,
    AlertRouter,
    PagerDuty,
    Route,
    Sentry,
    Slack,
    Twilio,
    Webhook,
    WebhookVerificationError,
    verify_webhook,
)
from obskit.alerts._twilio import _GSM7_BASIC, _GSM7_EXTENDED, gsm7_sms
from obskit.schema import validate_alert
from tests.alerts.conftest import FP, TRACE, MakeRouter, capture
from tests.alerts.receiver import Receiver, Recorded, Respond, refused_url

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def deliver(router: AlertRouter, receiver: Receiver, n: int = 1, **fields: Any) -> list[Recorded]:
    capture(router, **fields)
    assert asyncio.run(router.flush(5.0))
    requests = receiver.settle(quiet=0.05)
    assert len(requests) == n
    return requests


# --- Webhook (Standard Webhooks) -----------------------------------------------------------------------


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Standard Webhooks v1.0.0, written from the spec text rather than from obskit's helper.

    "The content to sign is composed by concatenating the id, timestamp and payload, separated by the full-stop
    character (.)"; the key is the base64-decoded part after the ``whsec_`` prefix; the signature header is a
    space-delimited list of ``v1,<base64 HMAC-SHA256>``; timestamps more than 5 minutes off are rejected.
    """
    key = base64.b64decode(secret.split("_", 1)[1])
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert "." not in msg_id
    assert abs(time.time() - int(timestamp)) <= 5 * 60
    to_sign = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.digest(key, to_sign, "sha256")).decode()
    versions = [sig.split(",", 1) for sig in headers["webhook-signature"].split(" ")]
    assert ["v1", expected] in versions


def test_webhook_posts_the_spec_event_signed_per_standard_webhooks(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url + "/hooks/obskit", secret=SECRET))])
    (request,) = deliver(router, receiver, code="boom")
    assert (request.method, request.path) == ("POST", "/hooks/obskit")
    assert request.headers["content-type"] == "application/json"
    event = request.json()
    assert request.headers["webhook-id"] == event["id"]
    spec_verify(SECRET, request.headers, request.body)
    verify_webhook(SECRET, request.headers, request.body)
    assert validate_alert(event) == []
    assert set(event) == {
        "id",
        "fingerprint",
        "service",
        "environment",
        "severity",
        "title",
        "error",
        "trace_id",
        "request",
        "first_seen",
        "last_seen",
        "count",
        "timestamp",
        "code",
    }
    assert event["fingerprint"] == FP
    assert (event["service"], event["environment"], event["severity"]) == ("checkout", "test", "error")
    assert event["error"] == {"type": "builtins.ZeroDivisionError", "message": "division by zero"}
    assert event["request"] == {"method": "GET", "path": "/checkout/42"}
    assert event["trace_id"] == TRACE
    assert event["count"] == 1
    assert event["code"] == "boom"
    for key in ("first_seen", "last_seen", "timestamp"):
        assert RFC3339.match(event[key])


def test_webhook_signature_verifies_with_the_standardwebhooks_reference_library(
    receiver: Receiver, make_router: MakeRouter
) -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    router = make_router([Route(Webhook(receiver.url, secret=SECRET))])
    (request,) = deliver(router, receiver)
    payload = standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)
    assert payload["fingerprint"] == FP


def test_every_retry_keeps_the_id_and_body_and_signs_its_own_timestamp(
    receiver: Receiver, make_router: MakeRouter
) -> None:
    receiver.script(Respond(503), Respond(503))
    router = make_router([Route(Webhook(receiver.url, secret=SECRET))])
    requests = deliver(router, receiver, n=3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    for r in requests:
        spec_verify(SECRET, r.headers, r.body)


def test_unsigned_webhook_still_sends_id_and_timestamp(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(Webhook(receiver.url))])
    (request,) = deliver(router, receiver)
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] == request.json()["id"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5


def test_verify_webhook_rejects_tampering_staleness_and_missing_headers() -> None:
    body = b'{"a": 1}'
    ts = str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    good = "v1," + base64.b64encode(hmac.new(key, f"m1.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    headers = {"Webhook-Id": "m1", "Webhook-Timestamp": ts, "Webhook-Signature": f"v1,bogus {good}"}
    verify_webhook(SECRET, headers, body)  # any key case, any matching signature of the list
    with pytest.raises(WebhookVerificationError, match="no matching v1 signature"):
        verify_webhook(SECRET, headers, body + b" ")
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(SECRET, headers, body, now=time.time() + 301)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_webhook(SECRET, {"webhook-id": "m1"}, body)
    with pytest.raises(WebhookVerificationError, match="not an integer"):
        verify_webhook(SECRET, {**headers, "Webhook-Timestamp": "soon"}, body)
    with pytest.raises(ValueError, match="whsec_"):
        verify_webhook("whsec_!!!", headers, body)


@pytest.mark.parametrize("url", ["ftp://example.com/SECRET", "example.com/SECRET", "", "http://", 42])
def test_hooks_reject_non_http_urls_without_echoing_them(url: Any) -> None:
    for make in (
        Webhook,
        Slack,
        lambda u: PagerDuty("key", url=u),
        Alertmanager,
        lambda u: Twilio("AC1", "tok", "+15005550006", "+14155550100", base_url=u),
    ):
        with pytest.raises(ValueError, match="http") as info:
            make(url)
        assert "SECRET" not in str(info.value)


def test_webhook_rejects_a_malformed_secret() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        Webhook("https://example.com/h", secret="whsec_not base64!")
    for size in (1, 23, 65):  # Standard Webhooks: 24 to 64 bytes
        with pytest.raises(ValueError, match="24 to 64 bytes"):
            Webhook("https://example.com/h", secret="whsec_" + base64.b64encode(b"k" * size).decode())


@pytest.mark.parametrize("to", ["4155550100", "+1 (415) 555-0100", "+", "call-me", "+1234567890123456", "+0415"])
def test_twilio_refuses_a_recipient_that_is_not_e164(to: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        Twilio("AC1", "tok", "+15005550006", to)


def test_twilio_takes_an_alphanumeric_sender_id() -> None:
    assert Twilio("AC1", "tok", "OBSKIT", "+14155550100").from_ == "OBSKIT"
    with pytest.raises(ValueError, match="from_"):
        Twilio("AC1", "tok", "TOO LONG SENDER", "+14155550100")


# --- PagerDuty Events API v2 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", "critical"),
        ("error", "error"),
        ("warning", "warning"),
        ("info", "info"),
        ("fatal", "critical"),
        ("bogus", "error"),
    ],
)
def test_pagerduty_trigger_event(receiver: Receiver, make_router: MakeRouter, severity: str, expected: str) -> None:
    receiver.default = Respond(
        202, {"content-type": "application/json"}, b'{"status":"success","message":"Event processed","dedup_key":"x"}'
    )
    hook = PagerDuty("R0UT1NGKEY0123456789abcdef012345", url=receiver.url + "/v2/enqueue", source="web-1")
    router = make_router([Route(hook)])
    (request,) = deliver(router, receiver, severity=severity)
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert set(body) == {"routing_key", "event_action", "dedup_key", "payload", "client"}
    assert body["routing_key"] == "R0UT1NGKEY0123456789abcdef012345"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == FP
    payload = body["payload"]
    assert payload["summary"] == "[checkout] ZeroDivisionError: division by zero"
    assert payload["source"] == "web-1"
    assert payload["severity"] == expected
    assert RFC3339.match(payload["timestamp"])
    assert (payload["component"], payload["group"], payload["class"]) == (
        "checkout",
        "test",
        "builtins.ZeroDivisionError",
    )
    details = payload["custom_details"]
    assert (details["fingerprint"], details["count"], details["trace_id"]) == (FP, 1, TRACE)
    assert details["request_path"] == "/checkout/42"
    assert router.stats()["delivered"] == 1


def test_pagerduty_summary_and_body_stay_within_limits(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(PagerDuty("k" * 32, url=receiver.url))])
    (request,) = deliver(router, receiver, title="T" * 5000, error_message="M" * 100_000)
    assert len(request.json()["payload"]["summary"]) <= 1024
    assert len(request.body) < 512 * 1024


def test_pagerduty_follow_ups_keep_the_dedup_key(receiver: Receiver, make_router: MakeRouter) -> None:
    router = make_router([Route(PagerDuty("k" * 32, url=receiver.url))], dedup_window=0.3)
    capture(router)
    receiver.wait_for(1)
    capture(router)
    requests = receiver.wait_for(2, timeout=3.0)
    assert [r.json()["dedup_key"] for r in requests] == [FP, FP]
    assert requests[1].json()["payload"]["custom_details"]["count"] == 2
    assert requests[1].json()["payload"]["summary"].endswith("(2 occurrences)")


# --- Slack ---------------------------------------------------------------------------------------------


def test_slack_message_has_text_and_blocks_within_limits(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.default = Respond(200, body=b"ok")
    router = make_router([Route(Slack(receiver.url + "/services/T000/B000/XXXX"))])
    (request,) = deliver(router, receiver, title="x" * 400, error_message="<script>&" + "y" * 5000)
    assert request.path == "/services/T000/B000/XXXX"
    assert request.headers["content-type"] == "application/json"
    msg = request.json()
    assert set(msg) == {"text", "blocks"}
    assert msg["text"].startswith(":red_circle: [error] checkout · test: ")
    assert len(msg["text"]) <= 3000
    blocks = msg["blocks"]
    assert len(blocks) <= 50
    header, fields, code, context = blocks
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= 150
    assert len(fields["fields"]) <= 10
    assert all(len(f["text"]) <= 2000 for f in fields["fields"])
    assert {f["text"].split("\n")[0] for f in fields["fields"]} == {
        "*Service*",
        "*Environment*",
        "*Severity*",
        "*Occurrences*",
        "*Request*",
        "*Trace id*",
    }
    assert len(code["text"]["text"]) <= 3000
    assert "&lt;script&gt;&amp;" in code["text"]["text"]
    assert "<script>" not in request.body.decode()
    assert FP in context["elements"][0]["text"]


# --- Twilio --------------------------------------------------------------------------------------------


def test_twilio_sends_one_form_encoded_gsm7_segment_with_basic_auth(
    receiver: Receiver, make_router: MakeRouter
) -> None:
    receiver.default = Respond(201, {"content-type": "application/json"}, b'{"sid": "SM1", "status": "queued"}')
    hook = Twilio("AC0123456789abcdef", "s3cr3t-token", "+15005550006", "+14155550100", base_url=receiver.url)
    router = make_router([Route(hook)])
    (request,) = deliver(router, receiver, title="Ünïcödé 🔥 title " + "z" * 300)
    assert request.path == "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    scheme, _, creds = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(creds).decode() == "AC0123456789abcdef:s3cr3t-token"
    form = urllib.parse.parse_qs(request.body.decode(), strict_parsing=True)
    assert set(form) == {"To", "From", "Body"}
    assert (form["To"], form["From"]) == (["+14155550100"], ["+15005550006"])
    body = form["Body"][0]
    assert body.startswith("[ERROR] checkout/test: Ün?cödé ? title zzz")  # GSM-7 has Ü, ö, é; not ï or 🔥
    assert "🔥" not in body
    assert sum(2 if c in _GSM7_EXTENDED else 1 for c in body) <= 160
    assert all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in body)
    assert router.stats()["delivered"] == 1


def test_gsm7_sms() -> None:
    assert gsm7_sms("hello\n  world") == "hello world"
    assert gsm7_sms("{x}") == "{x}"
    long = gsm7_sms("[" * 100)
    assert long.endswith("...")
    assert sum(2 if c in _GSM7_EXTENDED else 1 for c in long) <= 160
    assert gsm7_sms("a" * 160) == "a" * 160
    assert len(gsm7_sms("a" * 161)) == 160


# --- Alertmanager --------------------------------------------------------------------------------------


def test_alertmanager_gets_the_alert_on_every_url(make_router: MakeRouter) -> None:
    with Receiver() as am1, Receiver() as am2:
        router = make_router([Route(Alertmanager([am1.url, am2.url + "/"]))], dedup_window=100)
        capture(router)
        assert asyncio.run(router.flush(5.0))
        for am in (am1, am2):
            (request,) = am.settle(quiet=0.05)
            assert (request.method, request.path) == ("POST", "/api/v2/alerts")
            assert request.headers["content-type"] == "application/json"
            (alert,) = request.json()
            assert alert["labels"] == {
                "alertname": "ObskitUnhandledException",
                "service": "checkout",
                "environment": "test",
                "severity": "error",
                "fingerprint": FP,
                "error_type": "builtins.ZeroDivisionError",
            }
            annotations = alert["annotations"]
            assert all(NAME.match(k) for k in [*alert["labels"], *annotations])
            assert all(isinstance(v, str) and v for v in [*alert["labels"].values(), *annotations.values()])
            assert annotations["summary"] == "ZeroDivisionError: division by zero"
            assert (annotations["trace_id"], annotations["count"]) == (TRACE, "1")
            assert (annotations["request_method"], annotations["request_path"]) == ("GET", "/checkout/42")
            starts = dt.datetime.fromisoformat(alert["startsAt"])
            ends = dt.datetime.fromisoformat(alert["endsAt"])
            assert alert["startsAt"] == annotations["first_seen"]
            last = dt.datetime.fromisoformat(annotations["last_seen"])
            assert ends - last >= dt.timedelta(seconds=199.9)  # 2 x dedup_window, see _alertmanager.py
            assert starts < ends


def test_one_alertmanager_down_does_not_stop_the_other(make_router: MakeRouter) -> None:
    with Receiver() as am:
        router = make_router([Route(Alertmanager([refused_url(), am.url]))])
        capture(router)
        assert asyncio.run(router.flush(5.0))
        assert len(am.settle(quiet=0.05)) == 1
        stats = router.stats()
        assert (stats["delivered"], stats["dropped_max_attempts"]) == (1, 1)


def test_alertmanager_follow_ups_re_post_the_same_labels_with_a_later_end(
    receiver: Receiver, make_router: MakeRouter
) -> None:
    router = make_router([Route(Alertmanager(receiver.url, resolve_after=30))], dedup_window=0.3)
    capture(router)
    receiver.wait_for(1)
    capture(router)
    first, second = (r.json()[0] for r in receiver.wait_for(2, timeout=3.0))
    assert first["labels"] == second["labels"]
    assert second["annotations"]["count"] == "2"
    assert second["endsAt"] >= first["endsAt"]


def test_alertmanager_400_is_not_retried(receiver: Receiver, make_router: MakeRouter) -> None:
    receiver.default = Respond(400, body=b'"invalid label set"')
    router = make_router([Route(Alertmanager(receiver.url))])
    deliver(router, receiver)
    assert router.stats()["dropped_permanent_error"] == 1


# --- Sentry (the real sentry-sdk, over HTTP to a local receiver) ---------------------------------------


def parse_envelope(request: Recorded) -> list[tuple[dict[str, Any], Any]]:
    raw = request.body
    if request.headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    assert request.headers.get("content-encoding") in (None, "gzip"), "brotli is not installed here"
    _, _, rest = raw.partition(b"\n")
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = orjson.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, orjson.loads(payload) if payload else None))
    return items


def sentry_events(receiver: Receiver) -> list[dict[str, Any]]:
    events = []
    for request in receiver.settle(quiet=0.1):
        assert request.path == "/api/1/envelope/"
        events += [payload for header, payload in parse_envelope(request) if header.get("type") == "event"]
    return events


def raise_and_capture(router: AlertRouter) -> None:
    def handler(order_id: int) -> float:
        card_number = "4111111111111111"  # a local that must never reach Sentry
        return len(card_number) / (order_id - order_id)

    try:
        handler(42)
    except ZeroDivisionError as exc:
        router.capture(
            fingerprint=FP,
            error_type="builtins.ZeroDivisionError",
            error_message=str(exc),
            severity="critical",
            title="ZeroDivisionError: division by zero",
            trace_id=TRACE,
            method="POST",
            path="/orders",
            exc=exc,
        )


@pytest.fixture
def sentry_receiver() -> Iterator[Receiver]:
    pytest.importorskip("sentry_sdk")
    with Receiver() as r:
        yield r


def check_sentry_event(event: dict[str, Any]) -> None:
    (exc,) = event["exception"]["values"]
    assert (exc["type"], exc["value"]) == ("ZeroDivisionError", "division by zero")
    frames = exc["stacktrace"]["frames"]
    assert any(f["function"] == "handler" for f in frames)
    assert all("vars" not in f for f in frames)
    # The literal is in the source lines Sentry shows; it must not appear as a variable's value.
    without_source = orjson.loads(orjson.dumps(event))
    for frame in without_source["exception"]["values"][0]["stacktrace"]["frames"]:
        for key in ("pre_context", "context_line", "post_context"):
            frame.pop(key, None)
    assert "4111111111111111" not in orjson.dumps(without_source).decode()
    assert event["fingerprint"] == [FP]
    assert event["tags"]["trace_id"] == TRACE
    assert event["level"] == "fatal"
    assert event["contexts"]["trace"]["trace_id"] == TRACE
    assert "user" not in event
    assert "request" not in event


def test_sentry_with_a_dsn_uses_a_dedicated_client(sentry_receiver: Receiver, make_router: MakeRouter) -> None:
    dsn = f"http://public@127.0.0.1:{sentry_receiver.port}/1"
    hook = Sentry(dsn)
    router = make_router([Route(hook)])
    raise_and_capture(router)
    assert asyncio.run(router.flush(5.0))
    (event,) = sentry_events(sentry_receiver)
    check_sentry_event(event)
    assert event["environment"] == "test"
    assert event["extra"]["count"] == 1
    assert router.stats()["delivered"] == 1


def test_sentry_without_a_dsn_uses_the_application_client(sentry_receiver: Receiver, make_router: MakeRouter) -> None:
    import sentry_sdk

    sentry_sdk.init(
        dsn=f"http://public@127.0.0.1:{sentry_receiver.port}/1",
        default_integrations=False,
        include_local_variables=True,
    )
    try:
        router = make_router([Route(Sentry())])
        raise_and_capture(router)
        assert asyncio.run(router.flush(5.0))
        (event,) = sentry_events(sentry_receiver)
        check_sentry_event(event)  # no locals even though the application's client would send them
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.get_global_scope().set_client(None)


def test_sentry_follow_ups_rebuild_the_exception_from_type_and_message(
    sentry_receiver: Receiver, make_router: MakeRouter
) -> None:
    router = make_router([Route(Sentry(f"http://public@127.0.0.1:{sentry_receiver.port}/1"))], dedup_window=0.3)
    capture(router)
    assert asyncio.run(router.flush(5.0))
    capture(router)  # a repeat: its follow-up goes out when the window ends
    deadline = time.monotonic() + 5
    while router.stats()["delivered"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert asyncio.run(router.flush(5.0))
    events = sentry_events(sentry_receiver)
    assert len(events) == 2
    assert events[1]["exception"]["values"][0]["type"] == "ZeroDivisionError"
    assert events[1]["exception"]["values"][0]["module"] == "builtins"
    assert events[1]["extra"]["count"] == 2


def test_sentry_without_an_initialised_sdk_is_a_counted_permanent_failure(make_router: MakeRouter) -> None:
    pytest.importorskip("sentry_sdk")
    router = make_router([Route(Sentry())])
    capture(router)
    assert asyncio.run(router.flush(5.0))
    assert router.stats()["dropped_permanent_error"] == 1


def test_sentry_rejects_a_bad_dsn() -> None:
    pytest.importorskip("sentry_sdk")
    with pytest.raises(ValueError, match="not a valid DSN"):
        Sentry("not a dsn")


# --- secrets never leak --------------------------------------------------------------------------------


def test_secrets_appear_in_no_repr_stats_or_log(make_router: MakeRouter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [
        "T000/B000/SLACKSECRET",
        "PDROUTINGKEYSECRET",
        "TWILIOTOKENSECRET",
        "WEBHOOKPATHSECRET",
        "SENTRYKEYSECRET",
    ]
    with Receiver(default=Respond(400, body=b"bad")) as receiver:
        hooks: list[Any] = [
            Slack(receiver.url + "/services/T000/B000/SLACKSECRET"),
            PagerDuty("PDROUTINGKEYSECRET", url=refused_url() + "/v2/enqueue", max_attempts=2),
            Twilio("AC1", "TWILIOTOKENSECRET", "+1555", "+1666", base_url=receiver.url),
            Webhook(receiver.url + "/WEBHOOKPATHSECRET?token=WEBHOOKPATHSECRET", secret=SECRET),
            Sentry("http://SENTRYKEYSECRET@127.0.0.1:1/1"),
        ]
        router = make_router([Route(hooks)])
        capture(router)
        asyncio.run(router.flush(5.0))
        text = " ".join([repr(router), repr(Route(hooks)), *map(repr, hooks), *map(str, router.stats()), caplog.text])
        assert SECRET not in text
        for secret in secrets:
            assert secret not in text
        assert "rejected alert" in caplog.text  # the failures were logged, just without secrets

"""The shipped JSON Schemas, and obskit.schema's validators against them."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from rfc3339_validator import validate_rfc3339

from obskit import schema
from obskit.schema import (
    ALERT_SCHEMA,
    LOG_RECORD_SCHEMA,
    PROBLEM_SCHEMA,
    load_schema,
    validate_alert,
    validate_problem,
    validate_record,
)

ROOT = Path(__file__).resolve().parent.parent
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TS = "2026-11-29T08:44:00.123456Z"
TIMESTAMP_RULE = (
    "timestamp: must be an RFC 3339 UTC time like 2026-11-29T08:44:00.123Z (3 to 9 fractional digits), got "
)


def _leap_second_date_time(value: object) -> bool:
    # jsonschema's date-time checker (rfc3339-validator) refuses second 60, which RFC 3339 allows and the
    # schema documents as valid. Map a leap second to :59 and let that independent library judge the rest.
    if not isinstance(value, str):
        return True
    return bool(validate_rfc3339(re.sub(r"(?a)(T\d\d:\d\d:)60", r"\g<1>59", value.upper())))


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("date-time")(_leap_second_date_time)
    return checker


LOG_VALIDATOR = Draft202012Validator(json.loads(LOG_RECORD_SCHEMA.read_text()), format_checker=_format_checker())


def schema_accepts(record: object) -> bool:
    return bool(LOG_VALIDATOR.is_valid(record))


def plain() -> dict[str, Any]:
    return {
        "timestamp": TS,
        "level": "info",
        "service": "checkout",
        "trace_id": TRACE,
        "span_id": SPAN,
        "message": "order placed",
        "logger": "checkout.orders",
        "environment": "production",
        "version": "1.4.2",
        "order_id": 1234,
    }


def with_error() -> dict[str, Any]:
    frame = {"file": "/srv/app/api.py", "line": 42, "function": "create_order", "module": "app.api"}
    return plain() | {
        "level": "error",
        "error": {
            "type": "ValueError",
            "message": "bad amount",
            "known": False,
            "code": None,
            "fingerprint": "0123456789abcdef",
            "stack": [frame, frame | {"line": 0}],
            "cause": {"type": "KeyError", "message": "'amount'"},
            "truncated": False,
        },
    }


def with_group() -> dict[str, Any]:
    record = with_error()
    record["error"]["exceptions"] = [
        {"type": "ValueError", "message": "a", "fingerprint": "fedcba9876543210", "stack": []},
        {"type": "KeyError", "message": "b"},
    ]
    return record


def with_http() -> dict[str, Any]:
    return plain() | {
        "logger": "obskit.access",
        "request_id": "abc",
        "http": {
            "method": "GET",
            "path": "/orders/1",
            "route": "/orders/{order_id}",
            "status": 200,
            "duration_ms": 12.5,
            "client_ip": "10.0.0.1",
            "user_agent": "curl/8.5.0",
            "request_id": "abc",
        },
    }


def test_schema_paths_point_at_the_shipped_files() -> None:
    assert LOG_RECORD_SCHEMA == schema.SCHEMA_DIR / "log-record.schema.json"
    assert PROBLEM_SCHEMA.name == "problem.schema.json"
    assert ALERT_SCHEMA.name == "alert.schema.json"
    assert all(p.is_file() for p in (LOG_RECORD_SCHEMA, PROBLEM_SCHEMA, ALERT_SCHEMA))


def test_schema_path_resolves_in_a_fresh_interpreter() -> None:
    code = "from obskit.schema import LOG_RECORD_SCHEMA as p; print(p.exists(), p.name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout == "True log-record.schema.json\n"


@pytest.mark.parametrize("path", [LOG_RECORD_SCHEMA, PROBLEM_SCHEMA, ALERT_SCHEMA], ids=lambda p: p.name)
def test_schemas_are_valid_2020_12_schemas_with_their_ids(path: Path) -> None:
    document = json.loads(path.read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"https://obskit.dev/schemas/{path.name}"


def test_load_schema_parses_once_per_path() -> None:
    first = load_schema(LOG_RECORD_SCHEMA)
    assert first["$id"] == "https://obskit.dev/schemas/log-record.schema.json"
    assert load_schema(str(LOG_RECORD_SCHEMA)) is first


# --- validate_record ---------------------------------------------------------------------------------


GOOD_RECORDS = {
    "plain": plain(),
    "outside a request": {"timestamp": TS, "level": "debug", "service": "s", "trace_id": None, "message": ""},
    "error with stack and cause": with_error(),
    "exception group": with_group(),
    "access record": with_http(),
    "access record, nullable fields null": with_http()
    | {"http": {"method": "GET", "path": "/", "route": None, "status": 404, "duration_ms": 0, "client_ip": None}},
    "known error without stack": plain()
    | {"level": "warning", "error": {"type": "E", "message": "", "known": True, "code": "x", "fingerprint": "0" * 16}},
    "shrunk record": plain() | {"truncated": True},
    "millisecond precision": plain() | {"timestamp": "2026-11-29T08:44:00.123Z"},
    "nanosecond precision": plain() | {"timestamp": "2026-11-29T08:44:00.123456789Z"},
    "leap day": plain() | {"timestamp": "2028-02-29T23:59:59.000Z"},
    "leap second": plain() | {"timestamp": "2026-12-31T23:59:60.000Z"},
    "day 31": plain() | {"timestamp": "2026-12-31T00:00:00.000Z"},
    "integral floats are integers": with_http() | {"http": with_http()["http"] | {"status": 200.0}},
}


@pytest.mark.parametrize("record", GOOD_RECORDS.values(), ids=GOOD_RECORDS.keys())
def test_good_records_are_valid(record: dict[str, Any]) -> None:
    assert validate_record(record) == []
    assert schema._reasons(record) == []
    assert schema_accepts(record)


def _set(path: str, value: object, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `base` with the value at a dotted path (`error.stack.0.line`) replaced or, for ..., removed."""
    record = copy.deepcopy(base if base is not None else plain())
    *parents, last = path.split(".")
    target: Any = record
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return record


BAD = [
    ("missing timestamp", _set("timestamp", ...), ["timestamp: required field missing"]),
    ("missing service", _set("service", ...), ["service: required field missing"]),
    ("missing trace_id", _set("trace_id", ...), ["trace_id: required field missing"]),
    (
        "offset instead of Z",
        _set("timestamp", "2026-11-29T08:44:00.123+00:00"),
        [TIMESTAMP_RULE + "'2026-11-29T08:44:00.123+00:00'"],
    ),
    (
        "second precision",
        _set("timestamp", "2026-11-29T08:44:00Z"),
        [TIMESTAMP_RULE + "'2026-11-29T08:44:00Z'"],
    ),
    (
        "ten fractional digits",
        _set("timestamp", "2026-11-29T08:44:00.1234567890Z"),
        [TIMESTAMP_RULE + "'2026-11-29T08:44:00.1234567890Z'"],
    ),
    (
        "trailing newline",
        _set("timestamp", TS + "\n"),
        [TIMESTAMP_RULE + "'2026-11-29T08:44:00.123456Z\\n'"],
    ),
    (
        "epoch number",
        _set("timestamp", 1764405840.5),
        [TIMESTAMP_RULE + "1764405840.5"],
    ),
    (
        "29 February of a common year",
        _set("timestamp", "2026-02-29T08:44:00.123Z"),
        ["timestamp: not a real date and time, got '2026-02-29T08:44:00.123Z'"],
    ),
    (
        "31 April",
        _set("timestamp", "2026-04-31T08:44:00.123Z"),
        ["timestamp: not a real date and time, got '2026-04-31T08:44:00.123Z'"],
    ),
    (
        "month 13",
        _set("timestamp", "2026-13-01T08:44:00.123Z"),
        ["timestamp: not a real date and time, got '2026-13-01T08:44:00.123Z'"],
    ),
    (
        "hour 24",
        _set("timestamp", "2026-11-29T24:00:00.000Z"),
        ["timestamp: not a real date and time, got '2026-11-29T24:00:00.000Z'"],
    ),
    (
        "second 61",
        _set("timestamp", "2026-11-29T08:44:61.000Z"),
        ["timestamp: not a real date and time, got '2026-11-29T08:44:61.000Z'"],
    ),
    (
        "uppercase level",
        _set("level", "INFO"),
        ["level: must be one of debug, info, warning, error, critical, got 'INFO'"],
    ),
    ("empty service", _set("service", ""), ["service: must be a non-empty string, got ''"]),
    ("numeric service", _set("service", 7), ["service: must be a non-empty string, got 7"]),
    ("short trace_id", _set("trace_id", "ABC"), ["trace_id: must be null or 32 lowercase hex digits, got 'ABC'"]),
    (
        "uppercase trace_id",
        _set("trace_id", TRACE.upper()),
        ["trace_id: must be null or 32 lowercase hex digits, got '4BF92F3577B34DA6A3CE929D0E0E4736'"],
    ),
    ("all-zero trace_id", _set("trace_id", "0" * 32), ["trace_id: must not be all zeros (not a valid W3C trace id)"]),
    ("message null", _set("message", None), ["message: must be a string, got null"]),
    ("span_id null", _set("span_id", None), ["span_id: must be 16 lowercase hex digits, got null"]),
    ("all-zero span_id", _set("span_id", "0" * 16), ["span_id: must not be all zeros (not a valid W3C span id)"]),
    ("logger false", _set("logger", False), ["logger: must be a string, got false"]),
    ("environment list", _set("environment", ["prod"]), ["environment: must be a string, got an array"]),
    ("version number", _set("version", 1.2), ["version: must be a string, got 1.2"]),
    ("request_id object", _set("request_id", {}), ["request_id: must be a string, got an object"]),
    ("truncated string", _set("truncated", "yes"), ["truncated: must be true or false, got 'yes'"]),
    ("error string", _set("error", "boom"), ["error: must be an object, got 'boom'"]),
    ("error extra key", _set("error.locals", {}, with_error()), ["error: unexpected key 'locals'"]),
    ("error missing known", _set("error.known", ..., with_error()), ["error.known: required field missing"]),
    ("error known 0", _set("error.known", 0, with_error()), ["error.known: must be true or false, got 0"]),
    ("error type null", _set("error.type", None, with_error()), ["error.type: must be a string, got null"]),
    (
        "error fingerprint short",
        _set("error.fingerprint", "abc", with_error()),
        ["error.fingerprint: must be 16 lowercase hex digits, got 'abc'"],
    ),
    ("error code number", _set("error.code", 404, with_error()), ["error.code: must be a string or null, got 404"]),
    (
        "frame line negative",
        _set("error.stack.0.line", -1, with_error()),
        ["error.stack[0].line: must be an integer >= 0, got -1"],
    ),
    (
        "frame line fractional",
        _set("error.stack.1.line", 1.5, with_error()),
        ["error.stack[1].line: must be an integer >= 0, got 1.5"],
    ),
    (
        "frame without module",
        _set("error.stack.0.module", ..., with_error()),
        ["error.stack[0].module: required field missing"],
    ),
    (
        "frame with locals",
        _set("error.stack.0.locals", {"x": 1}, with_error()),
        ["error.stack[0]: unexpected key 'locals'"],
    ),
    ("stack object", _set("error.stack", {}, with_error()), ["error.stack: must be an array of frames, got an object"]),
    ("cause extra key", _set("error.cause.stack", [], with_error()), ["error.cause: unexpected key 'stack'"]),
    (
        "group member without message",
        _set("error.exceptions.1.message", ..., with_group()),
        ["error.exceptions[1].message: required field missing"],
    ),
    (
        "group member bad stack",
        _set("error.exceptions.0.stack", [1], with_group()),
        ["error.exceptions[0].stack[0]: must be an object, got 1"],
    ),
    (
        "http status 99",
        _set("http.status", 99, with_http()),
        ["http.status: must be an integer from 100 to 599, got 99"],
    ),
    (
        "http status string",
        _set("http.status", "200", with_http()),
        ["http.status: must be an integer from 100 to 599, got '200'"],
    ),
    (
        "http negative duration",
        _set("http.duration_ms", -0.5, with_http()),
        ["http.duration_ms: must be a number >= 0, got -0.5"],
    ),
    (
        "http duration true",
        _set("http.duration_ms", True, with_http()),
        ["http.duration_ms: must be a number >= 0, got true"],
    ),
    ("http missing path", _set("http.path", ..., with_http()), ["http.path: required field missing"]),
    ("http route number", _set("http.route", 1, with_http()), ["http.route: must be a string or null, got 1"]),
    ("http extra key", _set("http.headers", {}, with_http()), ["http: unexpected key 'headers'"]),
    (
        "several problems at once",
        _set("level", "trace", _set("trace_id", "x")),
        [
            "level: must be one of debug, info, warning, error, critical, got 'trace'",
            "trace_id: must be null or 32 lowercase hex digits, got 'x'",
        ],
    ),
    (
        "a long bad value is cut",
        _set("trace_id", "x" * 100),
        ["trace_id: must be null or 32 lowercase hex digits, got " + repr("x" * 64) + "… (100 chars)"],
    ),
]


@pytest.mark.parametrize(("record", "reasons"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_each_bad_field_fails_with_a_reason_naming_it(record: dict[str, Any], reasons: list[str]) -> None:
    assert validate_record(record) == reasons
    assert not schema_accepts(record)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "record: must be a JSON object, got null"),
        ([1, 2], "record: must be a JSON object, got an array"),
        ("{}", "record: must be a JSON object, got '{}'"),
        (3, "record: must be a JSON object, got 3"),
        (True, "record: must be a JSON object, got true"),
    ],
)
def test_a_non_object_gets_a_reason_not_an_exception(value: object, reason: str) -> None:
    assert validate_record(value) == [reason]


def test_an_empty_object_lists_every_required_field() -> None:
    assert validate_record({}) == [
        "timestamp: required field missing",
        "level: required field missing",
        "service: required field missing",
        "trace_id: required field missing",
        "message: required field missing",
    ]


# --- equivalence with the schema --------------------------------------------------------------------
# Values are drawn near the rules' edges (a digit out of range, uppercase hex, a key too many, 3.0 for an
# integer...) so that both valid and invalid records are common; any JSON value can also appear anywhere.

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def sometimes(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `good`, so that whole records are valid often enough to test the accepting side too."""
    # sampled_from rather than integers: hypothesis favours an integer range's ends, and shrinks to the first item.
    return st.sampled_from(["good"] * 40 + ["json", "bad"]).flatmap(
        lambda pick: good if pick == "good" else json_values if pick == "json" else bad
    )


def digits(lo: int, hi: int, width: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(lambda n: str(n).zfill(width))


TIMESTAMP_EDGES: dict[str, st.SearchStrategy[str]] = {
    "year": st.sampled_from(["0000", "0001", "20260", "202"]),
    "month": digits(0, 13, 2),
    "day": digits(0, 32, 2),
    "sep": st.sampled_from(["t", " ", ""]),
    "hour": digits(22, 25, 2),
    "minute": digits(58, 61, 2),
    "second": digits(58, 62, 2),
    "fraction": st.text("0123456789", max_size=11).map(lambda f: "." + f) | st.sampled_from(["", ",123"]),
    "zone": st.sampled_from(["z", "+00:00", "-01:30", "", "Z\n", " Z", "ZZ"]),
}


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """Valid parts, then about one in six has one part pushed to or past its edge."""
    parts = {
        "year": draw(st.sampled_from(["2026", "2024", "2000", "2100", "9999"])),
        "month": draw(digits(1, 12, 2)),
        "day": draw(st.sampled_from(["01", "15", "28", "29", "30", "31"])),
        "sep": "T",
        "hour": draw(digits(0, 23, 2)),
        "minute": draw(digits(0, 59, 2)),
        "second": draw(digits(0, 60, 2)),
        "fraction": "." + draw(st.text("0123456789", min_size=3, max_size=9)),
        "zone": "Z",
    }
    edge = draw(st.sampled_from([None] * 45 + list(TIMESTAMP_EDGES)))
    if edge is not None:
        parts[edge] = draw(TIMESTAMP_EDGES[edge])
    p = parts
    return f"{p['year']}-{p['month']}-{p['day']}{p['sep']}{p['hour']}:{p['minute']}:{p['second']}{p['fraction']}{p['zone']}"


def hex_ids(size: int) -> st.SearchStrategy[str]:
    # From integers, so that hypothesis's favourite (all zeros) is not what every draw looks like.
    exact = st.integers(1, 16**size - 1).map(lambda n: f"{n:0{size}x}")
    near = st.text("0123456789abcdefABCDEFg", min_size=size - 1, max_size=size + 1)
    return st.sampled_from(["exact"] * 27 + ["near", "zeros", "newline"]).flatmap(
        lambda pick: {
            "exact": exact,
            "near": near,
            "zeros": st.just("0" * size),
            "newline": exact.map(lambda s: s + "\n"),
        }[pick]
    )


STRING = st.text(max_size=8)
NULLABLE = st.none() | STRING
INTEGERS = st.integers(-2, 700) | st.sampled_from([0.0, 3.0, 200.0, 1.5, True, False])


def closed_object(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: st.DrawFn) -> Any:
        obj = {k: draw(sometimes(v, st.just(...))) for k, v in required.items()}
        obj |= {k: draw(v) for k, v in optional.items() if draw(st.booleans())}
        if draw(st.sampled_from([False] * 15 + [True])):
            obj[draw(st.sampled_from(["extra", "locals", *required]))] = draw(json_values)
        return {k: v for k, v in obj.items() if v is not ...}

    return build()


frames = closed_object(
    {"file": STRING, "line": sometimes(st.integers(0, 10**6), INTEGERS), "function": STRING, "module": STRING}, {}
)
stacks = sometimes(st.lists(frames, max_size=4), json_values)
fingerprints = sometimes(hex_ids(16), hex_ids(16))
errors = closed_object(
    {
        "type": STRING,
        "message": STRING,
        "known": sometimes(st.booleans(), st.sampled_from([0, 1, "true"])),
        "fingerprint": fingerprints,
    },
    {
        "code": sometimes(NULLABLE, json_values),
        "stack": stacks,
        "cause": closed_object({"type": STRING, "message": STRING}, {}),
        "exceptions": st.lists(
            closed_object({"type": STRING, "message": STRING}, {"stack": stacks, "fingerprint": fingerprints}),
            max_size=3,
        ),
        "truncated": sometimes(st.booleans(), json_values),
    },
)
https = closed_object(
    {
        "method": STRING,
        "path": STRING,
        "status": sometimes(st.integers(100, 599), INTEGERS),
        "duration_ms": sometimes(st.floats(0, 1e6) | st.integers(0, 10**6), INTEGERS | st.floats(-1, 1)),
    },
    {
        "route": sometimes(NULLABLE, json_values),
        "client_ip": NULLABLE,
        "user_agent": NULLABLE,
        "request_id": sometimes(STRING, st.none()),
    },
)


@st.composite
def shifted(draw: st.DrawFn, record: dict[str, Any]) -> dict[str, Any]:
    """Move characters across the boundary of two adjacent fields of timestamp, trace_id, span_id.

    The fast path once matched one regex over their concatenation, which only saw the total: a trace id
    two digits short with those digits on the timestamp, or a 48-digit trace id with an empty span id,
    passed. A shift keeps the concatenation and changes the fields.
    """
    left, right = draw(st.sampled_from([("timestamp", "trace_id"), ("trace_id", "span_id")]))
    # A null or missing id becomes a valid one: shifting between good fields is what the fast path took.
    good = {"timestamp": timestamps(), "trace_id": hex_ids(32), "span_id": hex_ids(16)}
    a, b = (v if isinstance(v := record.get(k), str) else draw(good[k]) for k in (left, right))
    # up to 3 characters either way, or the whole of one field into the other
    k = draw(st.sampled_from([-3, -2, -1, 1, 2, 3, -len(a), len(b)]))
    if k > 0:  # the first k characters of the right field move to the end of the left one
        a, b = a + b[:k], b[k:]
    elif k < 0:  # the last -k characters of the left field move to the start of the right one
        a, b = a[:k], a[k:] + b
    return record | {left: a, right: b}


@st.composite
def records(draw: st.DrawFn) -> Any:
    if draw(st.sampled_from([False] * 30 + [True])):
        return draw(json_values)
    record: dict[str, Any] = {
        "timestamp": draw(sometimes(timestamps(), timestamps())),
        "level": draw(sometimes(st.sampled_from(["debug", "info", "warning", "error", "critical"]), STRING)),
        "service": draw(sometimes(STRING.filter(bool), st.just(""))),
        "trace_id": draw(sometimes(st.none() | hex_ids(32), hex_ids(32))),
        "message": draw(sometimes(STRING, st.none())),
    }
    optional = {
        "span_id": sometimes(hex_ids(16), st.none()),
        "logger": sometimes(STRING, st.none()),
        "environment": STRING,
        "version": STRING,
        "request_id": STRING,
        "truncated": sometimes(st.booleans(), st.just("true")),
        "error": sometimes(errors, json_values),
        "http": sometimes(https, json_values),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            record[key] = draw(strategy)
    record |= draw(st.dictionaries(st.text(max_size=5).filter(lambda k: k not in record), json_values, max_size=2))
    if draw(st.sampled_from([False] * 15 + [True])):
        del record[draw(st.sampled_from(["timestamp", "level", "service", "trace_id", "message"]))]
    if draw(st.sampled_from([False] * 4 + [True])):
        record = draw(shifted(record))
    return record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_validate_record_agrees_with_the_schema(record: Any) -> None:
    expected = schema_accepts(record)
    reasons = validate_record(record)
    assert (reasons == []) == expected, reasons
    # The exact path alone must agree too: the fast path sends it only what it does not accept.
    assert (schema._reasons(record) == []) == expected


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_ids_shifted_between_otherwise_valid_fields_agree_with_the_schema(data: st.DataObject) -> None:
    # records() shifts a record that is often invalid for other reasons too; here only the shift varies.
    record = data.draw(shifted(plain()))
    assert (validate_record(record) == []) == schema_accepts(record), record


def test_the_generator_makes_valid_and_invalid_records() -> None:
    # A guard on the property test above: agreement proves little if one side never happens.
    seen: list[bool] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(records())
    def collect(record: Any) -> None:
        seen.append(schema_accepts(record))

    collect()
    assert 0.15 < sum(seen) / len(seen) < 0.85


def test_the_edge_cases_agree_with_the_schema() -> None:
    cases = [r for _, r, _ in BAD] + list(GOOD_RECORDS.values())
    cases += [
        _set("timestamp", "0000-01-01T00:00:00.000Z"),
        _set("timestamp", "2000-02-29T00:00:00.000Z"),
        _set("timestamp", "2100-02-29T00:00:00.000Z"),
        _set("timestamp", "2026-11-29T08:44:00.123Z\n"),
        _set("timestamp", "2026-11-29T08:44:00.12Z"),
        _set("timestamp", "2026-11-29t08:44:00.123Z"),
        _set("timestamp", "\uff12\uff10\uff12\uff16-11-29T08:44:00.123Z"),  # fullwidth digits
        _set("trace_id", TRACE + "\n"),
        _set("span_id", SPAN + "\n"),
        _set("error.stack.0.line", 3.0, with_error()),
        _set("error.stack.0.line", True, with_error()),
        _set("error.stack.0.line", 2**70, with_error()),
        _set("error.code", ..., with_error()),
        _set("error.stack", [], with_error()),
        _set("http.status", 599.0, with_http()),
        _set("http.status", 600.0, with_http()),
        _set("http.duration_ms", 0, with_http()),
        _set("http.duration_ms", -0.0, with_http()),
        _set("http.route", ..., with_http()),
        {"timestamp": TS, "level": "info", "service": "s", "trace_id": TRACE, "message": "no span"},
        {"timestamp": TS, "level": "info", "service": "s", "trace_id": None, "message": "", "span_id": SPAN},
    ]
    for record in cases:
        assert (validate_record(record) == []) == schema_accepts(record), record


# Each keeps timestamp + trace_id + span_id as the characters of a valid record, with the boundaries moved.
SHIFTED = {
    "2 trace digits on the timestamp": {"timestamp": TS + TRACE[:2], "trace_id": TRACE[2:], "span_id": SPAN},
    "2 span digits on the trace id": {"timestamp": TS, "trace_id": TRACE + SPAN[:2], "span_id": SPAN[2:]},
    "2 trace digits on the span id": {"timestamp": TS, "trace_id": TRACE[:-2], "span_id": TRACE[-2:] + SPAN},
    "the span id on the trace id": {"timestamp": TS, "trace_id": TRACE + SPAN, "span_id": ""},
    "the trace id on the span id": {"timestamp": TS, "trace_id": "", "span_id": TRACE + SPAN},
    "the trace id on the timestamp": {"timestamp": TS + TRACE, "trace_id": "", "span_id": SPAN},
    "the timestamp's Z on the trace id": {"timestamp": TS[:-1], "trace_id": "Z" + TRACE, "span_id": SPAN},
    "a separator-like NUL in a field": {"timestamp": TS, "trace_id": TRACE[:-1] + "\x00", "span_id": SPAN},
}


@pytest.mark.parametrize("fields", SHIFTED.values(), ids=SHIFTED.keys())
def test_ids_moved_across_a_field_boundary_are_invalid(fields: dict[str, str]) -> None:
    record = plain() | fields
    assert not schema_accepts(record)
    assert validate_record(record) != []


# --- problem and alert ------------------------------------------------------------------------------


def problem() -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
        "instance": "/orders/9",
        "code": "not_found",
        "trace_id": TRACE,
    }


def test_problem_bodies_validate() -> None:
    assert validate_problem(problem()) == []
    errors = [{"loc": ["body", "amount", 0], "msg": "field required", "type": "missing"}]
    assert validate_problem(problem() | {"status": 422, "errors": errors}) == []
    assert validate_problem(problem() | {"debug": {"type": "KeyError", "message": "'x'"}}) == []
    assert validate_problem(problem() | {"type": "https://obskit.dev/problems/not_found"}) == []


def test_bad_problem_bodies_name_the_field() -> None:
    assert validate_problem(problem() | {"status": 200}) == ["status: 200 is less than the minimum of 400"]
    assert validate_problem(problem() | {"code": "NotFound"}) == [
        "code: 'NotFound' does not match '^[a-z][a-z0-9_]*(?!\\\\n)$'"
    ]
    assert validate_problem(problem() | {"stack": []}) == [
        "(root): Additional properties are not allowed ('stack' was unexpected)"
    ]
    assert validate_problem({k: v for k, v in problem().items() if k != "trace_id"}) == [
        "(root): 'trace_id' is a required property"
    ]
    bad_errors = problem() | {"errors": [{"loc": [None], "msg": "m", "type": "t", "input": "secret"}]}
    assert validate_problem(bad_errors) == [
        "errors[0]: Additional properties are not allowed ('input' was unexpected)",
        "errors[0].loc[0]: None is not of type 'string', 'integer'",
    ]
    assert validate_problem(["x"]) == ["body: must be a JSON object, got an array"]


def alert() -> dict[str, Any]:
    return {
        "id": "01JDXAMPLE",
        "fingerprint": "0123456789abcdef",
        "service": "checkout",
        "environment": None,
        "severity": "error",
        "title": "ValueError: bad amount",
        "error": {"type": "ValueError", "message": "bad amount"},
        "trace_id": TRACE,
        "request": {"method": "POST", "path": "/orders"},
        "first_seen": "2026-11-29T08:44:00.123Z",
        "last_seen": "2026-11-29T08:45:00.123Z",
        "timestamp": "2026-11-29T08:45:00.200Z",
        "count": 3,
    }


def test_alert_events_validate() -> None:
    assert validate_alert(alert()) == []
    assert validate_alert(alert() | {"trace_id": None, "request": None, "code": None, "known": False}) == []
    assert validate_alert(alert() | {"timestamp": "2026-12-31T23:59:60.000Z"}) == []


def test_bad_alert_events_name_the_field() -> None:
    assert validate_alert(alert() | {"count": 0}) == ["count: 0 is less than the minimum of 1"]
    assert validate_alert(alert() | {"severity": "page"}) == [
        "severity: 'page' is not one of ['critical', 'error', 'warning', 'info']"
    ]
    assert validate_alert(alert() | {"first_seen": "2026-02-30T00:00:00.000Z"}) == [
        "first_seen: '2026-02-30T00:00:00.000Z' is not a 'date-time'"
    ]
    assert validate_alert(alert() | {"request": {"method": "GET"}}) == ["request: 'path' is a required property"]
    assert validate_alert(None) == ["event: must be a JSON object, got null"]


# --- packaging ---------------------------------------------------------------------------------------


def test_the_wheel_ships_the_schemas(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=110,
    )
    (wheel,) = tmp_path.glob("obskit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert {
        "obskit/schemas/log-record.schema.json",
        "obskit/schemas/problem.schema.json",
        "obskit/schemas/alert.schema.json",
        "obskit/schema.py",
    } <= names
    # Installed from the wheel, the module finds the copies inside the package.
    code = "import obskit.schema as s; print(s.__file__); print(s.LOG_RECORD_SCHEMA)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""},
    )
    site = tmp_path / "site"
    assert out.stdout == f"{site}/obskit/schema.py\n{site}/obskit/schemas/log-record.schema.json\n"

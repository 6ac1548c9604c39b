"""The JSON Schemas of what obskit emits, and validators for them.

Three schemas (JSON Schema 2020-12) ship inside the wheel as ``obskit/schemas/*.json``:

* ``LOG_RECORD_SCHEMA``: one line of the JSON log output (SPEC §3);
* ``PROBLEM_SCHEMA``: the ``application/problem+json`` body of error responses (SPEC §4);
* ``ALERT_SCHEMA``: the event alert hooks are built from (SPEC §6).

``validate_record`` is hand-written because ``obskit validate`` runs it on multi-million-line files and
``jsonschema`` costs tens of microseconds per record. It makes exactly the schema's decision for any value
JSON can carry (the test suite checks it against ``jsonschema`` with a property test); the schema is the
reference. Leap seconds (second ``60``) are valid, as in RFC 3339. ``validate_problem`` and
``validate_alert`` are not hot and use ``jsonschema``, which then has to be installed.

This module imports nothing else from obskit, so a log checker can use it without configuring anything.
"""

from __future__ import annotations

import calendar
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

__all__ = [
    "ALERT_SCHEMA",
    "LOG_RECORD_SCHEMA",
    "PROBLEM_SCHEMA",
    "SCHEMA_DIR",
    "load_schema",
    "validate_alert",
    "validate_problem",
    "validate_record",
]


def _schema_dir() -> Path:
    # The wheel force-includes the repository's schemas/ as obskit/schemas/; a source checkout or an
    # editable install only has the repository copy.
    here = Path(__file__).parent
    shipped = here / "schemas"
    return shipped if shipped.is_dir() else here.parent / "schemas"


SCHEMA_DIR: Final[Path] = _schema_dir()
LOG_RECORD_SCHEMA: Final[Path] = SCHEMA_DIR / "log-record.schema.json"
PROBLEM_SCHEMA: Final[Path] = SCHEMA_DIR / "problem.schema.json"
ALERT_SCHEMA: Final[Path] = SCHEMA_DIR / "alert.schema.json"


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    schema = orjson.loads(path.read_bytes())
    if not isinstance(schema, dict):
        raise ValueError(f"{path} does not hold a JSON object")  # noqa: TRY004 - bad content, not a bad argument
    return schema


def load_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a JSON Schema file, once per path.

    Args:
        path: One of ``LOG_RECORD_SCHEMA``, ``PROBLEM_SCHEMA``, ``ALERT_SCHEMA``, or any schema file.

    Returns:
        The parsed schema. It is shared between callers: do not mutate it.

    Raises:
        OSError: The file cannot be read.
        ValueError: The file is not a JSON object.
    """
    return _load(Path(path).resolve())


# --- the hand-written log record check -------------------------------------------------------------
# Each regex is the schema's pattern without the anchors: fullmatch() anchors at both ends, which is what
# the schema's "^...(?!\n)$" means.
_TIMESTAMP_PATTERN: Final = (
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)\.[0-9]{3,9}Z"
)
_TIMESTAMP: Final = re.compile(_TIMESTAMP_PATTERN).fullmatch
_TIMESTAMP_SHAPE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]+Z").fullmatch
_HEX32: Final = re.compile(r"[0-9a-f]{32}").fullmatch
_HEX16: Final = re.compile(r"[0-9a-f]{16}").fullmatch
_ZERO32: Final = "0" * 32
_ZERO16: Final = "0" * 16

_LEVELS: Final = frozenset(("debug", "info", "warning", "error", "critical"))
_OPTIONAL_STRINGS: Final = ("logger", "environment", "version", "request_id")
_ERROR_KEYS: Final = frozenset(
    ("type", "message", "known", "code", "fingerprint", "stack", "cause", "exceptions", "truncated")
)
_MEMBER_KEYS: Final = frozenset(("type", "message", "stack", "fingerprint"))
_CAUSE_KEYS: Final = frozenset(("type", "message"))
_FRAME_KEYS: Final = frozenset(("file", "line", "function", "module"))
_HTTP_KEYS: Final = frozenset(
    ("method", "path", "route", "status", "duration_ms", "client_ip", "user_agent", "request_id")
)
_MISSING: Final = object()

_TIMESTAMP_RULE: Final = "must be an RFC 3339 UTC time like 2026-11-29T08:44:00.123Z (3 to 9 fractional digits)"
_MAX_REASONS: Final = 20  # per record; past it the problems are counted, not listed


class _Reasons(list[str]):
    """Keeps the first ``_MAX_REASONS`` reasons and counts the rest.

    A 1 MB line holding half a million bad stack frames would otherwise make half a million reasons: a
    23 MB report line and a 149 MiB peak for one line.
    """

    __slots__ = ("more",)

    def __init__(self) -> None:
        super().__init__()
        self.more = 0

    def append(self, reason: str, /) -> None:
        if len(self) < _MAX_REASONS:
            super().append(reason)
        else:
            self.more += 1

    def extend(self, reasons: Iterable[str], /) -> None:
        for reason in reasons:
            self.append(reason)

    def result(self) -> list[str]:
        reasons = list(self)
        if self.more:
            reasons.append(f"… and {self.more:,} more problems")
        return reasons


def _show(value: object) -> str:
    """A short rendering of a bad value for a reason: a huge string must not make a huge report."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 64 else f"{value[:64]!r}… ({len(value)} chars)"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        # int -> str refuses more than 4300 digits, and nobody wants to read them.
        return repr(value) if value.bit_length() <= 64 else "a very large integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _is_int(value: object) -> bool:
    # JSON Schema's "integer" is a mathematical integer: 3.0 counts, true does not.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _real_day(ts: str) -> bool:
    # The regex bounds the day to 01-31; only 29-31 depend on the month and year.
    return ts[8:10] <= "28" or _day_fits(ts[:10])


@functools.lru_cache(maxsize=256)  # a log file has few distinct dates; monthrange() costs a microsecond
def _day_fits(date: str) -> bool:
    return int(date[8:10]) <= calendar.monthrange(int(date[:4]), int(date[5:7]))[1]


def _timestamp_reason(ts: object) -> str:
    # The right shape with a part out of range (month 13, 30 February, year 0000) gets its own reason.
    if isinstance(ts, str) and _TIMESTAMP_SHAPE(ts) is not None:
        frac = len(ts) - 21  # digits between "YYYY-MM-DDTHH:MM:SS." and "Z"
        if 3 <= frac <= 9:
            return f"timestamp: not a real date and time, got {_show(ts)}"
    return f"timestamp: {_TIMESTAMP_RULE}, got {_show(ts)}"


def _unexpected(obj: dict[Any, Any], allowed: frozenset[str], where: str, errors: list[str]) -> None:
    errors.extend(f"{where}: unexpected key {_show(key)}" for key in obj if key not in allowed)


def _require_str(obj: dict[Any, Any], key: str, where: str, errors: list[str]) -> None:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        errors.append(f"{where}.{key}: required field missing")
    elif not isinstance(value, str):
        errors.append(f"{where}.{key}: must be a string, got {_show(value)}")


def _check_fingerprint(value: object, where: str, errors: list[str]) -> None:
    if not (isinstance(value, str) and _HEX16(value) is not None):
        errors.append(f"{where}: must be 16 lowercase hex digits, got {_show(value)}")


def _check_stack(stack: object, where: str, errors: list[str]) -> None:
    if not isinstance(stack, list):
        errors.append(f"{where}: must be an array of frames, got {_show(stack)}")
        return
    for i, frame in enumerate(stack):
        at = f"{where}[{i}]"
        if not isinstance(frame, dict):
            errors.append(f"{at}: must be an object, got {_show(frame)}")
            continue
        _unexpected(frame, _FRAME_KEYS, at, errors)
        _require_str(frame, "file", at, errors)
        _require_str(frame, "function", at, errors)
        _require_str(frame, "module", at, errors)
        line = frame.get("line", _MISSING)
        if line is _MISSING:
            errors.append(f"{at}.line: required field missing")
        elif not _is_int(line) or line < 0:
            errors.append(f"{at}.line: must be an integer >= 0, got {_show(line)}")


def _check_error(err: object, errors: list[str]) -> None:
    if not isinstance(err, dict):
        errors.append(f"error: must be an object, got {_show(err)}")
        return
    if not err.keys() <= _ERROR_KEYS:
        _unexpected(err, _ERROR_KEYS, "error", errors)
    _require_str(err, "type", "error", errors)
    _require_str(err, "message", "error", errors)
    known = err.get("known", _MISSING)
    if known is _MISSING:
        errors.append("error.known: required field missing")
    elif not isinstance(known, bool):
        errors.append(f"error.known: must be true or false, got {_show(known)}")
    fingerprint = err.get("fingerprint", _MISSING)
    if fingerprint is _MISSING:
        errors.append("error.fingerprint: required field missing")
    else:
        _check_fingerprint(fingerprint, "error.fingerprint", errors)
    code = err.get("code")  # absent and null are both fine
    if code is not None and not isinstance(code, str):
        errors.append(f"error.code: must be a string or null, got {_show(code)}")
    stack = err.get("stack", _MISSING)
    if stack is not _MISSING:
        _check_stack(stack, "error.stack", errors)
    truncated = err.get("truncated", _MISSING)
    if truncated is not _MISSING and not isinstance(truncated, bool):
        errors.append(f"error.truncated: must be true or false, got {_show(truncated)}")
    cause = err.get("cause", _MISSING)
    if cause is not _MISSING:
        if isinstance(cause, dict):
            _unexpected(cause, _CAUSE_KEYS, "error.cause", errors)
            _require_str(cause, "type", "error.cause", errors)
            _require_str(cause, "message", "error.cause", errors)
        else:
            errors.append(f"error.cause: must be an object, got {_show(cause)}")
    members = err.get("exceptions", _MISSING)
    if members is _MISSING:
        return
    if not isinstance(members, list):
        errors.append(f"error.exceptions: must be an array, got {_show(members)}")
        return
    for i, member in enumerate(members):
        at = f"error.exceptions[{i}]"
        if not isinstance(member, dict):
            errors.append(f"{at}: must be an object, got {_show(member)}")
            continue
        _unexpected(member, _MEMBER_KEYS, at, errors)
        _require_str(member, "type", at, errors)
        _require_str(member, "message", at, errors)
        if "stack" in member:
            _check_stack(member["stack"], f"{at}.stack", errors)
        if "fingerprint" in member:
            _check_fingerprint(member["fingerprint"], f"{at}.fingerprint", errors)


def _check_http(http: object, errors: list[str]) -> None:
    if not isinstance(http, dict):
        errors.append(f"http: must be an object, got {_show(http)}")
        return
    if not http.keys() <= _HTTP_KEYS:
        _unexpected(http, _HTTP_KEYS, "http", errors)
    _require_str(http, "method", "http", errors)
    _require_str(http, "path", "http", errors)
    status = http.get("status", _MISSING)
    if status is _MISSING:
        errors.append("http.status: required field missing")
    elif not (_is_int(status) and 100 <= status <= 599):
        errors.append(f"http.status: must be an integer from 100 to 599, got {_show(status)}")
    duration = http.get("duration_ms", _MISSING)
    if duration is _MISSING:
        errors.append("http.duration_ms: required field missing")
    # `< 0` rather than `>= 0` is what JSON Schema's "minimum" means for NaN (which JSON cannot carry).
    elif not _is_number(duration) or duration < 0:
        errors.append(f"http.duration_ms: must be a number >= 0, got {_show(duration)}")
    for key in ("route", "client_ip", "user_agent"):
        value = http.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(f"http.{key}: must be a string or null, got {_show(value)}")
    request_id = http.get("request_id", _MISSING)
    if request_id is not _MISSING and not isinstance(request_id, str):
        errors.append(f"http.request_id: must be a string, got {_show(request_id)}")


# --- fast path: a sufficient condition for validity, shaped like what obskit writes ---------------------
# Exact types (what orjson returns), one regex over timestamp, trace id and span id, and presence implied by
# a `type(d.get(k)) is str` check (a missing key gives None). Whatever it does not accept goes to the exact
# check, so it only has to never accept an invalid record.
# The three fields are joined with NUL, which no other part of the regex can match: the input must hold
# exactly two NULs, so each field is matched on its own. Joined with nothing, characters could move across a
# boundary unseen (a 30-digit trace id after a timestamp ending in two hex digits passed).
_TIMESTAMP_IDS: Final = re.compile(_TIMESTAMP_PATTERN + r"\x00(?!0{32})[0-9a-f]{32}\x00(?!0{16})[0-9a-f]{16}").fullmatch
_STR_OR_NONE: Final = frozenset((str, type(None)))


def _fast_stack(stack: object) -> bool:
    if type(stack) is not list:
        return False
    for frame in stack:
        if not (
            type(frame) is dict
            and len(frame) == 4
            and type(frame.get("file")) is str
            and type(frame.get("function")) is str
            and type(frame.get("module")) is str
            and type(line := frame.get("line")) is int
            and line >= 0
        ):
            return False
    return True


def _fast_error(err: object) -> bool:
    return (
        type(err) is dict
        and _ERROR_KEYS.issuperset(err)
        and type(err.get("type")) is str
        and type(err.get("message")) is str
        and type(err.get("known")) is bool
        and type(fingerprint := err.get("fingerprint")) is str
        and _HEX16(fingerprint) is not None
        and type(err.get("code")) in _STR_OR_NONE
        and type(err.get("truncated", False)) is bool
        and "exceptions" not in err
        and (
            (cause := err.get("cause", _MISSING)) is _MISSING
            or (
                type(cause) is dict
                and len(cause) == 2
                and type(cause.get("type")) is str
                and type(cause.get("message")) is str
            )
        )
        and ((stack := err.get("stack", _MISSING)) is _MISSING or _fast_stack(stack))
    )


def _fast_http(http: object) -> bool:
    return (
        type(http) is dict
        and _HTTP_KEYS.issuperset(http)
        and type(http.get("method")) is str
        and type(http.get("path")) is str
        and type(status := http.get("status")) is int
        and 100 <= status <= 599
        and (type(duration := http.get("duration_ms")) is float or type(duration) is int)
        and duration >= 0
        and type(http.get("route")) in _STR_OR_NONE
        and type(http.get("client_ip")) in _STR_OR_NONE
        and type(http.get("user_agent")) in _STR_OR_NONE
        and type(http.get("request_id", "")) is str
    )


def validate_record(record: object) -> list[str]:
    """Check one parsed log line against ``LOG_RECORD_SCHEMA``.

    Args:
        record: The parsed JSON value of the line, normally a ``dict``.

    Returns:
        An empty list when the record is valid, else one human-readable reason per problem, each
        starting with the field it is about, e.g. ``trace_id: must be null or 32 lowercase hex digits,
        got 'ABC'``; past 20 reasons a last one, ``… and N more problems`` counts the rest.
        Never raises.
    """
    if type(record) is dict:
        get = record.get
        ts = get("timestamp")
        level = get("level")
        service = get("service")
        trace_id = get("trace_id", _MISSING)
        span_id = get("span_id", _MISSING)
        if (
            type(ts) is str
            and type(level) is str
            and type(service) is str
            and type(get("message")) is str
            and level in _LEVELS
            and service
            and (
                (type(trace_id) is str and type(span_id) is str and _TIMESTAMP_IDS(f"{ts}\x00{trace_id}\x00{span_id}"))
                or (trace_id is None and span_id is _MISSING and _TIMESTAMP(ts))
            )
            and (ts[8:10] <= "28" or _day_fits(ts[:10]))
            and type(get("logger", "")) is str
            and type(get("environment", "")) is str
            and type(get("version", "")) is str
            and type(get("request_id", "")) is str
            and type(get("truncated", False)) is bool
            and ((error := get("error", _MISSING)) is _MISSING or _fast_error(error))
            and ((http := get("http", _MISSING)) is _MISSING or _fast_http(http))
        ):
            return []
    return _reasons(record)


def _reasons(record: object) -> list[str]:
    """The exact check, with a reason per problem."""
    if not isinstance(record, dict):
        return [f"record: must be a JSON object, got {_show(record)}"]
    errors = _Reasons()
    get = record.get

    ts = get("timestamp", _MISSING)
    if ts is _MISSING:
        errors.append("timestamp: required field missing")
    elif not (isinstance(ts, str) and _TIMESTAMP(ts) is not None and _real_day(ts)):
        errors.append(_timestamp_reason(ts))

    level = get("level", _MISSING)
    if level is _MISSING:
        errors.append("level: required field missing")
    elif not (isinstance(level, str) and level in _LEVELS):
        errors.append(f"level: must be one of debug, info, warning, error, critical, got {_show(level)}")

    service = get("service", _MISSING)
    if service is _MISSING:
        errors.append("service: required field missing")
    elif not (isinstance(service, str) and service):
        errors.append(f"service: must be a non-empty string, got {_show(service)}")

    trace_id = get("trace_id", _MISSING)
    if trace_id is _MISSING:
        errors.append("trace_id: required field missing")
    elif trace_id is not None:
        if not (isinstance(trace_id, str) and _HEX32(trace_id) is not None):
            errors.append(f"trace_id: must be null or 32 lowercase hex digits, got {_show(trace_id)}")
        elif trace_id == _ZERO32:
            errors.append("trace_id: must not be all zeros (not a valid W3C trace id)")

    message = get("message", _MISSING)
    if message is _MISSING:
        errors.append("message: required field missing")
    elif not isinstance(message, str):
        errors.append(f"message: must be a string, got {_show(message)}")

    span_id = get("span_id", _MISSING)
    if span_id is not _MISSING:
        if not (isinstance(span_id, str) and _HEX16(span_id) is not None):
            errors.append(f"span_id: must be 16 lowercase hex digits, got {_show(span_id)}")
        elif span_id == _ZERO16:
            errors.append("span_id: must not be all zeros (not a valid W3C span id)")

    for key in _OPTIONAL_STRINGS:
        value = get(key, _MISSING)
        if value is not _MISSING and not isinstance(value, str):
            errors.append(f"{key}: must be a string, got {_show(value)}")

    truncated = get("truncated", _MISSING)
    if truncated is not _MISSING and not isinstance(truncated, bool):
        errors.append(f"truncated: must be true or false, got {_show(truncated)}")

    error = get("error", _MISSING)
    if error is not _MISSING:
        _check_error(error, errors)
    http = get("http", _MISSING)
    if http is not _MISSING:
        _check_http(http, errors)
    return errors.result()


# --- problem and alert: jsonschema ------------------------------------------------------------------
_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))"
).fullmatch


def _is_datetime(value: object) -> bool:
    # format "date-time" as RFC 3339 defines it. jsonschema's own checker (rfc3339-validator) refuses leap
    # seconds and is an optional install; this one agrees with validate_record.
    if not isinstance(value, str):
        return True
    m = _RFC3339(value)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year == 0 or not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    if hour > 23 or minute > 59 or second > 60:
        return False
    off_hour, off_minute = m.group(7), m.group(8)
    return off_hour is None or (int(off_hour) <= 23 and int(off_minute) <= 59)


@functools.cache
def _validator(path: Path) -> Any:
    try:
        from jsonschema import (  # type: ignore[import-untyped]  # noqa: PLC0415 - optional, dev extra
            Draft202012Validator,
            FormatChecker,
        )
    except ImportError as exc:
        raise ImportError(
            "obskit.schema.validate_problem() and validate_alert() need jsonschema: pip install jsonschema"
        ) from exc
    checker = FormatChecker(())
    for name, (func, raises) in Draft202012Validator.FORMAT_CHECKER.checkers.items():
        checker.checks(name, raises)(func)
    checker.checks("date-time")(_is_datetime)
    return Draft202012Validator(load_schema(path), format_checker=checker)


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(root)"


def _jsonschema_reasons(path: Path, instance: object, what: str) -> list[str]:
    if not isinstance(instance, dict):
        return [f"{what}: must be a JSON object, got {_show(instance)}"]
    errors: Callable[[object], Any] = _validator(path).iter_errors
    found = sorted(errors(instance), key=lambda e: (_where(e.absolute_path), e.message))
    return [f"{_where(e.absolute_path)}: {e.message}" for e in found]


def validate_problem(body: object) -> list[str]:
    """Check an error response body against ``PROBLEM_SCHEMA``.

    Args:
        body: The parsed JSON body.

    Returns:
        An empty list when valid, else ``"<field path>: <reason>"`` strings. Never raises for bad input.

    Raises:
        ImportError: ``jsonschema`` is not installed.
    """
    return _jsonschema_reasons(PROBLEM_SCHEMA, body, "body")


def validate_alert(event: object) -> list[str]:
    """Check an alert event against ``ALERT_SCHEMA``.

    Args:
        event: The event as a JSON-like mapping (what ``Webhook`` posts).

    Returns:
        An empty list when valid, else ``"<field path>: <reason>"`` strings. Never raises for bad input.

    Raises:
        ImportError: ``jsonschema`` is not installed.
    """
    return _jsonschema_reasons(ALERT_SCHEMA, event, "event")

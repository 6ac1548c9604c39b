"""Rendering a finished record: JSON lines through orjson, or a console line for humans.

Neither renderer ever raises: a value JSON cannot express falls back to a safe string, a record that still
cannot be encoded is sanitised as a whole, and a record above the size bound is shrunk with a marker.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from obskit._redact import redact_text

_OPTS = orjson.OPT_APPEND_NEWLINE
_MAX_DEPTH = 32


def safe_repr(obj: object) -> str:
    try:
        text = repr(obj)
    except Exception:
        return f"<unrepresentable {type(obj).__qualname__}>"
    return text if type(text) is str else f"<unrepresentable {type(obj).__qualname__}>"


def safe_str(obj: object) -> str:
    try:
        text = str(obj)
    except Exception:
        return safe_repr(obj)
    return text if type(text) is str else safe_repr(obj)


def _default(obj: object) -> Any:
    """orjson's hook for types it does not know: a faithful, JSON-safe stand-in.

    An exception's message and an object's repr are free text that can quote a secret
    (``Config(dsn='postgres://u:pw@db')``, ``token=…``): they are redacted like exception messages.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "backslashreplace")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, BaseException):
        return redact_text(f"{type(obj).__name__}: {safe_str(obj)}")
    return redact_text(safe_repr(obj))


def utf8_safe(s: str) -> str:
    # Lone surrogates cannot be UTF-8: keep them visible as escapes instead of failing the line.
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def sanitize(obj: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """A plain JSON-able copy of ``obj``: str keys, no cycles, bounded depth, no huge ints."""
    t = type(obj)
    if obj is None or t is bool or t is float:
        return None if t is float and not math.isfinite(obj) else obj
    if t is str:
        return utf8_safe(obj)
    if t is int:
        if -(2**63) <= obj < 2**64:
            return obj
        return f"<int of {obj.bit_length()} bits>"
    if depth >= _MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        if id(obj) in seen:
            return "[recursive]"
        inner = seen | {id(obj)}
        try:
            if isinstance(obj, dict):
                return {
                    (utf8_safe(k) if type(k) is str else safe_str(k)): sanitize(v, depth + 1, inner)
                    for k, v in list(obj.items())
                }
            return [sanitize(v, depth + 1, inner) for v in list(obj)]
        except Exception:
            return safe_repr(obj)
    try:
        return sanitize(_default(obj), depth + 1, seen)
    except Exception:
        return f"<unrepresentable {t.__qualname__}>"


def render_json(record: Mapping[str, Any], max_bytes: int) -> bytes:
    """One JSON line (with its newline) for ``record``, never raising, never longer than ``max_bytes``."""
    try:
        line = orjson.dumps(record, default=_default, option=_OPTS)
    except Exception:
        # Recursion, non-str keys, lone surrogates, >64-bit ints: rebuild a plain copy and try again.
        try:
            line = orjson.dumps(sanitize(record), option=_OPTS)
        except Exception as exc:  # pragma: no cover - sanitize() output is always encodable
            line = orjson.dumps(
                {k: record.get(k) for k in ("timestamp", "level", "service", "trace_id")}
                | {"message": safe_str(record.get("message")), "render_error": safe_repr(exc)},
                default=safe_repr,
                option=_OPTS,
            )
    if len(line) > max_bytes:
        line = _shrink(record, len(line), max_bytes)
    return line


_CORE = ("timestamp", "level", "service", "trace_id", "span_id", "logger", "environment", "version")
_NAMES = frozenset(("service", "logger", "environment", "version"))


def _shrink(record: Mapping[str, Any], size: int, max_bytes: int) -> bytes:
    """Keep the fields a pipeline indexes on; cut the message and error text; drop the rest.

    Cuts count characters, which JSON may write as up to six bytes each (``\\u001b``): the budget shrinks
    until the line fits, and a record that still cannot fit keeps only its identity and a marker.
    """
    budget = max(max_bytes // 4, 256)
    while True:
        line = orjson.dumps(sanitize(_small(record, size, budget)), option=_OPTS)
        if len(line) <= max_bytes or budget <= 16:
            break
        budget //= 4
    if len(line) > max_bytes:
        bare: dict[str, Any] = {k: record[k] for k in ("timestamp", "level", "trace_id", "span_id") if k in record}
        bare["service"] = safe_str(record.get("service", ""))[:64]
        bare["message"] = f"[record of {size} bytes dropped]"
        bare["truncated"] = True
        line = orjson.dumps(sanitize(bare), option=_OPTS)
    return line


def _small(record: Mapping[str, Any], size: int, budget: int) -> dict[str, Any]:
    # The ids and the timestamp have fixed sizes; the names a configuration or a caller chose are cut.
    small: dict[str, Any] = {k: _cut(record[k], budget) if k in _NAMES else record[k] for k in _CORE if k in record}
    message = safe_str(record.get("message", ""))
    small["message"] = message[:budget] + f"…[truncated, record was {size} bytes]"
    error = record.get("error")
    if isinstance(error, Mapping):
        small["error"] = {
            "type": safe_str(error.get("type", ""))[: min(512, budget)],
            "message": safe_str(error.get("message", ""))[:budget],
            "known": bool(error.get("known", False)),
            "code": error.get("code") if isinstance(error.get("code"), str) else None,
            "fingerprint": safe_str(error.get("fingerprint", "0" * 16))[:16],
            "truncated": True,
        }
    http = record.get("http")
    if isinstance(http, Mapping):
        small["http"] = {k: _cut(v, min(512, budget)) for k, v in http.items()}
    small["truncated"] = True
    return small


def _cut(value: Any, n: int) -> Any:
    return value[:n] if isinstance(value, str) else value


# -- console ------------------------------------------------------------------------------------------

# C0 controls, DEL and C1 controls (ESC starts terminal escape sequences), line and paragraph separators
# (a new line to some viewers) and bidi overrides and isolates (they reorder what the reader sees): never
# reach a terminal raw.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_char(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape(text: str) -> str:
    return _CONTROL.sub(_escape_char, text)


_COLORS = {
    "debug": "\x1b[2m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[1;31m",
}
_RESET = "\x1b[0m"
_SKIP = frozenset(("timestamp", "level", "message", "logger", "service", "error"))


def _value(v: Any) -> str:
    if type(v) is str:
        return _escape(v)
    return _escape(render_json({"v": v}, 1 << 20)[5:-2].decode("utf-8", "replace"))


def render_console(record: Mapping[str, Any], colors: bool) -> bytes:
    """``timestamp level [logger] message key=value …`` with control characters escaped."""
    level = str(record.get("level", "info"))
    parts = [str(record.get("timestamp", ""))]
    parts.append(f"{_COLORS.get(level, '')}{level:<8}{_RESET}" if colors else f"{level:<8}")
    if record.get("logger"):
        parts.append(f"[{_escape(safe_str(record['logger']))}]")
    parts.append(_escape(safe_str(record.get("message", ""))))
    parts.extend(f"{_escape(safe_str(k))}={_value(v)}" for k, v in record.items() if k not in _SKIP and v is not None)
    lines = [" ".join(parts)]
    error = record.get("error")
    if isinstance(error, Mapping):
        lines.append(f"  {_escape(safe_str(error.get('type')))}: {_escape(safe_str(error.get('message')))}")
        for frame in error.get("stack") or ():
            if isinstance(frame, Mapping):
                lines.append(
                    f"    at {_escape(safe_str(frame.get('function')))} "
                    f"({_escape(safe_str(frame.get('file')))}:{frame.get('line')})"
                )
    return ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")

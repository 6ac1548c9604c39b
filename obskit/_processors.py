"""The one processor every record goes through, structlog's and the standard library's alike.

It is a single fused step rather than a chain of small processors because it runs on every log line:
level, timestamp, service, trace ids, the ``event`` -> ``message`` rename, redaction, size bounds and the
structured ``error`` object are all done in one pass over the event dict, in the record's key order.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from obskit import _context, _stack
from obskit._errors import Classification, classify
from obskit._renderers import safe_str

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, MutableMapping

    from obskit._config import Settings

_UTC = UTC
_LEVEL_OF_METHOD = {
    "debug": "debug",
    "info": "info",
    "msg": "info",
    "log": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "err": "error",
    "exception": "error",
    "critical": "critical",
    "fatal": "critical",
    "failure": "critical",
}
LEVEL_NUMBERS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# Keys the record owns; a caller binding one of them keeps it under a trailing underscore instead.
RESERVED = frozenset(
    ("timestamp", "level", "service", "trace_id", "span_id", "message", "environment", "version", "error", "http")
)
# Keys a caller may set when the value has the record's type for them; any other value is renamed too.
_TYPED: dict[str, type] = {"logger": str, "request_id": str, "truncated": bool}
_MAX_GROUP_MEMBERS = 20
_PLAIN = frozenset((str, int, float, bool, type(None)))


# In a tuple: freezegun swaps every module attribute that *is* the real time_ns, not ones inside containers.
_REAL_TIME_NS = (time.time_ns,)
_second_prefix: tuple[int, str] = (-1, "")


def timestamp() -> str:
    """RFC 3339 UTC with microseconds; the date part is formatted once per second."""
    global _second_prefix  # noqa: PLW0603
    clock = time.time_ns
    if clock is not _REAL_TIME_NS[0]:
        # freezegun (or another patcher) is active: its time_ns() goes through a float and loses
        # microseconds, datetime.now() renders the frozen time exactly.
        return datetime.now(_UTC).isoformat(timespec="microseconds")[:-6] + "Z"
    seconds, nanos = divmod(clock(), 1_000_000_000)
    cached_second, prefix = _second_prefix
    if seconds != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_prefix = (seconds, prefix)  # one tuple: threads never see a torn pair
    return f"{prefix}.{nanos // 1000:06d}Z"


# A datetime that orjson renders itself ("2026-11-29T13:44:41.225485Z" with the options below) costs a
# quarter of formatting the string in Python. utcnow() is the cheapest clock read; 3.12 deprecates it.
JSON_TIME_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_utcnow = functools.partial(datetime.now, _UTC) if sys.version_info >= (3, 12) else datetime.utcnow


def record_time() -> datetime | str:
    """The record's timestamp for orjson (``JSON_TIME_OPTIONS``): a datetime, or the string from
    :func:`timestamp` under freezegun and on a whole second (orjson would leave out a zero fraction)."""
    if time.time_ns is _REAL_TIME_NS[0]:
        now = _utcnow()
        if now.microsecond:
            return now
    return timestamp()


def _otel_ids() -> tuple[str, str] | None:
    """Ids of the active OpenTelemetry span, if the SDK is in use at all (never imports it)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    try:
        ctx = trace.get_current_span().get_span_context()
    except Exception:
        return None
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def exc_from_info(exc_info: Any) -> BaseException | None:
    """Normalise every ``exc_info`` form structlog and logging accept into the exception (or None)."""
    if exc_info is None or exc_info is False:
        return None
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) == 3 and isinstance(exc_info[1], BaseException) else None
    # exc_info=True: the exception being handled right now
    return sys.exc_info()[1]


class Processor:
    """The fused processor; one instance lives for the process, its settings swap on reconfigure."""

    def __init__(self, settings: Settings) -> None:
        self.update(settings)

    def update(self, settings: Settings) -> None:
        # Everything the hot path needs, read once per configure() instead of once per line.
        self.settings = settings
        self._service = settings.service
        self._static = tuple(
            (k, v) for k, v in (("environment", settings.environment), ("version", settings.version)) if v is not None
        )
        self._limit = settings.max_value_chars
        # Container members walked per record: past this many a line is over max_record_bytes anyway.
        self._items = max(settings.max_record_bytes // 2, 256)
        self._otel = settings.otel
        self._stack_level = settings.stack_level
        self._is_secret = settings.redactor.is_secret
        self._redact_text = settings.redactor.redact_text
        self._keys: dict[str, int] = {}

    def _key_kind(self, key: str) -> int:
        """0: plain, 1: secret (value redacted), 2: reserved (key renamed), 3: typed; cached per key string."""
        kind = 1 if self._is_secret(key) else 2 if key in RESERVED else 3 if key in _TYPED else 0
        if len(self._keys) < 8192:
            self._keys[key] = kind
        return kind

    def clean_args(self, args: Any) -> Any:
        """``%``-style arguments with their containers walked for secret keys, before str() flattens them."""
        if type(args) is tuple:
            if all(type(a) in _PLAIN for a in args):
                return args
            walk = _Walk(self._is_secret, self._limit, self._items)
            return tuple(a if type(a) in _PLAIN else walk.clean(a, 0) for a in args)
        if isinstance(args, Mapping):
            return _Walk(self._is_secret, self._limit, self._items).clean(args, 0)
        return args

    # structlog processor signature
    def __call__(self, logger: object, method_name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
        event = event_dict.pop("event", "")
        exc_info = event_dict.pop("exc_info", None)
        if method_name == "exception" and exc_info is None:
            exc_info = True
        return self.build(
            _LEVEL_OF_METHOD.get(method_name, "info"), event, event_dict, exc_info, getattr(logger, "name", None)
        )

    def build(
        self,
        level: str,
        event: object,
        fields: MutableMapping[str, Any],
        exc_info: Any,
        logger_name: str | None = None,
    ) -> dict[str, Any]:
        ctx = _context._current.get()
        limit = self._limit
        # A container as the message is walked like a field first: its secret keys are masked and its
        # size is bounded before str() spells it out.
        message = event if type(event) is str else safe_str(_Walk(self._is_secret, limit, self._items).clean(event, 0))
        size = len(message)
        if size > limit:
            # Redact a little past the cut, then cut: a credential cut short would escape the patterns.
            # The regexes still never see more than twice what is kept.
            message = message[: 2 * limit]
        # Library messages carry URLs and key=value pairs (httpx logs "GET ...?api_key=..."), and people
        # write "db password: hunter2": redact_text's own exact prefilter keeps the regexes off the rest.
        message = self._redact_text(message)
        if size > limit:
            message = f"{message[:limit]}…[truncated {size - limit} chars]"
        if ctx is not None:
            out: dict[str, Any] = {
                "timestamp": timestamp(),
                "level": level,
                "service": self._service,
                "trace_id": ctx.trace_id,
                "message": message,
                "span_id": ctx.span_id,
            }
            if ctx.request_id is not None:
                out["request_id"] = ctx.request_id
        else:
            ids = _otel_ids() if self._otel else None
            out = {
                "timestamp": timestamp(),
                "level": level,
                "service": self._service,
                "trace_id": ids[0] if ids else None,
                "message": message,
            }
            if ids:
                out["span_id"] = ids[1]
        if logger_name is not None:
            out["logger"] = logger_name
        for k, v in self._static:
            out[k] = v
        if fields:
            keys = self._keys
            walk: _Walk | None = None
            for key, value in fields.items():
                if type(key) is not str:
                    key = safe_str(key)  # noqa: PLW2901
                kind = keys.get(key)
                if kind is None:
                    kind = self._key_kind(key)
                if kind == 1:
                    out[key] = "[REDACTED]"
                    continue
                t = type(value)
                if t is str:
                    if len(value) > limit:
                        value = _truncate(value, limit)  # noqa: PLW2901
                elif t is dict or t is list or t is tuple or (t not in _ATOMS and _shape(t)):
                    # Containers, and objects orjson renders field by field (dataclasses, dict subclasses):
                    # one walk per record for secret keys at any depth, cycles and size.
                    if walk is None:
                        walk = _Walk(self._is_secret, limit, self._items)
                    value = walk.clean(value, 0)  # noqa: PLW2901
                if kind >= 2 and (kind == 2 or type(value) is not _TYPED[key] or (key == "logger" and "logger" in out)):
                    key = key + "_"  # noqa: PLW2901
                out[key] = value
        if exc_info is not None and exc_info is not False:
            exc = exc_from_info(exc_info)
            if exc is not None:
                out["error"] = error_object(exc, LEVEL_NUMBERS[level] >= self._stack_level)
        return out


def _truncate(text: str, limit: int) -> str:
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


_MAX_DEPTH = 16
_MORE = "[more items]"
_ATOMS = frozenset((str, int, float, bool, type(None)))
_LEAF, _MAPPING, _NAMED_TUPLE, _SEQUENCE, _DATACLASS, _NAMESPACE = range(6)
_shapes: dict[type, int] = {}


def _shape(t: type) -> int:
    """How a value of type ``t`` is walked (0: not at all); decided once per type."""
    shape = _shapes.get(t)
    if shape is None:
        try:
            if issubclass(t, Mapping):
                shape = _MAPPING
            elif issubclass(t, tuple) and hasattr(t, "_asdict"):
                shape = _NAMED_TUPLE
            elif issubclass(t, (list, tuple, set, frozenset)):
                shape = _SEQUENCE
            elif dataclasses.is_dataclass(t):
                shape = _DATACLASS
            elif issubclass(t, types.SimpleNamespace):
                shape = _NAMESPACE
            else:
                shape = _LEAF
        except Exception:  # a metaclass that raises on inspection: rendered by the fallback
            shape = _LEAF
        if len(_shapes) < 4096:
            _shapes[t] = shape
    return shape


class _Walk:
    """One record's walk over nested field values: secret keys at any depth, cycles, depth and size.

    Each value comes back as itself when nothing had to change (the common case copies nothing). Shapes
    orjson would render field by field without asking (dict and list subclasses, dataclasses) and shapes
    that would reach ``repr()`` with their keys in plain text (other mappings, named tuples, namespaces)
    come back as plain dicts and lists, so their secret keys are seen too. A container met again on its
    own path becomes ``"[recursive]"``; past ``items`` members over all of a record's containers the rest
    is cut, since such a line is over ``max_record_bytes`` anyway, and a walk over a structure that shares
    its parts (exponential when expanded) stops.
    """

    __slots__ = ("active", "is_secret", "items", "limit")

    def __init__(self, is_secret: Callable[[object], bool], limit: int, items: int) -> None:
        self.is_secret = is_secret
        self.limit = limit
        self.items = items
        self.active: set[int] = set()

    def clean(self, value: Any, depth: int) -> Any:
        t = type(value)
        if t is str:
            return _truncate(value, self.limit) if len(value) > self.limit else value
        if t is int or t is float or t is bool or value is None:
            return value
        if t is dict:
            return self._container(value, depth, value, mapping=True)
        if t is list or t is tuple:
            return self._container(value, depth, value, mapping=False)
        shape = _shape(t)
        if not shape:
            return value
        try:
            if shape == _MAPPING:
                return self._container(value, depth, dict(value.items()), mapping=True, keep=False)
            if shape == _NAMED_TUPLE:  # keep the field names
                return self._container(value, depth, dict(value._asdict()), mapping=True, keep=False)
            if shape == _SEQUENCE:
                return self._container(value, depth, list(value), mapping=False, keep=False)
            if shape == _DATACLASS:
                fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
                return self._container(value, depth, fields, mapping=True, keep=False)
            return self._container(value, depth, dict(vars(value)), mapping=True, keep=False)  # a namespace
        except Exception:  # one that cannot be enumerated is left to the renderer's fallback
            return value

    def _secret_key(self, key: object) -> bool:
        if type(key) is str:
            return self.is_secret(key)
        # b"password" is as secret as "password" (a str subclass's own __str__ may raise: safe_str)
        return isinstance(key, (str, bytes)) and self.is_secret(safe_str(key))

    def _container(self, value: Any, depth: int, members: Any, *, mapping: bool, keep: bool = True) -> Any:
        if depth >= _MAX_DEPTH:
            return "[nested too deep]"
        if self.items <= 0:
            return _MORE
        ident = id(value)
        if ident in self.active:
            return "[recursive]"
        self.active.add(ident)
        try:
            return self._dict(members, depth, keep) if mapping else self._list(members, depth, keep)
        finally:
            self.active.discard(ident)

    def _dict(self, value: Mapping[Any, Any], depth: int, keep: bool) -> Any:
        out: dict[Any, Any] | None = None if keep else {}
        for i, (k, v) in enumerate(value.items()):
            if self.items <= 0:
                if out is None:
                    out = dict(_first(value.items(), i))
                out[_MORE] = len(value) - i
                return out
            self.items -= 1
            nv = "[REDACTED]" if self._secret_key(k) else self.clean(v, depth + 1)
            if out is None and nv is not v:
                out = dict(_first(value.items(), i))
            if out is not None:
                out[k] = nv
        return value if out is None else out

    def _list(self, value: Iterable[Any], depth: int, keep: bool) -> Any:
        out: list[Any] = []
        changed = not keep
        for v in value:
            if self.items <= 0:
                out.append(_MORE)
                return out
            self.items -= 1
            nv = self.clean(v, depth + 1)
            changed = changed or nv is not v
            out.append(nv)
        return out if changed else value


def _first(items: Iterable[Any], n: int) -> list[Any]:
    """The first ``n`` of ``items`` (a dict's items up to the first member that changed)."""
    out = []
    for i, item in enumerate(items):
        if i >= n:
            break
        out.append(item)
    return out


def error_object(exc: BaseException, with_stack: bool) -> dict[str, Any]:
    """The record's ``error`` object: type, redacted message, classification, fingerprint, frames."""
    from obskit._redact import redact_text  # noqa: PLC0415

    c = cached_classification(exc)
    err: dict[str, Any] = {
        "type": _stack.type_name(exc),
        "message": redact_text(safe_str(exc)[:8192])[:4096],
        "known": c.known,
        "code": c.code if c.known else None,
        "fingerprint": cached_fingerprint(exc),
    }
    if with_stack:
        err["stack"] = _stack.frames(exc)
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        err["cause"] = {"type": _stack.type_name(cause), "message": redact_text(safe_str(cause)[:2048])[:1024]}
    if isinstance(exc, BaseExceptionGroup):
        members = []
        for member in _leaves(exc)[:_MAX_GROUP_MEMBERS]:
            m: dict[str, Any] = {
                "type": _stack.type_name(member),
                "message": redact_text(safe_str(member)[:2048])[:1024],
                "fingerprint": cached_fingerprint(member),
            }
            if with_stack:
                m["stack"] = _stack.frames(member)
            members.append(m)
        err["exceptions"] = members
    return err


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            out.extend(_leaves(e))
        else:
            out.append(e)
    return out


def cached_classification(exc: BaseException) -> Classification:
    """classify(), once per exception object: the middleware, the record and the alert share it."""
    c = getattr(exc, "__obskit_classification__", None)
    if isinstance(c, Classification):
        return c
    c = classify(exc)
    mark(exc, "__obskit_classification__", c)
    return c


def cached_fingerprint(exc: BaseException) -> str:
    """The fingerprint, computed once per exception object (the log record and the alert share it)."""
    fp = getattr(exc, "__obskit_fingerprint__", None)
    if type(fp) is str:
        return fp
    fp = _stack.fingerprint(exc)
    mark(exc, "__obskit_fingerprint__", fp)  # a type that refuses attributes recomputes next time
    return fp


def mark(exc: BaseException, name: str, value: object) -> None:
    """Set ``name`` on ``exc`` if its type allows (a plain try: a contextlib.suppress block costs more)."""
    try:  # noqa: SIM105
        setattr(exc, name, value)
    except Exception:  # noqa: S110 - an exception type that refuses attributes is just not marked
        pass

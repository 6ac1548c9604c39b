"""Known and unknown errors.

Hierarchy::

    Exception
     └── KnownError          an expected failure: its own status, a public detail, logged as a warning

Anything else raised while serving a request is *unknown*: answered with a generic 500, logged as an
error with its stack and routed to the alert hooks. Third-party types are made known with
:func:`register_known`; Starlette's ``HTTPException`` and FastAPI's ``RequestValidationError`` are known
out of the box, with their own status.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Level = Literal["debug", "info", "warning", "error", "critical"]
LEVELS: tuple[Level, ...] = ("debug", "info", "warning", "error", "critical")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


# A word starts at a capital after a lower-case letter or digit, or at the last capital of an acronym:
# APIKeyInvalid -> api_key_invalid, HTTP2Error -> http2_error, OAuthError -> o_auth_error.
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _snake(name: str) -> str:
    """The default ``code`` of a KnownError subclass, from its class name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # ÉchecError
    words = _WORD.sub("_", ascii_name).lower()
    code = re.sub(r"[^a-z0-9]+", "_", words).strip("_").removesuffix("_error")  # _PrivateError
    return code.lstrip("0123456789_") or "known_error"


class KnownError(Exception):
    """Base class for expected errors.

    Subclass it and set the class attributes; raise it with a ``detail`` that is safe to show to clients
    and any ``extra`` keys that should be logged but never returned.

    Args:
        detail: A sentence for the client, returned in the problem response's ``detail``.
        **extra: Logged with the error record, never sent to the client.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "known_error"
    title: ClassVar[str | None] = None
    level: ClassVar[Level] = "warning"
    alert: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = _snake(cls.__name__)
        _check(cls.status, cls.code, cls.level)

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        if detail is not None and not isinstance(detail, str):
            detail = str(detail)  # KnownError(42): the problem's detail is a string (RFC 9457)
        super().__init__(detail if detail is not None else (self.title or self.code))
        self.detail = detail
        self.extra = extra

    def __repr__(self) -> str:
        return f"{type(self).__name__}(detail={self.detail!r}, status={self.status}, code={self.code!r})"


# Not frozen: a frozen dataclass's __init__ costs 2.5x as much, and one is made for every KnownError raised.
# Treat it as read-only all the same: the middleware, the record and the alert share one per exception.
@dataclass(slots=True)
class Classification:
    known: bool
    status: int
    code: str
    title: str
    level: Level
    alert: bool
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class _Registration:
    status: int | None  # None: read it from the instance's ``status_code`` (HTTPException)
    code: str
    title: str | None
    level: Level
    alert: bool


_registry: dict[type[BaseException], _Registration] = {}
_registry_lock = threading.Lock()
_DEFAULT_MODULES = frozenset(("starlette.exceptions", "fastapi.exceptions"))
_pending_defaults = set(_DEFAULT_MODULES)


def _check(status: int, code: str, level: str) -> None:
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status must be an int from 400 to 599, got {status!r}")
    if not isinstance(code, str) or not _SNAKE.match(code):
        raise ValueError(f"code must be a snake_case string, got {code!r}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")


def register_known(
    exc_type: type[BaseException],
    *,
    status: int,
    code: str,
    title: str | None = None,
    level: Level = "warning",
    alert: bool = False,
) -> None:
    """Declare a third-party exception type as known.

    Args:
        exc_type: The exception class; subclasses match too, the nearest registration along the MRO wins.
        status: HTTP status of the problem response (400-599).
        code: snake_case machine-readable code, in the response and the ``obskit_errors_total`` metric.
        title: Short human title for the response; defaults to the status phrase.
        level: Log level of the record.
        alert: Route occurrences to the alert hooks as well.

    Raises:
        TypeError: ``exc_type`` is not an exception class.
        ValueError: a bad status, code or level.
    """
    if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
        raise TypeError(f"exc_type must be an exception class, got {exc_type!r}")
    _check(status, code, level)
    with _registry_lock:
        _registry[exc_type] = _Registration(status, code, title, level, alert)


def _register_default(module: str) -> None:
    if module == "starlette.exceptions":
        from starlette.exceptions import HTTPException, WebSocketException  # noqa: PLC0415

        _registry.setdefault(HTTPException, _Registration(None, "http_error", None, "warning", False))
        _registry.setdefault(WebSocketException, _Registration(400, "websocket_error", None, "warning", False))
    elif module == "fastapi.exceptions":
        from fastapi.exceptions import RequestValidationError  # noqa: PLC0415

        _registry.setdefault(
            RequestValidationError,
            _Registration(422, "validation_error", "Unprocessable Content", "warning", False),
        )


def _load_defaults() -> None:
    # Only frameworks already imported can have raised their exceptions: never import one just to check.
    with _registry_lock:
        for module in tuple(_pending_defaults):
            if module in sys.modules:
                _pending_defaults.discard(module)
                _register_default(module)


@functools.cache  # statuses are a small set; HTTPStatus(n) is an enum lookup and the regex below costs more
def _phrase(status: int) -> str:
    from http import HTTPStatus  # noqa: PLC0415

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@functools.cache
def _status_code(status: int) -> str:
    """404 -> ``not_found``: a readable code for framework HTTP errors."""
    return re.sub(r"[^a-z0-9]+", "_", _phrase(status).lower()).strip("_") or "http_error"


_UNKNOWN = Classification(
    known=False, status=500, code="internal_error", title="Internal Server Error", level="error", alert=True
)


def classify(exc: BaseException) -> Classification:
    """How obskit treats ``exc``: known (its own status and public detail) or unknown (generic 500).

    An exception group is unknown when any member is; otherwise it takes its first member's treatment.
    """
    if isinstance(exc, BaseExceptionGroup):
        members = [classify(e) for e in exc.exceptions]
        unknown = next((c for c in members if not c.known), None)
        return unknown or (members[0] if members else _UNKNOWN)
    if isinstance(exc, KnownError):
        return Classification(
            known=True,
            status=exc.status,
            code=exc.code,
            title=exc.title or _phrase(exc.status),
            level=exc.level,
            alert=exc.alert,
            detail=exc.detail,
        )
    if _pending_defaults:
        _load_defaults()
    for cls in type(exc).__mro__:
        reg = _registry.get(cls)
        if reg is None:
            continue
        status = reg.status
        detail: str | None = None
        code = reg.code
        if status is None:
            raw = getattr(exc, "status_code", 500)
            status = raw if isinstance(raw, int) and 400 <= raw <= 599 else 500
            text = getattr(exc, "detail", None)
            detail = text if isinstance(text, str) else None
            code = _status_code(status)
        return Classification(
            known=True,
            status=status,
            code=code,
            title=reg.title or _phrase(status),
            level=reg.level,
            alert=reg.alert,
            detail=detail,
        )
    return _UNKNOWN


def reset_registry() -> None:
    """Forget every :func:`register_known` registration (the defaults come back on next use)."""
    with _registry_lock:
        _registry.clear()
        _pending_defaults.update(_DEFAULT_MODULES)

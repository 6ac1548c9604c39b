"""Settings, their ``OBSKIT_*`` environment fallbacks, and :func:`configure`.

Precedence for every setting: the keyword argument, then its environment variable, then the default.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal, get_args

from obskit import _logsetup
from obskit._processors import LEVEL_NUMBERS
from obskit._redact import DEFAULT_REDACT_KEYS, Redactor, set_redactor

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from obskit._logsetup import BoundLogger

LogFormat = Literal["json", "console", "auto"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
_FORMATS: tuple[str, ...] = get_args(LogFormat)
_LEVELS: tuple[str, ...] = get_args(LogLevel)


@dataclass(frozen=True, slots=True)
class Settings:
    """What :func:`configure` resolved; read-only. ``obskit.settings()`` returns the active one."""

    service: str
    environment: str | None = None
    version: str | None = None
    level: LogLevel = "info"
    format: LogFormat = "json"
    stream: IO[Any] | None = None
    redact: tuple[str, ...] = DEFAULT_REDACT_KEYS
    alerts: Any = None
    # options
    max_value_chars: int = 8192
    max_record_bytes: int = 64 * 1024
    stack_level: int = 40
    capture_warnings: bool = True
    otel: bool = True
    debug: bool = False
    trusted_proxies: tuple[str, ...] = ()
    access_log: bool = True
    access_log_exclude: tuple[str, ...] = ()
    metrics: bool = False
    batch_writes: bool = True
    console: bool = field(default=False, repr=False)
    colors: bool = field(default=False, repr=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False, compare=False)


_OPTIONS = {
    "max_value_chars": int,
    "max_record_bytes": int,
    "stack_level": str,
    "capture_warnings": bool,
    "otel": bool,
    "debug": bool,
    "trusted_proxies": tuple,
    "access_log": bool,
    "access_log_exclude": tuple,
    "metrics": bool,
    "batch_writes": bool,
}

_lock = threading.Lock()
_settings: Settings | None = None
_pipeline: _logsetup.Pipeline | None = None


def _pick(value: str | None, env: str, default: str | None) -> str | None:
    if value is not None:
        return value
    from_env = os.environ.get(env)
    return from_env or default


def _is_tty(stream: IO[Any] | None) -> bool:
    target = stream if stream is not None else sys.stdout
    try:
        return bool(target.isatty())
    except Exception:
        return False


def configure(
    *,
    service: str | None = None,
    environment: str | None = None,
    version: str | None = None,
    level: LogLevel | None = None,
    format: LogFormat | None = None,
    stream: IO[Any] | None = None,
    redact: Iterable[str] | None = None,
    alerts: Any = None,
    **options: Any,
) -> Settings:
    """Configure structured logging (structlog and the standard library) and alert routing.

    Calling it again replaces the previous configuration; it never adds a second handler.

    Args:
        service: Service name in every record. Falls back to ``OBSKIT_SERVICE``; required.
        environment: ``OBSKIT_ENVIRONMENT``; added to records when set.
        version: ``OBSKIT_VERSION``; added to records when set.
        level: Minimum level, ``OBSKIT_LOG_LEVEL``, default ``"info"``.
        format: ``"json"``, ``"console"`` or ``"auto"`` (console on a TTY); ``OBSKIT_LOG_FORMAT``.
        stream: Where lines go; default: ``sys.stdout`` at the time of each write.
        redact: Key patterns treated as secret (substring match, case-insensitive); default
            :data:`obskit.DEFAULT_REDACT_KEYS`. Pass ``[*obskit.DEFAULT_REDACT_KEYS, "ssn"]`` to extend.
        alerts: An :class:`obskit.alerts.AlertRouter` that unknown errors are routed to.
        **options: ``max_value_chars`` (longest string value kept whole, 8192), ``max_record_bytes``
            (bound on one line, 65536), ``stack_level`` (lowest level whose error records carry the stack,
            ``"error"``), ``capture_warnings`` (route :mod:`warnings` into logging, True), ``otel`` (use an
            active OpenTelemetry span's ids, True), ``debug`` (add exception type and message to 500
            bodies, for local development only, False), ``trusted_proxies`` (IPs whose
            ``X-Forwarded-For`` is believed), ``access_log`` (True), ``access_log_exclude`` (paths such as
            health checks without an access record), ``metrics`` (Prometheus metrics through the
            ``prometheus`` extra, False), ``batch_writes`` (lines below ``error`` that the event loop
            logs while serving requests, access records included, are written to a pipe, file or terminal
            with one system call when the loop turn ends, at most 0.1 s later even if the loop is blocked;
            errors and everything outside a request are written at once, after what was held; True).

    Returns:
        The resolved :class:`Settings`.

    Raises:
        ValueError: a missing service, or a value outside the allowed ones (the message lists them).
    """
    svc = _pick(service, "OBSKIT_SERVICE", None)
    if not svc or not isinstance(svc, str):
        raise ValueError("configure() needs a service name: pass service=... or set OBSKIT_SERVICE")
    lvl = _level_name(_pick(level, "OBSKIT_LOG_LEVEL", "info") or "info")
    if lvl not in _LEVELS:
        raise ValueError(f"level must be one of {', '.join(_LEVELS)}; got {lvl!r}")
    fmt = (_pick(format, "OBSKIT_LOG_FORMAT", "json") or "json").lower()
    if fmt not in _FORMATS:
        raise ValueError(f"format must be one of {', '.join(_FORMATS)}; got {fmt!r}")
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_OPTIONS))}")
    opts = _check_options(options)
    if isinstance(redact, str):
        raise TypeError("redact must be a list of key patterns, not a single string")
    patterns = DEFAULT_REDACT_KEYS if redact is None else tuple(redact)
    redactor = Redactor(patterns)
    console = fmt == "console" or (fmt == "auto" and _is_tty(stream))
    settings = Settings(
        service=svc,
        environment=_pick(environment, "OBSKIT_ENVIRONMENT", None),
        version=_pick(version, "OBSKIT_VERSION", None),
        level=lvl,  # type: ignore[arg-type]
        format=fmt,  # type: ignore[arg-type]
        stream=stream,
        redact=redactor.patterns,
        alerts=alerts,
        console=console,
        colors=console and _is_tty(stream),
        redactor=redactor,
        **opts,
    )
    _apply(settings)
    return settings


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in ("max_value_chars", "max_record_bytes"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 256:
                raise ValueError(f"{key} must be an int >= 256, got {value!r}")
            out[key] = value
        elif key == "stack_level":
            name = _level_name(value)
            if name not in LEVEL_NUMBERS:
                raise ValueError(f"stack_level must be one of {', '.join(LEVEL_NUMBERS)}; got {value!r}")
            out[key] = LEVEL_NUMBERS[name]
        elif key in ("trusted_proxies", "access_log_exclude"):
            if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
                raise ValueError(f"{key} must be a list of strings, got {value!r}")
            if not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of strings, got {value!r}")
            out[key] = tuple(value)
        else:
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be True or False, got {value!r}")
            out[key] = value
    return out


def _apply(settings: Settings) -> None:
    global _settings, _pipeline  # noqa: PLW0603
    with _lock:
        from obskit import _metrics  # noqa: PLC0415

        if settings.metrics:
            # First: it is what can fail (prometheus-client missing, a bad PROMETHEUS_MULTIPROC_DIR), and a
            # configure() that raises must leave the previous configuration whole.
            _metrics.enable()
        set_redactor(settings.redactor)
        if _pipeline is None:
            _pipeline = _logsetup.Pipeline(settings)
        else:
            _pipeline.update(settings)
        _settings = settings
        _logsetup.install(settings, _pipeline)
        if not settings.metrics:
            _metrics.state.active = False  # configure(metrics=False) after metrics=True stops counting
        if settings.alerts is not None:
            bind = getattr(settings.alerts, "bind", None)
            if callable(bind):
                bind(settings.service, settings.environment)


def _level_name(value: object) -> object:
    """``"WARNING"`` and ``logging.WARNING`` name the level ``"warning"``; anything else is left for the
    caller's check to refuse with the allowed values."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool):
        return {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}.get(value, value)
    return value


def settings() -> Settings | None:
    """The active settings, or ``None`` before :func:`configure`."""
    return _settings


def reset() -> None:
    """Undo :func:`configure`: logging and structlog go back to what they were (for tests)."""
    global _settings  # noqa: PLW0603
    with _lock:
        _logsetup.uninstall()
        set_redactor(Redactor())
        _settings = None
        from obskit import _metrics  # noqa: PLC0415

        _metrics.state.active = False


def get_logger(name: str | None = None) -> BoundLogger:
    """A structlog bound logger whose records follow obskit's record (SPEC §3).

    Args:
        name: Shown as the record's ``logger`` field; usually ``__name__``.

    Returns:
        A structlog bound logger (``bind``, ``new``, ``unbind`` work as usual). It reads the level and
        the configuration at each call, so it is safe to create at import time, before :func:`configure`;
        records logged before configure() take the service name from ``OBSKIT_SERVICE``.
    """
    # A concrete logger rather than structlog's lazy proxy: the proxy costs an attribute lookup
    # through __getattr__ on every call, and this logger needs no late binding.
    return _logsetup.BoundLogger(_logsetup.sink_logger(name), [], {})


__all__ = ["Settings", "configure", "get_logger", "reset", "settings"]

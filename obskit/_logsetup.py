"""One chain for every line the process prints: structlog loggers and the standard library's.

structlog is configured once with obskit's wrapper class and the process-wide :class:`Processor`; the
standard library gets a handler on the root logger that feeds its records through the same processor.
uvicorn turns propagation off for its loggers, so their handlers are replaced too.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

import structlog

from obskit._processors import _LEVEL_OF_METHOD, LEVEL_NUMBERS, Processor
from obskit._renderers import render_console, render_json, safe_repr, safe_str

if TYPE_CHECKING:
    from collections.abc import Callable

    from obskit._config import Settings

# Loggers that frameworks configure with propagate=False and handlers of their own.
TAKEN_OVER = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn", "gunicorn.error", "gunicorn.access")


_BINARY = (io.RawIOBase, io.BufferedIOBase)


class Sink:
    """Writes rendered lines; a failing stream is counted and reported once, never raised to the caller."""

    def __init__(self) -> None:
        self.captures: list[Callable[[bytes], None]] = []
        self.failures = 0
        self._reported = False
        self._lock = threading.Lock()
        self.set_stream(None)

    def set_stream(self, stream: IO[Any] | None) -> None:
        """None means whatever ``sys.stdout`` is at the time of each write (pytest's capture swaps it)."""
        self.stream = stream
        self._binary: Any = None
        if stream is None:
            return
        if isinstance(stream, _BINARY):
            self._binary = stream
        elif isinstance(getattr(stream, "buffer", None), _BINARY):
            self._binary = stream.buffer  # type: ignore[attr-defined]

    def write(self, line: bytes) -> None:
        for capture in self.captures:
            capture(line)
        try:
            out = self._binary
            if out is None:
                stream = self.stream if self.stream is not None else sys.stdout
                out = getattr(stream, "buffer", None)
                if out is None:
                    with self._lock:
                        stream.write(line.decode("utf-8"))
                        stream.flush()
                    return
            # A BufferedWriter serialises writes itself; one write() call is one whole line.
            out.write(line)
            out.flush()
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self._reported:
            return
        self._reported = True
        try:
            err = sys.__stderr__
            if err is not None:
                err.write(f"obskit: writing a log line failed ({safe_repr(exc)}); further failures are counted\n")
                err.flush()
        except Exception:  # noqa: S110 - nowhere left to report to
            pass

    def reset_failures(self) -> None:
        self.failures = 0
        self._reported = False


sink = Sink()


class Pipeline:
    """The processor plus the renderer: the last element of structlog's processor list."""

    def __init__(self, settings: Settings) -> None:
        self.processor = Processor(settings)
        self.settings = settings

    def update(self, settings: Settings) -> None:
        self.settings = settings
        self.processor.update(settings)

    def render(self, record: dict[str, Any]) -> bytes:
        s = self.settings
        if s.console:
            return render_console(record, s.colors)
        return render_json(record, s.max_record_bytes)

    def line(
        self,
        logger: object,
        method_name: str,
        event: Any,
        fields: dict[str, Any],
        error: dict[str, Any] | None = None,
        http: dict[str, Any] | None = None,
    ) -> bytes:
        """The rendered line for one call of a bound logger (the direct path, no processor chain).

        ``http`` and ``error`` are objects obskit built itself (the middleware's request record, an error
        response the framework produced without an exception): added as they are, with no redaction walk.
        """
        try:
            exc_info = fields.pop("exc_info", None)
            record = self.processor.build(
                _LEVEL_OF_METHOD.get(method_name, "info"),
                event if event is not None else "",
                fields,
                exc_info,
                getattr(logger, "name", None),
            )
            if http is not None:
                record["http"] = http
            if error is not None:
                record["error"] = error
        except Exception as exc:  # the logging call never raises
            record = self.processor.build("error", "obskit could not process a log record", {}, None)
            record["render_error"] = safe_repr(exc)
        return self.render(record)

    def __call__(self, logger: object, method_name: str, event_dict: Any) -> bytes:
        try:
            record = self.processor(logger, method_name, event_dict)
        except Exception as exc:  # the logging call never raises
            record = self.processor.build("error", "obskit could not process a log record", {}, None)
            record["render_error"] = safe_repr(exc)
        return self.render(record)


class SinkLogger:
    """structlog's wrapped logger: carries the logger name; every method writes to the sink."""

    __slots__ = ("name",)

    def __init__(self, name: str | None) -> None:
        self.name = name

    def msg(self, line: bytes) -> None:
        sink.write(line)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


_sink_loggers: dict[str | None, SinkLogger] = {}


def _sink_logger_factory(*args: Any) -> SinkLogger:
    return sink_logger(args[0] if args and isinstance(args[0], str) else None)


def sink_logger(name: str | None) -> SinkLogger:
    logger = _sink_loggers.get(name)
    if logger is None:
        logger = SinkLogger(name)
        if len(_sink_loggers) < 10_000:  # names come from code, but never grow without bound
            _sink_loggers[name] = logger
    return logger


# -- structlog wrapper: the level is read at call time so reconfiguring works on cached loggers --------


class _State:
    """What cached loggers read at call time, so configure() reaches loggers made before it."""

    __slots__ = ("level", "pipeline")

    def __init__(self) -> None:
        self.level = 20
        self.pipeline: Pipeline | None = None


state = _State()

# structlog's registry of the context variables bind_contextvars() made: merging just those is
# O(bound keys) instead of walking the whole context as merge_contextvars does. Should a structlog
# release drop it, the public processor takes over.
_STRUCTLOG_VARS: dict[str, Any] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)


_fallback: list[Pipeline] = []


def fallback_pipeline() -> Pipeline:
    """Records logged before configure(): obskit's shape, with the service from the environment."""
    if not _fallback:
        import os  # noqa: PLC0415

        from obskit._config import Settings  # noqa: PLC0415 - _config imports this module

        _fallback.append(Pipeline(Settings(service=os.environ.get("OBSKIT_SERVICE") or "unknown-service")))
    return _fallback[0]


def _emit(self: BoundLogger, method: str, event: Any, kw: dict[str, Any]) -> Any:
    pipeline = state.pipeline or fallback_pipeline()
    ctx = self._context
    if ctx:
        fields = ctx.copy()
        fields.update(kw)
    else:
        fields = kw
    if _STRUCTLOG_VARS is None:
        structlog.contextvars.merge_contextvars(None, method, fields)
    elif _STRUCTLOG_VARS:
        for var in tuple(_STRUCTLOG_VARS.values()):
            value = var.get(Ellipsis)
            if value is not Ellipsis:
                fields.setdefault(var.name[10:], value)
    sink.write(pipeline.line(self._logger, method, event, fields))
    return None


def _make_method(name: str, number: int) -> Callable[..., Any]:
    def meth(self: BoundLogger, event: Any = None, *args: Any, **kw: Any) -> Any:
        if number < state.level:
            return None
        if args:
            event = _interpolate(event, args)
        return _emit(self, name, event, kw)

    meth.__name__ = name
    return meth


def _interpolate(event: Any, args: tuple[Any, ...]) -> Any:
    try:
        if len(args) == 1 and isinstance(args[0], dict) and args[0]:
            return event % args[0]
        return event % args
    except Exception:
        return f"{safe_str(event)} {safe_repr(args)}"


class BoundLogger(structlog.BoundLoggerBase):
    """A structlog bound logger whose records follow obskit's record (SPEC §3).

    ``debug``/``info``/``warning``/``error``/``critical``/``exception`` log at that level; ``bind`` and
    ``new`` work as in structlog. Filtering by level happens before any work is done.
    """

    debug = _make_method("debug", 10)
    info = _make_method("info", 20)
    msg = info
    warning = _make_method("warning", 30)
    warn = warning
    error = _make_method("error", 40)
    critical = _make_method("critical", 50)
    fatal = critical

    def exception(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        if state.level > 40:
            return None
        kw.setdefault("exc_info", True)
        if args:
            event = _interpolate(event, args)
        return _emit(self, "exception", event, kw)

    def log(self, level: int, event: Any = None, *args: Any, **kw: Any) -> Any:
        if level < state.level:
            return None
        if args:
            event = _interpolate(event, args)
        return _emit(self, _std_level(level), event, kw)

    def is_enabled_for(self, level: int) -> bool:
        return level >= state.level

    def get_effective_level(self) -> int:
        return state.level


# -- the standard library ------------------------------------------------------------------------------

_SERVERS = ("uvicorn", "gunicorn", "hypercorn")
_STD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn adds an ANSI-coloured copy of the message
)


def _std_level(levelno: int) -> str:
    if levelno >= 50:
        return "critical"
    if levelno >= 40:
        return "error"
    if levelno >= 30:
        return "warning"
    if levelno >= 20:
        return "info"
    return "debug"


class StdlibHandler(logging.Handler):
    """Feeds standard-library records through obskit's processor and sink."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(logging.NOTSET)
        self.pipeline = pipeline

    def handle(self, record: logging.LogRecord) -> bool:
        # The sink is thread-safe by itself; skip Handler's lock on this hot path.
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        exc_info = record.exc_info
        if exc_info and getattr(exc_info[1], "__obskit_logged__", False) and record.name.startswith(_SERVERS):
            # The server's "Exception in ASGI application" for a stream the middleware aborted on
            # purpose: obskit already logged this exception once, with the request's trace id.
            return
        try:
            try:
                message = record.getMessage()
            except Exception as exc:
                message = f"{safe_str(record.msg)} [log arguments did not format: {safe_repr(exc)}]"
            # the caller's extra= keys, in the caller's order
            fields = {k: v for k, v in record.__dict__.items() if k not in _STD_ATTRS}
            if record.stack_info:
                fields["stack_info"] = record.stack_info
            pipeline = self.pipeline
            out = pipeline.processor.build(
                _std_level(record.levelno), message, fields, record.exc_info, record.name
            )
            line = pipeline.render(out)
        except Exception as exc:
            line = self.pipeline.render(
                self.pipeline.processor.build(
                    "error", "obskit could not process a log record", {"render_error": safe_repr(exc)}, None
                )
            )
        sink.write(line)


_saved: dict[str, Any] | None = None


def install(settings: Settings, pipeline: Pipeline) -> None:
    """Point structlog and the standard library at ``pipeline``; idempotent."""
    global _saved  # noqa: PLW0603
    state.level = LEVEL_NUMBERS[settings.level]
    state.pipeline = pipeline
    sink.set_stream(settings.stream)
    if _saved is None:
        root = logging.getLogger()
        _saved = {
            "structlog": structlog.get_config(),
            "root_handlers": list(root.handlers),
            "root_level": root.level,
            "loggers": {
                n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate, logging.getLogger(n).disabled)
                for n in TAKEN_OVER
            },
        }
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, pipeline],
        wrapper_class=BoundLogger,
        logger_factory=_sink_logger_factory,
        context_class=dict,
        cache_logger_on_first_use=True,
    )
    take_over_stdlib(pipeline, settings)


def take_over_stdlib(pipeline: Pipeline, settings: Settings) -> None:
    """Install the handler on root and re-route loggers that frameworks detached (uvicorn, gunicorn).

    Safe to call again: uvicorn applies its own ``dictConfig`` after an app may have configured obskit,
    so the middleware calls this once more at lifespan startup.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StdlibHandler)), None)
    if handler is None:
        handler = StdlibHandler(pipeline)
    handler.pipeline = pipeline
    root.handlers = [handler]
    root.setLevel(LEVEL_NUMBERS[settings.level])
    for name in TAKEN_OVER:
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.captureWarnings(settings.capture_warnings)


def uninstall() -> None:
    """Undo :func:`install`: structlog's and the standard library's previous configuration come back."""
    global _saved  # noqa: PLW0603
    if _saved is None:
        return
    structlog.reset_defaults()
    structlog.configure(**_saved["structlog"])
    root = logging.getLogger()
    root.handlers = _saved["root_handlers"]
    root.setLevel(_saved["root_level"])
    for name, (handlers, propagate, disabled) in _saved["loggers"].items():
        lg = logging.getLogger(name)
        lg.handlers = handlers
        lg.propagate = propagate
        lg.disabled = disabled
    logging.captureWarnings(False)
    state.level = 20
    state.pipeline = None
    sink.set_stream(None)
    sink.reset_failures()
    _saved = None

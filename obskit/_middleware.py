"""``ObskitMiddleware``: every request a traced, logged unit; every error a safe RFC 9457 response.

A pure ASGI middleware (no ``BaseHTTPMiddleware``): it never buffers a successful response. Error
responses the framework produced itself (unmatched route 404, 405, ``HTTPException``, FastAPI's 422) reach
it as finished responses, so their ``http.response.start`` is held back until the body is complete and
the pair is replaced by a problem document, the way Starlette's GZipMiddleware rewrites responses,
without patching framework internals and whatever the order of the middleware stack.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import logging
import os
import re
import sys
import zlib
from collections.abc import Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson

from obskit import _config, _context, _logsetup, _metrics, _problem, _stack
from obskit._errors import Classification, KnownError, _phrase, _status_code
from obskit._processors import (
    JSON_TIME_OPTIONS,
    LEVEL_NUMBERS,
    cached_classification,
    cached_fingerprint,
    error_object,
    mark,
    record_time,
)
from obskit._redact import redact_text
from obskit._renderers import safe_str
from obskit._tracecontext import (
    _ZERO_SPAN,
    _ZERO_TRACE,
    _getrandbits,
    new_span_id,
    new_trace_id,
    otel_mark_failed,
    otel_span,
    parse_traceparent,
    valid_request_id,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Generator, Sequence

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

_HOLD_LIMIT = 64 * 1024  # error bodies larger than this are a user's own streamed content: pass them on
_SEVERITY = {"debug": "info", "info": "info", "warning": "warning", "error": "error", "critical": "critical"}
_internal = logging.getLogger("obskit")
_new_tuple = tuple.__new__
_TraceContext = _context.TraceContext
_get_context, _set_context, _reset_context = _context._current.get, _context._current.set, _context._current.reset
_dumps = orjson.dumps
_ACCESS_OPTIONS = orjson.OPT_APPEND_NEWLINE | JSON_TIME_OPTIONS
_WANTED = frozenset((b"traceparent", b"x-request-id", b"user-agent", b"x-forwarded-for"))
_OURS = frozenset((b"traceparent", b"x-request-id"))
_URGENT = frozenset(("error", "critical"))  # records written at once, with what the loop turn held
# Headers that describe the body: a problem document that replaces the body replaces them too.
_BODY_HEADERS = frozenset((b"content-type", b"content-length", b"content-encoding", b"etag", b"content-md5"))
_DECODED_LIMIT = 1 << 20  # a compressed framework error page is small; past this it is not one
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


class _Request:
    """Per-request state shared between the send wrapper and the error handling.

    Defaults live on the class: creating one is then a bare object allocation on every request, and only
    what a request changes gets an instance attribute.
    """

    status = 0
    started = False  # http.response.start went out to the server
    held: Message | None = None  # an error response's start, held until its body is complete
    body: bytearray | None = None
    # A complete framework error response, sent (as a problem) only once the app has returned: a
    # Starlette app wrapped directly sends its own 500 *and then* raises the exception.
    pending: tuple[Message, bytes] | None = None
    synth_error: tuple[Classification, str] | None = None  # a framework error response rewritten
    user_agent: bytes | None = None
    forwarded: bytes | None = None


class ObskitMiddleware:
    """Pure ASGI middleware: trace context, access log, and RFC 9457 responses for every error.

    Args:
        app: The ASGI application to wrap.
        debug: Add the exception's type and message to 500 bodies (local development only). Defaults to
            ``configure(debug=...)``, which is off.
        trusted_proxies: Client addresses whose ``X-Forwarded-For`` is believed. Defaults to
            ``configure(trusted_proxies=...)``.
        access_log: Emit one record per request; errors are always logged. Replaces uvicorn's own access
            log, which would repeat every line. Defaults to ``configure(access_log=...)``, on.
        exclude_paths: Paths (health checks) without an access record unless they fail.
        flush_timeout: Seconds lifespan shutdown waits for queued alerts.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        debug: bool | None = None,
        trusted_proxies: Sequence[str] | None = None,
        access_log: bool | None = None,
        exclude_paths: Sequence[str] | None = None,
        flush_timeout: float = 5.0,
    ) -> None:
        if isinstance(trusted_proxies, str) or isinstance(exclude_paths, str):
            raise TypeError("trusted_proxies and exclude_paths take a list of strings, not one string")
        self.app = app
        self._debug = debug
        self._trusted = _proxies(tuple(trusted_proxies)) if trusted_proxies is not None else None
        self._access_log = access_log
        self._exclude = frozenset(exclude_paths) if exclude_paths is not None else None
        if flush_timeout < 0:
            raise ValueError(f"flush_timeout must be >= 0, got {flush_timeout!r}")
        self._flush_timeout = flush_timeout

    # -- ASGI -------------------------------------------------------------------------------------------

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        else:  # websocket and anything newer pass through untouched
            await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # uvicorn applies its logging dictConfig after the app module configured obskit.
                _retake_logging(self._access_enabled())
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await _flush_alerts(self._flush_timeout)
                # uvicorn re-raises SIGTERM after shutdown, so atexit never runs: drain the log backlog of
                # a slow stream here, within the timeout, and count what is given up.
                await asyncio.to_thread(_logsetup.sink.drain, self._flush_timeout)
            await send(message)

        await self.app(scope, receive_wrapper, send_wrapper)

    def _access_enabled(self) -> bool:
        if self._access_log is not None:
            return self._access_log
        s = _config.settings()
        return s.access_log if s is not None else True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The HTTP path is inline rather than one more coroutine deep: it runs for every request.
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        if _get_context() is not None:
            # An obskit middleware further out (a mounted sub-app built by the same factory, or the
            # middleware added twice) already serves this request: a second one would give it a second
            # trace id and a second record, and rewrite what the outer one rewrites anyway. (The context
            # variable, not a key in the scope: adding a key to the scope dict costs a resize.)
            await self.app(scope, receive, send)
            return
        settings = _config._settings or _autoconfigure()
        start = perf_counter()
        req = _Request()
        traceparent = request_id = None
        for key, value in scope["headers"]:  # one pass: a set lookup per header, the rest on the few hits
            if key in _WANTED:
                if key == b"user-agent":
                    req.user_agent = value
                elif key == b"traceparent":
                    traceparent = value
                elif key == b"x-request-id":
                    request_id = value
                else:
                    req.forwarded = value
        # One draw for a trace id and a span id: to_bytes().hex() is zero-padded lowercase hex and costs far
        # less than formatting each id with f"{n:032x}".
        ids = _getrandbits(192).to_bytes(24, "little").hex()
        fresh = ids[:32]
        span = otel_span() if settings.otel and "opentelemetry.trace" in sys.modules else None
        if span is not None:
            sc = span.get_span_context()
            trace_id, span_id = f"{sc.trace_id:032x}", f"{sc.span_id:016x}"
            flags = "01" if sc.trace_flags & 1 else "00"
        else:
            parsed = parse_traceparent(traceparent.decode("latin-1")) if traceparent else None
            if parsed is not None:
                trace_id, _parent, flags = parsed
                # Only "sampled" is defined; W3C trace context: unknown flag bits are never passed on.
                flags = "01" if flags[1] in "13579bdf" else "00"
            else:
                trace_id, flags = fresh, "00"
            span_id = ids[32:]
            if fresh == _ZERO_TRACE or span_id == _ZERO_SPAN:  # all-zero ids are invalid (p = 2**-64)
                fresh, span_id = new_trace_id(), new_span_id()
                trace_id = trace_id if parsed is not None else fresh
        rid = request_id.decode("latin-1") if request_id else ""
        if not rid or not valid_request_id(rid):
            # No usable id from the edge: the fresh id names the request. It is the trace id when this
            # request starts the trace (one id to search for, the one the problem body carries), and its own
            # id when the trace came from upstream, where many requests share it.
            rid = fresh
        # tuple.__new__ skips the named tuple's Python-level __new__ (a frame per request).
        token = _set_context(_new_tuple(_TraceContext, (trace_id, span_id, rid)))
        trace_header = (b"traceparent", f"00-{trace_id}-{span_id}-{flags}".encode())
        rid_header = (b"x-request-id", rid.encode())

        def send_wrapper(message: Message) -> Awaitable[None]:
            # A plain function handing back the server's own awaitable: no coroutine of ours is created and
            # resumed for every message the app sends.
            if message["type"] == "http.response.start":
                status = message["status"]
                req.status = status
                headers = message.get("headers") or ()
                for name, _value in headers:
                    if name in _OURS:  # the app set its own: ours replace them
                        headers = [(k, v) for k, v in headers if k not in _OURS]
                        break
                headers = [*headers, trace_header, rid_header]
                message["headers"] = headers
                if status >= 400 and not _is_problem(headers):
                    req.held = message
                    return _DONE
                req.started = True
                return send(message)
            held = req.held
            if held is not None:
                if message["type"] == "http.response.body":
                    return self._hold_body(scope, req, held, message, send, trace_id)
                # A file sent through an extension (http.response.pathsend, zerocopysend) is the app's own
                # content, not a framework error page: its start goes out first, as the protocol requires.
                return _release(req, held, message, send)
            return send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_wrapper)
            if req.pending is not None:
                held, body = req.pending
                req.pending = None
                await self._send_rewritten(scope, held, body, req, send, trace_id)
        except asyncio.CancelledError:
            # The client went away or the server is shutting down: not an application error.
            req.status = req.status or 499
            self._record(scope, settings, req, start, trace_id, span_id, rid, cancelled=True)
            _reset_context(token)
            raise
        except Exception as exc:
            if _client_gone(exc):
                # Starlette's ClientDisconnect: the client left mid-upload. No one is there to answer and
                # nothing is broken, the same as a cancelled request: no error record, no alert.
                req.held = req.pending = None
                req.status = 499
                self._record(scope, settings, req, start, trace_id, span_id, rid, cancelled=True)
                _reset_context(token)
                return
            error = exc
            rewritten = await self._handle(scope, exc, req, send, trace_id, span, settings, [trace_header, rid_header])
            if req.started and req.held is None and not rewritten:
                # The response had started: the only honest signal left is to abort the stream.
                self._record(scope, settings, req, start, trace_id, span_id, rid, exc)
                _reset_context(token)
                raise
        self._record(scope, settings, req, start, trace_id, span_id, rid, error)
        _reset_context(token)

    # -- errors -----------------------------------------------------------------------------------------

    async def _handle(
        self,
        scope: Scope,
        exc: BaseException,
        req: _Request,
        send: Send,
        trace_id: str,
        span: Any,
        settings: _config.Settings,
        headers: list[tuple[bytes, bytes]],
    ) -> bool:
        """Log, alert and answer ``exc``; True when a problem response was sent for it."""
        c = cached_classification(exc)
        mark(exc, "__obskit_logged__", True)
        if not c.known and span is not None:
            otel_mark_failed(span, exc)
        if not c.known or c.alert:
            _alert(settings, exc, c, scope, trace_id)
        if req.started:
            req.status = req.status or 500
            return False
        # An error page in progress (or complete but not yet sent) gives way to the exception's problem.
        req.held = req.pending = None
        req.status = c.status
        if c.known:
            detail = c.detail
            debug = None
            # HTTPException(401, headers={"WWW-Authenticate": ...}), a 429's Retry-After: part of the answer.
            headers = _exception_headers(exc) + headers
        else:
            detail = _problem.UNKNOWN_DETAIL
            debug_on = self._debug if self._debug is not None else settings.debug
            debug = (
                {"type": _stack.type_name(exc), "message": redact_text(safe_str(exc)[:2000])[:1000]}
                if debug_on
                else None
            )
        body = _problem.problem(
            status=c.status,
            title=c.title,
            detail=detail,
            instance=scope.get("path", ""),
            code=c.code,
            trace_id=trace_id,
            debug=debug,
        )
        req.started = True
        await _send_problem(send, c.status, body, headers)
        return True

    async def _send_rewritten(
        self, scope: Scope, held: Message, body: bytes, req: _Request, send: Send, trace_id: str
    ) -> None:
        """Replace a framework error response (404, 405, HTTPException, 422) by a problem document."""
        status: int = held["status"]
        detail: str | None = None
        errors = None
        content_type = encoding = b""
        for k, v in held["headers"]:
            if k == b"content-type":
                content_type = v
            elif k == b"content-encoding":
                encoding = v
        if encoding and body:
            # A GZipMiddleware inside this one compressed the page: read it through the encoding (the
            # problem that replaces it goes out uncompressed).
            body = _decoded(encoding, body)
        # A 500 page is a catch-all's answer to an exception (Starlette's, Django's): nothing of it is used.
        # Any other status is the app's own answer, HTTPException(503, "down for maintenance") included.
        if status != 500 and body:
            if content_type.startswith(b"application/json"):
                try:
                    parsed = orjson.loads(body)
                except orjson.JSONDecodeError:
                    parsed = None
                raw = parsed.get("detail") if isinstance(parsed, dict) else None
                if isinstance(raw, str):
                    detail = raw[:1000]
                elif status == 422 and isinstance(raw, list):
                    errors = _problem.validation_items(raw)
            elif content_type.startswith(b"text/plain") and len(body) <= 1000:
                detail = body.decode("utf-8", "replace")
        title = _phrase(status)
        code = "validation_error" if errors is not None else _status_code(status)
        if status == 500:
            detail = _problem.UNKNOWN_DETAIL
        problem = _problem.problem(
            status=status,
            title=title,
            detail=detail,
            instance=scope.get("path", ""),
            code=code,
            trace_id=trace_id,
            errors=errors,
        )
        known = status != 500
        req.synth_error = (
            Classification(
                known=known, status=status, code=code, title=title, level="warning" if known else "error", alert=False
            ),
            # The detail goes to the client as the app wrote it; the log masks secrets like any message
            # (the patterns only run on a detail that could hold one: not on every "Not Found").
            (redact_text(detail) if "=" in detail or ":" in detail or "earer " in detail else detail)
            if detail
            else title,
        )
        keep = [(k, v) for k, v in held["headers"] if k not in _BODY_HEADERS]
        req.started = True
        await _send_problem(send, status, problem, keep)

    async def _hold_body(
        self, scope: Scope, req: _Request, held: Message, message: Message, send: Send, trace_id: str
    ) -> None:
        """Collect the body of a held error response; one larger than a framework error page streams on."""
        body = req.body
        if body is None:
            body = req.body = bytearray()
        body += message.get("body", b"")
        if message.get("more_body", False):
            if len(body) > _HOLD_LIMIT:  # not a framework error page: let it stream as it is
                req.held = None
                req.started = True
                await send(held)
                await send({"type": "http.response.body", "body": bytes(body), "more_body": True})
                body.clear()
            return
        req.held = None
        if held["status"] == 500:
            # A Starlette app wrapped directly sends its own 500 *and then* raises: the exception's problem
            # replaces this page, so it waits for the app to return.
            req.pending = (held, bytes(body))
            return
        # Sent now, not when the app returns: a response's background tasks run after its body, and the
        # client must not wait for them.
        await self._send_rewritten(scope, held, bytes(body), req, send, trace_id)

    # -- the request's record ---------------------------------------------------------------------------

    def _record(
        self,
        scope: Scope,
        settings: _config.Settings,
        req: _Request,
        start: float,
        trace_id: str,
        span_id: str,
        request_id: str,
        error: BaseException | None = None,
        *,
        cancelled: bool = False,
    ) -> None:
        """The request's one record: the access record, or the error record of a request that failed."""
        duration = perf_counter() - start
        status = req.status or 500
        method: str = scope["method"]  # required keys of an HTTP scope
        path: str = scope["path"]
        route = _route_template(scope)
        if _metrics.state.active:
            _metrics.request_done(method, route, status, duration)
        failed = error is not None or req.synth_error is not None
        if not failed and (
            not (self._access_log if self._access_log is not None else settings.access_log)
            or path in (self._exclude if self._exclude is not None else settings.access_log_exclude)
        ):
            return  # failures are logged whatever the access-log settings say
        pipeline = _logsetup.state.pipeline
        if pipeline is None:
            return
        client = scope.get("client")
        client_ip = client[0] if client else None
        if req.forwarded is not None:
            client_ip = self._client_ip(client_ip, req.forwarded)
        user_agent = req.user_agent
        http = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            # n / 1000 is the double nearest to that decimal, so it prints with at most three decimals, for
            # a third of what round(x, 3) costs.
            "duration_ms": int(duration * 1_000_000) / 1000,
            "client_ip": client_ip,
            "user_agent": user_agent.decode("latin-1")[:512] if user_agent is not None else None,
            "request_id": request_id,
        }
        error_obj: dict[str, Any] | None = None
        if failed:
            failure = self._failure(settings, pipeline, req, error, http)
            if failure is None:
                return  # written through the logging pipeline (extra fields, or a message over the limit)
            level, message, error_obj = failure
        else:
            level = "info" if status < 400 or cancelled else "warning" if status < 500 else "error"
            if LEVEL_NUMBERS[level] < _logsetup.state.level:  # configure(level=...) is the minimum
                return
            message = f"{method} {path} {status} (client disconnected)" if cancelled else f"{method} {path} {status}"
        # Every value here is obskit's own, a request field it bounds, or an error object error_object()
        # built (redacted, bounded), so the generic field walk has nothing to do: built and rendered in one
        # step.
        record: dict[str, Any] = {
            "timestamp": record_time(),
            "level": level,
            "service": settings.service,
            "trace_id": trace_id,
            "message": message,
            "span_id": span_id,
            "request_id": request_id,
            "logger": "obskit.access",
        }
        if settings.environment is not None:
            record["environment"] = settings.environment
        if settings.version is not None:
            record["version"] = settings.version
        if error_obj is not None:
            record["error"] = error_obj
        record["http"] = http
        line = b""
        if not settings.console:
            # The JSON renderer's work without its two calls: every value here is a str, int, float, bool,
            # None, or the timestamp's datetime (a path with a lone surrogate makes orjson raise).
            # not contextlib.suppress: its with-block costs more than the rest of this branch
            try:  # noqa: SIM105
                line = _dumps(record, option=_ACCESS_OPTIONS)
            except TypeError:
                pass
        if not line or len(line) > settings.max_record_bytes:  # the renderer's fallbacks and limits
            stamp = record["timestamp"]
            if stamp.__class__ is not str:
                record["timestamp"] = _dumps(stamp, option=JSON_TIME_OPTIONS)[1:-1].decode()
            line = pipeline.render(record)
        _logsetup.sink.write(line, urgent=level in _URGENT)

    def _failure(
        self,
        settings: _config.Settings,
        pipeline: _logsetup.Pipeline,
        req: _Request,
        error: BaseException | None,
        http: dict[str, Any],
    ) -> tuple[str, str, dict[str, Any]] | None:
        """``(level, message, error object)`` of a request that failed: an exception, or a framework error
        response rewritten. None when there is nothing left to write: the record went through the logging
        pipeline, or its level is below the configured one."""
        method, path, route, status = http["method"], http["path"], http["route"], http["status"]
        fields: dict[str, Any] = {}
        if error is not None:
            c = cached_classification(error)
            type_name = _stack.type_name(error)
            level = c.level if c.known else "error"
            message = f"{method} {path} {status} {type_name}"
            if _metrics.state.active:
                _metrics.error(known=c.known, code=c.code if c.known else None, type_name=type_name)
            fields["exc_info"] = error
            extra = getattr(error, "extra", None)
            if isinstance(error, KnownError) and isinstance(extra, dict):
                # KnownError(**extra): logged (and redacted like any field), never sent to the client.
                for key, value in extra.items():
                    fields.setdefault(key, value)
            preset = None
        else:
            assert req.synth_error is not None  # _record only calls this for a failed request
            sc, detail = req.synth_error
            level = sc.level
            message = f"{method} {path} {status} {sc.code}"
            if _metrics.state.active:
                _metrics.error(known=sc.known, code=sc.code, type_name="HTTPError")
            preset = {
                "type": "HTTPError",
                "message": detail,
                "known": sc.known,
                "code": sc.code,
                "fingerprint": _http_fingerprint(status, route),
            }
        if LEVEL_NUMBERS[level] < _logsetup.state.level:
            return None  # below configure(level=...): counted above, not written
        if len(fields) <= 1 and len(message) <= settings.max_value_chars:
            # The usual failure: the message is redacted as the pipeline would (a path can hold anything).
            message = settings.redactor.redact_text(message)
            if error is not None:
                return level, message, error_object(error, LEVEL_NUMBERS[level] >= settings.stack_level)
            assert preset is not None
            return level, message, preset
        # Extra fields to walk (redaction at any depth, bounds), or a message over the value limit, which
        # the pipeline cuts before its patterns run: its general path does both.
        _logsetup.sink.write(
            pipeline.line(_ACCESS_LOGGER, level, message, fields, preset, http), urgent=level in _URGENT
        )
        return None

    def _client_ip(self, peer: str | None, forwarded_header: bytes) -> str | None:
        """The client address: X-Forwarded-For is believed only from a trusted proxy."""
        forwarded = forwarded_header.decode("latin-1")
        if not forwarded:
            return peer
        trusted = self._trusted
        if trusted is None:
            s = _config.settings()
            trusted = _proxies(s.trusted_proxies if s is not None else ())
        if trusted.trusts(peer):
            # Walk from the right: the first address not one of our proxies is the client; when every hop
            # is one ("*"), the first hop is (uvicorn's --forwarded-allow-ips rule).
            hops = [h for h in (_host(h.strip()) for h in forwarded.split(",")[-16:]) if h]
            for hop in reversed(hops):
                if not trusted.trusts(hop):
                    return hop[:64]
            if hops:
                return hops[0][:64]
        return peer


class _Proxies:
    """``trusted_proxies``: addresses, networks ("10.0.0.0/8") and "*", as uvicorn's
    ``--forwarded-allow-ips`` takes them. An entry that is not an IP (a unix socket path) matches exactly."""

    __slots__ = ("every", "exact", "networks")

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.every = "*" in entries
        self.exact: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            self.exact.add(entry)
            try:
                net = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                continue
            if net.num_addresses == 1:
                self.exact.add(str(net.network_address))  # the server's spelling: "::1", not "0::1"
            else:
                self.networks.append(net)

    def trusts(self, address: str | None) -> bool:
        if address is None:
            return False
        if self.every or address in self.exact:
            return True
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


@functools.lru_cache(maxsize=16)
def _proxies(entries: tuple[str, ...]) -> _Proxies:
    return _Proxies(entries)


def _host(hop: str) -> str:
    """A forwarded hop without its port: "[2001:db8::1]:4711" and "203.0.113.7:80" name the host."""
    if hop.startswith("["):
        end = hop.find("]")
        return hop[1:end] if end > 0 else hop
    if hop.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        return hop.partition(":")[0]
    return hop


class _Done:
    """An awaitable that is already complete: what a held message's ``send`` hands back."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator that returns at once


_DONE = _Done()


async def _release(req: _Request, held: Message, message: Message, send: Send) -> None:
    req.held = None
    req.started = True
    await send(held)
    await send(message)


class _AccessLogger:
    __slots__ = ()
    name = "obskit.access"


_ACCESS_LOGGER = _AccessLogger()


def _http_fingerprint(status: int, route: str | None) -> str:
    return hashlib.blake2b(f"http:{status}:{route}".encode(), digest_size=8).hexdigest()


def _route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template.__class__ is not str:
        return None
    root = scope.get("root_path")
    if not root:  # not inside a Mount: the usual case, answered here
        return template
    # Inside a Mount, the matched prefix sits between app_root_path and root_path. Without one, all of
    # root_path is the server's (uvicorn --root-path): not part of the app's route.
    prefix = root[len(scope.get("app_root_path", root)) :]
    if not prefix or template.startswith(prefix):
        return template
    mounts = _mount_templates(scope)
    # Never the concrete prefix: it holds request values (/tenants/acme), and the route is a metric label
    # and part of an HTTP error's fingerprint. A Mount chain that cannot be found again leaves the route
    # template alone, which stays bounded.
    return f"{mounts}{template}" if mounts is not None else template


def _mount_templates(scope: Scope) -> str | None:
    """The path templates of the Mounts a request went through: "/tenants/{tenant}".

    Starlette keeps only the innermost route in the scope, so the Mounts are matched again from the
    outermost router (Router sets scope["router"] only when it is not set yet), as Starlette matched them.
    """
    routing = sys.modules.get("starlette.routing")
    routes = getattr(scope.get("router"), "routes", None)
    if routing is None or not routes:
        return None
    sub: dict[str, Any] = {"type": "http", "path": scope["path"], "root_path": scope.get("app_root_path", "")}
    parts: list[str] = []
    for _ in range(16):  # Mounts nest a few deep; bounded all the same
        for route in routes:
            if isinstance(route, routing.Mount):
                match, child = route.matches(sub)
                if match is routing.Match.FULL:
                    parts.append(route.path)
                    sub = {**sub, **child}
                    routes = route.routes
                    break
        else:
            break
    return "".join(parts) or None


def _decoded(encoding: bytes, body: bytes) -> bytes:
    """The body of a compressed error page, or b"" when it cannot be read (its text is then not used)."""
    if encoding.strip().lower() not in (b"gzip", b"x-gzip", b"deflate"):
        return b""
    try:
        d = zlib.decompressobj(zlib.MAX_WBITS | 32)  # 32: a gzip or a zlib header, whichever it has
        out = d.decompress(body, _DECODED_LIMIT)
    except zlib.error:
        return b""
    return b"" if d.unconsumed_tail else out


def _client_gone(exc: Exception) -> bool:
    requests = sys.modules.get("starlette.requests")  # not imported: no ClientDisconnect can have been raised
    return requests is not None and isinstance(exc, requests.ClientDisconnect)


def _exception_headers(exc: BaseException) -> list[tuple[bytes, bytes]]:
    """A known exception's own ``headers`` (Starlette's ``HTTPException(headers=...)``), as ASGI headers.

    Only well-formed names and values pass: a header the server would refuse must not cost the response.
    """
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # the member the classification came from
    given = getattr(exc, "headers", None)
    if not isinstance(given, Mapping) or not given:
        return []
    out = []
    for key, value in given.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        name, raw = key.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace")
        if name in _BODY_HEADERS or name in _OURS or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(raw):
            continue
        out.append((name, raw))
    return out


def _is_problem(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k == b"content-type" and v.startswith(_problem.CONTENT_TYPE) for k, v in headers)


async def _send_problem(send: Send, status: int, body: _problem.Problem, headers: list[tuple[bytes, bytes]]) -> None:
    payload = _problem.encode(body)
    out = [(k, v) for k, v in headers if k not in _BODY_HEADERS]
    out.append((b"content-type", _problem.CONTENT_TYPE))
    out.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _alert(settings: _config.Settings, exc: BaseException, c: Classification, scope: Scope, trace_id: str) -> None:
    router = settings.alerts
    if router is None:
        return
    try:
        type_name = _stack.type_name(exc)
        # Redacted before any cut: a credential cut short would no longer match the patterns.
        message = redact_text(safe_str(exc)[:8192])
        router.capture(
            fingerprint=cached_fingerprint(exc),
            error_type=type_name,
            error_message=message,
            severity="critical" if not c.known else _SEVERITY.get(c.level, "error"),
            title=f"{type_name}: {message}"[:200],
            trace_id=trace_id,
            method=scope.get("method"),
            path=_route_template(scope) or scope.get("path"),
            code=c.code if c.known else None,
            known=c.known,
            exc=exc,
        )
    except Exception:  # alerting never raises into the request
        _internal.debug("alert capture failed", exc_info=True)


async def _flush_alerts(timeout: float) -> None:  # noqa: ASYNC109 - passed on to the router
    """The server is shutting down: deliver what is queued (or spool it) within ``timeout``."""
    s = _config.settings()
    router = s.alerts if s is not None else None
    close = getattr(router, "aclose", None)
    if close is None:
        return
    try:
        await close(timeout)
    except Exception:
        _internal.warning("flushing alerts at shutdown failed", exc_info=True)


def _retake_logging(access_log: bool) -> None:
    pipeline = _logsetup.state.pipeline
    s = _config.settings()
    if pipeline is not None and s is not None:
        _logsetup.take_over_stdlib(pipeline, s)
    if access_log:
        # obskit's access record carries everything uvicorn's does, and the trace id.
        _logsetup.silence_server_access_log()


def _autoconfigure() -> _config.Settings:
    settings = _config.configure(service=os.environ.get("OBSKIT_SERVICE") or "unknown-service")
    _internal.warning("obskit.configure() was not called before the first request; using defaults")
    return settings

"""A scriptable HTTP receiver on 127.0.0.1 for alert delivery tests (and the demo/bench).

It records every request (method, path, headers, body, arrival time) and answers each one with the next
scripted action, then with the default: ``Respond`` (status, headers, body), ``Hang`` (hold the request
open, to trip client timeouts), ``Reset`` (close the socket with an RST) or ``ResetAfterHeaders`` (send the
status line and headers of a response, then an RST in place of its body). Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import orjson


@dataclass(frozen=True)
class Respond:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Hang:
    seconds: float = 30.0


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class ResetAfterHeaders:
    """The request was read and a response started (headers promising a body), then the socket is reset."""

    status: int = 200


Action = Respond | Hang | Reset | ResetAfterHeaders


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return orjson.loads(self.body)


def _rst(connection: socket.socket) -> None:
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class Receiver:
    def __init__(self, default: Action | None = None, *, port: int = 0) -> None:
        self.default: Action = default or Respond(200)
        self.requests: list[Recorded] = []
        self._script: deque[Action] = deque()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                with receiver._cond:
                    receiver.requests.append(rec)
                    action = receiver._script.popleft() if receiver._script else receiver.default
                    receiver._cond.notify_all()
                if isinstance(action, Reset):
                    self.close_connection = True
                    _rst(self.connection)
                    return
                if isinstance(action, ResetAfterHeaders):
                    self.send_response(action.status)
                    self.send_header("content-length", "1024")
                    self.end_headers()
                    self.wfile.flush()
                    time.sleep(0.05)  # let the headers reach the client before the RST
                    self.close_connection = True
                    _rst(self.connection)
                    return
                if isinstance(action, Hang):
                    receiver._stopping.wait(action.seconds)
                    self.close_connection = True
                    return
                self.send_response(action.status)
                for k, v in action.headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(action.body)))
                self.end_headers()
                if action.body:
                    self.wfile.write(action.body)

            do_POST = do_GET = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(Exception):
            self._server.shutdown()
        self._server.server_close()

    def script(self, *actions: Action) -> None:
        with self._cond:
            self._script.extend(actions)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        """The first ``n`` requests, waiting at most ``timeout`` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} requests within {timeout}s, got {len(self.requests)}")
                self._cond.wait(left)
            return list(self.requests[:n])

    def settle(self, quiet: float = 0.2, timeout: float = 5.0) -> list[Recorded]:
        """All requests once none has arrived for ``quiet`` seconds (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            with self._cond:
                count = len(self.requests)
            if count == seen:
                break
            seen = count
            time.sleep(quiet)
        with self._cond:
            return list(self.requests)


def refused_url() -> str:
    """A loopback URL on which nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"

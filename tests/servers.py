"""Real servers for tests: uvicorn in a background thread, or a server command as a subprocess.

``serve(app)`` runs an ASGI app under uvicorn (``log_config=None``, so obskit's logging stays in charge)
on a socket bound to a free 127.0.0.1 port, and yields its base URL. ``run_server_process(args)`` starts
a command that serves HTTP on a given port (``python -m uvicorn …`` or ``obskit demo``), waits until the
port answers, and hands back everything it printed once it stopped. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
STARTUP_DEADLINE = 20.0
SHUTDOWN_DEADLINE = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bound_socket() -> socket.socket:
    # Bound here and handed to uvicorn: no window in which another process can take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields ``http://127.0.0.1:PORT``.

    Args:
        app: The ASGI application.
        **config: More ``uvicorn.Config`` options (``log_config`` is always ``None``).

    Raises:
        TimeoutError: The server did not start, or did not stop, within its deadline.
    """
    # The middleware turns uvicorn's access logger off at lifespan startup; put it back for the next test.
    access_logger = logging.getLogger("uvicorn.access")
    access_disabled, access_propagate = access_logger.disabled, access_logger.propagate
    sock = _bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {STARTUP_DEADLINE}s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_DEADLINE)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_DEADLINE)
        sock.close()
        access_logger.disabled, access_logger.propagate = access_disabled, access_propagate
        if thread.is_alive():
            raise TimeoutError(f"uvicorn did not stop within {SHUTDOWN_DEADLINE}s")


def raw_request(base_url: str, request: bytes, *, deadline: float = 10.0) -> bytes:
    """Send raw bytes to the server and return every byte it sends until it closes the connection."""
    host, port = base_url.removeprefix("http://").split(":")
    chunks: list[bytes] = []
    end = time.monotonic() + deadline
    with socket.create_connection((host, int(port)), timeout=deadline) as s:
        s.sendall(request)
        while True:
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"the server did not close the connection within {deadline}s") from None
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline: float = STARTUP_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {deadline}s") from None
            time.sleep(0.05)


@dataclass
class ServerProcess:
    """A running server command; ``stdout``/``stderr``/``returncode`` are filled in once it stopped."""

    base_url: str
    port: int
    proc: subprocess.Popen[bytes]
    stdout: bytes = b""
    stderr: bytes = b""
    returncode: int | None = None
    _files: list[Any] = field(default_factory=list, repr=False)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Signal the server, wait for it to exit (deadline), and collect its output."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(SHUTDOWN_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(SHUTDOWN_DEADLINE)
                raise TimeoutError(f"the server ignored signal {sig} for {SHUTDOWN_DEADLINE}s") from None
        self.returncode = self.proc.returncode
        out, err = self._files
        self.stdout, self.stderr = read_whole(out), read_whole(err)


def read_whole(file: Any) -> bytes:
    """Everything written to ``file`` so far, read without moving its offset.

    A child given the file as stdout shares that offset: a seek(0) while it runs would make its next write
    land at the start, over earlier lines (a torn first line, seen as a rare test failure).
    """
    fd = file.fileno()
    size = os.fstat(fd).st_size
    chunks: list[bytes] = []
    done = 0
    while done < size:
        chunk = os.pread(fd, size - done, done)
        if not chunk:
            break
        chunks.append(chunk)
        done += len(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def run_server_process(args: Sequence[str], *, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Run ``args`` (with ``{port}`` replaced by a free port) from the repository root.

    Output goes to temporary files rather than pipes, so a chatty server never blocks on a full pipe.
    The server is stopped with SIGINT on exit if the test has not stopped it already.
    """
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in args]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err, env=full_env)
        server = ServerProcess(f"http://127.0.0.1:{port}", port, proc, _files=[out, err])
        try:
            wait_for_port(port, proc)
            yield server
        finally:
            if server.returncode is None:
                server.stop()


def validate_with_cli(data: bytes) -> subprocess.CompletedProcess[bytes]:
    """Pipe ``data`` through ``obskit validate -`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "obskit._cli", "validate", "-"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )

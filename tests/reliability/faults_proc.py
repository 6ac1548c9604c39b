"""``faults_app`` under a real uvicorn in a subprocess, with signals and every wait under a deadline."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import orjson

from tests.servers import REPO, free_port, read_whole, wait_for_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

EXIT_DEADLINE = 20.0
EXIT_MARK = "faults-exit "  # faults_app prints its final counts after this, at exit


@dataclass
class AppProcess:
    proc: subprocess.Popen[bytes]
    port: int
    stderr_file: IO[bytes]
    stdout_file: IO[bytes] | None
    client: httpx.Client
    exit_seconds: float | None = None  # from the signal to the exit
    _stderr: bytes | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, *, timeout: float = 5.0) -> httpx.Response:
        return self.client.get(self.url + path, timeout=timeout)

    def signal(self, sig: int, *, deadline: float = EXIT_DEADLINE) -> int:
        """Send ``sig`` and wait (at most ``deadline`` s) for the exit; returns the return code."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(deadline)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(EXIT_DEADLINE)
            raise AssertionError(f"the server did not exit within {deadline}s of signal {sig}") from None
        self.exit_seconds = time.monotonic() - start
        return code

    @property
    def stderr(self) -> bytes:
        if self._stderr is None:
            self._stderr = read_whole(self.stderr_file)
        return self._stderr

    @property
    def stdout(self) -> bytes:
        assert self.stdout_file is not None
        return read_whole(self.stdout_file)

    def exit_counts(self) -> dict[str, Any]:
        """The final counts ``faults_app`` printed at exit."""
        for line in self.stderr.splitlines():
            if line.startswith(EXIT_MARK.encode()):
                counts: dict[str, Any] = orjson.loads(line[len(EXIT_MARK) :])
                return counts
        raise AssertionError(f"no exit counts in stderr: {self.stderr[-2000:]!r}")


@contextlib.contextmanager
def run_app(env: dict[str, str], *, stdout: int | None = None) -> Iterator[AppProcess]:
    """Serve ``faults_app`` on a free loopback port; ``stdout=subprocess.PIPE`` gives a pipe nobody reads.

    Without it, stdout goes to a temporary file. The process is SIGKILLed at exit if still running.
    """
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "tests.reliability.faults_app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--timeout-graceful-shutdown", "5"]
    full_env = {**os.environ, **env}
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client())
        err = stack.enter_context(tempfile.TemporaryFile())
        out = None if stdout is not None else stack.enter_context(tempfile.TemporaryFile())
        proc = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=stdout if stdout is not None else out, stderr=err)
        app = AppProcess(proc, port, err, out, client)
        try:
            wait_for_port(port, proc)
            yield app
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(EXIT_DEADLINE)
            if proc.stdout is not None:
                proc.stdout.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.02)


def spool_files(root: Path) -> list[Path]:
    return sorted(root.glob("slot-*/*.json"))


def spooled_events(root: Path) -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes())["event"] for p in spool_files(root)]

"""One chain for every line the process prints: structlog loggers and the standard library's.

structlog is configured once with obskit's wrapper class and the process-wide :class:`Processor`; the
standard library gets a handler on the root logger that feeds its records through the same processor.
uvicorn turns propagation off for its loggers, so their handlers are replaced too.

Writing (the :class:`Sink`). A log call must never stall the request that made it, yet a healthy stream
should see each line at once (a crash right after a log call keeps the line; a test reading an
``io.StringIO`` sees it immediately). So the healthy path stays synchronous, and only a write that
*would block* is deferred:

* streams without a descriptor (``io.StringIO``, pytest's capture), regular files and ``/dev/null`` are
  written synchronously, as they are given: they do not block on a reader;
* a descriptor that can block (a pipe, as under Docker, Kubernetes or ``| tee``; a socket, as under
  systemd; a terminal) is written with ``pwritev2(..., RWF_NOWAIT)``, one system call that writes or says
  it would block (sockets, and pipes on recent Linux: the kernel says which, at the first write). Every
  write to the descriptor, however short, is made under the channel's lock: a record longer than
  ``PIPE_BUF`` may go out in pieces, and a line of another thread written between them would splice two
  records into one line (uncontended, the lock is a small part of a line's cost). Where the
  kernel does not support it (older kernels, terminals, macOS) obskit asks ``poll`` with a zero timeout,
  then writes at most ``PIPE_BUF`` bytes, which a pipe with room for one more page takes whole without
  blocking (a longer record goes in ``PIPE_BUF`` pieces, each asked for). A line the descriptor cannot
  take now (the reader is behind, the pipe is full) goes, with every line after it, to a bounded in-memory
  backlog (:attr:`Sink.max_buffer_bytes`) that one writer thread drains as ``poll`` reports room, so order
  is kept and the thread never spins. It writes whole lines batched up to ``PIPE_BUF`` bytes, so each
  write stays atomic and the lines of other processes sharing the pipe (``uvicorn --workers``) never land
  inside one of ours. When the backlog is full, new lines are dropped and counted (:attr:`Sink.dropped`);
  the first drop is reported once on stderr. A reader that stays slower than the log rate for longer than
  the backlog lasts therefore loses lines (counted) where it used to slow the application down.
  ``sink.flush(timeout)`` waits for the backlog; ``sink.drain(timeout)`` waits, then gives up on what is
  left, the chunk the writer holds included (counted, reported once), so every line is either written or
  counted: lifespan shutdown runs it (uvicorn re-raises SIGTERM after its graceful shutdown, and a process
  killed by it never runs ``atexit`` hooks), and so does an ``atexit`` hook (:data:`EXIT_FLUSH_SECONDS`).

  Rejected: ``O_NONBLOCK`` on the descriptor (it is shared: the application's own ``print()`` and every
  other process writing to the pipe would fail with ``EAGAIN``, the Node.js stdout problem); a private
  non-blocking twin (``/proc/self/fd/N`` reopened) keeps the pipe open after the application closes the
  stream, so its reader never sees EOF; a writer thread for every line (a line logged just before a
  crash would be lost, tests reading the stream right after a call would race, and each line would pay
  a thread hand-off). Known limits: without ``RWF_NOWAIT``, another process filling the pipe between
  our ``poll`` and our ``write`` can still block that one write until its reader frees a page; bytes the
  application left in ``sys.stdout``'s own buffer are not flushed ahead of our lines.

One write per loop turn (``Sink.batch``, ``configure(batch_writes=...)``, on by default). A line to a
pipe costs a system call and wakes its reader; in a container, where stdout is a pipe, that is most of
an access record's cost (``bench/middleware_overhead.py``, lines piped to ``cat``: 26 µs of middleware
overhead per request written line by line, 15 µs held per turn). So a line below ``error`` that the event loop logs
*while serving a request* (the trace context is set: the access record, the application's own lines) and
that is bound for a descriptor is held, and the lines of one loop turn go out together at the start of
the next turn (``loop.call_soon``), in whole-line chunks of at most ``PIPE_BUF`` bytes, so the atomicity
above still holds. Holding a line takes no lock (``list.append`` is atomic; a lock's ``with`` block cost
more than the rest of the hold): flushers, serialised by one lock, take out exactly the lines they copied
and come back for any held meanwhile. Ordering is kept: any other write (another thread, a line outside a
request, an error) first writes what is held, under that lock. An ``error`` or ``critical`` line is never held,
and neither is anything outside a request: uvicorn logs "Finished server process" and then re-raises
SIGTERM in the same turn, which no held line would survive. A loop that does not come back (a blocking
call in a coroutine) has its held lines written by a watchdog thread within :data:`BATCH_SECONDS`;
``flush()``, ``drain()``, ``atexit`` and ``fork()`` write them first. What this gives up: a process killed
outright (SIGKILL, ``os._exit``) loses the held info/warning lines of its last turn of requests.

The descriptor is looked up when obskit first writes to a stream object, and again in a forked child.
Failures (closed stream, ``BrokenPipeError``, any exception from ``write``) are counted in
:attr:`Sink.failures` and reported once; they never reach the caller. ``captures`` (the ``obskit_logs``
fixture) see every line synchronously, before any of this.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import errno
import io
import logging
import os
import select
import stat
import sys
import threading
import time
from asyncio.events import _get_running_loop  # the C accessor: is this thread running an event loop?
from typing import IO, TYPE_CHECKING, Any

import structlog

from obskit._context import _current as _current_request
from obskit._processors import _LEVEL_OF_METHOD, LEVEL_NUMBERS, Processor
from obskit._renderers import render_console, render_json, safe_repr, safe_str

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from obskit._config import Settings

# Loggers that frameworks configure with propagate=False and handlers of their own.
TAKEN_OVER = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn", "gunicorn.error", "gunicorn.access")


_BINARY = (io.RawIOBase, io.BufferedIOBase)

BUFFER_BYTES = 4 * 1024 * 1024  # backlog bound while the stream does not accept writes
EXIT_FLUSH_SECONDS = 2.0  # how long interpreter exit waits for a backlog to drain
RETIRE_SECONDS = 1.0  # how long a replaced stream's backlog may still drain
_CHUNK = getattr(select, "PIPE_BUF", 512)  # the largest write a pipe takes atomically
_URGENT = 40  # error and above: written at once, never held for the end of a loop turn
BATCH_BYTES = 64 * 1024  # a loop turn's lines held for one write, up to this much
BATCH_SECONDS = 0.1  # held lines of a loop that does not come back (blocked) are written by then
_WATCH_IDLE_SECONDS = 30.0  # the watchdog thread ends after this long without held lines


def _report(text: str, *, wait: float = 0.0) -> None:
    """Write one diagnostic line to the process's real stderr without ever blocking the caller.

    A regular file (or pytest's ``capfd``) is written at once; a pipe, socket or terminal is written by
    a one-shot daemon thread, since stderr may be the very pipe that stopped being read.
    """
    try:
        err = sys.__stderr__
        if err is None:
            return
        try:
            mode = os.fstat(err.fileno()).st_mode
            may_block = not (stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(err.fileno())))
        except (OSError, ValueError, io.UnsupportedOperation):
            may_block = False

        def emit() -> None:
            with contextlib.suppress(Exception):
                err.write(text)
                err.flush()

        if not may_block:
            emit()
            return
        thread = threading.Thread(target=emit, name="obskit-report", daemon=True)
        thread.start()
        if wait:
            thread.join(wait)
    except Exception:  # noqa: S110 - nowhere left to report to
        pass


def _blocking_fd(stream: Any) -> int | None:
    """The descriptor of ``stream`` if writing to it can block on a reader (pipe, socket, terminal)."""
    if not isinstance(stream, io.IOBase) or not hasattr(select, "poll"):
        return None  # a custom object (written as it is given), or no poll (Windows)
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd)):
        return fd
    return None


def _lines(chunks: Iterable[bytes]) -> int:
    return sum(c.count(b"\n") for c in chunks)


_ROOM = select.POLLOUT | select.POLLERR | select.POLLHUP if hasattr(select, "poll") else 0
_NOWAIT = hasattr(os, "pwritev") and hasattr(os, "RWF_NOWAIT")


class _Channel:
    """A descriptor that may block, written without blocking the caller (see the module docstring)."""

    def __init__(self, sink: Sink, stream: io.IOBase, fd: int) -> None:
        self.sink = sink
        self.stream = stream
        self.fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)
        self.backlog: collections.deque[bytes] = collections.deque()
        self.pending = 0  # bytes deferred and not written yet
        self.writing = False  # the writer thread is busy: callers queue behind it
        self.inflight: bytes | None = None  # the chunk the writer took and is waiting to write
        self.lock = threading.Lock()  # a bare lock on the hot path; a Condition's with-block costs more
        self.cond = threading.Condition(self.lock)
        self.nowait = _NOWAIT  # until the kernel says RWF_NOWAIT is not supported for this file
        self.thread: threading.Thread | None = None
        self.retire_at: float | None = None
        # Set once shutdown gave up on the backlog: a line that cannot be written at once after that is
        # dropped and counted at once, since nothing will run to write it later.
        self.gave_up = False

    def _room(self, timeout_ms: int) -> bool:
        # POLLERR/POLLHUP count as room: the write then raises (EPIPE, EIO) and the failure is counted.
        return any(events & _ROOM for _, events in self._poll.poll(timeout_ms))

    def write(self, line: bytes) -> bool:
        """Write or defer ``line``; False if this channel was retired meanwhile (the caller re-plans)."""
        if self.stream.closed:
            raise ValueError("I/O operation on closed file")
        # Every write to the descriptor is made under the lock, short ones too: a record longer than
        # PIPE_BUF can go out in pieces (a partial write now, the rest from the writer thread), and a line
        # written without the lock could land between them, splicing two records into one line. Checking
        # a flag first is no substitute: a thread can pass the check, then be preempted until another
        # thread's partial write. Uncontended, the lock is a few percent of a line's cost.
        with self.lock:
            if self.retire_at is not None:
                return False
            if self.backlog or self.writing:  # behind deferred lines: keep the order
                self._defer(line, whole=True)
                return True
            if self.nowait:
                # One system call that writes, or says it would block (sockets; pipes on recent Linux).
                try:
                    n = os.pwritev(self.fd, (line,), -1, os.RWF_NOWAIT)
                except BlockingIOError:
                    n = 0  # full, or only the pipe's lock was busy: ask poll below
                except OSError as exc:
                    if exc.errno != errno.EOPNOTSUPP:
                        raise
                    self.nowait = False
                    n = 0
                else:
                    if n < len(line):  # part of a long record fitted: the rest must follow
                        self._defer(line[n:], whole=False)
                    return True
            if len(line) <= _CHUNK:  # poll, then one write that cannot block: room for PIPE_BUF
                if self._room(0):
                    n = os.write(self.fd, line)
                    if n < len(line):  # a socket may take part of it
                        self._defer(line[n:], whole=False)
                else:
                    self._defer(line, whole=True)
                return True
            view = memoryview(line)
            while view:
                if not self._room(0):
                    # What was written of this record must be followed by the rest, bound or not.
                    self._defer(bytes(view), whole=len(view) == len(line))
                    return True
                view = view[os.write(self.fd, view[:_CHUNK]) :]
            return True

    def _defer(self, data: bytes, *, whole: bool) -> None:
        if self.gave_up or (whole and self.pending + len(data) > self.sink.max_buffer_bytes):
            self.sink.dropped_lines(data.count(b"\n") or 1)  # a loop turn's batch holds several lines
            return
        self.backlog.append(data)
        self.pending += len(data)
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="obskit-log-writer", daemon=True)
            self.thread.start()
        else:
            self.cond.notify_all()

    def _take(self) -> bytes:
        """Under the lock: the next write, whole lines up to PIPE_BUF bytes (atomic), or a piece of a
        longer record."""
        first = self.backlog.popleft()
        if len(first) > _CHUNK:
            self.backlog.appendleft(first[_CHUNK:])
            return first[:_CHUNK]
        parts = [first]
        size = len(first)
        while self.backlog and size + len(self.backlog[0]) <= _CHUNK:
            part = self.backlog.popleft()
            parts.append(part)
            size += len(part)
        return b"".join(parts) if len(parts) > 1 else first

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.backlog and self.retire_at is None:
                    self.writing = False
                    self.cond.notify_all()  # flush() waiters
                    self.cond.wait()
                if self.retire_at is not None and (not self.backlog or time.monotonic() >= self.retire_at):
                    self._give_up()
                    return
                self.writing = True
                self.inflight = chunk = self._take()
            # Wait for room outside the lock, so callers only ever queue behind us, never wait for the
            # reader; write under it, so give_up() either counts this chunk or sees it written, never both.
            room = self._room(1000)
            written = 0
            with self.lock:
                if self.inflight is None:  # given up (and counted) meanwhile
                    continue
                self.inflight = None
                try:
                    if room:  # at most PIPE_BUF bytes with room for them: this write does not block
                        written = self._write_now(chunk)
                except Exception as exc:  # the reader went away (EPIPE) or worse: count every line, go on
                    self.backlog.appendleft(chunk)
                    failed = _lines(self.backlog)
                    self.backlog.clear()
                    self.pending = 0
                    self.sink.failed(exc, failed)
                    continue
                self.pending = max(0, self.pending - written)
                if written < len(chunk):
                    if self.gave_up:  # shutdown gave up on the backlog: nothing will write the rest
                        self.sink.dropped_lines(chunk[written:].count(b"\n"))
                    else:
                        self.backlog.appendleft(chunk[written:])
            if not written:
                time.sleep(0.01)  # no room within a second, or room by poll but not by write: never spin

    def _write_now(self, data: bytes) -> int:
        """One write that never blocks where the kernel can say so (RWF_NOWAIT): 0 if it would."""
        if self.nowait:
            try:
                return os.pwritev(self.fd, (data,), -1, os.RWF_NOWAIT)
            except BlockingIOError:
                return 0
            except OSError as exc:
                if exc.errno != errno.EOPNOTSUPP:
                    raise
                self.nowait = False
        return os.write(self.fd, data)

    def _give_up(self) -> None:
        """Under the lock: drop what is left (counted)."""
        left = _lines(self.backlog)
        self.inflight = None
        self.backlog.clear()
        self.pending = 0
        self.writing = False
        self.cond.notify_all()
        if left:
            self.sink.dropped_lines(left)

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.backlog or self.writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def give_up(self) -> int:
        """Drop the backlog now, and the chunk the writer is waiting to write (counted by the caller)."""
        with self.lock:
            left = _lines(self.backlog)
            if self.inflight is not None:
                left += self.inflight.count(b"\n")
                self.inflight = None
            self.backlog.clear()
            self.pending = 0
            self.gave_up = True
            self.cond.notify_all()
        return left

    def retire(self, seconds: float) -> None:
        """Stop taking lines: the writer drains what is pending for at most ``seconds``, then stops."""
        with self.lock:
            if self.retire_at is not None:
                return
            self.retire_at = time.monotonic() + seconds
            if self.thread is None:
                self._give_up()
            else:
                self.cond.notify_all()


# (stream object, its binary writer or None, its channel, whether lines may be held for one write a turn)
_Route = tuple[Any, Any, "_Channel | None", bool]
_UNPLANNED: _Route = (None, None, None, False)


class Sink:
    """Writes rendered lines; never raises to the caller and never blocks it on a stalled reader.

    ``failures`` counts lines a failing stream did not take, and ``dropped`` lines dropped because the
    stream stopped accepting writes while the backlog was full; each kind is reported once on stderr.

    Lines below ``error`` logged on an event loop while it serves a request, bound for a descriptor, are
    held for the rest of the loop turn and written together (``batch``, on by default; see the module
    docstring).
    """

    def __init__(self) -> None:
        self.captures: list[Callable[[bytes], None]] = []
        self.failures = 0
        self.dropped = 0
        self.max_buffer_bytes = BUFFER_BYTES
        self.batch = True
        self._reported = False
        self._drop_reported = False
        self._lock = threading.Lock()  # serialises text streams
        self._plan_lock = threading.Lock()
        self._route: _Route = _UNPLANNED
        self.stream: IO[Any] | None = None
        # Lines held for one write at the end of the loop turn. The list object never changes: a writer
        # that finds it non-empty takes the lock and writes it first, so the stream keeps call order.
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._held_since = 0.0
        self._held_lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._flush_soon = self.flush_held  # one bound method, not a new one every loop turn

    def set_stream(self, stream: IO[Any] | None) -> None:
        """None means whatever ``sys.stdout`` is at the time of each write (pytest's capture swaps it)."""
        self.flush_held()  # what was held goes where it was headed
        self.stream = stream  # the next write re-plans if the object changed

    def _plan(self, stream: Any) -> _Route:
        with self._plan_lock:
            route = self._route
            if route[0] is stream and (route[2] is None or route[2].retire_at is None):
                return route  # another thread planned it meanwhile
            old = route[2]
            out = stream if isinstance(stream, _BINARY) else getattr(stream, "buffer", None)
            if not isinstance(out, _BINARY):
                out = None
            try:
                fd = _blocking_fd(stream)
                chan = _Channel(self, stream, fd) if fd is not None else None
            except Exception:  # any surprise: write synchronously, as before
                chan = None
            # Holding lines for a turn saves a system call per line; an in-memory stream (StringIO,
            # pytest's capture) has none to save and is written at once.
            self._route = route = (stream, out, chan, chan is not None or _has_fd(out))
        if old is not None:
            old.retire(RETIRE_SECONDS)
        return route

    def write(self, line: bytes, *, urgent: bool = False) -> None:
        """Write one rendered line; ``urgent`` (error and above) is written at once, with what was held."""
        if self.captures:
            for capture in self.captures:
                capture(line)
        try:
            # _target() and _emit() inlined for the usual cases: this runs for every line.
            stream = self.stream
            if stream is None:
                stream = sys.stdout
            route = self._route
            if route[0] is not stream:
                route = self._plan(stream)
            if route[3] and not urgent and self.batch and _current_request.get() is not None:
                loop = _get_running_loop()
                if loop is not None:
                    # No lock: list.append is atomic, and only flushers (serialised by _held_lock) take
                    # lines out, from the front. Whoever makes the list non-empty schedules its flush.
                    held = self._held
                    held.append(line)
                    if len(held) == 1:
                        self._start_turn(loop, line)
                    else:
                        self._held_bytes += len(line)
                        if self._held_bytes >= BATCH_BYTES:
                            self.flush_held()
                    return
            if self._held:
                self.flush_held(line)
                return
            chan = route[2]
            if chan is not None:
                if chan.write(line):
                    return
            elif route[1] is not None:  # a file or /dev/null: a BufferedWriter takes one whole line per write()
                route[1].write(line)
                route[1].flush()
                return
            self._emit(route, stream, line)
        except Exception as exc:
            self.failed(exc)

    def _target(self) -> tuple[Any, _Route]:
        """The stream to write to now, and its route (planned at the first write to a new stream)."""
        stream = self.stream
        if stream is None:
            stream = sys.stdout
        route = self._route
        return stream, route if route[0] is stream else self._plan(stream)

    def _emit(self, route: _Route, stream: Any, data: bytes) -> None:
        """Write whole lines now, through the stream's route; raises what the stream raised."""
        _, out, chan, _ = route
        if chan is not None:
            if chan.write(data):
                return
            _, out, chan, _ = self._plan(stream)  # retired by another thread's re-plan
            if chan is not None and chan.write(data):
                return
        if out is None:
            with self._lock:
                stream.write(data.decode("utf-8"))
                stream.flush()
            return
        # A BufferedWriter serialises writes itself; one write() call is one whole line (or turn).
        out.write(data)
        out.flush()

    # -- one write per loop turn ------------------------------------------------------------------------

    def _start_turn(self, loop: Any, line: bytes) -> None:
        """The first line held since the last flush: write it (and the turn's others) at the next turn."""
        self._held_bytes = len(line)
        self._held_since = time.monotonic()
        # Runs at the start of the next turn, before the loop waits for I/O again.
        loop.call_soon(self._flush_soon)
        if self._watchdog is None:
            with self._held_lock:
                if self._watchdog is None:
                    self._watchdog = threading.Thread(target=self._watch, name="obskit-log-flush", daemon=True)
                    self._watchdog.start()

    def flush_held(self, line: bytes | None = None) -> None:
        """Write the lines held for this loop turn (and ``line`` after them) now, as few writes as fit."""
        with self._held_lock:
            held = self._held
            while held or line is not None:
                # A loop thread may append while this runs, never remove: take the lines seen, drop exactly
                # those, and come back for any that arrived meanwhile.
                lines = held[:]
                del held[: len(lines)]
                self._held_bytes = 0
                if line is not None:
                    lines.append(line)
                    line = None
                if not lines:
                    return
                try:
                    stream, route = self._target()
                except Exception as exc:
                    self.failed(exc, len(lines))
                    continue
                if route[2] is not None:  # a pipe: whole lines up to PIPE_BUF per write, each atomic
                    chunks = _chunks(lines, _CHUNK)
                else:  # a file takes the turn's lines in one write
                    chunks = [(b"".join(lines) if len(lines) > 1 else lines[0], len(lines))]
                for chunk, n in chunks:
                    try:
                        self._emit(route, stream, chunk)
                    except Exception as exc:
                        self.failed(exc, n)

    def _watch(self) -> None:
        """Write held lines of a loop that has not come back within BATCH_SECONDS (blocked by a call)."""
        idle = 0.0
        while True:
            time.sleep(BATCH_SECONDS)
            if self._held:
                idle = 0.0
                if time.monotonic() - self._held_since >= BATCH_SECONDS:
                    with contextlib.suppress(Exception):
                        self.flush_held()
                continue
            idle += BATCH_SECONDS
            if idle >= _WATCH_IDLE_SECONDS:
                with self._held_lock:
                    # Leave first, then look: a line held meanwhile either sees no watchdog and starts one,
                    # or is seen here (holding a line takes no lock).
                    me, self._watchdog = self._watchdog, None
                    if not self._held:
                        return  # the next held line starts another
                    self._watchdog = me
                    idle = 0.0

    # -- waiting, failures, shutdown --------------------------------------------------------------------

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait up to ``timeout`` seconds until no line is waiting for the stream; True if none is."""
        self.flush_held()
        chan = self._route[2]
        return chan is None or chan.flush(timeout)

    @property
    def pending(self) -> int:
        """Bytes waiting for a stream that does not accept writes right now."""
        chan = self._route[2]
        return chan.pending if chan is not None else 0

    def failed(self, exc: BaseException, lines: int = 1) -> None:
        self.failures += lines
        if self._reported:
            return
        self._reported = True
        _report(f"obskit: writing a log line failed ({safe_repr(exc)}); further failures are counted\n")

    def dropped_lines(self, n: int) -> None:
        self.dropped += n
        if self._drop_reported:
            return
        self._drop_reported = True
        _report(
            "obskit: the log stream is not accepting writes and its backlog is full "
            f"({self.max_buffer_bytes} bytes); further lines are dropped and counted\n"
        )

    def reset_failures(self) -> None:
        self.failures = 0
        self.dropped = 0
        self._reported = False
        self._drop_reported = False

    def drain(self, timeout: float = EXIT_FLUSH_SECONDS) -> int:
        """Shutdown: wait up to ``timeout`` s for the backlog, then give up on the rest (counted, reported).

        For lifespan shutdown and ``atexit``: uvicorn re-raises SIGTERM after a graceful shutdown, so a
        server killed that way never runs ``atexit`` hooks. Returns the number of lines given up.
        """
        with contextlib.suppress(Exception):
            self.flush_held()
        chan = self._route[2]
        if chan is None or chan.flush(timeout):
            return 0
        left = chan.give_up()  # so that a second call (or a later hook) does not wait again
        if left:
            self.dropped += left
            _report(f"obskit: {left} log lines were still waiting for the stream at exit and are lost\n", wait=0.5)
        return left

    def at_exit(self) -> None:
        self.drain(EXIT_FLUSH_SECONDS)

    def before_fork(self) -> None:
        # The child would inherit the held lines and write them a second time.
        with contextlib.suppress(Exception):
            self.flush_held()

    def after_fork_in_child(self) -> None:
        # The parent's threads do not exist here and its locks may have been held at fork: start over
        # (the parent still writes its own backlog).
        self._lock = threading.Lock()
        self._plan_lock = threading.Lock()
        self._held_lock = threading.Lock()
        self._held.clear()
        self._held_bytes = 0
        self._watchdog = None
        self._route = _UNPLANNED


def _has_fd(out: Any) -> bool:
    try:
        out.fileno()
    except Exception:  # io.UnsupportedOperation (BytesIO), a closed file, no fileno at all
        return False
    return True


def _chunks(lines: list[bytes], limit: int) -> Iterable[tuple[bytes, int]]:
    """Whole lines joined up to ``limit`` bytes (a longer line alone): ``(chunk, number of lines)``."""
    if len(lines) == 1:
        yield lines[0], 1
        return
    start = size = 0
    for i, line in enumerate(lines):
        if size and size + len(line) > limit:
            yield b"".join(lines[start:i]), i - start
            start, size = i, 0
        size += len(line)
    yield b"".join(lines[start:]), len(lines) - start


sink = Sink()
atexit.register(sink.at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=sink.before_fork, after_in_child=sink.after_fork_in_child)


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

    def urgent(self, line: bytes) -> None:
        sink.write(line, urgent=True)

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = failure = urgent


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


def _emit(self: BoundLogger, method: str, event: Any, kw: dict[str, Any], *, urgent: bool = False) -> Any:
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
    sink.write(pipeline.line(self._logger, method, event, fields), urgent=urgent)
    return None


def _make_method(name: str, number: int) -> Callable[..., Any]:
    def meth(self: BoundLogger, event: Any = None, *args: Any, **kw: Any) -> Any:
        if number < state.level:
            return None
        if args:
            event = _interpolate(event, args)
        return _emit(self, name, event, kw, urgent=number >= _URGENT)

    meth.__name__ = name
    return meth


def _interpolate(event: Any, args: tuple[Any, ...]) -> Any:
    pipeline = state.pipeline
    if pipeline is not None:
        args = pipeline.processor.clean_args(args)
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
        return _emit(self, "exception", event, kw, urgent=True)

    def log(self, level: int, event: Any = None, *args: Any, **kw: Any) -> Any:
        if level < state.level:
            return None
        if args:
            event = _interpolate(event, args)
        return _emit(self, _std_level(level), event, kw, urgent=level >= _URGENT)

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
                args = record.args
                if type(record.msg) is not str:
                    # A container logged as the message itself: walk it before str() flattens it.
                    msg = self.pipeline.processor.clean_args((record.msg,))[0]
                    message = str(msg) % self.pipeline.processor.clean_args(args) if args else str(msg)
                elif args:
                    # Format with the containers' secret keys already masked (never mutate the record:
                    # other handlers may hold it too).
                    cleaned = self.pipeline.processor.clean_args(args)
                    message = str(record.msg) % cleaned if cleaned is not args else record.getMessage()
                else:
                    message = record.getMessage()
            except Exception as exc:
                message = f"{safe_str(record.msg)} [log arguments did not format: {safe_repr(exc)}]"
            # the caller's extra= keys, in the caller's order
            fields = {k: v for k, v in record.__dict__.items() if k not in _STD_ATTRS}
            if record.stack_info:
                fields["stack_info"] = record.stack_info
            pipeline = self.pipeline
            out = pipeline.processor.build(_std_level(record.levelno), message, fields, record.exc_info, record.name)
            line = pipeline.render(out)
        except Exception as exc:
            line = self.pipeline.render(
                self.pipeline.processor.build(
                    "error", "obskit could not process a log record", {"render_error": safe_repr(exc)}, None
                )
            )
        sink.write(line, urgent=record.levelno >= _URGENT)


_saved: dict[str, Any] | None = None


def install(settings: Settings, pipeline: Pipeline) -> None:
    """Point structlog and the standard library at ``pipeline``; idempotent."""
    global _saved  # noqa: PLW0603
    state.level = LEVEL_NUMBERS[settings.level]
    state.pipeline = pipeline
    sink.set_stream(settings.stream)
    sink.batch = settings.batch_writes
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
    if settings.access_log:
        silence_server_access_log()


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # noqa: ARG002 - the logging.Filter signature
        return False


_DROP_ALL = _DropAll()
_access_silenced = False  # install() silenced uvicorn.access; take_over_stdlib() undoes it


def silence_server_access_log() -> None:
    """uvicorn's access line repeats obskit's access record: silence it from configure() on.

    The middleware does the same at lifespan startup, but ``uvicorn --lifespan off`` has none; uvicorn's
    command line applies its logging dictConfig before it imports the app, so this runs after it.
    Detached as well as disabled: uvicorn formats its line's arguments on every request whenever the
    logger has a handler to reach. The filter is for a dictConfig applied later still
    (``uvicorn.run(app)`` with its default ``log_config``): that re-attaches handlers and clears
    ``disabled``, but keeps a logger's filters.
    """
    global _access_silenced  # noqa: PLW0603
    access = logging.getLogger("uvicorn.access")
    access.disabled = True
    access.propagate = False
    access.handlers = []
    access.addFilter(_DROP_ALL)
    _access_silenced = True


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
    # On the handler as well as on root: a logger with a level of its own (uvicorn's dictConfig sets
    # uvicorn.error to INFO) passes its records to root's handlers without root's level being asked.
    handler.setLevel(LEVEL_NUMBERS[settings.level])
    root.handlers = [handler]
    root.setLevel(LEVEL_NUMBERS[settings.level])
    for name in TAKEN_OVER:
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    _unsilence_server_access_log()  # the caller decides again (install(), or the middleware's own setting)
    logging.captureWarnings(settings.capture_warnings)


def _unsilence_server_access_log() -> None:
    global _access_silenced  # noqa: PLW0603
    if _access_silenced:
        access = logging.getLogger("uvicorn.access")
        access.disabled = False
        access.removeFilter(_DROP_ALL)
        _access_silenced = False


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
    _unsilence_server_access_log()
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

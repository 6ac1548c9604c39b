"""The on-disk spool: every accepted delivery is a file until it succeeds or fails for good.

Layout: ``<spool_dir>/slot-<n>/`` holds one JSON file per (event, hook) delivery, named
``<created_ns>-<event id>-<hook key>.json`` so a directory listing is also the replay order::

    {"v": 1, "target": "<hook key>", "created": <unix seconds>, "event": {<AlertEvent.to_dict()>}}

A delivery held by a route's ``rate_limit`` also has ``"held": <route index>``: it is replayed into that
route's hold, not straight to the hook, so a restart never bypasses the limit (an older reader ignores the
key and delivers it, which beats deleting it).

Writes go to ``.tmp-<name>``, are fsynced, then ``os.replace``d into place and the directory is fsynced,
so a crash leaves either the whole file or none; a ``.tmp-`` file left complete by a process killed before
its rename is adopted at the next start. A process owns one slot through an exclusive ``flock`` on
``slot-<n>/.lock`` (released by the kernel when the process dies), so the N workers of
``uvicorn --workers N`` each get their own slot, and a restarted worker takes over a dead one's slot and
replays it with the original event ids. Choosing a slot (and adopting the files of slots no live process
holds) happens under an exclusive ``flock`` on ``<spool_dir>/.slots.lock``, one process at a time; a live
process also re-scans for dead slots now and then (:meth:`Spool.rescan`), so a worker that dies while its
siblings live is not left waiting for a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from obskit.alerts._event import AlertEvent

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: one process per spool_dir is the user's job
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("obskit.alerts")

VERSION = 1
MAX_SLOTS = 256
MAX_FILE_BYTES = 1024 * 1024  # an event is a few KB; anything bigger is not ours
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

# Held around opening a lock file and recording its descriptor (and around forgetting and closing it), and
# across fork(): a child then never inherits a lock descriptor that Spool.close_inherited does not know of.
_fd_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_fd_lock.acquire, after_in_parent=_fd_lock.release, after_in_child=_fd_lock.release)


@dataclass(slots=True)
class Spooled:
    target: str
    event: AlertEvent
    created: float
    path: str
    held: int | None = None  # the index of the route whose rate limit held it


def _parse(path: str, size: int) -> Spooled:
    if size > MAX_FILE_BYTES:
        raise ValueError("too large")
    data: Any = orjson.loads(Path(path).read_bytes())
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise ValueError("unknown format")
    target, created, held = data["target"], data["created"], data.get("held")
    if not isinstance(target, str) or not isinstance(created, (int, float)):
        raise TypeError("bad header")
    if held is not None and (not isinstance(held, int) or isinstance(held, bool) or held < 0):
        raise TypeError("bad held")
    return Spooled(target, AlertEvent.from_dict(data["event"]), float(created), path, held)


class SpoolError(Exception):
    """The spool directory cannot be used (no free slot, not writable)."""


class Spool:
    """A bounded directory of pending deliveries owned by this process (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], *, max_files: int, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.dir: Path | None = None
        self._lock_fd: int | None = None
        # Every lock descriptor open right now (the slot's, the .slots.lock guard, a slot being probed or
        # adopted): a child forked meanwhile must close its copies, or it would hold those flocks.
        self._lock_fds: set[int] = set()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        # Writes run on executor threads while removals run on the loop thread.
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"<Spool {self.dir or self.root} files={len(self._sizes)}>"

    @property
    def count(self) -> int:
        return len(self._sizes)

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Processes starting together choose their slots one at a time: another's orphan scan briefly
        # holds each free slot's lock, and would otherwise push this one to a higher slot.
        with self._slots_guard():
            self._take_slot()

    def _take_slot(self) -> None:
        for n in range(MAX_SLOTS):
            slot = self.root / f"slot-{n}"
            slot.mkdir(exist_ok=True)
            fd = self._open_lock(slot / ".lock", os.O_RDWR | os.O_CREAT)
            if fcntl is None:
                self.dir, self._lock_fd = slot, fd
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._close_lock(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self.dir, self._lock_fd = slot, fd
            self._adopt_orphans()
            return
        raise SpoolError(f"all {MAX_SLOTS} spool slots under {self.root} are locked by live processes")

    def rescan(self) -> tuple[list[Spooled], int]:
        """Adopt the files of slots whose process died since :meth:`open`; return them as :meth:`load` does."""
        assert self.dir is not None
        with self._slots_guard():  # never races a starting process for a slot's lock
            names = set(self._adopt_orphans())
        if not names:
            return [], 0
        # Only the adopted names: our own .tmp- files may be writes in flight on another thread.
        return self._load([e for e in os.scandir(self.dir) if e.name in names])

    def _adopt_orphans(self) -> list[str]:
        """Move the pending files of every slot no live process holds into ours; return their names.

        Without this, a restart with fewer processes than before (``--workers 2`` then 1, or a worker
        that is not restarted) would leave the other slots' alerts on disk, never delivered.
        """
        assert self.dir is not None
        if fcntl is None:  # pragma: no cover - no locks, no way to tell a dead slot from a live one
            return []
        moved: list[str] = []
        for slot in sorted(self.root.glob("slot-*")):
            if slot == self.dir or not slot.is_dir():
                continue
            try:
                fd = self._open_lock(slot / ".lock", os.O_RDWR)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live process owns it
                for entry in os.scandir(slot):
                    if entry.name.endswith(".json"):  # .tmp- files too: load() adopts the complete ones
                        try:
                            Path(entry.path).replace(self.dir / entry.name)  # same name: same replay order
                        except OSError:
                            continue
                        moved.append(entry.name)
            finally:
                self._close_lock(fd)  # releases the flock
        if moved:
            self._fsync_dir()
            logger.info("obskit.alerts: took over %d spooled deliveries left by processes that are gone", len(moved))
        return moved

    @contextlib.contextmanager
    def _slots_guard(self) -> Iterator[None]:
        """``<spool_dir>/.slots.lock`` held exclusively: slots are taken and adopted one process at a time."""
        guard = self._open_lock(self.root / ".slots.lock", os.O_RDWR | os.O_CREAT)
        try:
            if fcntl is not None:
                fcntl.flock(guard, fcntl.LOCK_EX)
            yield
        finally:
            self._close_lock(guard)  # releases the flock

    def _open_lock(self, path: Path, flags: int) -> int:
        with _fd_lock:
            fd = os.open(path, flags, 0o600)
            self._lock_fds.add(fd)
        return fd

    def _close_lock(self, fd: int) -> None:
        with _fd_lock:
            self._lock_fds.discard(fd)
            os.close(fd)

    def close(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                self._close_lock(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def close_inherited(self) -> None:
        """In a forked child: close this process's copies of the parent's lock descriptors.

        A copy shares the parent's open file description, and so its flock: kept open, the parent's slot
        would look alive after the parent dies (stranding its alerts until the child exits), and a guard
        held at the fork would block every later ``open()`` for ever. Never ``LOCK_UN``: that would
        release the parent's locks too.
        """
        for fd in list(self._lock_fds):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._lock_fds.clear()
        self._lock_fd = None

    def load(self) -> tuple[list[Spooled], int]:
        """Read every pending file in replay order; corrupt ones are deleted and only counted.

        A ``.tmp-`` file is a write whose process died before its ``os.replace`` (its delivery was not
        attempted yet: a delivery is on disk before its first attempt). If it parses it is complete (a
        JSON object cut short never does), so it is adopted under its final name; otherwise it was never
        accepted and is deleted without being counted.
        """
        assert self.dir is not None
        return self._load(list(os.scandir(self.dir)))

    def _load(self, found: list[os.DirEntry[str]]) -> tuple[list[Spooled], int]:
        assert self.dir is not None
        good: list[Spooled] = []
        corrupt = 0
        adopted = False
        entries = [(e.name.removeprefix(".tmp-"), e) for e in found if e.name.endswith(".json")]
        for name, entry in sorted(entries, key=lambda pair: pair[0]):
            try:
                size = entry.stat().st_size
                item = _parse(entry.path, size)
            except Exception as exc:
                if entry.name == name:  # an unfinished write that does not parse was never accepted: not counted
                    corrupt += 1
                    logger.warning("obskit.alerts: skipping corrupt spool file %s (%s)", name, type(exc).__name__)
                with contextlib.suppress(OSError):
                    Path(entry.path).unlink()
                continue
            if entry.name != name:
                try:
                    item.path = str(Path(entry.path).replace(self.dir / name))
                except OSError:
                    continue  # left for the next start
                adopted = True
            with self._mutex:  # a rescan runs while the spool writer adds files
                self._sizes[item.path] = size
                self._bytes += size
            good.append(item)
        if adopted:
            self._fsync_dir()
        return good, corrupt

    def write(
        self, target: str, event: AlertEvent, created: float, *, held: int | None = None, sync_dir: bool = True
    ) -> str | None:
        """Durably store one delivery; ``None`` when the spool is full (the caller counts it).

        ``held`` marks a delivery held by that route's rate limit. With ``sync_dir=False`` the new name is
        durable only after the caller's :meth:`_fsync_dir`.
        """
        assert self.dir is not None
        doc: dict[str, Any] = {"v": VERSION, "target": target, "created": created, "event": event.to_dict()}
        if held is not None:
            doc["held"] = held
        body = orjson.dumps(doc)
        with self._mutex:
            if len(self._sizes) >= self.max_files or self._bytes + len(body) > self.max_bytes:
                return None
            name = f"{time.time_ns():020d}-{_UNSAFE.sub('_', event.id)}-{_UNSAFE.sub('_', target)}.json"
            path = str(self.dir / name)
            self._sizes[path] = len(body)
            self._bytes += len(body)
        tmp = str(self.dir / f".tmp-{name}")
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:  # noqa: PTH123
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(path)
            if sync_dir:
                self._fsync_dir()
        except OSError:
            with self._mutex:
                self._bytes -= self._sizes.pop(path, 0)
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise
        return path

    def write_many(self, items: Iterable[tuple[str, AlertEvent, float, int | None]]) -> list[str | None]:
        """Write a batch of ``(target, event, created, held)``, then fsync the directory once for all."""
        paths: list[str | None] = []
        for target, event, created, held in items:
            try:
                paths.append(self.write(target, event, created, held=held, sync_dir=False))
            except OSError as exc:  # this one stays in memory only; the rest of the batch still counts
                logger.warning("obskit.alerts: spool write failed (%s); alert kept in memory only", exc)
                paths.append(None)
        if any(p is not None for p in paths):
            self._fsync_dir()
        return paths

    def remove(self, path: str) -> None:
        with self._mutex:
            self._bytes -= self._sizes.pop(path, 0)
        # No directory fsync: a file resurrected by a crash is replayed with its original id, and
        # receivers dedup on it.
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()

    def _fsync_dir(self) -> None:
        assert self.dir is not None
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

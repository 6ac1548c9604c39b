"""Structured stack frames and the fingerprint that identifies a bug rather than an occurrence.

Fingerprint rule (documented in the README): a hex digest over

* the exception's fully qualified type name, and
* for each *in-app* frame of the traceback, outermost first: the module name, the function's qualified
  name and the stripped text of the executing source line.

In-app frames are those outside the standard library, ``site-packages`` and obskit itself; when an
exception has no in-app frame at all, every frame counts. Line *numbers*, absolute paths, the exception's
message and anything about the process are left out, so the fingerprint is the same across processes,
hosts and edits that only move code, and different for another raise site or another call path.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import sys
import sysconfig
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from types import TracebackType

MAX_FRAMES = 50  # a RecursionError has ~1000 frames; keep the outermost 10 and innermost 40


class Frame(TypedDict):
    file: str
    line: int
    function: str
    module: str


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    prefixes = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    prefixes.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    return tuple(os.path.join(os.path.realpath(p), "") for p in prefixes)  # noqa: PTH118


_LIBRARY_PREFIXES = _library_prefixes()
_OBSKIT_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "")  # noqa: PTH118, PTH120


def _walk(tb: TracebackType | None) -> list[tuple[str, int, str, str]]:
    out: list[tuple[str, int, str, str]] = []
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        module = frame.f_globals.get("__name__")
        out.append(
            (
                code.co_filename,
                tb.tb_lineno or 0,  # None for code with an empty line table; the schema's "line" is >= 0
                getattr(code, "co_qualname", code.co_name),
                module if isinstance(module, str) else "?",
            )
        )
        tb = tb.tb_next
    return out


def frames(exc: BaseException) -> list[Frame]:
    """The traceback of ``exc`` as frames (no local variables), bounded to ``MAX_FRAMES``."""
    raw = _walk(exc.__traceback__)
    if len(raw) > MAX_FRAMES:
        raw = raw[:10] + raw[-(MAX_FRAMES - 10) :]
    return [{"file": f, "line": n, "function": fn, "module": m} for f, n, fn, m in raw]


def _in_app(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...>, <string>
        return False
    real = os.path.realpath(filename)
    if real.startswith(_OBSKIT_DIR):
        return False
    return not real.startswith(_LIBRARY_PREFIXES)


_in_app_cache: dict[str, bool] = {}


# Keyed by the ids of the exception type and code objects, not the objects (a code object's hash is
# recomputed from its bytecode and constants on every call), and by each frame's instruction offset, not
# its line number (``tb_lineno`` decodes the code's line table on every read): a repeat costs a fifth of
# what it did. Each entry holds the objects its key names, so none of those ids can be reused while it
# exists: a hit is the same code.
_by_path: dict[tuple[int, ...], tuple[str, tuple[object, ...]]] = {}


def fingerprint(exc: BaseException) -> str:
    """A 16-hex-digit id for the bug that raised ``exc``; see the module docstring for the rule."""
    if isinstance(exc, BaseExceptionGroup):
        return _fingerprint(exc)
    # The same bug raises from the same code objects at the same lines: remember its digest, so a repeat
    # costs a traceback walk and a dict lookup instead of source lookups and hashing.
    cls = type(exc)
    key = [id(cls)]
    tb = exc.__traceback__
    while tb is not None:
        key.append(id(tb.tb_frame.f_code))
        key.append(tb.tb_lasti)
        tb = tb.tb_next
    path = tuple(key)
    entry = _by_path.get(path)
    if entry is None:
        held: list[object] = [cls]
        tb = exc.__traceback__
        while tb is not None:
            held.append(tb.tb_frame.f_code)
            tb = tb.tb_next
        entry = (_fingerprint(exc), tuple(held))
        if len(_by_path) >= 4096:  # bounded: code paths are finite, but keep memory flat regardless
            _by_path.clear()
        _by_path[path] = entry
    return entry[0]


def _fingerprint(exc: BaseException) -> str:
    raw = _walk(exc.__traceback__)
    cache = _in_app_cache
    app = []
    for entry in raw:
        filename = entry[0]
        flag = cache.get(filename)
        if flag is None:
            flag = _in_app(filename)
            if len(cache) < 4096:
                cache[filename] = flag
        if flag:
            app.append(entry)
    chosen = app or raw
    if len(chosen) > MAX_FRAMES:
        chosen = chosen[:10] + chosen[-(MAX_FRAMES - 10) :]
    cls = type(exc)
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    for filename, lineno, function, module in chosen:
        source = linecache.getline(filename, lineno).strip()
        h.update(f"\n{module}:{function}:{source}".encode("utf-8", "backslashreplace"))
    if isinstance(exc, BaseExceptionGroup):
        # A group is the set of bugs inside it: the same members in any order give the same fingerprint.
        for member in sorted({fingerprint(e) for e in exc.exceptions}):
            h.update(f"\n+{member}".encode())
    return h.hexdigest()


def type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"

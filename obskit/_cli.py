"""The ``obskit`` command: ``obskit validate`` checks JSON-lines logs, ``obskit demo`` serves the example app.

``obskit validate [FILE…|-]`` prints one ``FILE:LINE: reason`` line on stdout per bad input line (several
reasons joined with ``; ``; stdin is named ``-``), then ``N lines, M invalid`` on stderr, and exits 1 when
any line is bad or any file cannot be read. Input is read as bytes in blocks; a line longer than
``--max-line-bytes`` is measured and reported, never held, so memory stays flat for any file and any line.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import orjson

from obskit.schema import validate_record

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Write = Callable[[str], object]

DEFAULT_MAX_LINE_BYTES = 1 << 20
PROGRESS_EVERY = 1_000_000  # lines between progress updates on a terminal
_BLOCK = 1 << 16  # 64 KiB: measured a little faster than 1 MiB (the split lines stay in cache)


@dataclass(slots=True)
class _Totals:
    lines: int = 0
    invalid: int = 0
    unreadable: int = 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _undecodable(line: bytes, exc: orjson.JSONDecodeError) -> str:
    # Only reached for bad lines, so the extra decoding costs nothing on the hot path.
    if not line.strip():
        return "empty line"
    try:
        line.decode()
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8 at byte {bad.start + 1}"
    return f"invalid JSON: {exc.msg} at column {exc.colno}"


def _progress(stream: IO[bytes], name: str, lines: int, out: IO[str]) -> None:
    try:
        size = os.fstat(stream.fileno()).st_size
        done = f" ({100 * stream.tell() // size}%)" if size else ""
    except (OSError, ValueError):  # a pipe or a stream without a file descriptor
        done = ""
    out.write(f"\r\x1b[K{name}: {lines:,} lines{done}")
    out.flush()


def _check_lines(lines: list[bytes], first: int, name: str, max_line_bytes: int, write: Write) -> int:
    """Validate complete lines (without their newline) numbered from ``first``; returns how many were bad."""
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    invalid = 0
    for lineno, line in enumerate(lines, first):
        if len(line) > max_line_bytes:
            reason = _too_long(len(line), max_line_bytes)
        else:
            try:
                record = loads(line)
            except decode_error as exc:
                reason = _undecodable(line, exc)
            else:
                errors = validate_record(record)
                if not errors:
                    continue
                reason = "; ".join(errors)
        invalid += 1
        write(f"{name}:{lineno}: {reason}\n")
    return invalid


def _too_long(size: int, max_line_bytes: int) -> str:
    return f"line too long: {size} bytes, more than --max-line-bytes {max_line_bytes}; not parsed"


def _validate_stream(
    stream: IO[bytes],
    name: str,
    *,
    max_line_bytes: int,
    out: IO[str],
    progress: IO[str] | None,
    totals: _Totals,
) -> None:
    # Blocks split on newlines rather than readline(): no per-line I/O call, and a line never has to be
    # held whole: past `max_line_bytes` its bytes are only counted. Memory stays below a block plus that.
    write = out.write
    read = stream.read
    next_progress = PROGRESS_EVERY if progress is not None else -1
    lineno = 0  # lines completed so far
    # The start of a line that continues in the next block. A bytearray grows in place (amortised linear);
    # `tail + rest` per block would copy a line of n blocks n times.
    tail = bytearray()
    long_size = -1  # when >= 0: bytes so far of an over-long line being skipped
    try:
        while block := read(_BLOCK):
            lines = block.split(b"\n")
            rest = lines.pop()  # after the block's last newline: an incomplete line, or b""
            if long_size >= 0:
                if not lines:
                    long_size += len(rest)
                    continue
                lineno += 1
                totals.invalid += 1
                write(f"{name}:{lineno}: {_too_long(long_size + len(lines[0]), max_line_bytes)}\n")
                long_size = -1
                del lines[0]
            elif tail:
                if not lines:
                    tail += rest
                    if len(tail) > max_line_bytes:
                        long_size = len(tail)
                        tail = bytearray()
                    continue
                tail += lines[0]
                lines[0] = bytes(tail)
                tail = bytearray()
            if lines:
                totals.invalid += _check_lines(lines, lineno + 1, name, max_line_bytes, write)
                lineno += len(lines)
            if len(rest) > max_line_bytes:
                long_size = len(rest)
            else:
                tail += rest
            if lineno >= next_progress >= 0 and progress is not None:
                _progress(stream, name, lineno, progress)
                next_progress += PROGRESS_EVERY
        # The last line may lack its newline.
        if long_size >= 0:
            lineno += 1
            totals.invalid += 1
            write(f"{name}:{lineno}: {_too_long(long_size, max_line_bytes)}\n")
        elif tail:
            lineno += 1
            totals.invalid += _check_lines([bytes(tail)], lineno, name, max_line_bytes, write)
    finally:
        totals.lines += lineno
        if progress is not None and next_progress > PROGRESS_EVERY:
            progress.write("\r\x1b[K")
            progress.flush()


def validate_files(
    paths: Sequence[str],
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    progress: bool | None = None,
) -> tuple[int, int, int]:
    """Validate JSON-lines files, writing ``FILE:LINE: reason`` for each bad line.

    Args:
        paths: Files to read in order; ``-`` is stdin.
        max_line_bytes: Longer lines (newline excluded) are reported as too long without being parsed.
        out: Where bad lines are reported; stdout by default.
        err: Where unreadable files and progress go; stderr by default.
        progress: Show progress on ``err``; by default only when it is a terminal.

    Returns:
        ``(lines, invalid lines, unreadable files)``.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if progress is None:
        progress = err.isatty()
    totals = _Totals()
    check = functools.partial(
        _validate_stream, max_line_bytes=max_line_bytes, out=out, progress=err if progress else None, totals=totals
    )
    for path in paths:
        try:
            if path == "-":
                check(sys.stdin.buffer, "-")
                continue
            with open(path, "rb") as stream:  # noqa: PTH123
                check(stream, path)
        except OSError as exc:
            out.flush()  # keep the report in order when stdout and stderr share a terminal
            err.write(f"obskit validate: cannot read {path}: {exc.strerror or exc}\n")
            totals.unreadable += 1
    return totals.lines, totals.invalid, totals.unreadable


def _cmd_validate(args: argparse.Namespace) -> int:
    lines, invalid, unreadable = validate_files(args.files or ["-"], max_line_bytes=args.max_line_bytes)
    summary = f"{_plural(lines, 'line')}, {invalid} invalid"
    if unreadable:
        summary += f", {_plural(unreadable, 'file')} unreadable"
    sys.stdout.flush()  # the summary comes after every reported line when both go to one terminal
    sys.stderr.write(summary + "\n")
    return 1 if invalid or unreadable else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    # Imported here: the demo pulls in uvicorn and the example app, which validate does not need.
    from obskit._demo import run  # noqa: PLC0415

    return run(host=args.host, port=args.port)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    # uvicorn takes 70000 as 70000 - 65536 and 0 as "any free port": either way the demo's advertised
    # URLs would name a port nobody listens on.
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obskit", description="obskit command-line tools.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check JSON-lines logs against the obskit log record schema",
        description="Check JSON-lines logs against the obskit log record schema. Prints FILE:LINE: reason "
        "for each bad line, a summary on stderr, and exits 1 when any line is bad.",
    )
    validate.add_argument("files", nargs="*", metavar="FILE", help="log files; '-' or none reads stdin")
    validate.add_argument(
        "--max-line-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="N",
        help="longer lines are reported as too long without being parsed (default: %(default)s)",
    )
    validate.set_defaults(handler=_cmd_validate)

    demo = commands.add_parser("demo", help="serve the example app with everything on")
    demo.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    demo.add_argument("--port", type=_port, default=8000, help="port to bind (default: %(default)s)")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``obskit`` command.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.handler(args)
    except BrokenPipeError:
        # `obskit validate big.log | head`: the reader left. Point stdout at devnull so the interpreter's
        # final flush does not raise again, as the Python docs recommend for SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())

"""`obskit validate` under abuse: deep nesting, a 100 MB line, invalid UTF-8, five million lines.

Every case runs the CLI as a real subprocess, ``python -m obskit._cli validate FILE`` (through ``runpy`` in a
small wrapper, which is what ``-m`` does), with a timeout, and checks the exact report, the summary, the exit
status and no traceback.

How peak memory is measured: the wrapper reads ``VmHWM`` (the resident-set high-water mark) from
``/proc/self/status`` after the CLI returns, just before the interpreter exits, and writes it to a file.
``ru_maxrss`` is not used, because on Linux ``exec()`` carries the high-water mark of the image it replaces
into the new one: a child spawned from a 400 MiB process reports a ``ru_maxrss`` of at least 400 MiB through
``RUSAGE_SELF`` and through ``wait4``/``RUSAGE_CHILDREN`` alike, whatever it does itself (measured: 413 MiB
for a bare ``python -c pass``, whose VmHWM was 13 MiB). ``VmHWM`` belongs to the address space ``exec()``
created, so it is the CLI's own peak. ``test_the_memory_probe_sees_a_line_that_is_held`` shows the probe
sees a 100 MiB allocation when there is one.

The bound, ``PEAK_RSS_BOUND`` = 64 MiB: ``obskit validate`` on a 3-line file peaks at about 28 MiB (the
interpreter, orjson and the ``obskit`` package), and every case here stays within 2 MiB of that except the
1 MB line with half a million problems (42 MiB: it has to be parsed). Holding the 100 MiB line, or the
1.5 GB five-million-line file, would go far past 64 MiB, and so would a leak of 8 bytes per line over five
million lines. The bound is not "any input": a line within ``--max-line-bytes`` (1 MiB by default) is parsed,
and orjson's objects can cost ~30 times the line (measured: 59 MiB peak for one 1 MiB line of ``[{},{},…]``).

CPU time comes from ``RUSAGE_CHILDREN`` deltas (CPU time is summed over children, so the delta is exactly
the one child's), wall time from the clock. Both, with lines/s, go to stdout (``-s`` shows them) and to
``record_property`` (the junit XML).
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from obskit import _cli
from obskit.schema import validate_record

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak RSS is read from /proc")

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
PEAK_RSS_BOUND = 64 * MiB
MAX_LINE = _cli.DEFAULT_MAX_LINE_BYTES
TOO_LONG = "line too long: {} bytes, more than --max-line-bytes 1048576; not parsed"

# The CLI exactly as `python -m obskit._cli ARGS…` runs it, then its own VmHWM into $OBSKIT_VMHWM_FILE.
MEASURED_CLI = """\
import os, runpy
try:
    runpy.run_module("obskit._cli", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    with open(os.environ["OBSKIT_VMHWM_FILE"], "w") as out:
        out.write(hwm.split()[1])  # kB
"""

GOOD = (
    b'{"timestamp":"2026-11-29T08:44:00.123456Z","level":"info","service":"checkout",'
    b'"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","message":"order placed"}'
)
NO_SERVICE = b'{"timestamp":"2026-11-29T08:44:00.123Z","level":"info","trace_id":null,"message":"m"}'
# A valid record without its closing brace, to put something after the last field.
OPEN = b'{"timestamp":"2026-11-29T08:44:00.123Z","level":"info","service":"s","trace_id":null,"message":"m"'


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes: the child's VmHWM
    wall: float  # seconds
    cpu: float  # seconds, user + system, the child's alone

    def figures(self, lines: int | None = None) -> str:
        text = f"peak RSS {self.peak_rss / MiB:.1f} MiB, wall {self.wall:.2f} s, CPU {self.cpu:.2f} s"
        if lines is not None:
            text += f", {lines / self.wall:,.0f} lines/s wall, {lines / self.cpu:,.0f} lines/s CPU"
        return text


@pytest.fixture
def validate(tmp_path: Path) -> Callable[..., Run]:
    hwm_file = tmp_path / "vmhwm"

    def run(*args: str | Path, timeout: float = 120) -> Run:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", MEASURED_CLI, "validate", *map(str, args)],
            capture_output=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), "OBSKIT_VMHWM_FILE": str(hwm_file)},
            timeout=timeout,
            check=False,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        peak = int(hwm_file.read_text()) * 1024
        hwm_file.unlink()
        return Run(result.returncode, result.stdout.decode(), result.stderr.decode(), peak, wall, cpu)

    return run


def report(path: Path, lines: dict[int, str]) -> str:
    return "".join(f"{path}:{number}: {reason}\n" for number, reason in lines.items())


def figures(record_property: Callable[[str, object], None], case: str, text: str) -> None:
    record_property(case, text)
    print(f"\n{case}: {text}")  # the figures for the README: -s shows them


def depth_limit(line: bytes) -> str:
    """The reason for a line nested deeper than orjson's 1024 levels.

    orjson's column is the one just after the opening bracket that makes depth 1025 (no brackets in the
    strings of these lines).
    """
    depth = 0
    for i, char in enumerate(line):
        if char in b"[{":
            depth += 1
            if depth > 1024:
                return f"invalid JSON: depth limit exceeded at column {i + 2}"
        elif char in b"]}":
            depth -= 1
    raise AssertionError("not nested deeper than 1024")


def nested(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels - 1):
        value = [value]
    return value


# --- 1. deep nesting ------------------------------------------------------------------------------------


def test_deep_nesting_is_a_reason_on_its_line_not_a_crash(
    tmp_path: Path, validate: Callable[..., Run], record_property: Callable[[str, object], None]
) -> None:
    lines = [
        GOOD,
        b"[" * 100_000,  # never closed
        b'{"a":' * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,  # balanced: JSON the grammar allows, but 100,000 deep
        OPEN + b',"user":' + b"[" * 10_000 + b"]" * 10_000 + b"}",  # a record, with a 10,000-deep bound key
        OPEN + b',"user":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001,
        OPEN + b',"error":' + b'{"cause":' * 10_000 + b"null" + b"}" * 10_001,
        OPEN + b',"user":' + b"[" * 1_023 + b"]" * 1_023 + b"}",  # 1,024 levels with the record: the limit, valid
        NO_SERVICE,  # an ordinary bad line after them: still checked
        GOOD,
    ]
    path = tmp_path / "nested.log"
    path.write_bytes(b"\n".join(lines) + b"\n")

    run = validate(path)

    assert run.stdout == report(
        path,
        {
            2: depth_limit(lines[1]),
            3: depth_limit(lines[2]),
            4: depth_limit(lines[3]),
            5: depth_limit(lines[4]),
            6: depth_limit(lines[5]),
            7: depth_limit(lines[6]),
            9: "service: required field missing",
        },
    )
    assert run.stderr == "10 lines, 7 invalid\n"  # no RecursionError, no traceback
    assert run.returncode == 1
    assert run.peak_rss < PEAK_RSS_BOUND
    figures(record_property, "deep nesting", run.figures())


@pytest.mark.parametrize("where", ["bound key", "error", "error.stack", "error.cause", "exceptions", "http"])
def test_validate_record_on_100000_levels_of_python_nesting_does_not_recurse(where: str) -> None:
    # validate_record is public: a caller may hand it any Python value, not only what orjson can parse.
    deep = nested(100_000)
    record = orjson.loads(GOOD)
    expected: list[str] = []
    if where == "bound key":
        record["user"] = deep
    elif where == "error":
        record["error"] = deep
        expected = ["error: must be an object, got an array"]
    elif where == "http":
        record["http"] = {"a": deep}
        expected = [
            "http: unexpected key 'a'",
            "http.method: required field missing",
            "http.path: required field missing",
            "http.status: required field missing",
            "http.duration_ms: required field missing",
        ]
    else:
        error = {"type": "E", "message": "m", "known": False, "fingerprint": "0123456789abcdef"}
        if where == "error.stack":
            error["stack"] = [deep]
            expected = ["error.stack[0]: must be an object, got an array"]
        elif where == "error.cause":
            error["cause"] = deep
            expected = ["error.cause: must be an object, got an array"]
        else:
            error["exceptions"] = [{"type": "E", "message": "m", "stack": deep}]
            expected = ["error.exceptions[0].stack[0]: must be an object, got an array"]
        record["error"] = error
    assert validate_record(record) == expected


# --- 2. a 100 MB line -----------------------------------------------------------------------------------
HUGE = 100 * MiB  # bytes in the line, newline excluded


def write_huge_line(f: io.BufferedWriter) -> None:
    """A record whose message makes the line exactly HUGE bytes, written 1 MiB at a time."""
    head, end = (
        b'{"timestamp":"2026-11-29T08:44:00.123Z","level":"info","service":"s","trace_id":null,"message":"',
        b'"}',
    )
    f.write(head)
    left = HUGE - len(head) - len(end)
    chunk = b"x" * MiB
    while left:
        f.write(chunk[: min(left, MiB)])
        left -= min(left, MiB)
    f.write(end)


@pytest.fixture
def huge_in_the_middle(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "huge.log"
    with path.open("wb") as f:
        f.write(GOOD + b"\n")
        write_huge_line(f)
        f.write(b"\n" + NO_SERVICE + b"\n" + GOOD + b'\n{"message":"caf\xe9"}\n' + GOOD)  # last: no newline
    assert path.stat().st_size > HUGE
    yield path
    path.unlink()  # pytest keeps the last three runs' tmp_path: do not leave 100 MB behind


HUGE_MIDDLE_REPORT = {
    2: TOO_LONG.format(HUGE),
    3: "service: required field missing",
    5: "invalid UTF-8 at byte 16",
}


def test_a_100_mb_line_is_reported_too_long_in_bounded_memory_and_the_next_lines_are_checked(
    huge_in_the_middle: Path, validate: Callable[..., Run], record_property: Callable[[str, object], None]
) -> None:
    run = validate(huge_in_the_middle)

    assert run.stdout == report(huge_in_the_middle, HUGE_MIDDLE_REPORT)
    assert run.stderr == "6 lines, 3 invalid\n"
    assert run.returncode == 1
    assert run.peak_rss < PEAK_RSS_BOUND
    figures(
        record_property,
        "100 MB line",
        f"peak RSS {run.peak_rss / MiB:.1f} MiB, wall {run.wall:.2f} s, CPU {run.cpu:.2f} s, "
        f"{huge_in_the_middle.stat().st_size / MiB / run.wall:,.0f} MiB/s",
    )


def test_a_100_mb_last_line_without_newline(tmp_path: Path, validate: Callable[..., Run]) -> None:
    path = tmp_path / "huge-last.log"
    with path.open("wb") as f:
        f.write(GOOD + b"\n" + NO_SERVICE + b"\n")
        write_huge_line(f)
    try:
        run = validate(path)
    finally:
        path.unlink()

    assert run.stdout == report(path, {2: "service: required field missing", 3: TOO_LONG.format(HUGE)})
    assert run.stderr == "3 lines, 2 invalid\n"
    assert run.returncode == 1
    assert run.peak_rss < PEAK_RSS_BOUND


@pytest.mark.slow
def test_the_memory_probe_sees_a_line_that_is_held(
    huge_in_the_middle: Path, validate: Callable[..., Run], record_property: Callable[[str, object], None]
) -> None:
    # With the limit above the line, the CLI must hold and parse it: the probe has to see 100+ MiB, or the
    # bound asserted above proves nothing. The line is a valid record, so only lines 3 and 5 are bad.
    run = validate("--max-line-bytes", str(2 * HUGE), huge_in_the_middle)

    assert run.stdout == report(huge_in_the_middle, {3: HUGE_MIDDLE_REPORT[3], 5: HUGE_MIDDLE_REPORT[5]})
    assert run.stderr == "6 lines, 2 invalid\n"
    assert run.returncode == 1
    assert run.peak_rss > HUGE
    assert run.cpu < 15  # about 0.5 s; copied at every block (the old code) it took 50 s of CPU
    figures(record_property, "100 MB line held (probe check)", run.figures())


@pytest.mark.timeout(120)
def test_a_line_spanning_many_blocks_is_assembled_in_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: the start of a line was grown with `tail + rest` at every block, copying a line of n
    # blocks n times. A 100 MiB line under --max-line-bytes 200M took 55 s (now under 1 s). Here, with
    # 64-byte blocks, the old code took 3.5 s for a 2 MiB line and a minute for this 8 MiB one; grown in
    # place it takes about 0.1 s.
    monkeypatch.setattr(_cli, "_BLOCK", 64)
    line = OPEN + b',"user":"' + b"x" * (8 * MiB) + b'"}'
    out = io.StringIO()
    totals = _cli._Totals()
    start = time.perf_counter()
    _cli._validate_stream(
        io.BytesIO(GOOD + b"\n" + line + b"\n" + NO_SERVICE),
        "f",
        max_line_bytes=16 * MiB,
        out=out,
        progress=None,
        totals=totals,
    )
    assert time.perf_counter() - start < 5
    assert out.getvalue() == "f:3: service: required field missing\n"
    assert (totals.lines, totals.invalid) == (3, 1)


# --- 3. invalid UTF-8 -----------------------------------------------------------------------------------
def _in_message(raw: bytes) -> bytes:
    return OPEN[:-1] + raw + b'"}'


EURO_START = b"\xe2"  # first byte of the 3-byte euro sign
LATIN1_E_ACUTE = b"\xe9"
UTF8_CASES: list[tuple[str, bytes, bytes]] = [
    # (what, line, the first bad byte sequence in it)
    ("Latin-1 byte in a string value", _in_message(b"caf\xe9"), b"\xe9"),
    ("invalid byte in a key", OPEN + b',"us\xffer":1}', b"\xff"),
    ("overlong 2-byte '/'", _in_message(b"\xc0\xaf"), b"\xc0"),
    ("overlong 3-byte '/'", _in_message(b"\xe0\x80\xaf"), b"\xe0"),
    ("surrogate U+D800 encoded", _in_message(b"\xed\xa0\x80"), b"\xed"),
    ("CESU-8 surrogate pair", _in_message(b"\xed\xa0\xbd\xed\xb8\x80"), b"\xed"),
    ("above U+10FFFF", _in_message(b"\xf4\x90\x80\x80"), b"\xf4"),
    ("continuation byte first", b"\x80" + GOOD, b"\x80"),
    ("in the timestamp", OPEN.replace(b"2026", b"20\xb26", 1) + b"}", b"\xb2"),
]


def test_invalid_utf8_gets_one_reason_per_line_with_its_byte(
    tmp_path: Path, validate: Callable[..., Run], record_property: Callable[[str, object], None]
) -> None:
    truncated = _in_message(b"caf\xc3\xa9 \xe2\x82")[:-2]  # a 3-byte euro sign cut after 2 bytes, at EOF
    lines = [GOOD]
    expected: dict[int, str] = {}
    for _, line, bad in UTF8_CASES:
        lines += [line, GOOD]
        expected[len(lines) - 1] = f"invalid UTF-8 at byte {line.index(bad) + 1}"
    lines += [
        _in_message(b"\\ud800"),  # valid UTF-8, but a lone surrogate escape: orjson refuses it as JSON
        _in_message("café ✓ 日本 🙂".encode()),  # valid multi-byte UTF-8: no false alarm
        truncated,
    ]
    escape = lines[-3].index(b"\\u")
    expected[len(lines) - 2] = f"invalid JSON: no low surrogate in string at column {escape + 1}"
    expected[len(lines)] = f"invalid UTF-8 at byte {truncated.index(EURO_START) + 1}"
    path = tmp_path / "utf8.log"
    path.write_bytes(b"\n".join(lines))  # no newline after the truncated sequence

    run = validate(path)

    assert run.stdout == report(path, expected)
    assert run.stderr == f"{len(lines)} lines, {len(expected)} invalid\n"
    assert run.returncode == 1
    assert run.peak_rss < PEAK_RSS_BOUND
    figures(record_property, "invalid UTF-8", run.figures())


# --- a bad line whose reasons would be huge --------------------------------------------------------------
def test_a_line_with_half_a_million_problems_gets_a_short_reason_in_bounded_memory(
    tmp_path: Path, validate: Callable[..., Run], record_property: Callable[[str, object], None]
) -> None:
    # Regression: one reason per problem, unbounded: this 1 MB line made a 23 MB report line and the CLI
    # peaked at 149 MiB. Now 20 reasons are listed and the rest counted.
    head = OPEN + b',"error":{"type":"E","message":"m","known":false,"fingerprint":"0123456789abcdef","stack":['
    frames = (MAX_LINE - len(head) - 3) // 2
    line = head + b"1," * (frames - 1) + b"1]}}"
    assert len(line) <= MAX_LINE
    path = tmp_path / "many.log"
    path.write_bytes(GOOD + b"\n" + line + b"\n" + NO_SERVICE + b"\n")

    run = validate(path)

    listed = "; ".join(f"error.stack[{i}]: must be an object, got 1" for i in range(20))
    assert run.stdout == report(
        path, {2: f"{listed}; … and {frames - 20:,} more problems", 3: "service: required field missing"}
    )
    assert run.stderr == "3 lines, 2 invalid\n"
    assert run.returncode == 1
    assert run.peak_rss < PEAK_RSS_BOUND
    figures(record_property, "1 MB line, 524k problems", run.figures())


def test_validate_record_lists_20_reasons_and_counts_the_rest() -> None:
    record = orjson.loads(GOOD) | {"http": {f"k{i}": i for i in range(100_000)}}
    reasons = validate_record(record)
    assert reasons == [
        *(f"http: unexpected key 'k{i}'" for i in range(20)),
        "… and 99,984 more problems",  # the other 99,980 keys and the 4 missing required fields
    ]


# --- 4. five million lines ------------------------------------------------------------------------------
LINES = 5_000_000
EVERY = 500_000  # a bad line at each multiple of EVERY
CHUNK = 10_000  # lines per write; divides EVERY


def _records() -> list[bytes]:
    """CHUNK valid records shaped like obskit's output, varied so both of validate_record's paths run."""
    out = []
    for i in range(CHUNK):
        trace, span = f"{i * 7919 + 1:032x}", f"{i * 104729 + 1:016x}"
        ts = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 60:02d}.{i:06d}Z"
        record: dict[str, object] = {"timestamp": ts, "level": "info", "service": "checkout"}
        kind = i % 20
        if kind < 11:  # plain, in a request, with bound keys
            record |= {"trace_id": trace, "span_id": span, "message": "order placed", "logger": "checkout.api"}
            record |= {"request_id": f"req-{i}", "user_id": i, "cart": {"items": i % 5, "total": i / 7}}
        elif kind < 16:  # access record
            record |= {
                "trace_id": trace,
                "span_id": span,
                "message": "request",
                "http": {
                    "method": "POST",
                    "path": f"/orders/{i}",
                    "route": "/orders/{id}",
                    "status": 200 + i % 300,
                    "duration_ms": i % 1000 / 3,
                    "client_ip": "10.0.0.1",
                    "user_agent": "curl/8.5",
                },
            }
        elif kind < 18:  # error with a stack
            frames = [{"file": "/srv/app/api.py", "line": n, "function": "create", "module": "app.api"} for n in (1, 2)]
            record |= {"level": "error", "trace_id": trace, "span_id": span, "message": "order failed"}
            record["error"] = {
                "type": "app.OutOfStock",
                "message": "sku 42",
                "known": True,
                "code": "out_of_stock",
                "fingerprint": f"{i + 1:016x}",
                "stack": frames,
                "cause": {"type": "KeyError", "message": "42"},
            }
        elif kind == 18:  # outside a request, non-ASCII message
            record |= {"level": "warning", "trace_id": None, "message": "café ✓ 日本 🙂 stock low"}
        else:  # exact path but valid: a leap second, 29 February of a leap year, an integral float status
            record |= {"timestamp": "2028-02-29T23:59:60.500Z", "trace_id": None, "message": "leap"}
            record["http"] = {"method": "GET", "path": "/", "status": 200.0, "duration_ms": 0}
        out.append(orjson.dumps(record))
    return out


def _bad_lines() -> dict[int, tuple[bytes, str]]:
    """Line number -> (line, the reason the CLI must give), one kind of breakage each."""
    truncated = OPEN[:55]
    latin1 = _in_message(b"caf\xe9")
    deep = b"[" * 100_000
    long = OPEN + b',"user":"' + b"y" * (2 * MiB) + b'"}'
    bad = [
        (truncated, f"invalid JSON: unexpected end of data at column {len(truncated) + 1}"),
        (latin1, f"invalid UTF-8 at byte {latin1.index(LATIN1_E_ACUTE) + 1}"),
        (b"", "empty line"),
        (NO_SERVICE, "service: required field missing"),
        (
            GOOD.replace(b"4bf92f3577b34da6a3ce929d0e0e4736", b"4BF92F3577B34DA6A3CE929D0E0E4736"),
            "trace_id: must be null or 32 lowercase hex digits, got '4BF92F3577B34DA6A3CE929D0E0E4736'",
        ),
        (
            OPEN.replace(b"11-29", b"02-30") + b"}",
            "timestamp: not a real date and time, got '2026-02-30T08:44:00.123Z'",
        ),
        (b"[1,2,3]", "record: must be a JSON object, got an array"),
        (deep, depth_limit(deep)),
        (long, TOO_LONG.format(len(long))),
        (
            OPEN + b',"http":{"method":"GET","path":"/","status":700,"duration_ms":1}}',
            "http.status: must be an integer from 100 to 599, got 700",
        ),
    ]
    return {EVERY * (k + 1): case for k, case in enumerate(bad)}


@pytest.fixture
def five_million_lines(tmp_path: Path) -> Iterator[tuple[Path, dict[int, str]]]:
    records = _records()
    assert all(validate_record(orjson.loads(r)) == [] for r in records)
    bad = _bad_lines()
    assert max(bad) == LINES
    good_chunk = b"\n".join(records) + b"\n"
    path = tmp_path / "five-million.log"
    with path.open("wb") as f:
        for last in range(CHUNK, LINES + 1, CHUNK):  # the number of each chunk's last line
            if last not in bad:
                f.write(good_chunk)
                continue
            f.write(b"\n".join(records[:-1]) + b"\n" + bad[last][0])
            if last != LINES:  # the file's last line has no newline
                f.write(b"\n")
    yield path, {number: reason for number, (_, reason) in bad.items()}
    path.unlink()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_five_million_lines_report_exactly_the_bad_ones_in_bounded_memory(
    five_million_lines: tuple[Path, dict[int, str]],
    validate: Callable[..., Run],
    record_property: Callable[[str, object], None],
) -> None:
    path, expected = five_million_lines

    run = validate(path, timeout=600)

    assert run.stdout == report(path, expected)
    assert run.stderr == f"{LINES} lines, {len(expected)} invalid\n"
    assert run.returncode == 1
    assert run.peak_rss < PEAK_RSS_BOUND
    # A floor far below the ~230,000 lines/s of bench/README.md, in CPU time so a busy machine does not
    # trip it: it catches a pathological slowdown (something quadratic, a per-line syscall), not noise.
    assert LINES / run.cpu > 50_000
    size = path.stat().st_size
    figures(
        record_property, "5,000,000 lines", f"{size / 1e9:.2f} GB, {size / LINES:.0f} bytes/line, {run.figures(LINES)}"
    )

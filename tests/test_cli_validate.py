"""`obskit validate`: exact output for good and bad log files, stdin, missing files, huge lines."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc
import types
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obskit import _cli
from obskit._cli import main, validate_files

ROOT = Path(__file__).resolve().parent.parent
GOOD = (
    b'{"timestamp":"2026-11-29T08:44:00.123456Z","level":"info","service":"checkout",'
    b'"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","message":"order placed"}'
)
NO_SERVICE = b'{"timestamp":"2026-11-29T08:44:00.123Z","level":"info","trace_id":null,"message":"m"}'
BAD_TIMESTAMP = b'{"timestamp":"2026-11-29 08:44:00","level":"info","service":"s","trace_id":null,"message":"m"}'
UPPER_TRACE = (
    b'{"timestamp":"2026-11-29T08:44:00.123Z","level":"info","service":"s",'
    b'"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","message":"m"}'
)
MIXED = (
    b"\n".join(
        [
            GOOD,
            b"this is not json",
            b"",
            b'{"message":"caf\xe9"}',
            b"[1,2,3]",
            NO_SERVICE,
            BAD_TIMESTAMP,
            UPPER_TRACE,
            b'{"message":"' + b"x" * (1 << 20) + b'"}',
            b"[" * 5000,
            GOOD,
        ]
    )
    + b"\n"
)
MIXED_REPORT = [
    "2: invalid JSON: invalid literal, expected 'true' at column 1",
    "3: empty line",
    "4: invalid UTF-8 at byte 16",
    "5: record: must be a JSON object, got an array",
    "6: service: required field missing",
    (
        "7: timestamp: must be an RFC 3339 UTC time like 2026-11-29T08:44:00.123Z (3 to 9 fractional digits), "
        "got '2026-11-29 08:44:00'"
    ),
    "8: trace_id: must be null or 32 lowercase hex digits, got '4BF92F3577B34DA6A3CE929D0E0E4736'",
    "9: line too long: 1048590 bytes, more than --max-line-bytes 1048576; not parsed",
    "10: invalid JSON: depth limit exceeded at column 1026",
]


def report(name: str, lines: list[str]) -> str:
    return "".join(f"{name}:{line}\n" for line in lines)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_bytes(MIXED)
    return path


def test_each_bad_line_is_reported_with_its_number_and_reason(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(mixed)]) == 1
    out, err = capsys.readouterr()
    assert out == report(str(mixed), MIXED_REPORT)
    assert err == "11 lines, 9 invalid\n"


def test_the_console_script_reports_the_same(mixed: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "obskit._cli", "validate", mixed.name],
        cwd=mixed.parent,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.stdout.decode() == report("app.log", MIXED_REPORT)
    assert result.stderr.decode() == "11 lines, 9 invalid\n"
    assert result.returncode == 1


def test_stdin_is_read_from_a_subprocess_pipe() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "obskit._cli", "validate", "-"],
        input=GOOD + b"\n{}\n",
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    missing = "; ".join(
        f"{k}: required field missing" for k in ("timestamp", "level", "service", "trace_id", "message")
    )
    assert result.stdout.decode() == f"-:2: {missing}\n"
    assert result.stderr.decode() == "2 lines, 1 invalid\n"
    assert result.returncode == 1


def test_an_all_good_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.log"
    path.write_bytes(GOOD + b"\r\n" + GOOD + b"\n" + GOOD)  # CRLF and no final newline are fine
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr() == ("", "3 lines, 0 invalid\n")


def test_ids_moved_across_a_field_boundary_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GOOD's timestamp + trace_id + span_id with the boundaries moved: the fast path once matched one regex
    # over the three joined, and both lines passed.
    good = orjson.loads(GOOD)
    ts, trace, span = good["timestamp"], good["trace_id"], good["span_id"]
    shifted = [
        good | {"timestamp": ts + trace[:2], "trace_id": trace[2:]},
        good | {"trace_id": trace + span, "span_id": ""},
    ]
    path = tmp_path / "shifted.log"
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in shifted))
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr() == (
        report(
            str(path),
            [
                (
                    "1: timestamp: must be an RFC 3339 UTC time like 2026-11-29T08:44:00.123Z (3 to 9 fractional "
                    "digits), got '2026-11-29T08:44:00.123456Z4b'; "
                    "trace_id: must be null or 32 lowercase hex digits, got 'f92f3577b34da6a3ce929d0e0e4736'"
                ),
                (
                    "2: trace_id: must be null or 32 lowercase hex digits, "
                    "got '4bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b7'; "
                    "span_id: must be 16 lowercase hex digits, got ''"
                ),
            ],
        ),
        "2 lines, 2 invalid\n",
    )


def test_an_empty_file_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr() == ("", "0 lines, 0 invalid\n")


def test_one_line_is_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.log"
    path.write_bytes(GOOD + b"\n")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr() == ("", "1 line, 0 invalid\n")


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, GOOD + b"\nnull\n")
    assert main(["validate", "-"]) == 1
    assert capsys.readouterr() == ("-:2: record: must be a JSON object, got null\n", "2 lines, 1 invalid\n")


def test_no_file_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, GOOD + b"\n")
    assert main(["validate"]) == 0
    assert capsys.readouterr() == ("", "1 line, 0 invalid\n")


def test_a_missing_file_fails_and_the_others_are_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.log"
    good.write_bytes(GOOD + b"\n")
    missing = tmp_path / "missing.log"
    assert main(["validate", str(missing), str(good), str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"obskit validate: cannot read {missing}: No such file or directory\n"
        f"obskit validate: cannot read {tmp_path}: Is a directory\n"
        "1 line, 0 invalid, 2 files unreadable\n"
    )


def test_lines_are_numbered_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(GOOD + b"\n{\n")
    b.write_bytes(b"{\n")
    assert main(["validate", str(a), str(b)]) == 1
    out, err = capsys.readouterr()
    reason = "invalid JSON: unexpected end of data at column 2"
    assert out == f"{a}:2: {reason}\n{b}:1: {reason}\n"
    assert err == "3 lines, 2 invalid\n"


def test_max_line_bytes_is_configurable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(GOOD + b"\n" + GOOD[:100])  # the last line, without newline, is exactly 100 bytes
    assert main(["validate", "--max-line-bytes", "100", str(path)]) == 1
    out, _ = capsys.readouterr()
    assert out == (
        f"{path}:1: line too long: {len(GOOD)} bytes, more than --max-line-bytes 100; not parsed\n"
        f"{path}:2: invalid JSON: unexpected end of data at column 101\n"
    )


def test_max_line_bytes_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--max-line-bytes", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith("argument --max-line-bytes: must be at least 1, got 0\n")


def test_a_huge_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with path.open("wb") as f:
        f.write(GOOD + b"\n")
        for _ in range(64):
            f.write(b"y" * (1 << 20))  # one 64 MiB line
        f.write(b"\n" + GOOD + b"\n")
    out = io.StringIO()
    tracemalloc.start()
    try:
        result = validate_files([str(path)], out=out, err=io.StringIO(), progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == (3, 1, 0)
    assert (
        out.getvalue() == f"{path}:2: line too long: 67108864 bytes, more than --max-line-bytes 1048576; not parsed\n"
    )
    assert peak < 8 << 20


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([GOOD, b"", b"{}", b"x" * 30, b"[1]", b"  ", b"\xff", GOOD + b"\r"]), max_size=12
    ).map(b"\n".join)
    | st.binary(max_size=120),
    final_newline=st.booleans(),
    block=st.integers(1, 40),
    max_line_bytes=st.integers(1, 200),
)
def test_block_boundaries_do_not_change_the_report(
    data: bytes, final_newline: bool, block: int, max_line_bytes: int
) -> None:
    # Reference: the whole input split at once, each line judged alone.
    data += b"\n" if final_newline else b""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    expected = io.StringIO()
    for number, line in enumerate(lines, 1):
        _cli._check_lines([line], number, "f", max_line_bytes, expected.write)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_cli, "_BLOCK", block)
        totals = _cli._Totals()
        _cli._validate_stream(
            io.BytesIO(data), "f", max_line_bytes=max_line_bytes, out=out, progress=None, totals=totals
        )
    assert out.getvalue() == expected.getvalue()
    assert totals.lines == len(lines)
    assert totals.invalid == expected.getvalue().count("\n")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.log"
    path.write_bytes((GOOD + b"\n") * 5)
    monkeypatch.setattr(_cli, "PROGRESS_EVERY", 2)
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().err == "5 lines, 0 invalid\n"  # captured stderr is no terminal

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["validate", str(path)]) == 0
    assert terminal.getvalue() == f"\r\x1b[K{path}: 5 lines (100%)\r\x1b[K5 lines, 0 invalid\n"


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(b"{}\n" * 20_000)  # far more report than a pipe buffer holds
    with subprocess.Popen(
        [sys.executable, "-m", "obskit._cli", "validate", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline().startswith(f"{path}:1: timestamp: required field missing".encode())
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 1
    assert b"Traceback" not in err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("usage: obskit [-h] COMMAND ...")


def test_demo_runs_the_demo_module_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    demo = types.ModuleType("obskit._demo")

    def run(*, host: str, port: int) -> int:
        calls.append((host, port))
        return 0

    demo.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "obskit._demo", demo)
    assert main(["demo"]) == 0
    assert main(["demo", "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert calls == [("127.0.0.1", 8000), ("0.0.0.0", 9000)]


def test_bound_keys_of_any_shape_are_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = orjson.loads(GOOD) | {
        "http": {"method": "GET", "path": "/", "route": None, "status": 200, "duration_ms": 1.5},
        "user": {"id": 7, "roles": ["admin"]},
    }
    path = tmp_path / "app.log"
    path.write_bytes(orjson.dumps(record) + b"\n")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr() == ("", "1 line, 0 invalid\n")

"""obskit's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

``obskit_logs``
    The records obskit rendered during the test, parsed back from the exact bytes written, so what a
    test checks is what a log pipeline would receive: redaction, rendering and all. A live list: records
    appear as they are written. At teardown every record is validated against the log-record schema and
    the test errors if one is invalid (turn off with the ini option ``obskit_validate_logs = false``).

``obskit_alerts``
    The alert events routed during the test (after deduplication), as SPEC §6 dictionaries.

Both work under freezegun: nothing here reads the clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pytest

from obskit import _config
from obskit._logsetup import sink

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class LogRecords(list[dict[str, Any]]):
    """Parsed records, in the order written; ``lines`` keeps the raw bytes, ``unparsable`` the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[bytes] = []
        self.unparsable: list[bytes] = []

    def capture(self, line: bytes) -> None:
        self.lines.append(line)
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            active = _config.settings()
            if active is None or not active.console:  # console lines are for humans, not JSON
                self.unparsable.append(line)
            return
        if isinstance(record, dict):
            self.append(record)
        else:
            self.unparsable.append(line)

    def messages(self) -> list[str]:
        return [str(r.get("message")) for r in self]

    def by_message(self, message: str) -> list[dict[str, Any]]:
        return [r for r in self if r.get("message") == message]

    def problems(self) -> list[str]:
        """Every reason a captured line is not a valid obskit record (empty when all are)."""
        from obskit.schema import validate_record  # noqa: PLC0415

        out = [f"not a JSON object: {line[:200]!r}" for line in self.unparsable]
        for i, record in enumerate(self):
            out.extend(f"record {i} ({record.get('message')!r}): {reason}" for reason in validate_record(record))
        return out


def capture_logs() -> tuple[LogRecords, Callable[[], None]]:
    """Start capturing rendered records; returns them and a function that stops the capture."""
    records = LogRecords()
    sink.captures.append(records.capture)

    def stop() -> None:
        if records.capture in sink.captures:
            sink.captures.remove(records.capture)

    return records, stop


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "obskit_validate_logs",
        "fail a test whose obskit_logs records do not validate against the log-record schema",
        type="bool",
        default=True,
    )


@pytest.fixture
def obskit_logs(request: pytest.FixtureRequest) -> Iterator[LogRecords]:
    """The records obskit rendered during this test, parsed (see the module docstring)."""
    records, stop = capture_logs()
    try:
        yield records
    finally:
        stop()
    if request.config.getini("obskit_validate_logs"):
        problems = records.problems()
        if problems:
            pytest.fail("obskit emitted invalid log records:\n" + "\n".join(problems[:20]), pytrace=False)


@pytest.fixture
def obskit_alerts() -> Iterator[list[dict[str, Any]]]:
    """The alert events routed during this test, as SPEC §6 dictionaries."""
    from obskit.alerts import _router  # noqa: PLC0415

    events: list[dict[str, Any]] = []
    _router.add_listener(events.append)
    try:
        yield events
    finally:
        _router.remove_listener(events.append)

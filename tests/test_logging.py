"""The log record of SPEC §3, for structlog and standard-library loggers, parsed from real output."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import orjson
import pytest
import structlog
from freezegun import freeze_time

import obskit
from obskit import _context
from obskit._logsetup import sink
from obskit.schema import validate_record
from obskit.testing import LogRecords
from tests.servers import run_server_process

CORE = ["timestamp", "level", "service", "trace_id", "message"]


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_record_has_the_spec_fields_in_order() -> None:
    out = io.StringIO()
    obskit.configure(service="checkout", environment="prod", version="1.2.3", stream=out)
    obskit.get_logger("app.orders").info("order placed", order_id=42)
    [record] = lines_of(out)
    assert list(record)[:5] == CORE
    assert record["level"] == "info"
    assert record["service"] == "checkout"
    assert record["trace_id"] is None
    assert record["message"] == "order placed"
    assert record["logger"] == "app.orders"
    assert record["environment"] == "prod"
    assert record["version"] == "1.2.3"
    assert record["order_id"] == 42
    assert validate_record(record) == []


def test_timestamp_is_exact_under_freezegun(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    with freeze_time("2026-01-02T03:04:05.678901Z"):
        obskit.get_logger().info("frozen")
        logging.getLogger("lib").warning("frozen too")
    assert [r["timestamp"] for r in obskit_logs] == ["2026-01-02T03:04:05.678901Z"] * 2


def test_timestamp_is_utc_rfc3339_with_z(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    before = dt.datetime.now(dt.UTC)
    obskit.get_logger().info("now")
    after = dt.datetime.now(dt.UTC)
    stamp = obskit_logs[0]["timestamp"]
    assert stamp.endswith("Z")
    parsed = dt.datetime.fromisoformat(stamp)
    assert before <= parsed <= after


def test_console_lines_start_with_the_rfc3339_timestamp() -> None:
    import io

    out = io.BytesIO()
    obskit.configure(service="svc", stream=out, format="console")
    before = dt.datetime.now(dt.UTC)
    obskit.get_logger().info("hello")
    stamp = out.getvalue().decode().split(" ", 1)[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert before <= dt.datetime.fromisoformat(stamp) <= dt.datetime.now(dt.UTC)


def test_stdlib_and_uvicorn_loggers_produce_the_same_record_shape(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    # uvicorn's own dictConfig detaches its loggers; configure() must take them back
    logging.getLogger("uvicorn").propagate = False
    logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler(io.StringIO()))
    obskit.configure(service="svc", access_log=False)  # obskit's own access record off: uvicorn's comes through
    obskit.get_logger("mine").info("from structlog")
    logging.getLogger("sqlalchemy.engine").info("from a library")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/", "1.1", 200)
    assert [list(r)[:5] for r in obskit_logs] == [CORE] * 4
    assert [r["logger"] for r in obskit_logs] == ["mine", "sqlalchemy.engine", "uvicorn.error", "uvicorn.access"]
    assert obskit_logs[2]["message"] == "Started server process [7]"


def test_uvicorn_without_lifespan_logs_each_request_once(tmp_path: Path) -> None:
    # With --lifespan off the middleware never sees a startup at which to take uvicorn's loggers back.
    (tmp_path / "lifespan_off_app.py").write_text(
        textwrap.dedent(
            """
            import obskit
            from starlette.applications import Starlette
            from starlette.responses import PlainTextResponse
            from starlette.routing import Route

            obskit.configure(service="svc")
            app = obskit.ObskitMiddleware(Starlette(routes=[Route("/", lambda _: PlainTextResponse("ok"))]))
            """
        )
    )
    argv = [sys.executable, "-m", "uvicorn", "lifespan_off_app:app", "--app-dir", str(tmp_path)]
    argv += ["--host", "127.0.0.1", "--port", "{port}", "--lifespan", "off"]
    with run_server_process(argv) as server:
        assert httpx.get(f"{server.base_url}/", timeout=10).status_code == 200
        server.stop()
    records = [orjson.loads(line) for line in server.stdout.splitlines()]
    assert [r["logger"] for r in records if r["logger"].endswith(".access")] == ["obskit.access"]
    assert any(r["message"].startswith("Uvicorn running on") for r in records)  # uvicorn's other lines stay
    assert server.stderr == b""


def test_configure_silences_uvicorn_access_only_while_obskit_logs_access(obskit_logs: LogRecords) -> None:
    access = logging.getLogger("uvicorn.access")
    obskit.configure(service="svc")
    access.info("GET / 200")
    obskit.configure(service="svc", access_log=False)
    access.info("GET /again 200")
    assert [r["message"] for r in obskit_logs] == ["GET /again 200"]


def test_stdlib_extra_keys_stay_at_top_level(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    logging.getLogger("lib").warning("slow query", extra={"duration_ms": 12.5, "table": "orders"})
    assert obskit_logs[0]["duration_ms"] == 12.5
    assert obskit_logs[0]["table"] == "orders"


def test_trace_ids_come_from_the_request_context(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    token = _context.set_trace_context(_context.TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"))
    try:
        obskit.get_logger().info("inside")
        logging.getLogger("lib").info("library inside")
    finally:
        _context.reset_trace_context(token)
    obskit.get_logger().info("outside")
    assert [r["trace_id"] for r in obskit_logs] == ["4bf92f3577b34da6a3ce929d0e0e4736"] * 2 + [None]
    assert [r.get("span_id") for r in obskit_logs] == ["00f067aa0ba902b7"] * 2 + [None]


def test_level_filtering_and_reconfigure_reach_cached_loggers(obskit_logs: LogRecords) -> None:
    log = obskit.get_logger("cached")  # made before configure(), as module-level loggers are
    obskit.configure(service="svc", level="warning")
    log.info("dropped")
    logging.getLogger("lib").info("dropped too")
    log.warning("kept")
    obskit.configure(service="svc2", level="debug")
    log.debug("now kept")
    assert [(r["message"], r["service"]) for r in obskit_logs] == [("kept", "svc"), ("now kept", "svc2")]


def test_the_configured_level_holds_for_library_loggers_with_a_level_of_their_own(obskit_logs: LogRecords) -> None:
    server, lib = logging.getLogger("uvicorn.error"), logging.getLogger("lib.verbose")
    levels = server.level, lib.level
    server.setLevel(logging.INFO)  # what uvicorn's logging dictConfig does
    lib.setLevel(logging.DEBUG)
    try:
        obskit.configure(service="svc", level="warning")
        server.info("Started server process [1]")
        lib.debug("chatty")
        server.warning("kept")
        obskit.configure(service="svc", level="debug")
        lib.debug("now wanted")
    finally:
        server.setLevel(levels[0])
        lib.setLevel(levels[1])
    assert [r["message"] for r in obskit_logs] == ["kept", "now wanted"]


def test_configure_is_idempotent() -> None:
    obskit.configure(service="a")
    obskit.configure(service="b")
    obskit.configure(service="b")
    handlers = logging.getLogger().handlers
    assert len(handlers) == 1
    assert obskit.settings() is not None
    assert obskit.settings().service == "b"  # type: ignore[union-attr]


def test_reset_restores_previous_logging() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    obskit.configure(service="a")
    obskit.reset()
    assert root.handlers == before
    assert obskit.settings() is None


def test_environment_variables_are_fallbacks(monkeypatch: pytest.MonkeyPatch, obskit_logs: LogRecords) -> None:
    monkeypatch.setenv("OBSKIT_SERVICE", "from-env")
    monkeypatch.setenv("OBSKIT_ENVIRONMENT", "staging")
    monkeypatch.setenv("OBSKIT_VERSION", "9")
    monkeypatch.setenv("OBSKIT_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("OBSKIT_LOG_FORMAT", "json")
    settings = obskit.configure()
    assert (settings.service, settings.environment, settings.version, settings.level) == (
        "from-env",
        "staging",
        "9",
        "error",
    )
    assert obskit.configure(service="explicit", level="info").service == "explicit"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "service"),
        ({"service": "s", "level": "loud"}, "level must be one of debug, info, warning, error, critical"),
        ({"service": "s", "format": "xml"}, "format must be one of json, console, auto"),
        ({"service": "s", "colour": True}, "unknown option"),
        ({"service": "s", "max_record_bytes": 10}, "max_record_bytes"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    kwargs: dict[str, object], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OBSKIT_SERVICE", raising=False)
    with pytest.raises(ValueError, match=match):
        obskit.configure(**kwargs)  # type: ignore[arg-type]


def test_plain_structlog_loggers_follow_the_record_too(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    structlog.get_logger().info("plain structlog", k=1)
    assert obskit_logs[0]["message"] == "plain structlog"
    assert obskit_logs[0]["service"] == "svc"


def test_reserved_keys_are_not_overwritten(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    obskit.get_logger().info("m", service="spoofed", trace_id="nope", level="debug")
    record = obskit_logs[0]
    assert (record["service"], record["trace_id"], record["level"]) == ("svc", None, "info")
    assert (record["service_"], record["trace_id_"], record["level_"]) == ("spoofed", "nope", "debug")


# -- redaction ----------------------------------------------------------------------------------------


def test_secret_keys_are_redacted_at_any_depth(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    payload = {"user": {"name": "ada", "password": "p1"}, "items": [{"api_key": "k1"}, ("x", {"Cookie": "c1"})]}
    obskit.get_logger().info("login", request=payload, Authorization="Bearer t0k3n", db_password="p2")
    logging.getLogger("lib").info("lib login", extra={"session_token": "s1", "ctx": {"secret": "s2"}})
    text = b"".join(obskit_logs.lines)
    for secret in (b"p1", b"k1", b"c1", b"t0k3n", b"p2", b"s1", b"s2"):
        assert secret not in text
    first = obskit_logs[0]
    assert first["request"] == {
        "user": {"name": "ada", "password": "[REDACTED]"},
        "items": [{"api_key": "[REDACTED]"}, ["x", {"Cookie": "[REDACTED]"}]],
    }
    assert first["Authorization"] == "[REDACTED]"
    # the caller's own objects are never mutated
    assert payload["user"] == {"name": "ada", "password": "p1"}


def test_redaction_list_is_configurable(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc", redact=[*obskit.DEFAULT_REDACT_KEYS, "ssn"])
    obskit.get_logger().info("m", customer_ssn="123-45-6789", password="p")
    assert obskit_logs[0]["customer_ssn"] == "[REDACTED]"
    assert obskit_logs[0]["password"] == "[REDACTED]"
    obskit.configure(service="svc", redact=["ssn"])
    obskit.get_logger().info("m", password="visible-now")
    assert obskit_logs[1]["password"] == "visible-now"


def test_secrets_inside_exception_messages_are_masked(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    try:
        raise ConnectionError("login failed for postgres://app:hunter2@db/x with password=hunter3 token: abc123")
    except ConnectionError:
        obskit.get_logger().exception("db down")
    text = b"".join(obskit_logs.lines)
    assert b"hunter2" not in text
    assert b"hunter3" not in text
    assert b"abc123" not in text
    assert "postgres://app:[REDACTED]@db/x" in obskit_logs[0]["error"]["message"]


# -- errors -------------------------------------------------------------------------------------------


def test_exception_becomes_the_structured_error_object(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")

    def inner() -> None:
        raise KeyError("sku")

    try:
        inner()
    except KeyError:
        obskit.get_logger().exception("lookup failed")
    error = obskit_logs[0]["error"]
    assert obskit_logs[0]["level"] == "error"
    assert error["type"] == "KeyError"
    assert error["message"] == "'sku'"
    assert error["known"] is False
    assert len(error["fingerprint"]) == 16
    assert [f["function"] for f in error["stack"]][-2:] == [
        "test_exception_becomes_the_structured_error_object",
        "test_exception_becomes_the_structured_error_object.<locals>.inner",
    ]
    assert set(error["stack"][0]) == {"file", "line", "function", "module"}  # no locals
    assert "exc_info" not in obskit_logs[0]


def test_a_frame_without_a_line_number_gets_line_zero(obskit_logs: LogRecords) -> None:
    # Code built or rewritten at run time (an empty line table) has frames whose tb_lineno is None.
    obskit.configure(service="svc")

    def no_lines() -> None:
        raise KeyError("sku")

    no_lines.__code__ = no_lines.__code__.replace(co_linetable=b"")
    try:
        no_lines()
    except KeyError:
        obskit.get_logger().exception("lookup failed")
    record = obskit_logs[0]
    assert record["message"] == "lookup failed"
    assert validate_record(record) == []
    assert record["error"]["stack"][-1]["line"] == 0
    assert record["error"]["stack"][-1]["function"].endswith("no_lines")
    assert len(record["error"]["fingerprint"]) == 16


def test_warning_records_carry_no_stack_unless_asked(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    err = ValueError("bad")
    try:
        raise err
    except ValueError:
        obskit.get_logger().warning("w", exc_info=True)
    obskit.configure(service="svc", stack_level="warning")
    obskit.get_logger().warning("w", exc_info=err)
    assert "stack" not in obskit_logs[0]["error"]
    assert obskit_logs[1]["error"]["stack"]


def test_known_errors_are_marked_known(obskit_logs: LogRecords) -> None:
    class OutOfStock(obskit.KnownError):
        status = 409

    obskit.configure(service="svc")
    obskit.get_logger().warning("no stock", exc_info=OutOfStock("gone"))
    assert obskit_logs[0]["error"]["known"] is True
    assert obskit_logs[0]["error"]["code"] == "out_of_stock"


def test_chained_cause_is_recorded(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    try:
        try:
            {}["x"]
        except KeyError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError:
        logging.getLogger("lib").exception("failed")
    assert obskit_logs[0]["error"]["cause"] == {"type": "KeyError", "message": "'x'"}


def _raise_from(site: int) -> BaseException:
    try:
        if site == 1:
            raise ValueError("first site")
        raise ValueError("second site")
    except ValueError as exc:
        return exc


def _fp(exc: BaseException) -> str:
    from obskit._stack import fingerprint

    return fingerprint(exc)


def test_fingerprint_is_the_same_for_the_same_bug_and_ignores_the_message() -> None:
    a = ValueError("x")
    b = ValueError("y")
    for exc in (a, b):
        try:
            raise exc
        except ValueError:
            pass
    first, again = _raise_from(1), _raise_from(1)
    assert _fp(first) == _fp(again)
    assert _fp(_raise_from(1)) != _fp(_raise_from(2))


def _charge() -> None:
    raise ValueError("declined")


def _checkout() -> None:
    _charge()


def _refund() -> None:
    _charge()


def _caught(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except ValueError as exc:
        return exc
    raise AssertionError


def test_fingerprint_differs_by_type_and_by_call_path() -> None:
    assert _fp(_caught(_checkout)) == _fp(_caught(_checkout))
    assert _fp(_caught(_checkout)) != _fp(_caught(_refund))
    try:
        raise TypeError("t")
    except TypeError as t:
        type_error = t
    try:
        raise ValueError("t")
    except ValueError as v:
        value_error = v
    assert _fp(type_error) != _fp(value_error)


def test_fingerprint_of_code_created_and_dropped_is_never_another_functions(tmp_path: Path) -> None:
    # The repeat cache is keyed by code objects' ids: a function that is gone must not lend its id, and
    # so its fingerprint, to a new one allocated where it was (code made by exec, as templating and RPC
    # stubs make it, is freed as soon as its function is dropped).
    seen: dict[str, int] = {}
    for i in range(200):
        namespace: dict[str, object] = {}
        source = f"def handler_{i}():\n    raise ValueError('x')\n"
        exec(compile(source, str(tmp_path / f"generated_{i}.py"), "exec"), namespace)
        try:
            namespace[f"handler_{i}"]()  # type: ignore[operator]
        except ValueError as exc:
            fp = _fp(exc)
        assert seen.setdefault(fp, i) == i, f"handler_{i} got handler_{seen[fp]}'s fingerprint"
        del namespace


FP_MODULE = """
def handler(order):
{pad}    return charge(order)

def charge(order):
    return 1 / order
"""

FP_SCRIPT = """
import sys, importlib
sys.path.insert(0, sys.argv[1])
mod = importlib.import_module("fpmod")
from obskit._stack import fingerprint
try:
    mod.handler(0)
except ZeroDivisionError as exc:
    print(fingerprint(exc))
"""


def _fingerprint_in_fresh_process(where: Path, pad: str) -> str:
    where.mkdir()
    (where / "fpmod.py").write_text(FP_MODULE.format(pad=pad))
    out = subprocess.run(
        [sys.executable, "-c", FP_SCRIPT, str(where)], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


def test_fingerprint_is_stable_across_processes_and_moved_lines(tmp_path: Path) -> None:
    one = _fingerprint_in_fresh_process(tmp_path / "a", "")
    two = _fingerprint_in_fresh_process(tmp_path / "b", "")
    moved = _fingerprint_in_fresh_process(tmp_path / "c", "    # a comment moved everything down\n\n\n")
    assert one == two == moved
    assert len(one) == 16


# -- hostile values -----------------------------------------------------------------------------------


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def __str__(self) -> str:
        raise RuntimeError("str exploded")


def _recursive() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


def _recursive_dict() -> dict[str, object]:
    loop: dict[str, object] = {}
    loop["self"] = loop
    return loop


HOSTILE = {
    "repr_raises": BadRepr(),
    "recursive_list": _recursive(),
    "recursive_dict": _recursive_dict(),
    "invalid_utf8_bytes": b"\xff\xfe\x00abc",
    "a_set": {1, 2, 3},
    "a_decimal": decimal.Decimal("1.10"),
    "huge_string": "x" * 5_000_000,
    "lone_surrogate": "\ud800abc",
    "huge_int": 2**200,
    "non_str_keys": {(1, 2): "tuple key", None: 1, 3: "int key"},
    "newline_inside": "line one\nline two\r\n",
    "nan": float("nan"),
    "exception_value": ValueError("as value"),
    "deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_hostile_value_yields_exactly_one_valid_line(name: str, obskit_logs: LogRecords) -> None:
    out = io.StringIO()
    obskit.configure(service="svc", stream=out)
    obskit.get_logger().info("hostile", value=HOSTILE[name])
    logging.getLogger("lib").info("hostile std", extra={"value": HOSTILE[name]})
    raw = out.getvalue()
    assert raw.count("\n") == 2
    for line in raw.splitlines():
        record = orjson.loads(line)
        assert validate_record(record) == []
        assert len(line.encode()) <= 64 * 1024 + 1


def test_hostile_message_and_format_args_never_raise(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    obskit.get_logger().info(BadRepr())
    logging.getLogger("lib").info("%d items", "not a number")
    obskit.get_logger().info("%s and %s", "only one")
    assert len(obskit_logs) == 3
    assert obskit_logs[0]["message"] == "<unrepresentable BadRepr>"
    assert "did not format" in obskit_logs[1]["message"]


def test_huge_values_are_truncated_with_a_marker(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc", max_value_chars=1000, max_record_bytes=16_384)
    obskit.get_logger().info("big", blob="y" * 1_000_000)
    blob = obskit_logs[0]["blob"]
    assert blob.startswith("y" * 1000)
    assert blob.endswith("…[truncated 999000 chars]")
    many = {f"k{i}": "v" * 900 for i in range(100)}
    obskit.get_logger().info("many keys", **many)
    record = obskit_logs[1]
    assert record["truncated"] is True
    assert record["message"].startswith("many keys…[truncated, record was")
    assert len(obskit_logs.lines[1]) <= 16_384


# -- console and stream faults ------------------------------------------------------------------------


def test_console_format_has_the_same_fields_and_escapes_control_characters() -> None:
    out = io.StringIO()
    obskit.configure(service="svc", format="console", stream=out)
    obskit.get_logger("app").warning("evil \x1b[31mred\x1b[0m\nnext", user="ada\x07")
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert text.count("\n") == 1
    assert "warning" in text
    assert "[app]" in text
    assert "evil \\x1b[31mred\\x1b[0m\\x0anext" in text
    assert "user=ada\\x07" in text


def test_auto_format_is_json_when_not_a_tty() -> None:
    out = io.StringIO()
    obskit.configure(service="svc", format="auto", stream=out)
    obskit.get_logger().info("m")
    assert orjson.loads(out.getvalue())["message"] == "m"


class BrokenStream(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_failing_stream_never_raises_and_is_reported_once(capfd: pytest.CaptureFixture[str]) -> None:
    obskit.configure(service="svc", stream=BrokenStream())
    for i in range(5):
        obskit.get_logger().info("lost", i=i)
        logging.getLogger("lib").info("lost too")
    assert sink.failures == 10
    err = capfd.readouterr().err
    assert err.count("obskit: writing a log line failed") == 1


def test_the_logs_fixture_parses_what_was_written(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    obskit.get_logger().info("one")
    assert obskit_logs.messages() == ["one"]
    assert obskit_logs.lines == [orjson.dumps(obskit_logs[0]) + b"\n"]


def test_public_api_is_importable_without_extras() -> None:
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("sentry_sdk", "opentelemetry", "prometheus_client"):
                    raise ImportError(name)
        sys.meta_path.insert(0, Block())
        import obskit, obskit.alerts, obskit.schema
        obskit.configure(service="x")
        obskit.get_logger().info("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["message"] == "ok"


def test_secrets_in_messages_are_masked(obskit_logs: LogRecords) -> None:
    obskit.configure(service="svc")
    logging.getLogger("httpx").info('HTTP Request: GET https://api.example/v1?api_key=k-123&page=2 "HTTP/1.1 200 OK"')
    obskit.get_logger().info("calling with Authorization: Bearer abcdef123456")
    obskit.get_logger().info("db at postgres://app:pw-999@db:5432/x")
    text = b"".join(obskit_logs.lines)
    for secret in (b"k-123", b"abcdef123456", b"pw-999"):
        assert secret not in text
    assert "page=2" in obskit_logs[0]["message"]

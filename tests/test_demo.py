"""``obskit demo``: serves the demo app; every line it prints is a valid log record."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import httpx
import orjson
import pytest

import obskit
from obskit import _demo
from obskit._cli import main
from obskit.schema import validate_problem
from obskit.testing import LogRecords
from tests.servers import (
    REPO,
    ServerProcess,
    free_port,
    read_whole,
    run_server_process,
    serve,
    validate_with_cli,
)

# route -> status the demo answers with
STATUSES = {
    ("GET", "/"): 200,
    ("GET", "/orders/42"): 200,
    ("GET", "/out-of-stock"): 409,
    ("GET", "/crash"): 500,
    ("GET", "/stream"): 200,
    ("GET", "/report"): 200,
    ("POST", "/signup"): 200,
    ("GET", "/no-such-page"): 404,
}


def test_every_advertised_route_has_a_known_status() -> None:
    assert sorted((m, p) for m, p, _ in _demo.ROUTES) == sorted(STATUSES)


def hit_every_route(base: str) -> dict[str, httpx.Response]:
    responses = {}
    with httpx.Client(base_url=base, timeout=10) as client:
        for (method, path), status in STATUSES.items():
            if path == "/stream":
                with client.stream(method, path) as response, pytest.raises(httpx.RemoteProtocolError):
                    response.read()
            else:
                response = client.request(method, path)
            assert (path, response.status_code) == (path, status)
            responses[path] = response
    return responses


@pytest.mark.parametrize("how", ["module", "script"])
def test_every_line_the_demo_prints_is_a_valid_record(how: str) -> None:
    if how == "script":
        script = shutil.which("obskit")
        if script is None:
            pytest.skip("the obskit console script is not installed")
        argv = [script, "demo", "--port", "{port}"]
    else:
        argv = [sys.executable, "-m", "obskit._cli", "demo", "--port", "{port}"]
    with run_server_process(argv) as server:
        responses = hit_every_route(server.base_url)
        server.stop()
    assert server.stderr == b""
    result = validate_with_cli(server.stdout)
    assert (result.returncode, result.stdout) == (0, b""), result.stdout.decode()[:2000]
    records = [orjson.loads(line) for line in server.stdout.splitlines()]
    assert {(r["service"], r["environment"], r["version"]) for r in records} == {
        ("obskit-demo", "demo", obskit.__version__)
    }
    # The welcome record lists the URLs and the curl commands, for the port actually served.
    [welcome] = [r for r in records if r["logger"] == "obskit.demo"]
    assert welcome["message"].startswith(f"obskit demo: try {server.base_url}/")
    assert welcome["curl"] == _demo.curl_lines(server.base_url)
    assert welcome["urls"] == [f"{server.base_url}{p}" for _, p, _ in _demo.ROUTES]
    assert "curl -i -X POST " + server.base_url + "/signup" in welcome["curl"]
    # uvicorn's own lines are records too, and obskit's access record replaces uvicorn's.
    uvicorn_messages = [r["message"] for r in records if r["logger"].startswith("uvicorn")]
    assert any(m.startswith("Uvicorn running on") for m in uvicorn_messages)
    assert any(m.startswith("Finished server process") for m in uvicorn_messages)
    assert not [r for r in records if r["logger"] == "uvicorn.access"]
    access = [r for r in records if r["logger"] == "obskit.access"]
    assert sorted((r["http"]["method"], r["http"]["path"]) for r in access) == sorted(STATUSES)
    # The unknown error's secret leaves neither through the response nor through the log.
    crash = responses["/crash"]
    assert validate_problem(crash.json()) == []
    assert b"hunter2" not in crash.content
    assert b"hunter2" not in server.stdout
    # uvicorn re-raises SIGINT after its graceful shutdown; the CLI turns that into 130.
    assert server.returncode in (0, 130)


def test_the_demo_exits_with_uvicorns_startup_failure_status_and_a_record_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "obskit._cli", "demo", "--port", str(port)],
            capture_output=True,
            timeout=30,
            check=False,
            cwd=REPO,
        )
    assert result.returncode == 3  # uvicorn's STARTUP_FAILURE
    assert result.stderr == b""
    assert validate_with_cli(result.stdout).returncode == 0
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    [error] = [r for r in records if r["level"] == "error"]
    assert error["logger"] == "uvicorn.error"
    assert "address already in use" in error["message"]


def test_without_uvicorn_the_demo_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes `import uvicorn` raise ImportError
    assert main(["demo", "--port", str(free_port())]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "obskit demo needs uvicorn: pip install 'obskit[demo]'\n"


def test_the_demo_shows_one_alert_however_often_the_bug_fires() -> None:
    argv = [sys.executable, "-m", "obskit._cli", "demo", "--port", "{port}"]
    with run_server_process(argv) as server:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            statuses = [client.get("/crash").status_code for _ in range(10)]
            assert client.get("/out-of-stock").status_code == 409  # known: logged, never alerted
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and b"ALERT received" not in _read(server):
            time.sleep(0.1)
        time.sleep(1.5)  # a second alert would have arrived by now
        server.stop()
    assert statuses == [500] * 10
    records = [orjson.loads(line) for line in server.stdout.splitlines()]
    alerts = [r for r in records if r.get("logger") == "obskit.demo.receiver"]
    assert len(alerts) == 1, alerts
    assert alerts[0]["count"] == 10
    assert alerts[0]["level"] == "warning"
    assert alerts[0]["message"].startswith("ALERT received: ZeroDivisionError")
    assert "hunter2" not in server.stdout.decode()
    assert validate_with_cli(server.stdout).returncode == 0


def _read(server: ServerProcess) -> bytes:
    return read_whole(server._files[0])


def test_the_demo_app_in_process_lists_its_routes_and_keeps_one_trace_per_request(obskit_logs: LogRecords) -> None:
    obskit.configure(service="obskit-demo", environment="demo")
    with serve(_demo.make_app("http://demo.test")) as base:
        responses = hit_every_route(base)
    index = responses["/"].json()
    assert [(r["method"], r["path"]) for r in index["routes"]] == [(m, p) for m, p, _ in _demo.ROUTES]
    assert index["curl"] == _demo.curl_lines(base)
    for path, response in responses.items():
        trace_id = response.headers["traceparent"].split("-")[1]
        records = [r for r in obskit_logs if r.get("request_id") == response.headers["x-request-id"]]
        assert records, path
        assert {r["trace_id"] for r in records} == {trace_id}, path
    messages = obskit_logs.messages()
    for message in ("charging card for order 42", "building the report in a worker thread", "welcome email sent"):
        assert message in messages
    [welcome] = [r for r in obskit_logs if r["logger"] == "obskit.demo"]
    assert welcome["curl"][0] == "curl -i http://demo.test/"


@pytest.mark.parametrize("port", ["0", "70000", "-1", "http"])
def test_a_port_outside_1_to_65535_is_refused_before_anything_starts(port: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "obskit._cli", "demo", "--port", port],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2  # argparse's usage error
    assert "--port" in result.stderr
    assert result.stdout == ""  # no server, no records

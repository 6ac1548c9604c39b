"""integrations/: each configuration checked by its real tool, and the dashboard and rules against a live scrape.

promtool and amtool come from Debian (``prometheus``, ``prometheus-alertmanager``; ``.ci/run`` installs
them): under CI a missing binary fails the test, locally it skips with the reason. Vector is not packaged by
Debian, so its config is checked structurally here and by ``vector validate``/``vector test`` only where a
``vector`` binary happens to be installed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import obskit
from obskit import _metrics
from obskit.alerts import AlertRouter, DeliveryError
from obskit.alerts import Route as AlertRoute
from obskit.schema import validate_record

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
INTEGRATIONS = REPO / "integrations"
PROMETHEUS = INTEGRATIONS / "prometheus"
ALERTMANAGER_YML = INTEGRATIONS / "alertmanager" / "alertmanager.yml"
DASHBOARD = INTEGRATIONS / "grafana" / "obskit-dashboard.json"
VECTOR = INTEGRATIONS / "vector" / "vector.yaml"
TOOL_DEADLINE = 60.0
LEVELS = ("debug", "info", "warning", "error", "critical")
# Series Prometheus makes itself for every target; rules may use them, they are not obskit's to export.
PROMETHEUS_SERIES = frozenset({"up"})


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}.get(name, name)
        reason = f"{name} is not installed (Debian package {package!r}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run this check")
        pytest.skip(reason)
    return path


def run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=TOOL_DEADLINE, check=False)


@pytest.fixture(autouse=True)
def _metrics_clean() -> Iterator[None]:
    _metrics.reset_for_tests()
    yield
    _metrics.reset_for_tests()


# --- PromQL names ---------------------------------------------------------------------------------------------

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"inf", "nan", "atan2", "start", "end"}
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<expr>.*?)\s*(?:,\s*(?P<label>\w+)\s*)?\)\s*$", re.DOTALL)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (Grafana variables allowed) selects."""
    s = _STRING.sub('""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    s = _GROUPING.sub(" ", s)  # label lists of by/without/on/ignoring/group_*
    s = re.sub(r"\$\{?\w+(?::\w+)?\}?", " ", s)  # $__rate_interval, ${service}
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        before = s[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == ".":
            continue  # the unit of a duration (10m) or an exponent (1e3)
        if s[m.end() :].lstrip().startswith("("):
            continue  # a function
        if m.group().lower() in _KEYWORDS:
            continue
        names.add(m.group())
    return names


def variable_query_names(query: str) -> set[str]:
    m = _LABEL_VALUES.match(query)
    if m is not None:
        return metric_names(m.group("expr"))
    return metric_names(query)


def dashboard_queries(dashboard: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(panel target expressions, templating variable queries)."""
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if "expr" in t)
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    variables: list[str] = []
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        variables.extend({query, var.get("definition", query)})
    return exprs, variables


def grafana_to_promql(expr: str) -> str:
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$__interval", "15s")
        .replace("${service}", ".*")
        .replace("$service", ".*")
        .replace("$environment", ".*")
    )


def test_metric_names_finds_selected_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(obskit_x_bucket{service=~"$service", a="b c"}'
        "[$__rate_interval]))) / on (route) group_left sum without (instance) (foo:bar offset 10m) > bool 1e3"
        ' and count(up{job=~"obskit.*"}[5m:1m])'
    )
    assert metric_names(expr) == {"obskit_x_bucket", "foo:bar", "up"}
    assert variable_query_names('label_values(obskit_requests_total{service=~"$service"}, environment)') == {
        "obskit_requests_total"
    }


# --- a live scrape --------------------------------------------------------------------------------------------


class _Hook:
    name = key = "integrations-test"
    timeout = 5.0
    max_attempts = 1
    wants_exception = False

    async def send(self, delivery: Any) -> None:
        if delivery.event.error_type == "KeyError":
            raise DeliveryError("http_400", retryable=False)


class _OutOfStock(obskit.KnownError):
    status = 409
    code = "out_of_stock"


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _known(request: Request) -> Response:
    raise _OutOfStock("sold out")


async def _unknown(request: Request) -> Response:
    raise ZeroDivisionError("boom")


async def _dropped(request: Request) -> Response:
    raise KeyError("x")


def _app() -> Any:
    return obskit.ObskitMiddleware(
        Starlette(
            routes=[
                Route("/ok", _ok),
                Route("/known", _known),
                Route("/unknown", _unknown),
                Route("/dropped", _dropped),
                Route("/metrics", _metrics.metrics_app()),
            ]
        )
    )


@pytest.fixture
def router() -> Iterator[AlertRouter]:
    r = AlertRouter([AlertRoute([_Hook()])])
    yield r
    r.close(timeout=2.0)


@pytest.fixture
def exported(router: AlertRouter) -> set[str]:
    """Every sample and family name a scrape of metrics_app() shows after requests of every kind."""
    obskit.configure(service="checkout", metrics=True, alerts=router)

    async def drive() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
            for path in ("/ok", "/known", "/unknown", "/dropped", "/nowhere"):
                await client.get(path)
            assert await router.flush(5.0)
            response = await client.get("/metrics")
            response.raise_for_status()
            return response.text

    names: set[str] = set()
    for family in text_string_to_metric_families(asyncio.run(drive())):
        if family.name.startswith("obskit_"):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
    return names


def test_the_scrape_shows_every_obskit_metric(exported: set[str]) -> None:
    assert {
        "obskit_requests_total",
        "obskit_request_duration_seconds_bucket",
        "obskit_request_duration_seconds_sum",
        "obskit_request_duration_seconds_count",
        "obskit_errors_total",
        "obskit_alerts_total",
        "obskit_alerts_dropped_total",
        "obskit_alert_queue_depth",
    } <= exported


# --- Grafana --------------------------------------------------------------------------------------------------


def test_dashboard_is_valid_json_with_unique_panels_on_the_grid() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "obskit-overview"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert target["expr"].strip()
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "service", "environment"}


def test_dashboard_only_uses_metric_names_obskit_exports(exported: set[str]) -> None:
    exprs, variables = dashboard_queries(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    used = set().union(*map(metric_names, exprs), *map(variable_query_names, variables))

    assert used - exported == set()
    # ...and it shows every metric family obskit exports.
    families = ("obskit_requests", "obskit_request_duration_seconds", "obskit_errors", "obskit_alerts")
    families += ("obskit_alerts_dropped", "obskit_alert_queue_depth")
    for family in families:
        forms = {family, f"{family}_total", f"{family}_bucket", f"{family}_sum", f"{family}_count"}
        assert forms & used, family


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = tool("promtool")
    exprs, variables = dashboard_queries(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    selectors = [_LABEL_VALUES.match(v).group("expr") if _LABEL_VALUES.match(v) else v for v in variables]  # type: ignore[union-attr]
    rules = [{"record": f"dashboard:query{i}", "expr": grafana_to_promql(e)} for i, e in enumerate(exprs + selectors)]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")

    result = run([promtool, "check", "rules", str(path)])

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# --- Prometheus -----------------------------------------------------------------------------------------------


def test_prometheus_config_passes_promtool_check_config() -> None:
    result = run([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_prometheus_config_scrapes_metrics_with_service_and_environment_labels() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))

    assert config["rule_files"] == ["rules.yml"]
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for static in job["static_configs"]:
            assert {"service", "environment"} <= set(static["labels"])


def test_rules_pass_promtool_check_rules() -> None:
    result = run([tool("promtool"), "check", "rules", str(PROMETHEUS / "rules.yml")])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_rules_unit_tests_prove_each_alert_fires() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text(encoding="utf-8"))
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text(encoding="utf-8"))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    firing = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert alerts == firing

    result = run([tool("promtool"), "test", "rules", "rules_test.yml"], cwd=PROMETHEUS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_only_use_metric_names_obskit_exports(exported: set[str]) -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text(encoding="utf-8"))
    used = set().union(*(metric_names(r["expr"]) for g in rules["groups"] for r in g["rules"]))

    assert used - exported - PROMETHEUS_SERIES == set()
    assert "obskit_alerts_dropped_total" in used


def test_alert_drop_rule_window_outlasts_the_retry_horizon() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text(encoding="utf-8"))
    (expr,) = [r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ObskitAlertsDropped"]
    window = re.search(r"increase\(obskit_alerts_dropped_total\[(\d+)([mh])\]\)", expr)
    assert window is not None, expr
    seconds = int(window.group(1)) * {"m": 60, "h": 3600}[window.group(2)]
    max_age = inspect.signature(AlertRouter).parameters["max_age"].default
    assert seconds > max_age


# --- Prometheus for real: it scrapes an obskit service, evaluates rules.yml and the dashboard's queries -------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Any, deadline: float = 30.0) -> Any:
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"{what} within {deadline}s")
        time.sleep(0.2)


def test_real_prometheus_scrapes_obskit_evaluates_the_rules_and_answers_the_dashboard(
    tmp_path: Path, router: AlertRouter
) -> None:
    from tests.servers import serve

    binary = tool("prometheus")
    obskit.configure(service="checkout", metrics=True, alerts=router)
    with serve(_app()) as base_url:
        config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config.pop("alerting")
        config["rule_files"] = [str(PROMETHEUS / "rules.yml")]
        job = config["scrape_configs"][0]
        job.update(scrape_interval="1s", scrape_timeout="1s")
        job["static_configs"] = [
            {"targets": [base_url.removeprefix("http://")], "labels": {"service": "checkout", "environment": "test"}}
        ]
        config["scrape_configs"] = [job]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api/v1"
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            with httpx.Client(timeout=5.0) as http, httpx.Client(base_url=base_url, timeout=5.0) as app:

                def ready() -> bool:
                    # Prometheus answers its API with a plain-text 503 until /-/ready says 200.
                    try:
                        return http.get(f"http://127.0.0.1:{port}/-/ready").status_code == 200
                    except httpx.TransportError:
                        return False

                def query(expr: str) -> list[dict[str, Any]]:
                    body = http.get(f"{api}/query", params={"query": expr}).json()
                    assert body["status"] == "success", (expr, body)
                    return body["data"]["result"]  # type: ignore[no-any-return]

                _wait("Prometheus ready", ready)
                _wait("Prometheus scraped obskit's alert counters", lambda: query("obskit_alerts_dropped_total"))
                for path in ("/ok", "/ok", "/known", "/unknown", "/unknown", "/nowhere"):
                    app.get(path)
                # A drop after Prometheus has seen the counter at 0, so increase() sees it.
                app.get("/dropped")
                _wait("the drop reached the router", lambda: router.stats()["dropped_permanent_error"] == 1, 10.0)

                def drop_alert() -> list[dict[str, Any]]:
                    alerts = http.get(f"{api}/alerts").json()["data"]["alerts"]
                    return [a for a in alerts if a["labels"]["alertname"] == "ObskitAlertsDropped"]

                (alert,) = _wait("ObskitAlertsDropped fired", drop_alert)
                assert alert["state"] == "firing"
                assert alert["labels"] == {
                    "alertname": "ObskitAlertsDropped",
                    "service": "checkout",
                    "environment": "test",
                    "reason": "permanent_error",
                    "severity": "critical",
                }

                # Every dashboard query, and every variable's selector, returns data from the live service.
                exprs, variables = dashboard_queries(json.loads(DASHBOARD.read_text(encoding="utf-8")))
                selectors = [m.group("expr") for v in variables if (m := _LABEL_VALUES.match(v))]
                for expr in [grafana_to_promql(e) for e in exprs + selectors]:
                    _wait(f"data for {expr}", lambda expr=expr: query(expr), 15.0)
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=15.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=5.0)
    assert proc.returncode in (0, -15), err.decode(errors="replace")


# --- Alertmanager ---------------------------------------------------------------------------------------------


def test_alertmanager_config_passes_amtool_check_config() -> None:
    amtool = tool("amtool")
    assert ALERTMANAGER_YML.is_file(), f"{ALERTMANAGER_YML.relative_to(REPO)} is missing"

    result = run([amtool, "check-config", str(ALERTMANAGER_YML)])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alertmanager_routes_the_severities_the_rules_set() -> None:
    assert ALERTMANAGER_YML.is_file(), f"{ALERTMANAGER_YML.relative_to(REPO)} is missing"
    am = ALERTMANAGER_YML.read_text(encoding="utf-8")
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text(encoding="utf-8"))
    severities = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"] if "alert" in r}

    assert severities <= {"critical", "error", "warning", "info"}
    assert 'severity="critical"' in am
    # The inhibit rule that mutes exception alerts while a service is down names the rule obskit ships.
    assert "ObskitServiceDown" in am
    assert "ObskitServiceDown" in {r.get("alert") for g in rules["groups"] for r in g["rules"]}


# --- Vector ---------------------------------------------------------------------------------------------------


def _vector() -> dict[str, Any]:
    return yaml.safe_load(VECTOR.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_vector_config_topology_connects_every_component() -> None:
    config = _vector()
    sources, transforms, sinks = config["sources"], config["transforms"], config["sinks"]
    routes = {
        f"{name}.{route}"
        for name, t in transforms.items()
        if t["type"] == "route"
        for route in (*t["route"], "_unmatched")
    }
    outputs = set(sources) | {n for n, t in transforms.items() if t["type"] != "route"} | routes

    for name, component in {**transforms, **sinks}.items():
        assert component["inputs"], name
        assert set(component["inputs"]) <= outputs, name
    consumed = {i for c in (*transforms.values(), *sinks.values()) for i in c["inputs"]}
    assert (outputs - consumed) == set(), "every source and route output reaches a sink"
    for test in config["tests"]:
        assert {i["insert_at"] for i in test["inputs"]} <= set(transforms)
        assert {o["extract_from"] for o in test.get("outputs", [])} | set(test.get("no_outputs_from", [])) <= outputs


def test_vector_config_parses_json_keeps_trace_id_and_routes_by_level() -> None:
    config = _vector()
    parse = config["transforms"]["obskit_parse"]
    route = config["transforms"]["obskit_by_level"]

    assert parse["type"] == "remap"
    assert "parse_json(.message)" in parse["source"]
    assert ".trace_id" in parse["source"]
    assert route["type"] == "route"
    conditions = " ".join(route["route"].values())
    assert {level for level in LEVELS if f'"{level}"' in conditions} == {"error", "critical", "warning"}
    # trace_id must never become a Loki label (one stream per request would explode Loki's index).
    assert "trace_id" not in json.dumps(config["sinks"]["loki"]["labels"])


def test_vector_unit_test_inputs_are_real_obskit_records() -> None:
    records = []
    for test in _vector()["tests"]:
        for event in test["inputs"]:
            try:
                records.append(json.loads(event["log_fields"]["message"]))
            except json.JSONDecodeError:
                continue  # the deliberately unparsable line
    assert len(records) == 3
    for record in records:
        assert validate_record(record) == [], record


def test_vector_validates_and_passes_its_unit_tests_with_the_real_binary() -> None:
    vector = shutil.which("vector")
    if vector is None:
        pytest.skip("vector is not installed (Debian does not package it); config checked structurally above")
    validate = run([vector, "validate", "--no-environment", str(VECTOR)])
    assert validate.returncode == 0, validate.stdout + validate.stderr
    unit = run([vector, "test", str(VECTOR)])
    assert unit.returncode == 0, unit.stdout + unit.stderr

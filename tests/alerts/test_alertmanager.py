"""The real Prometheus Alertmanager receives obskit's alerts and delivers them, grouped, to a webhook."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from obskit.alerts import Alertmanager, Route
from obskit.alerts._alertmanager import build_alert
from obskit.alerts._event import AlertEvent, parse_time
from obskit.alerts._spool import Spool
from obskit.alerts._types import Delivery
from tests.alerts.conftest import FP, MakeRouter, capture
from tests.alerts.receiver import Receiver
from tests.conftest import free_port

pytestmark = pytest.mark.alertmanager

CONFIG = Path(__file__).parents[2] / "integrations" / "alertmanager" / "alertmanager.yml"
AM_BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")
needs_am = pytest.mark.skipif(
    AM_BIN is None, reason="prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
)


def derived_config(webhook: str) -> dict[str, Any]:
    """The shipped config with every receiver pointed at a local webhook path and short grouping times."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to derive the test config")
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    config["route"]["group_wait"] = "200ms"
    config["route"]["group_interval"] = "1s"
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": f"{webhook}/{r['name']}", "send_resolved": False}]}
        for r in config["receivers"]
    ]
    return config


class RunningAlertmanager:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[RunningAlertmanager, Receiver]]:
    if AM_BIN is None:
        pytest.skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    with Receiver() as webhook:
        config_file = tmp_path / "alertmanager.yml"
        # JSON is YAML: no dumper needed.
        config_file.write_bytes(orjson.dumps(derived_config(webhook.url), option=orjson.OPT_INDENT_2))
        port = free_port()
        log = tmp_path / "alertmanager.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    AM_BIN,
                    f"--config.file={config_file}",
                    f"--storage.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        am = RunningAlertmanager(f"http://127.0.0.1:{port}", proc, log)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(am.url + "/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("Alertmanager did not become ready:\n" + log.read_text()[-3000:])
                time.sleep(0.05)
            yield am, webhook
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def notifications(webhook: Receiver, path: str) -> list[dict[str, Any]]:
    return [r.json() for r in webhook.requests if r.path == path]


def wait_for_path(webhook: Receiver, path: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = notifications(webhook, path)
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no notification at {path} within {timeout}s; got {[r.path for r in webhook.requests]}")


@needs_am
def test_an_obskit_alert_reaches_the_webhook_grouped(
    alertmanager: tuple[RunningAlertmanager, Receiver], make_router: MakeRouter
) -> None:
    am, webhook = alertmanager
    router = make_router([Route(Alertmanager(am.url))])
    router.bind("inventory", "test")
    capture(router, severity="error", title="KeyError: 'sku'", error_type="builtins.KeyError")
    assert asyncio.run(router.flush(5.0))
    assert router.stats()["delivered"] == 1
    note = wait_for_path(webhook, "/obskit-chat")
    assert note["version"] == "4"
    assert note["status"] == "firing"
    assert note["receiver"] == "obskit-chat"
    assert note["groupLabels"] == {"alertname": "ObskitUnhandledException", "service": "inventory", "fingerprint": FP}
    (alert,) = note["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "ObskitUnhandledException",
        "service": "inventory",
        "environment": "test",
        "severity": "error",
        "fingerprint": FP,
        "error_type": "builtins.KeyError",
    }
    assert alert["annotations"]["summary"] == "KeyError: 'sku'"
    assert alert["annotations"]["count"] == "1"


@needs_am
def test_routing_by_severity_and_service_and_dedup_across_replicas(
    alertmanager: tuple[RunningAlertmanager, Receiver], make_router: MakeRouter
) -> None:
    am, webhook = alertmanager
    replicas = [make_router([Route(Alertmanager(am.url))]) for _ in range(2)]
    for router in replicas:  # the same bug in two replicas of checkout
        capture(router, severity="critical")
    for router in replicas:
        assert asyncio.run(router.flush(5.0))
    pager = wait_for_path(webhook, "/obskit-pager")  # severity route, continue: true ...
    team = wait_for_path(webhook, "/obskit-payments-team")  # ... and the service route
    time.sleep(1.5)  # longer than group_wait + group_interval: nothing more may arrive
    assert len(notifications(webhook, "/obskit-pager")) == 1
    assert len(notifications(webhook, "/obskit-payments-team")) == 1
    assert notifications(webhook, "/obskit-chat") == []
    assert len(pager["alerts"]) == 1  # two replicas, one alert: the label set is the identity
    assert team["alerts"][0]["labels"]["fingerprint"] == FP


@needs_am
def test_a_service_down_alert_inhibits_its_exceptions(
    alertmanager: tuple[RunningAlertmanager, Receiver], make_router: MakeRouter
) -> None:
    am, webhook = alertmanager
    down = [
        {
            "labels": {
                "alertname": "ObskitServiceDown",
                "service": "search",
                "environment": "test",
                "severity": "critical",
            }
        }
    ]
    assert httpx.post(am.url + "/api/v2/alerts", json=down, timeout=5).status_code == 200
    wait_for_path(webhook, "/obskit-pager")
    router = make_router([Route(Alertmanager(am.url))])
    router.bind("search", "test")
    capture(router, severity="error")
    assert asyncio.run(router.flush(5.0))
    time.sleep(1.5)
    sent = [a["labels"]["alertname"] for r in webhook.requests for a in r.json()["alerts"]]
    assert "ObskitUnhandledException" not in sent
    assert "ObskitServiceDown" in sent
    alerts = httpx.get(
        am.url + "/api/v2/alerts", params={"filter": 'alertname="ObskitUnhandledException"'}, timeout=5
    ).json()
    assert [a["status"]["state"] for a in alerts] == ["suppressed"]


def _old_event(when: float) -> AlertEvent:
    """An event routed at ``when`` (first, last seen and created then), e.g. before a long outage."""
    return AlertEvent(
        id="0a6b2c1e-4a4e-4c5e-9d55-5b3e3f0f7d11",
        fingerprint=FP,
        service="checkout",
        environment="test",
        severity="critical",
        title="ZeroDivisionError: division by zero",
        error_type="builtins.ZeroDivisionError",
        error_message="division by zero",
        trace_id=None,
        method="GET",
        path="/checkout/42",
        first_seen=when,
        last_seen=when,
        count=1,
        timestamp=when,
    )


def test_ends_at_is_counted_from_the_attempt_not_from_the_event() -> None:
    sent_at = 1_800_000_000.0
    event = _old_event(sent_at - 600)  # ten minutes of outage with a 60 s window
    delivery = Delivery(event, httpx.AsyncClient(), dedup_window=60.0)
    alert = build_alert(delivery, alertname="A", resolve_after=None, now=sent_at)
    assert parse_time(alert["startsAt"]) == pytest.approx(sent_at - 600, abs=0.01)
    assert parse_time(alert["endsAt"]) == pytest.approx(sent_at + 120, abs=0.01)
    fresh = build_alert(
        Delivery(_old_event(sent_at), delivery.client, 60.0), alertname="A", resolve_after=30.0, now=sent_at - 5
    )
    assert parse_time(fresh["endsAt"]) == pytest.approx(sent_at + 30, abs=0.01)  # last_seen is later


@needs_am
def test_an_alert_replayed_after_a_long_restart_fires(
    alertmanager: tuple[RunningAlertmanager, Receiver], make_router: MakeRouter, tmp_path: Path
) -> None:
    am, webhook = alertmanager
    hook = Alertmanager(am.url)
    # The previous process spooled the alert ten minutes ago (Alertmanager was down), with a 60 s window.
    old = time.time() - 600
    spool = Spool(tmp_path / "spool", max_files=10, max_bytes=1 << 20)
    spool.open()
    assert spool.write(hook.targets()[0].key, _old_event(old), old) is not None
    spool.close()
    router = make_router([Route(hook)], dedup_window=60.0, spool_dir=tmp_path / "spool")
    assert asyncio.run(router.flush(5.0))
    assert (router.stats()["replayed"], router.stats()["delivered"]) == (1, 1)
    alerts = httpx.get(am.url + "/api/v2/alerts", params={"filter": f'fingerprint="{FP}"'}, timeout=5).json()
    assert [a["status"]["state"] for a in alerts] == ["active"]
    assert parse_time(alerts[0]["startsAt"]) == pytest.approx(old, abs=0.01)
    note = wait_for_path(webhook, "/obskit-pager")  # somebody is paged
    assert [a["status"] for a in note["alerts"]] == ["firing"]


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (apt-get install prometheus-alertmanager)")
def test_amtool_accepts_the_shipped_config() -> None:
    assert AMTOOL is not None
    result = subprocess.run(
        [AMTOOL, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_shipped_config_groups_by_bug() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the config")
    config = yaml.safe_load(CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "service", "fingerprint"]
    assert config["inhibit_rules"]
    assert {tuple(r["matchers"]) for r in config["route"]["routes"]} >= {('severity="critical"',)}

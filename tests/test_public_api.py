"""The public names of SPEC §2 are a contract: pin them (httpx tests/test_exported_members.py)."""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest

import obskit
import obskit.alerts
import obskit.schema


def test_top_level_names_are_exactly_the_public_api() -> None:
    assert sorted(obskit.__all__) == obskit.__all__
    for name in obskit.__all__:
        assert not name.startswith("_")
        assert getattr(obskit, name) is not None
    for name in ("configure", "get_logger", "ObskitMiddleware", "KnownError", "register_known", "alerts", "schema"):
        assert name in obskit.__all__


def test_configure_signature_matches_the_spec() -> None:
    params = inspect.signature(obskit.configure).parameters
    assert list(params)[:8] == [
        "service",
        "environment",
        "version",
        "level",
        "format",
        "stream",
        "redact",
        "alerts",
    ]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in params.items() if n != "options")
    assert params["options"].kind is inspect.Parameter.VAR_KEYWORD


def test_known_error_class_attributes_have_the_spec_defaults() -> None:
    assert obskit.KnownError.status == 400
    assert obskit.KnownError.level == "warning"
    assert obskit.KnownError.alert is False
    assert obskit.KnownError.title is None

    class TooManyWidgets(obskit.KnownError):
        pass

    assert TooManyWidgets.code == "too_many_widgets"
    err = TooManyWidgets("public sentence", internal="x")
    assert (err.detail, err.extra) == ("public sentence", {"internal": "x"})


def test_alerts_and_schema_modules_expose_the_spec_names() -> None:
    for name in ("AlertRouter", "Route", "Webhook", "PagerDuty", "Slack", "Alertmanager", "Sentry", "Twilio"):
        assert name in obskit.alerts.__all__
    assert callable(obskit.schema.validate_record)
    for path in (obskit.schema.LOG_RECORD_SCHEMA, obskit.schema.PROBLEM_SCHEMA, obskit.schema.ALERT_SCHEMA):
        assert path.is_file()


def test_pytest_plugin_and_cli_are_registered_entry_points() -> None:
    eps = importlib.metadata.entry_points()
    assert any(ep.value == "obskit.testing" for ep in eps.select(group="pytest11"))
    assert any(ep.value == "obskit._cli:main" for ep in eps.select(group="console_scripts", name="obskit"))


def test_levels_may_be_given_as_the_logging_module_gives_them() -> None:
    import logging

    settings = obskit.configure(service="svc", level=logging.WARNING, stack_level="WARNING")
    assert (settings.level, settings.stack_level) == ("warning", logging.WARNING)
    for bad in ({"level": 25}, {"level": object()}, {"trusted_proxies": None}):
        with pytest.raises(ValueError):
            obskit.configure(service="svc", **bad)

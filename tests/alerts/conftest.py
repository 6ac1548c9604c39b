from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from obskit.alerts import AlertRouter, Route
from tests.alerts.receiver import Receiver

FP = "0123456789abcdef"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

MakeRouter = Callable[..., AlertRouter]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def make_router() -> Iterator[MakeRouter]:
    """Routers with fast test backoff, bound to service "checkout"/"test", closed at teardown."""
    routers: list[AlertRouter] = []

    def make(routes: list[Route], **kwargs: Any) -> AlertRouter:
        kwargs.setdefault("backoff_base", 0.01)
        kwargs.setdefault("backoff_cap", 0.05)
        router = AlertRouter(routes, **kwargs)
        router.bind("checkout", "test")
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.close(timeout=2.0)


def capture(router: AlertRouter, fingerprint: str = FP, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "fingerprint": fingerprint,
        "error_type": "builtins.ZeroDivisionError",
        "error_message": "division by zero",
        "severity": "error",
        "title": "ZeroDivisionError: division by zero",
        "trace_id": TRACE,
        "method": "GET",
        "path": "/checkout/42",
    }
    fields.update(overrides)
    router.capture(**fields)


@pytest.fixture
def alert_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="obskit.alerts")
    return caplog

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import obskit
from obskit._errors import reset_registry
from obskit.testing import LogRecords


@pytest.fixture(autouse=True)
def _obskit_clean(obskit_logs: LogRecords) -> Iterator[None]:
    """Every test starts unconfigured, and every record any test produces is schema-checked by the plugin."""
    yield
    obskit.reset()
    reset_registry()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

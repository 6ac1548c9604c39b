"""obskit: production-grade error handling and structured logging for ASGI services.

::

    import obskit
    obskit.configure(service="checkout")
    app.add_middleware(obskit.ObskitMiddleware)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from obskit._config import Settings, configure, get_logger, reset, settings
from obskit._errors import KnownError, register_known
from obskit._metrics import metrics_app
from obskit._redact import DEFAULT_REDACT_KEYS

if TYPE_CHECKING:
    from obskit import alerts, schema
    from obskit._middleware import ObskitMiddleware

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "KnownError",
    "ObskitMiddleware",
    "Settings",
    "alerts",
    "configure",
    "get_logger",
    "metrics_app",
    "register_known",
    "reset",
    "schema",
    "settings",
]


def __getattr__(name: str) -> Any:
    # Imported on first use so `import obskit` stays cheap for processes that only log.
    if name == "ObskitMiddleware":
        from obskit._middleware import ObskitMiddleware  # noqa: PLC0415

        return ObskitMiddleware
    if name in ("alerts", "schema"):
        import importlib  # noqa: PLC0415

        return importlib.import_module(f"obskit.{name}")
    raise AttributeError(f"module 'obskit' has no attribute {name!r}")

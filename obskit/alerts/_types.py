"""The hook protocol, what a hook is handed per attempt, and how it reports failure.

Exceptions::

    Exception
     ├── DeliveryError             one attempt failed; ``retryable`` says whether another may help
     └── ValueError
          └── WebhookVerificationError   a Standard Webhooks signature did not verify
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx

    from obskit.alerts._event import AlertEvent


class DeliveryError(Exception):
    """One delivery attempt failed.

    Args:
        reason: A short snake_case word for stats and logs (``"http_503"``, ``"timeout"``, ...).
        retryable: Whether a later attempt may succeed (connection errors, timeouts, 429, 5xx).
        retry_after: The receiver's ``Retry-After`` in seconds, the minimum delay before the next attempt.
        disable: The receiver said it is gone for good (HTTP 410): stop sending to this hook.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        disable: bool = False,
        detail: str = "",
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.disable = disable
        self.detail = detail

    def __repr__(self) -> str:
        return f"DeliveryError(reason={self.reason!r}, retryable={self.retryable}, retry_after={self.retry_after!r})"


class WebhookVerificationError(ValueError):
    """A Standard Webhooks request failed verification: missing header, stale timestamp or bad signature."""


@dataclass(slots=True, eq=False)
class Delivery:
    """What a hook gets for one attempt of one event.

    ``event`` and ``event.id`` are the same object on every attempt, so a hook derives its idempotency key
    from it. ``exception`` is the live exception of a first occurrence, only for hooks that ask for it
    (``wants_exception``), and is released as soon as the delivery ends.
    """

    event: AlertEvent
    client: httpx.AsyncClient
    dedup_window: float
    attempt: int = 1
    exception: BaseException | None = None
    _json: bytes | None = field(default=None, repr=False)

    def event_json(self) -> bytes:
        """The event serialised once, so every attempt sends (and signs) exactly the same bytes."""
        if self._json is None:
            self._json = self.event.to_json()
        return self._json


@runtime_checkable
class AlertHook(Protocol):
    """A destination for alerts.

    ``name`` and ``key`` appear in logs and spool file names: they must not contain secrets. ``key`` must
    be stable across restarts (it maps spooled alerts back to their hook). ``send`` performs one attempt:
    it returns on success and raises :class:`DeliveryError` otherwise; any other exception counts as a
    permanent failure of that attempt.
    """

    name: str
    key: str
    timeout: float
    max_attempts: int
    wants_exception: bool

    async def send(self, delivery: Delivery) -> None: ...


class FanOut(Protocol):
    """A hook that delivers to several independent targets (``Alertmanager`` with several URLs)."""

    def targets(self) -> Sequence[AlertHook]: ...

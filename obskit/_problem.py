"""RFC 9457 ``application/problem+json`` bodies."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import orjson

from obskit._renderers import sanitize

CONTENT_TYPE = b"application/problem+json"


class ValidationItem(TypedDict):
    loc: list[str | int]
    msg: str
    type: str


class Problem(TypedDict):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    trace_id: str
    errors: NotRequired[list[ValidationItem]]
    debug: NotRequired[dict[str, str]]


UNKNOWN_DETAIL = "An unexpected error occurred. It has been logged; quote the trace id when reporting it."


def problem(
    *,
    status: int,
    title: str,
    detail: str | None,
    instance: str,
    code: str,
    trace_id: str,
    type_uri: str = "about:blank",
    errors: list[ValidationItem] | None = None,
    debug: dict[str, str] | None = None,
) -> Problem:
    body: Problem = {
        "type": type_uri,
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": instance,
        "code": code,
        "trace_id": trace_id,
    }
    if errors is not None:
        body["errors"] = errors
    if debug is not None:
        body["debug"] = debug
    return body


def encode(body: Problem) -> bytes:
    try:
        return orjson.dumps(body, default=str)
    except TypeError:
        # A lone surrogate (a path a server decoded with "surrogateescape") is not UTF-8: escape it.
        return orjson.dumps(sanitize(body))


def validation_items(raw: Any) -> list[ValidationItem]:
    """FastAPI/pydantic error entries reduced to ``loc``/``msg``/``type``: the submitted input is never echoed."""
    items: list[ValidationItem] = []
    if not isinstance(raw, list):
        return items
    for entry in raw[:100]:
        if not isinstance(entry, dict):
            continue
        loc = entry.get("loc", [])
        items.append(
            {
                "loc": [p if isinstance(p, (str, int)) and not isinstance(p, bool) else str(p) for p in loc][:20]
                if isinstance(loc, (list, tuple))
                else [],
                "msg": str(entry.get("msg", ""))[:500],
                "type": str(entry.get("type", ""))[:100],
            }
        )
    return items

"""Redaction of secret-looking keys and of obvious secrets inside free text.

A key is secret when, lower-cased with ``-`` read as ``_``, it *contains* one of the configured patterns
(``db_password``, ``X-Api-Key``, ``sessionToken`` …). The answer is cached per key string: log keys repeat,
so the hot path is one dict lookup.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

REDACTED = "[REDACTED]"

DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credential",
    "session_id",
    "sessionid",
    "dsn",
    "signature",
)

_CACHE_MAX = 8192


class Redactor:
    __slots__ = ("_cache", "_patterns", "_stems", "_text_res")

    def __init__(self, patterns: Iterable[str] = DEFAULT_REDACT_KEYS) -> None:
        pats = []
        for p in patterns:
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"redact patterns must be non-empty strings, got {p!r}")
            pats.append(p.strip().lower().replace("-", "_"))
        self._patterns: tuple[str, ...] = tuple(dict.fromkeys(pats))
        # Each key pattern matches text that contains its first part ("api" of "api_key", which the text
        # regex also finds as "api-key" or "apikey"): a substring test that rules most text out cheaply.
        self._stems: tuple[str, ...] = tuple(dict.fromkeys(p.split("_", 1)[0] for p in self._patterns))
        self._cache: dict[str, bool] = {}
        self._text_res: tuple[re.Pattern[str], ...] = self._compile()

    @property
    def patterns(self) -> tuple[str, ...]:
        return self._patterns

    def is_secret(self, key: object) -> bool:
        name = key if type(key) is str else str(key)
        hit = self._cache.get(name)
        if hit is None:
            norm = name.lower().replace("-", "_")
            hit = any(p in norm for p in self._patterns)
            if len(self._cache) < _CACHE_MAX:
                self._cache[name] = hit
        return hit

    def _compile(self) -> tuple[re.Pattern[str], ...]:
        # Every quantifier is bounded and every key must start at a word boundary: these run on text an
        # attacker controls (exception messages echo user input), so they must stay linear in its length.
        res = [
            # "Authorization: <scheme> <credentials>" with any scheme (Digest, Negotiate, AWS4-HMAC-SHA256 …)
            # or none: everything after the header name up to a delimiter
            re.compile(
                r"""(?i)(?<![A-Za-z0-9_])((?:proxy[_-]?)?authori[sz]ation["']?\s{0,8}[=:]\s{0,8})"""
                r"""(?!\[REDACTED\])((?:[A-Za-z][A-Za-z0-9._~+/=-]{0,63}\s{1,8})?[^\s,;&"'}\]]{1,4096})"""
            ),
            # "Bearer abc", "Basic dXNlcjpwYXNz": the credential follows a scheme word
            re.compile(r"(?i)\b(bearer|basic|token)\s{1,8}[A-Za-z0-9._~+/=-]{6,4096}"),
            # scheme://user:password@host
            re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}://[^/\s:@]{0,256}:)[^/\s@]{1,1024}(@)"),
        ]
        if self._patterns:
            alt = "|".join(re.escape(p).replace("_", "[_-]?") for p in self._patterns)
            # key=value, key: value, "key": "value" — the value up to a delimiter
            res.append(
                re.compile(
                    rf"""(?i)(?<![\w.-])([\w.-]{{0,64}}?(?:{alt})[\w.-]{{0,64}}(?:\\{{0,2}}["'])?\s{{0,8}}[=:]\s{{0,8}})"""
                    # a value that is already "[REDACTED]" is left alone: redacting twice changes nothing;
                    # nor is a value that is itself the next key ("password= token: abc"), so that key's
                    # own value is masked in turn
                    rf"""(?!\[REDACTED\])(?!["']?[\w.-]{{0,64}}?(?:{alt})[\w.-]{{0,64}}["']?\s{{0,8}}[=:](?:\s|$|["']))"""
                    # (quotes may come backslash-escaped: a repr of a str holding both kinds of quote)
                    rf"""(\\{{0,2}}"[^"]{{0,4096}}"|\\{{0,2}}'[^']{{0,4096}}'|[^\s,;&"'}}\]]{{1,4096}})"""
                )
            )
        return tuple(res)

    def may_hold_secret(self, text: str) -> bool:
        """False only when no text pattern can match ``text``: each needs a ``=``, ``://``, a scheme word
        (Bearer, Basic, Token), or a colon after ``Authorization`` or a secret-looking key."""
        if "=" in text or "://" in text:
            return True
        low = text.lower()
        if "bearer" in low or "basic" in low or "token" in low:
            return True
        return ":" in text and ("authori" in low or any(stem in low for stem in self._stems))

    def redact_text(self, text: str) -> str:
        """Mask obvious secrets in free text (exception messages): ``password=hunter2`` and the like."""
        if not text or not self.may_hold_secret(text):
            return text
        return self.apply_patterns(text)

    def apply_patterns(self, text: str) -> str:
        """Every text pattern, without the prefilter (what :meth:`redact_text` does when it may match)."""
        auth, bearer, userinfo, *kv = self._text_res
        text = auth.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        text = bearer.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = userinfo.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(2)}", text)
        for rx in kv:
            text = rx.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        return text


_active = Redactor()


def set_redactor(redactor: Redactor) -> None:
    global _active  # noqa: PLW0603
    _active = redactor


def get_redactor() -> Redactor:
    return _active


def redact_text(text: str) -> str:
    """Mask obvious secrets in ``text`` with the configured patterns (used for alerts and error messages)."""
    return _active.redact_text(text)

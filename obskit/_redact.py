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
_LINE_MAX = 65536  # a header line or PEM block masked to its end; longer than any record obskit writes


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
            # A PEM private key: the body spans lines, so it is masked up to the END line, or to the end of the
            # text when that was cut off. First, so that no key: value mask stops at the BEGIN line's end.
            re.compile(
                r"(-----BEGIN [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----)(?!\[REDACTED\])"
                rf"(?s:.{{0,{_LINE_MAX}}}?(-----END [A-Z0-9 ]{{0,64}}PRIVATE KEY(?: BLOCK)?-----)|.{{0,{_LINE_MAX}}})"
            ),
            # "Authorization: <scheme> <credentials>" with any scheme (Digest, Negotiate, AWS4-HMAC-SHA256 …)
            # or none: everything after the header name up to a delimiter. The credentials may be a list of
            # auth-params (Digest username="u", response="…") holding commas and quotes; a comma before
            # anything but another name=value ends them ("Authorization: Bearer x, retrying").
            re.compile(
                r"""(?i)(?<![A-Za-z0-9_])((?:proxy[_-]?)?authori[sz]ation["']?\s{0,8}[=:]\s{0,8})"""
                r"""(?!\[REDACTED\])(?:[A-Za-z][A-Za-z0-9._~+/=-]{0,63}\s{1,8})?"""
                r"""(?:[\w-]{1,64}=(?:"[^"\r\n]{0,4096}"|[^\s,;&"'}\]]{0,4096})"""
                r"""(?:\s{0,8},\s{0,8}[\w-]{1,64}=(?:"[^"\r\n]{0,4096}"|[^\s,;&"'}\]]{0,4096})){0,64}"""
                r"""|[^\s,;&"'}\]]{1,4096})"""
            ),
            # "Cookie: theme=dark; sid=…", "Set-Cookie: …": every cookie may be a credential and they are
            # separated by "; ", so the header is masked to the end of its line.
            re.compile(rf"(?i)(?<![A-Za-z0-9_])(cookie:[ \t]{{0,8}})(?!\[REDACTED\])\S[^\r\n]{{0,{_LINE_MAX}}}"),
            # "Bearer abc", "Basic dXNlcjpwYXNz": the credential follows a scheme word
            re.compile(r"(?i)\b(bearer|basic|token)\s{1,8}[A-Za-z0-9._~+/=-]{6,4096}"),
            # scheme://user:password@host
            re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}://[^/\s:@]{0,256}:)[^/\s@]{1,1024}(@)"),
        ]
        if self._patterns:
            alt = "|".join(re.escape(p).replace("_", "[_-]?") for p in self._patterns)
            # key=value, key: value, "key": "value" — the value up to a delimiter. Written like a header,
            # "key: value" (a colon, then a space or tab), the value may hold spaces ("password: correct horse
            # battery") and runs to the end of the line or to a , ; } or quote; it may hold a "[REDACTED]" an
            # earlier pattern left ("password: x Bearer [REDACTED]"), which must not cut it short. After "="
            # a space still ends the value, so "user=bob, password=*** reason=…" keeps its reason.
            res.append(
                re.compile(
                    rf"""(?i)(?<![\w.-])([\w.-]{{0,64}}?(?:{alt})[\w.-]{{0,64}}(?:\\{{0,2}}["'])?\s{{0,8}}"""
                    r"""(?:=|:(?=[ \t])(?P<header>)|:)\s{0,8})"""
                    # a value that is already "[REDACTED]" is left alone: redacting twice changes nothing;
                    # nor is a value that is itself the next key ("password= token: abc"), so that key's
                    # own value is masked in turn
                    rf"""(?!\[REDACTED\])(?!["']?[\w.-]{{0,64}}?(?:{alt})[\w.-]{{0,64}}["']?\s{{0,8}}[=:](?:\s|$|["']))"""
                    # (quotes may come backslash-escaped: a repr of a str holding both kinds of quote)
                    r"""(\\{0,2}"[^"]{0,4096}"|\\{0,2}'[^']{0,4096}'"""
                    r"""|(?(header)[^\s,;"'}](?:[^\r\n,;"'}]{0,4094}[^\s,;"'}])?|[^\s,;&"'}\]]{1,4096}))"""
                )
            )
        return tuple(res)

    def may_hold_secret(self, text: str) -> bool:
        """False only when no text pattern can match ``text``: each needs a ``=``, ``://``, a PEM BEGIN
        line, a scheme word (Bearer, Basic, Token), or a colon after ``Authorization``, ``Cookie`` or a
        secret-looking key."""
        if "=" in text or "://" in text or "-----BEGIN " in text:
            return True
        low = text.lower()
        if not text.isascii():
            # Under (?i) the patterns' "i" also matches U+0131 and U+0130, and "s" matches U+017F (long s);
            # lower() leaves U+0131 and U+017F and makes U+0130 "i" + U+0307. Fold them likewise (a U+0307
            # dropped elsewhere only lets more text through to the patterns).
            low = low.replace("\u0131", "i").replace("\u017f", "s").replace("\u0307", "")
        if "bearer" in low or "basic" in low or "token" in low:
            return True
        return ":" in text and ("authori" in low or "cookie" in low or any(stem in low for stem in self._stems))

    def redact_text(self, text: str) -> str:
        """Mask obvious secrets in free text (exception messages): ``password=hunter2`` and the like."""
        if not text or not self.may_hold_secret(text):
            return text
        return self.apply_patterns(text)

    def apply_patterns(self, text: str) -> str:
        """Every text pattern, without the prefilter (what :meth:`redact_text` does when it may match)."""
        pem, auth, cookie, bearer, userinfo, *kv = self._text_res
        text = pem.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(2) or ''}", text)
        text = auth.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        if ":" in text:  # what the Cookie header pattern needs; most text that gets here has only "="
            text = cookie.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
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

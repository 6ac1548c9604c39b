"""Hypothesis strategies for the hostile-input battery: bytes no client should send, values no logger expects.

Secrets are ``SECRET_MARK`` followed by random letters and digits. Nothing else the strategies draw can
contain the mark (it is removed from every other generated text), so finding the mark in any output means
that a secret, or the start of one, leaked.
"""

from __future__ import annotations

import collections
import dataclasses
import decimal
import enum
import itertools
import types
import uuid
from typing import Any, NamedTuple

from hypothesis import strategies as st

SECRET_MARK = "Zq7X"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_counter = itertools.count()

# -- secrets -------------------------------------------------------------------------------------------


def _base62(n: int) -> str:
    out = []
    for _ in range(20):
        n, r = divmod(n, 62)
        out.append(_ALNUM[r])
    return "".join(out)


# 20 random alphanumerics after the mark; a per-draw counter keeps two draws apart even when hypothesis
# hands out the same integer twice.
secrets = st.integers(0, 62**20 - 1).map(lambda n: f"{SECRET_MARK}{_base62(n + next(_counter) * 7919)}")

# Keys obskit must treat as secret (SPEC §3: substring, case-insensitive, "-" read as "_").
SECRET_KEYS = (
    "password",
    "db_password",
    "PASSWORD",
    "authorization",
    "Authorization",
    "cookie",
    "Set-Cookie",
    "token",
    "access_token",
    "sessionToken",
    "secret",
    "client_secret",
    "api_key",
    "X-Api-Key",
    "apikey",
    "private_key",
    "credential",
    "session_id",
    "dsn",
    "signature",
)
secret_keys = st.sampled_from(SECRET_KEYS)

# Query parameters a secret travels in (?token=, ?api_key=, ?password= and kin).
SECRET_PARAMS = ("token", "api_key", "password", "access_token", "API_KEY", "Password", "apikey", "client_secret")

# Schemes an Authorization header (or a message quoting one) carries a credential with.
AUTH_SCHEMES = ("Bearer", "bearer", "Basic", "Token", "Digest", "Negotiate", "ApiKey", "HOBA", "AWS4-HMAC-SHA256")


def without_mark(text: str) -> str:
    return text.replace(SECRET_MARK, "Zq_X")


def without_mark_bytes(data: bytes) -> bytes:
    return data.replace(SECRET_MARK.encode(), b"Zq_X")


# -- hostile text and bytes ----------------------------------------------------------------------------

CONTROLS = (
    "\x00",
    "\x07",
    "\x08",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u2066",
)
ANSI = (
    "\x1b[31m",
    "\x1b[0m",
    "\x1b[2J\x1b[H",
    "\x1b]0;owned\x07",
    "\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\",
    "\x9b31m",
    "\x1bP+q\x1b\\",
    "\x1b[6n",
)
PERCENT = ("%00", "%0d%0a", "%0A", "%1b", "%ff", "%c0%af", "%ed%a0%80", "%25", "%2e%2e%2f", "%u202e", "%", "%g1")
INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82")
ASCII_PIECES = (
    "",
    " ",
    ",",
    ";",
    "=",
    "/",
    "..",
    "?",
    "#",
    "&",
    '"',
    "'",
    "\\",
    "{",
    "}",
    "[REDACTED]",
    "password=",
    "Bearer ",
    "http://u:p@h/",
)

# Any code point, lone surrogates included (a str that is not valid UTF-8).
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=40)


def _long(piece: str, n: int) -> str:
    return (piece * (n // max(len(piece), 1) + 1))[:n] if piece else ""


# Long values without hypothesis having to draw every byte: a short piece repeated up to 64 KiB.
long_text = st.builds(_long, st.text(any_char, min_size=1, max_size=8), st.integers(1, 64 * 1024))

hostile_text = st.lists(
    st.one_of(
        any_text,
        st.sampled_from(CONTROLS),
        st.sampled_from(ANSI),
        st.sampled_from(PERCENT),
        st.sampled_from(ASCII_PIECES),
        st.text("abcxyz0123456789-_.:", max_size=12),
    ),
    max_size=8,
).map(lambda parts: without_mark("".join(parts)))

hostile_text_or_long = st.one_of(hostile_text, long_text.map(without_mark))


def _latin1(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


hostile_bytes = st.one_of(
    st.binary(max_size=64),
    hostile_text.map(_latin1),
    st.lists(
        st.one_of(st.binary(max_size=8), st.sampled_from(INVALID_UTF8), hostile_text.map(_latin1)), max_size=6
    ).map(b"".join),
    st.builds(
        lambda piece, n: (piece * (n // len(piece) + 1))[:n],
        st.binary(min_size=1, max_size=8),
        st.integers(1, 64 * 1024),
    ),
).map(without_mark_bytes)

_hex = "0123456789abcdef"
hex32 = st.text(_hex, min_size=32, max_size=32)
hex16 = st.text(_hex, min_size=16, max_size=16)


@st.composite
def traceparents(draw: st.DrawFn) -> bytes:
    """Well-formed, almost well-formed, and arbitrary ``traceparent`` values."""
    version = draw(st.sampled_from(["00", "01", "ff", "0", "000", "zz", "FF", "cc"]))
    trace = draw(st.one_of(hex32, st.just("0" * 32), hex32.map(str.upper), st.text(_hex, max_size=40)))
    span = draw(st.one_of(hex16, st.just("0" * 16), st.text(_hex + "G", max_size=20)))
    flags = draw(st.sampled_from(["01", "00", "ff", "1", "0x", ""]))
    tail = draw(st.sampled_from(["", "-", "-extra", "-01\n", "\n", "\r\n", " ", "\t", "\x00", "-" + "a" * 600]))
    lead = draw(st.sampled_from(["", " ", "\t", "\n"]))
    value = f"{lead}{version}-{trace}-{span}-{flags}{tail}".encode("latin-1")
    return draw(st.one_of(st.just(value), hostile_bytes))


request_ids = st.one_of(
    st.text("abcXYZ019._~:/+=@-", min_size=1, max_size=130).map(str.encode),
    st.builds(lambda n, c: b"r" * n + c, st.integers(120, 130), st.sampled_from([b"", b"\n", b" ", b"\x1b", b"\x00"])),
    hostile_bytes,
)

_ips = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["10.0.0.1", "10.0.0.2", "unknown", "_hidden", "[::1]:80", "1.2.3.4:5678"]),
    hostile_text,
)
forwarded_for = st.one_of(
    st.lists(_ips, max_size=20).map(lambda hops: ", ".join(hops).encode("utf-8", "surrogatepass")),
    hostile_bytes,
)

NAMED_HEADERS = (
    b"traceparent",
    b"tracestate",
    b"x-request-id",
    b"x-forwarded-for",
    b"user-agent",
    b"authorization",
    b"cookie",
    b"x-api-key",
    b"content-type",
    b"accept",
)


@st.composite
def header_lists(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """Request headers with hostile values (no secrets: those are added by the tests that track them)."""
    by_name = {
        b"traceparent": traceparents(),
        b"x-request-id": request_ids,
        b"x-forwarded-for": forwarded_for,
    }
    headers: list[tuple[bytes, bytes]] = []
    names = draw(st.lists(st.sampled_from(NAMED_HEADERS[:5]), max_size=7))
    for name in names:
        headers.append((name, draw(by_name.get(name, hostile_bytes))))
    # arbitrary header names, as a non-conforming server could pass them on
    headers.extend(draw(st.lists(st.tuples(hostile_bytes.map(bytes.lower), hostile_bytes), max_size=2)))
    return headers


# -- paths and query strings ----------------------------------------------------------------------------

hostile_paths = st.one_of(
    hostile_text.map(lambda t: "/" + t),
    st.lists(st.one_of(hostile_text, st.sampled_from(["ok", "..", ".", "", "%2F"])), max_size=6).map(
        lambda parts: "/" + "/".join(parts)
    ),
    long_text.map(lambda t: "/" + without_mark(t)),
    st.sampled_from(["", "*", "ok", "//ok", "/ok/", "/OK", "/ok\x00", "/ok%00", "/ok\r\nX-Injected: 1"]),
    # lone surrogates: what a server that decodes with "surrogateescape" would hand over
    st.sampled_from(["/caf\udce9", "/\ud800", "/ok/\udcff\udcfe"]),
)

hostile_queries = st.one_of(
    hostile_bytes,
    st.lists(st.tuples(hostile_bytes, hostile_bytes).map(lambda kv: kv[0] + b"=" + kv[1]), max_size=5).map(b"&".join),
)

methods = st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "DELETE", "OPTIONS", "BREW", "get", "G\x00T", ""])


# -- values handed to loggers ---------------------------------------------------------------------------


class RaisingRepr:
    """repr() and str() both raise: rendering must fall back without them."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__


class NonStrStr:
    """str() returns something that is not a str."""

    def __str__(self) -> str:
        return 42  # type: ignore[return-value]  # noqa: PLE0307 - the point of this class

    def __repr__(self) -> str:
        return b"bytes"  # type: ignore[return-value]


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Creds:
    user: Any
    password: Any


class Account(NamedTuple):
    name: Any
    api_key: Any


class Config:
    """An ordinary object whose repr shows its attributes, secrets included."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def __repr__(self) -> str:
        return f"Config(dsn={self.dsn!r})"


class RaisingStrKey(str):
    __slots__ = ()

    def __str__(self) -> str:
        raise RuntimeError("key str exploded")


_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0]),
)
_ints = st.one_of(
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 2**200, -(2**1000)]),
    # past 4300 digits str() itself raises (built in a map: hypothesis would fail to repr the literal)
    st.integers(4301, 5000).map(lambda digits: 10**digits),
)

leaves = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    _floats,
    hostile_text,
    long_text.map(without_mark),
    st.binary(max_size=32).map(without_mark_bytes),
    st.sampled_from(
        [
            decimal.Decimal("nan"),
            decimal.Decimal("1e999999"),
            uuid.UUID(int=7),
            Color.RED,
            Ellipsis,
            NotImplemented,
            type,
            print,
            complex(1, float("nan")),
            bytearray(b"\xff\x00"),
            memoryview(b"\x1b[31m"),
            range(10**9),
        ]
    ),
    st.builds(RaisingRepr),
    st.builds(NonStrStr),
    hostile_text.map(ValueError),
)

# Keys: arbitrary text, the record's own field names, non-str objects, and keys whose str() raises.
RECORD_FIELDS = (
    "timestamp",
    "level",
    "service",
    "trace_id",
    "span_id",
    "message",
    "logger",
    "environment",
    "version",
    "request_id",
    "truncated",
    "error",
    "http",
    "event",
    "exc_info",
    "stack_info",
    "render_error",
    "",
)
plain_keys = st.one_of(
    st.sampled_from(RECORD_FIELDS),
    hostile_text,
    st.text(any_char, min_size=1, max_size=20).map(without_mark),
    long_text.map(without_mark),
)
any_keys = st.one_of(
    plain_keys,
    _ints,
    _floats,
    st.none(),
    st.booleans(),
    st.binary(max_size=12).map(without_mark_bytes),
    st.tuples(st.integers(), hostile_text),
    st.builds(RaisingStrKey, st.text("abc", max_size=3)),
    st.just(Color.RED),
)


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except Exception:
        return False
    return True


values = st.recursive(
    leaves,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5),
        st.lists(kids, max_size=5).map(tuple),
        st.lists(kids, max_size=5).map(lambda xs: frozenset(x for x in xs if _hashable(x))),
        st.lists(kids, max_size=5).map(lambda xs: {x for x in xs if _hashable(x)}),
        st.dictionaries(any_keys, kids, max_size=5),
        st.dictionaries(plain_keys, kids, max_size=4).map(collections.OrderedDict),
        st.dictionaries(plain_keys, kids, max_size=4).map(types.MappingProxyType),
        st.builds(Creds, kids, kids),
        st.builds(Account, kids, kids),
    ),
    max_leaves=30,
)


@st.composite
def cyclic_values(draw: st.DrawFn) -> Any:
    """Containers that contain themselves, many times over (a walk without cycle checks never ends)."""
    width = draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["list", "dict", "both"]))
    if kind == "list":
        a: list[Any] = []
        a.extend([a] * width)
        return a
    if kind == "dict":
        d: dict[Any, Any] = {}
        for i in range(width):
            d[f"k{i}"] = d
        return d
    lst: list[Any] = []
    dct: dict[str, Any] = {"l": lst}
    lst.extend([dct] * width)
    return dct


@st.composite
def shared_values(draw: st.DrawFn) -> Any:
    """No cycle, but every level shares its child: expanded, ``width ** 40`` members.

    Only as a field value: Python's own ``str()`` of it never ends either, so as a message (formatted by
    ``logging`` with ``%``) it is beyond any logger.
    """
    width = draw(st.integers(2, 12))
    x: Any = [0]
    for _ in range(40):
        x = [x] * width
    return x


def deep(n: int) -> Any:
    x: Any = "bottom"
    for _ in range(n):
        x = [x]
    return x


# What a message may be (its str() must end); field values may also share their parts.
message_values = st.one_of(values, cyclic_values(), st.integers(100, 3000).map(deep))
any_values = st.one_of(message_values, shared_values())


# -- secrets in the places obskit must mask ---------------------------------------------------------------


class Holder(dict):  # type: ignore[type-arg]
    """A dict subclass: orjson serialises it natively, so redaction must walk it too."""


@st.composite
def secret_carriers(draw: st.DrawFn) -> Any:
    """A value holding a secret only under a secret-looking key (at some depth), in one of many shapes."""
    secret = draw(secrets)
    key = draw(secret_keys)
    # What sits under the secret key: the secret itself, or a structure with the secret somewhere inside.
    under = draw(
        st.sampled_from(
            [
                secret,
                [secret],
                (1, secret),
                {"inner": secret},
                {"list": [{"x": secret}]},
                secret.encode(),
                {secret},
            ]
        )
    )
    shape = draw(st.integers(0, 11))
    if shape == 0:
        return {key: under}
    if shape == 1:
        return collections.OrderedDict([("before", 1), (key, under)])
    if shape == 2:
        return types.MappingProxyType({key: under})
    if shape == 3:
        return Holder({key: under})
    if shape == 4:
        return collections.defaultdict(list, {key: under})
    if shape == 5:
        return Creds(user="ada", password=secret)
    if shape == 6:
        return Account(name="ada", api_key=secret)
    if shape == 7:
        return Config(dsn=secret)
    if shape == 8:
        return {key.encode(): secret}
    if shape == 9:
        return types.SimpleNamespace(token=secret)
    if shape == 10:
        return [{"ok": 1}, ({key: under},)]
    return {"level1": {"level2": {"level3": {key: under}}}}


carrier_values = st.recursive(
    st.one_of(leaves, secret_carriers()),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.lists(kids, max_size=4).map(tuple),
        st.dictionaries(plain_keys, kids, max_size=4),
    ),
    max_leaves=12,
)

# Free text carrying a secret the way libraries and exceptions write them.
SECRET_TEXT_FORMS = (
    "token={s}",
    "password={s}",
    "api_key={s}",
    "?token={s}&x=1",
    "&api_key={s}",
    "/path?password={s}",
    "Authorization: Bearer {s}",
    "Bearer {s}",
    "postgres://app:{s}@db:5432/x",
    "{{'password': '{s}'}}",
    '{{"token": "{s}"}}',
    "client_secret = {s}",
    "db password: {s}",
    "API-Key: {s}",
    "Token {s}",
)
ERROR_TEXT_FORMS = (
    *SECRET_TEXT_FORMS,
    "Authorization: {scheme} {s}",
    "authorization={scheme} {s}",
    "Proxy-Authorization: {scheme} {s}",
    "password: {s}",
    "Cookie: session_id={s}",
)


@st.composite
def text_with_secret(draw: st.DrawFn, forms: tuple[str, ...] = SECRET_TEXT_FORMS) -> str:
    """Hostile text with secrets embedded in ``forms``; a separator keeps each form a form of its own."""
    parts = [draw(hostile_text)]
    for _ in range(draw(st.integers(1, 3))):
        form = draw(st.sampled_from(forms))
        parts.append(form.format(s=draw(secrets), scheme=draw(st.sampled_from(AUTH_SCHEMES))))
        parts.append(draw(hostile_text))
    # Padding in front moves the secret across the truncation points (alert title at 200 chars, …).
    pad = "x" * draw(st.sampled_from([0, 0, 150, 180, 185, 190, 195, 4080, 8180]))
    return pad + " " + " ".join(parts) + " "

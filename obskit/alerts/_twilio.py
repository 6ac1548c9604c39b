"""Twilio SMS through the Messages resource: form-encoded ``To``/``From``/``Body``, HTTP basic auth.

``Body`` is kept to one SMS segment where possible: 160 characters of the GSM-7 alphabet (characters of
its extension table count twice, anything outside it is replaced), so a page costs one message.
Twilio has no idempotency key: a retry after a read timeout may send a second SMS; obskit's dedup window
keeps that rare, and a duplicate page beats a lost one.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from typing import TYPE_CHECKING

from obskit.alerts._delivery import check_http_url, hook_attempts, hook_timeout, http_post, redacted_url

if TYPE_CHECKING:
    from obskit.alerts._types import Delivery

DEFAULT_BASE_URL = "https://api.twilio.com"
SEGMENT = 160
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SENDER_ID = re.compile(r"(?=[A-Za-z0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11}")  # Twilio's alphanumeric sender id
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€")


def gsm7_sms(text: str, limit: int = SEGMENT) -> str:
    """``text`` mapped onto GSM-7 and cut to fit ``limit`` septets (one segment by default)."""
    out: list[str] = []
    used = 0
    cut = False
    for ch in " ".join(text.split()):
        c = ch if ch in _GSM7_BASIC or ch in _GSM7_EXTENDED else "?"
        cost = 2 if c in _GSM7_EXTENDED else 1
        if used + cost > limit:
            cut = True
            break
        out.append(c)
        used += cost
    if cut:
        while used > limit - 3 and out:
            used -= 2 if out.pop() in _GSM7_EXTENDED else 1
        out.append("...")
    return "".join(out)


def _mask(value: str) -> str:
    return "***" + value[-2:] if len(value) > 4 else "***"


class Twilio:
    """Send an SMS per alert through Twilio.

    Args:
        account_sid: The account SID (``AC…``), also the basic-auth user.
        auth_token: The auth token (basic-auth password). Never logged or shown.
        from_: Sending number (E.164) or sender id.
        to: Recipient number (E.164); one ``Twilio`` hook per recipient.
        base_url: Scheme and host of the API (override for tests).
        timeout: Seconds for one attempt.
        max_attempts: Attempts before the alert is dropped.

    Raises:
        ValueError: An empty credential, a number that is not E.164 (``from_`` may be an alphanumeric
            sender id), or a non-http(s) ``base_url``.
    """

    wants_exception = False

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_: str,
        to: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        max_attempts: int = 5,
    ) -> None:
        for name, value in (("account_sid", account_sid), ("auth_token", auth_token), ("from_", from_), ("to", to)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Twilio: {name} must be a non-empty string")
        if not _E164.fullmatch(to):
            # Twilio refuses anything else with a 400, found only when a real page is due
            raise ValueError(f"Twilio: to must be an E.164 number such as +14155550100, got {_mask(to)!r}")
        if not (_E164.fullmatch(from_) or _SENDER_ID.fullmatch(from_)):
            raise ValueError(
                "Twilio: from_ must be an E.164 number or an alphanumeric sender id of at most 11 characters"
            )
        base = check_http_url(base_url, "Twilio").rstrip("/")
        self._sid = account_sid
        self._token = auth_token
        self.from_ = from_
        self.to = to
        self.base_url = base
        self.url = f"{base}/2010-04-01/Accounts/{urllib.parse.quote(account_sid, safe='')}/Messages.json"
        self.timeout = hook_timeout(timeout, "Twilio")
        self.max_attempts = hook_attempts(max_attempts, "Twilio")
        self.name = f"twilio {redacted_url(base)} to {_mask(to)}"
        self.key = "twilio-" + hashlib.sha256(f"{base}\0{account_sid}\0{to}".encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return (
            f"Twilio(account_sid={_mask(self._sid)!r}, auth_token='***', from_={_mask(self.from_)!r}, "
            f"to={_mask(self.to)!r}, base_url={redacted_url(self.base_url)!r})"
        )

    def body(self, delivery: Delivery) -> str:
        e = delivery.event
        times = f" x{e.count}" if e.count > 1 else ""
        env = f"/{e.environment}" if e.environment else ""
        return gsm7_sms(f"[{e.severity.upper()}] {e.service}{env}{times}: {e.title} fp={e.fingerprint}")

    async def send(self, delivery: Delivery) -> None:
        form = urllib.parse.urlencode({"To": self.to, "From": self.from_, "Body": self.body(delivery)})
        await http_post(
            delivery,
            self.url,
            timeout=self.timeout,
            content=form.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
            auth=(self._sid, self._token),
        )

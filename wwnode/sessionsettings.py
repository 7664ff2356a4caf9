"""Per-session settings (wire contract v1.2, "Per-session settings"): what
a client may say of one session, checked, and the forms they are kept and
shown in.

A client gives them whole with ``create_instance`` (``"settings"``: fields
left out take their defaults) or changes some with ``update_settings`` (the
fields given replace those; ``null`` puts one back to its default).  Every
refusal is ``bad_settings``, its detail naming the field.

Three forms:

- :meth:`SessionSettings.stored`: everything, the proxy's credentials
  included: what Redis (``instances:{key}:settings``), the profile and its
  snapshot keep;
- :meth:`SessionSettings.public`: the same with the proxy's password
  masked: what events carry and logs show;
- :meth:`SessionSettings.proxy_host`: ``host:port`` only, for status, the
  dashboard and metrics.

Pure: no I/O, nothing of the node.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, NoReturn

import orjson

from sessionproc.protocol import IGNORABLE, MAX_TEXT
from sessionproc.proxyurl import BadProxy, ProxyUrl, parse_proxy

Reject = Callable[[str, str], NoReturn]

FIELDS = ("proxy", "reject_calls", "call_reply", "ignore", "send_seen", "typing", "pacing")

# "typing": true shows "typing..." for TYPING_BASE_MS plus this much per
# character of the text, at most TYPING_MAX_MS (a person typing on a phone
# takes about a fifth of a second a character; whatsapp-web.js's own
# sendStateTyping lasts 25 s on the other side unless a message ends it).
TYPING_BASE_MS = 500
TYPING_MS_PER_CHAR = 60
TYPING_MAX_MS = 8000
TYPING_LIMIT_MS = 25_000  # the longest a client may ask for: the page's own indicator lasts that long
PACING_LIMIT_MS = 3_600_000  # an hour between two sends is the most a gap or a jitter may be


@dataclass(frozen=True)
class Typing:
    ms_per_char: int = TYPING_MS_PER_CHAR
    max_ms: int = TYPING_MAX_MS
    base_ms: int = TYPING_BASE_MS

    def for_text(self, text: str) -> int:
        """Milliseconds of "typing..." before a text of this length."""
        if not text:
            return 0
        return min(self.max_ms, self.base_ms + self.ms_per_char * len(text))


@dataclass(frozen=True)
class Pacing:
    min_gap_ms: int = 0  # at least this long between the end of one send and the start of the next
    jitter_ms: int = 0  # plus a random wait of up to this long
    per_minute: int | None = None  # at most this many sends started in any 60 s

    def stored(self) -> dict:
        return {"min_gap_ms": self.min_gap_ms, "jitter_ms": self.jitter_ms, "per_minute": self.per_minute}


@dataclass(frozen=True)
class SessionSettings:
    proxy: ProxyUrl | None = None
    reject_calls: bool = False
    call_reply: str | None = None
    ignore: tuple[str, ...] = ()
    send_seen: bool | None = None  # None: the node's SEND_SEEN
    typing: Typing | None = None
    pacing: Pacing | None = None

    # ------------------------------------------------------------- forms
    def stored(self) -> dict:
        """Every field, the proxy whole (its credentials included)."""
        return self._as_dict(self.proxy.url() if self.proxy else None)

    def public(self) -> dict:
        """Every field, the proxy's password masked."""
        return self._as_dict(self.proxy.public() if self.proxy else None)

    def _as_dict(self, proxy: str | None) -> dict:
        typing: bool | dict = False
        if self.typing is not None:
            typing = True if self.typing == Typing() else {"ms_per_char": self.typing.ms_per_char,
                                                           "max_ms": self.typing.max_ms}
        return {"proxy": proxy, "reject_calls": self.reject_calls, "call_reply": self.call_reply,
                "ignore": list(self.ignore), "send_seen": self.send_seen, "typing": typing,
                "pacing": self.pacing.stored() if self.pacing else None}

    def proxy_host(self) -> str:
        """``host:port`` of the proxy ("" for none)."""
        return self.proxy.host_port() if self.proxy else ""

    def seen(self, node_default: bool) -> bool:
        return node_default if self.send_seen is None else self.send_seen

    def typing_ms(self, text: str) -> int:
        return self.typing.for_text(text) if self.typing is not None else 0

    # ---------------------------------------------------------- changes
    def changed(self, fields: dict) -> "SessionSettings":
        """These settings with ``fields`` (checked by :func:`check`) in
        place; a None value puts the field back to its default."""
        default = SessionSettings()
        return replace(self, **{name: getattr(default, name) if value is None else value
                                for name, value in fields.items()})


DEFAULT = SessionSettings()


# ------------------------------------------------------------ checking
def check(obj, reject: Reject, *, nulls: bool) -> dict:
    """The fields of a client's ``settings`` object, checked: name -> value
    (``None``, with ``nulls``, for "back to the default").  Anything else
    is refused ``bad_settings``."""
    if not isinstance(obj, dict):
        reject("bad_settings", "settings must be a JSON object")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        reject("bad_settings", f"unknown setting {', '.join(unknown)}; the settings are {', '.join(FIELDS)}")
    fields: dict[str, object] = {}
    for name, value in obj.items():
        if value is None:
            if not nulls:
                # A create gives the settings whole: null there is a field
                # left out, its default.
                continue
            fields[name] = None
            continue
        fields[name] = _CHECKS[name](value, reject)
    return fields


def parse(obj, reject: Reject) -> SessionSettings:
    """A create's settings, whole: fields left out take their defaults."""
    return DEFAULT.changed(check(obj, reject, nulls=False))


def _bool(name: str):
    def one(value, reject: Reject) -> bool:
        if not isinstance(value, bool):
            reject("bad_settings", f"{name} must be true or false")
        return value
    return one


def _proxy(value, reject: Reject) -> ProxyUrl:
    try:
        return parse_proxy(value)
    except BadProxy as e:
        reject("bad_settings", str(e))


def _call_reply(value, reject: Reject) -> str:
    if not isinstance(value, str) or not value:
        reject("bad_settings", "call_reply must be a non-empty string (or null for none)")
    if len(value) > MAX_TEXT:
        reject("bad_settings", f"call_reply is longer than WhatsApp's {MAX_TEXT} characters")
    return value


def _ignore(value, reject: Reject) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        reject("bad_settings", f"ignore must be a list of {', '.join(IGNORABLE)}")
    bad = sorted(set(value) - set(IGNORABLE))
    if bad:
        reject("bad_settings", f"ignore takes {', '.join(IGNORABLE)}, not {', '.join(bad)}")
    return tuple(kind for kind in IGNORABLE if kind in value)


def _int(obj: dict, name: str, what: str, low: int, high: int, reject: Reject) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        reject("bad_settings", f"{what}.{name} must be a whole number from {low} to {high}")
    return value


def _typing(value, reject: Reject) -> Typing | None:
    if isinstance(value, bool):
        return Typing() if value else None
    if not isinstance(value, dict):
        reject("bad_settings", "typing must be true, false, or {\"ms_per_char\", \"max_ms\"}")
    unknown = sorted(set(value) - {"ms_per_char", "max_ms"})
    if unknown:
        reject("bad_settings", f"typing has no {', '.join(unknown)}; it takes ms_per_char and max_ms")
    per_char = _int(value, "ms_per_char", "typing", 0, TYPING_LIMIT_MS, reject)
    max_ms = _int(value, "max_ms", "typing", 0, TYPING_LIMIT_MS, reject)
    return Typing(ms_per_char=TYPING_MS_PER_CHAR if per_char is None else per_char,
                  max_ms=TYPING_MAX_MS if max_ms is None else max_ms)


def _pacing(value, reject: Reject) -> Pacing | None:
    if not isinstance(value, dict):
        reject("bad_settings", "pacing must be {\"min_gap_ms\", \"jitter_ms\", \"per_minute\"} (or null for none)")
    unknown = sorted(set(value) - {"min_gap_ms", "jitter_ms", "per_minute"})
    if unknown:
        reject("bad_settings", f"pacing has no {', '.join(unknown)}; it takes min_gap_ms, jitter_ms and per_minute")
    gap = _int(value, "min_gap_ms", "pacing", 0, PACING_LIMIT_MS, reject) or 0
    jitter = _int(value, "jitter_ms", "pacing", 0, PACING_LIMIT_MS, reject) or 0
    per_minute = _int(value, "per_minute", "pacing", 1, 10_000, reject)
    if not gap and not jitter and per_minute is None:
        return None  # nothing to pace
    return Pacing(gap, jitter, per_minute)


_CHECKS = {
    "proxy": _proxy,
    "reject_calls": _bool("reject_calls"),
    "call_reply": _call_reply,
    "ignore": _ignore,
    "send_seen": _bool("send_seen"),
    "typing": _typing,
    "pacing": _pacing,
}


def proxy_host_of(stored: str | None) -> str:
    """The ``host:port`` of the proxy in settings as Redis keeps them (""
    for none, or settings that cannot be read): what ``wwnode status`` and
    the dashboard show, never the credentials."""
    if not stored:
        return ""
    try:
        proxy = orjson.loads(stored).get("proxy")
        return parse_proxy(proxy).host_port() if proxy else ""
    except (orjson.JSONDecodeError, AttributeError, BadProxy):
        return ""


def from_stored(obj: dict) -> SessionSettings:
    """Settings as :meth:`SessionSettings.stored` wrote them; ValueError if
    they cannot be read (a file from elsewhere, a newer node's fields)."""

    def refuse(reason: str, detail: str) -> NoReturn:
        raise ValueError(detail)

    if not isinstance(obj, dict):
        raise ValueError("stored settings are not an object")
    # Fields this node does not know (a newer node wrote them) are left
    # out rather than refused: what it knows still holds.
    known = {name: value for name, value in obj.items() if name in FIELDS}
    return DEFAULT.changed(check(known, refuse, nulls=True))

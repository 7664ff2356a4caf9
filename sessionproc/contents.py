"""What a send may carry instead of text or media: a location, contact
cards, a poll (``send_message``'s ``location``, ``contacts`` and ``poll``).

One set of rules, used twice: the node refuses a command that breaks them
(``command_failed`` with the reason, nothing sent), and the session process
checks the pipe command again before it touches the page, as it checks ids.
:func:`check` answers the content in the one form both sides pass on (the
pipe carries it so, ``protocol.py``): absent optional fields left out, texts
trimmed where whatsapp-web.js trims them (a poll's name and options).

Bounds that are ours, not WhatsApp's (nothing read for this project tells
the page's own): 1,024 characters for a location's name and address, 255
for a poll's name and 100 for each option, 250 contact cards in one
message.  The 2 to 12 options of a poll are the contract's.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from .protocol import MAX_TEXT, SEND_CONTENTS, USER_ID_RE, id_refusal

KINDS = SEND_CONTENTS

MAX_PLACE_TEXT = 1024  # a location's name, its address
MAX_URL = 4096
MIN_POLL_OPTIONS = 2
MAX_POLL_OPTIONS = 12
MAX_POLL_NAME = 255
MAX_POLL_OPTION = 100
MAX_CONTACTS = 250

LOCATION_FIELDS = ("latitude", "longitude", "name", "address", "url")
POLL_FIELDS = ("name", "options", "multiple")

# Control characters but tab: a name or an option is shown on one line.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# In a vCard, line ends are the format's own.
_VCARD_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VCARD_NAME_RE = re.compile(r"^FN[;:]", re.MULTILINE | re.IGNORECASE)


class ContentError(ValueError):
    """The content breaks a rule; ``reason`` is a stable word."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def kinds_in(body: dict) -> list[str]:
    """The kinds of content a send's body names, in the contract's order."""
    return [kind for kind in KINDS if kind in body]


def check(kind: str, value):
    """The content of ``kind`` checked and in its one form; ContentError
    with the reason otherwise."""
    if kind == "location":
        return _location(value)
    if kind == "contacts":
        return _contacts(value)
    if kind == "poll":
        return _poll(value)
    raise ContentError("conflicting_content", f"no content {kind!r}; a send carries one of {', '.join(KINDS)}")


# --------------------------------------------------------------- location
def _location(value) -> dict:
    if not isinstance(value, dict):
        raise ContentError("wrong_type", "location must be an object")
    _only(value, LOCATION_FIELDS, "location", "bad_location")
    out: dict = {}
    for name, bound in (("latitude", 90), ("longitude", 180)):
        if name not in value:
            raise ContentError("bad_location", f"location.{name} is required")
        number = value[name]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ContentError("bad_location", f"location.{name} must be a number")
        if not -bound <= number <= bound:
            raise ContentError("bad_location", f"location.{name} must be from -{bound} to {bound}, not {number}")
        out[name] = float(number)
    for name in ("name", "address"):
        text = value.get(name)
        if text is None or text == "":
            continue
        if not isinstance(text, str) or len(text) > MAX_PLACE_TEXT or _CONTROL_RE.search(text):
            # The page joins name and address with a line break, and the
            # receiving side splits them there again: one line each.
            raise ContentError("bad_location", f"location.{name} must be one line of at most {MAX_PLACE_TEXT} "
                                               f"characters")
        out[name] = text
    url = value.get("url")
    if url is not None and url != "":
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname \
                or _CONTROL_RE.search(url) or " " in url:
            raise ContentError("bad_location", "location.url must be an http(s) URL")
        out["url"] = url
    return out


# --------------------------------------------------------------- contacts
def _contacts(value):
    if isinstance(value, dict):
        _only(value, ("vcard",), "contacts", "bad_contacts")
        return {"vcard": _vcard(value.get("vcard"))}
    if not isinstance(value, list):
        raise ContentError("wrong_type", "contacts must be a list of ids or {\"vcard\": text}")
    if not 1 <= len(value) <= MAX_CONTACTS:
        raise ContentError("bad_contacts", f"contacts must list 1 to {MAX_CONTACTS} ids, not {len(value)}")
    for item in value:
        if not isinstance(item, str):
            raise ContentError("bad_contacts", "contacts must be ids like 5511999999999@c.us or 123456789012345@lid")
        refusal = id_refusal(item, USER_ID_RE, "bad_contacts")
        if refusal is not None:
            raise ContentError(refusal, "contacts must be ids like 5511999999999@c.us or a LID 123456789012345@lid")
    if len(set(value)) != len(value):
        raise ContentError("bad_contacts", "contacts lists an id twice")
    return list(value)


def _vcard(text) -> str:
    if not isinstance(text, str):
        raise ContentError("bad_contacts", "contacts.vcard must be the text of a vCard")
    if len(text) > MAX_TEXT:
        raise ContentError("bad_contacts", f"contacts.vcard is longer than {MAX_TEXT} characters")
    lines = text.strip("\r\n").splitlines()
    if not lines or lines[0] != "BEGIN:VCARD" or lines[-1] != "END:VCARD":
        raise ContentError("bad_contacts", "contacts.vcard must begin with BEGIN:VCARD and end with END:VCARD")
    if sum(1 for line in lines if line == "BEGIN:VCARD") != 1:
        raise ContentError("bad_contacts", "contacts.vcard must hold one vCard; send several people as ids")
    if _VCARD_CONTROL_RE.search(text):
        raise ContentError("bad_contacts", "contacts.vcard holds control characters")
    if not _VCARD_NAME_RE.search(text):
        raise ContentError("bad_contacts", "contacts.vcard needs an FN line (the name WhatsApp shows)")
    return text


# ------------------------------------------------------------------- poll
def _poll(value) -> dict:
    if not isinstance(value, dict):
        raise ContentError("wrong_type", "poll must be an object")
    _only(value, POLL_FIELDS, "poll", "bad_poll")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ContentError("bad_poll", "poll.name must be a non-empty string")
    name = name.strip()
    if len(name) > MAX_POLL_NAME or _CONTROL_RE.search(name):
        raise ContentError("bad_poll", f"poll.name must be one line of at most {MAX_POLL_NAME} characters")
    options = value.get("options")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ContentError("bad_poll", "poll.options must be a list of strings")
    if not MIN_POLL_OPTIONS <= len(options) <= MAX_POLL_OPTIONS:
        raise ContentError("bad_poll", f"a poll needs {MIN_POLL_OPTIONS} to {MAX_POLL_OPTIONS} options, "
                                       f"not {len(options)}")
    options = [o.strip() for o in options]
    if not all(options) or any(len(o) > MAX_POLL_OPTION or _CONTROL_RE.search(o) for o in options):
        raise ContentError("bad_poll", f"each poll option must be one line of 1 to {MAX_POLL_OPTION} characters")
    if len(set(options)) != len(options):
        # A vote names the options it chose: two alike could not be told apart.
        raise ContentError("bad_poll", "poll.options has the same option twice")
    multiple = value.get("multiple", False)
    if not isinstance(multiple, bool):
        raise ContentError("bad_poll", "poll.multiple must be true or false")
    return {"name": name, "options": options, "multiple": multiple}


def _only(value: dict, allowed: tuple[str, ...], what: str, reason: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ContentError(reason, f"{what} has no field {unknown[0][:40]!r}; it takes {', '.join(allowed)}")

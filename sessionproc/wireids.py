"""The ids and limits both sides check: keys, chats, messages, people, phones, calls, texts."""

from __future__ import annotations

import re

# A session key, as the wire contract defines it; it becomes a folder name.
KEY_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")

# A user agent the browser is told to present (``USER_AGENT``,
# ``--user-agent``): printable ASCII on one line, as an HTTP header must be.
USER_AGENT_RE = re.compile(r"\A[\x20-\x7e]{1,512}\Z")

# A chat: a person's chat, by phone number (``@c.us``) or by the hidden id
# WhatsApp gives people (LID, ``@lid``: groups show members so, and
# one-to-one chats with people whose number the account does not know),
# or a group.  \A and \Z, not ^ and $: a trailing newline must not pass.
CHAT_ID_RE = re.compile(r"\A[0-9]{5,20}@(c\.us|lid)\Z|\A[0-9]{5,20}(-[0-9]{5,20})?@g\.us\Z")
MAX_TEXT = 65536  # WhatsApp's limit for one text message

# A message's ``_serialized`` id: ``{fromMe}_{chat}_{id}``, and in a group
# the participant who wrote it.
MESSAGE_ID_RE = re.compile(
    r"\A(true|false)_[0-9]{5,20}(-[0-9]{5,20})?@(c\.us|g\.us|lid)_[0-9A-Za-z]{1,64}(_[0-9]{5,20}@(c\.us|lid))?\Z")
USER_ID_RE = re.compile(r"\A[0-9]{5,20}@(c\.us|lid)\Z")  # a person, as mentions name them
PHONE_RE = re.compile(r"\A[0-9]{5,20}\Z")  # a phone number, digits only, country code first
# A call's id as the page gives it (the real page makes its own of 32 hex
# digits; other devices' may differ): letters and digits, nothing that could
# be taken for anything else.
CALL_ID_RE = re.compile(r"\A[0-9A-Za-z]{1,64}\Z")
MAX_MENTIONS = 1024
MAX_EMOJI = 32  # characters: one emoji, skin tone and joiners included


def id_refusal(value: str, pattern: re.Pattern, refusal: str) -> str | None:
    """Why ``value`` is not an id ``pattern`` takes, as a ``command_failed``
    reason, or None when it is one.  An id that says it is a LID (it ends
    ``@lid``) but is not ``<digits>@lid`` is ``bad_lid``: its own reason,
    so a client that copied a LID wrongly is told so rather than that chats
    look like ``...@c.us``."""
    if pattern.match(value):
        return None
    return "bad_lid" if value.endswith("@lid") else refusal

"""The pipe protocol between a node and one session process.  This docstring
is its one description; the README links here.

Framing: one JSON object per line (UTF-8, ``\\n``-terminated), both ways.
The process writes nothing else to stdout; its own log goes to its log file.

Commands (node -> session, on stdin)
====================================
``{"cmd": "send", "id": C, "chat_id": "5511...@c.us", "text": T}``
    Send text ``T`` (``chat_id`` may also be a person's LID, ``...@lid``,
    or a group).  Answered by ``sent`` or ``send_failed`` with the same
    ``id``.  Commands are handled in order, one at a time.
    With ``"media": {"path": P, "mimetype": M, "filename": F, "as": A}``
    it sends the file at ``P`` (a file in the session's media folder,
    ``<profile>/../media/``, checked by the node; the session removes it
    once read) as ``A`` (image, video, audio, voice, document, sticker)
    with ``T`` as its caption (may be empty).  Files cross the pipe as
    paths, never inside a line.
``{"cmd": "send", ..., "quoted_message_id": Q, "mentions": [W, ...]}``
    Optional: a reply to message ``Q`` (its ``_serialized`` id; the page
    must hold it, else ``send_failed`` ``unknown_message``), and the ids
    ``...@c.us`` or ``...@lid`` the text mentions.
``{"cmd": "send", ..., "text": "", "location": L}`` (or ``"contacts": C``, or ``"poll": P``)
    Instead of text or media, exactly one of: a location ``{"latitude",
    "longitude", "name"?, "address"?, "url"?}``, contact cards (a list of
    ``...@c.us`` / ``...@lid`` ids, or ``{"vcard": V}``) or a poll
    ``{"name", "options": [...], "multiple": B}``, in the form
    ``sessionproc/contents.py`` gives them (checked there again).  A vCard
    the page cannot read fails ``bad_contacts``.
``{"cmd": "action", "id": C, "action": "react", "message_id": M, "emoji": E}``
``{"cmd": "action", "id": C, "action": "read", "message_id": M}``
``{"cmd": "action", "id": C, "action": "edit", "message_id": M, "text": T}``
``{"cmd": "action", "id": C, "action": "revoke", "message_id": M, "for_me": B}``
    React to message ``M`` (``E`` ``""`` takes the reaction back), mark
    its chat read, change its text to ``T``, or delete it for everyone
    (``for_me`` true: for this device only).  Edits and deletions for
    everyone take only the account's own messages, while the page allows
    (``action_failed`` ``not_own_message``, ``cannot_edit``,
    ``cannot_revoke``).  Answered by ``action_done`` or ``action_failed`` with
    the same ``id``; carried out in order with the sends.
``{"cmd": "check_number", "id": C, "phone": "5511..."}``
    Whether the number has WhatsApp: ``action_done`` with ``result``
    ``{"registered": B, "wid": W or null}`` (the id to write to).
``{"cmd": "send", ..., "seen": B, "typing_ms": N}``
    Optional, the session's settings as the node applies them to this
    send: mark the chat read first (``seen``; absent: ``--no-send-seen``
    decides), and show "typing..." in the chat for ``N`` milliseconds
    before a text (absent or 0: not).  A stop while it types ends the
    send unsent (``send_failed`` ``stopping``).
``{"cmd": "settings", "ignore": [K, ...]}``
    The session's settings changed while it runs: from now on, messages
    of these kinds (``IGNORABLE``: ``groups``, ``status``, ``broadcast``,
    ``channels``) are not reported.  Not answered.
``{"cmd": "call", "id": C, "action": "reject", "call_id": I}``
    Reject call ``I``, one the session reported ringing (``call`` event):
    ``action_done`` with ``result`` ``{"call_id": I, "from": W}`` (the
    caller), or ``action_failed`` ``unknown_call`` (the page holds no
    incoming call ``I``) or ``call_ended`` (it no longer rings: rejected,
    answered elsewhere or missed).  Carried out in order with the sends.
``{"cmd": "chat", "id": C, "action": A, "chat_id": CH}`` (``"until": T`` with ``mute``)
    Do ``A`` to chat ``CH``: ``typing``, ``recording``, ``paused`` (the
    chat state the other side sees), ``archive``, ``unarchive``, ``pin``,
    ``unpin``, ``mute`` (until ``T``, ms since the epoch; without it, for
    ever), ``unmute``.  ``action_done`` with ``result`` ``{}`` for a chat
    state, else ``{"archived": B, "pinned": B, "mute_expiration": S}`` (the
    chat as the page has it then; ``S`` 0 not muted, -1 for ever, else
    seconds since the epoch); or ``action_failed`` ``too_many_pinned``
    (WhatsApp pins at most ``MAX_PINNED`` chats) or ``bad_until`` (a time
    already past).  Carried out in order with the sends.
``{"cmd": "presence", "id": C, "state": "available" | "unavailable"}``
    Whether other phones see the account online: ``action_done`` with
    ``result`` ``{"state": S}``.  Carried out in order with the sends.
``{"cmd": "query", "id": C, "what": W, "chat_id"?: CH, "ids"?: [...], "limit"?: N, "before"?: B}``
    Read back what the account has (``queries.py`` gives the rules,
    ``readback.py`` does it): ``W`` is ``chats``, ``messages`` (of chat
    ``CH``, newest first), ``contacts``, ``group`` (``CH``), ``ids`` (of
    the people listed) or ``profile_picture`` (of ``CH``).  Answered by
    ``action_done`` with ``result`` ``{"items": [...], "more": B}``: one
    page, at most ``N`` items and ``queries.MAX_ANSWER_BYTES`` of JSON;
    ``before``, the last item's id, asks for the next.  Or
    ``action_failed`` (``unknown_chat``, ``unknown_group``,
    ``unknown_before``, ...).  Carried out in order with the sends.
``{"cmd": "group", "id": C, "action": A, "group_id"?: G, "participants"?: [...], "value"?: V}``
    A group action (``grouprules.py`` gives the rules, ``groups.py`` does it): ``A`` is
    ``create``, ``add``, ``remove``, ``promote``, ``demote``, ``subject``,
    ``description``, ``invite_link``, ``revoke_invite``, ``join``,
    ``leave`` or ``settings``.  Answered by ``action_done`` with
    ``result`` (``group_id`` for create and join; ``participants``, one
    outcome per person, for create, add, remove, promote, demote;
    ``code`` and ``link`` for invite_link and revoke_invite), or
    ``action_failed`` (``unknown_group``, ``not_in_group``,
    ``not_admin``, ``invite_not_found``, ``group_full``, a person's reason
    when nobody could be added, ...).  Carried out in order with the sends.
``{"cmd": "ping", "id": C}``
    Health check, answered by ``pong``.  Answered on a path of its own, so a
    long send does not delay it; ``ok`` is false when the page did not
    run a line of JavaScript within the ping timeout.
``{"cmd": "stop"}`` / ``{"cmd": "stop", "logout": true}``
    Close the browser (after unlinking the device, with ``logout``) and
    exit with ``EXIT_STOPPED``.  End of input, SIGTERM and SIGINT mean the
    same as ``stop``.  A stop lasts at most ``--stop-timeout`` seconds (10
    once the node that started the process is gone): then the process
    leaves at once, its browser killed with it.

Events (session -> node, on stdout)
===================================
``{"event": "starting", "pid": P}``               the process is up
``{"event": "browser", "pids": [...]}``           chromedriver's pid (Chrome is below it)
``{"event": "loaded", "version": V, "user_agent": UA, "webdriver": B}``
                                                  WhatsApp Web ``V`` loaded (again after
                                                  each navigation) and has everything the
                                                  session uses; ``UA`` and ``B`` are what the
                                                  page sees of the browser
``{"event": "qr", "qr": Q, "attempt": N}``        QR code N is shown (five-part string)
``{"event": "authenticated"}``                    the page synced its session
``{"event": "ready", "me": "5511...@c.us"}``      ready to send and receive; ``me_lid``: the
                                                  account's LID, where the page has one
``{"event": "state", "state": S}``                WhatsApp Web's socket state changed
``{"event": "message", "message": M}``            inbound message, whatsapp-web.js field names
                                                  (``fromMe`` true: the account wrote it on
                                                  another device; never one of this session's
                                                  sends); a person's other id where the page
                                                  knows it (``from_pn``/``from_lid``, ...);
                                                  with media, also ``"media": {"path", "mimetype",
                                                  "filename", "size"}`` (a file ``in-*`` in the
                                                  media folder, the node's to take and remove) or
                                                  ``{"error", ...}`` when it could not be fetched
``{"event": "sent", "id": C, "message_id": MID}`` WhatsApp Web accepted send ``C``
``{"event": "send_failed", "id": C, "reason": R, "detail": D}``
``{"event": "pong", "id": C, "ok": B, "state": S, "detail": D}``
``{"event": "action_done", "id": C, "result": R}`` an ``action`` or ``check_number`` done
``{"event": "action_failed", "id": C, "reason": R, "detail": D}``
``{"event": "ack", "message_id": M, "chat_id": CH, "ack": N}``
                                                  a message sent from this account moved to
                                                  ack ``N`` (-1 error ... 4 played)
``{"event": "reaction", "message_id": M, "reaction": E, "sender": W}``
                                                  someone reacted to message ``M`` (``E``
                                                  ``""``: took the reaction back); ``sender_pn``
                                                  or ``sender_lid`` where the page knows the
                                                  other id
``{"event": "message_edit", "message": M, "previous_body": B}``
                                                  message ``M`` (its new text in ``body``) was
                                                  edited by its sender, this session included
``{"event": "message_revoke", "message_id": M, "chat_id": CH, "from_me": B}``
                                                  message ``M`` was deleted for everyone by its
                                                  sender (``from_me``: the account)
``{"event": "poll_vote", "message_id": M, "voter": W, "selected": [N, ...], "selected_ids": [I, ...]}``
                                                  ``W`` voted on poll ``M``: the names of the
                                                  options now chosen (``[]``: none any more),
                                                  or ``selected`` null where the page no longer
                                                  holds the poll; ``selected_ids`` the options'
                                                  places in the poll (0 first); ``voter_pn`` or
                                                  ``voter_lid`` where the page knows the other id
``{"event": "call", "call": {"id": I, "from": W, "is_video": B, "is_group": B, "ts": T}}``
                                                  someone calls the account (``ts``: when the
                                                  call was offered, ms since the epoch; ``from``
                                                  as the page gives it, ``from_pn`` or
                                                  ``from_lid`` beside it where the page knows
                                                  the other id); once per call
``{"event": "group_update", "group_id": G, "type": T, "participants": [...], "by": W}``
                                                  group ``G`` changed (``T``: join, leave, add,
                                                  remove, promote, demote, subject,
                                                  description, settings; ``participants`` whom
                                                  it concerns, ``by`` who did it, ``by_pn`` or
                                                  ``by_lid`` where the page knows the other id);
                                                  ``value``: the new subject or description, or
                                                  the settings ``{announce, restrict}``
``{"event": "pairing_code", "code": P, "attempt": N}``
                                                  with ``--pair-with-phone``: code ``N`` to
                                                  type on the phone (instead of QR codes)
``{"event": "disconnected", "reason": R}``        the session ended or broke (see reasons);
                                                  may carry a ``detail``
``{"event": "auth_failure", "reason": R}``        ``credentials_rejected``, ``qr_attempts_exhausted``
                                                  or ``pairing_refused`` (no pairing code given)
``{"event": "error", "reason": R, "detail": D}``  a command line could not be understood

Disconnection reasons: ``LOGOUT`` (the phone or a ``stop`` with logout
unlinked the device), the socket states ``CONFLICT``, ``UNPAIRED``,
``UNPAIRED_IDLE``, ``UNLAUNCHED``, ``PROXYBLOCK``, ``TOS_BLOCK``,
``SMB_TOS_BLOCK``, ``DEPRECATED_VERSION``, and ``page_crashed``,
``browser_closed``, ``navigated_away``, ``page_unreachable``,
``browser_failed``, ``cannot_start``, and:

- ``boot_timeout``: the page did not load (no ``window.Debug.VERSION``)
  within ``--boot-timeout`` seconds of the start, or of a navigation;
  exit ``EXIT_CRASHED``, worth a restart with backoff;
- ``proxy_error``: the session's proxy (its settings file) cannot be
  reached, or refuses the credentials, or will not connect to the page's
  host; ``detail`` says which, naming the proxy by host and port only; exit
  ``EXIT_CANNOT_START``, before any browser is started;
- ``incompatible_page``: the page loaded but lacks modules or members the
  session uses (``sessionproc/pageapi.py``); ``detail`` names them; exit
  ``EXIT_CANNOT_START``: the same page would fail the same way.

``disconnected`` may carry a ``detail`` (text for people, not for code).

Exit codes
==========
``EXIT_STOPPED`` (0)        stopped on request (``stop`` or end of input)
``EXIT_CRASHED`` (1)        broke; worth restarting (the profile is kept)
``EXIT_ENDED`` (3)          the session ended for a reason it reported
                            (``disconnected`` or ``auth_failure``); restarting
                            would not bring it back without a new QR scan
``EXIT_CANNOT_START`` (78)  bad arguments, no Chromium, unusable profile,
                            a page without what the session uses
                            (``incompatible_page``): restarting is pointless
Death by a signal counts as crashed.  Before ``EXIT_CANNOT_START`` the
process says why in a ``disconnected`` event when it can (``cannot_start``
or a more precise reason, with a ``detail``); the node passes that on.

The node checks every line against :data:`EVENTS` (:func:`decode_event`):
a line that is not one of them, or lacks a field, ends that session as a
crash.  A new event is one entry there, and its handler in the node
(``Node.handlers``, wired in ``wwnode/wiring.py``).

Command line
====="""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

# A session key, as the wire contract defines it; it becomes a folder name.
KEY_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")

# A user agent the browser is told to present (``USER_AGENT``,
# ``--user-agent``): printable ASCII on one line, as an HTTP header must be.
USER_AGENT_RE = re.compile(r"\A[\x20-\x7e]{1,512}\Z")

EXIT_STOPPED = 0
EXIT_CRASHED = 1
EXIT_ENDED = 3
EXIT_CANNOT_START = 78

# A chat: a person's chat, by phone number (``@c.us``) or by the hidden id
# WhatsApp gives people (LID, ``@lid``: groups show members so, and
# one-to-one chats with people whose number the account does not know),
# or a group.  \A and \Z, not ^ and $: a trailing newline must not pass.
CHAT_ID_RE = re.compile(r"\A[0-9]{5,20}@(c\.us|lid)\Z|\A[0-9]{5,20}(-[0-9]{5,20})?@g\.us\Z")
MAX_TEXT = 65536  # WhatsApp's limit for one text message

MAX_COMMAND_LINE = 1024 * 1024  # node -> session; a send is far smaller
MAX_EVENT_LINE = 4 * 1024 * 1024  # session -> node; an inbound message is far smaller

REASON_BOOT_TIMEOUT = "boot_timeout"
REASON_INCOMPATIBLE_PAGE = "incompatible_page"

# Seconds the page has to load (``BOOT_TIMEOUT``, ``--boot-timeout``).
DEFAULT_BOOT_TIMEOUT = 60.0

COMMANDS = ("send", "ping", "stop", "action", "check_number", "settings", "call", "chat", "presence", "query",
            "group")
# Commands the ``sender`` thread carries out, in order, one at a time.
PAGE_COMMANDS = frozenset({"send", "action", "check_number", "call", "chat", "presence", "query", "group"})
ACTIONS = ("react", "read", "edit", "revoke")
CALL_ACTIONS = ("reject",)
CHAT_STATES = ("typing", "recording", "paused")  # what the other side of a chat sees
CHAT_ACTIONS = CHAT_STATES + ("archive", "unarchive", "pin", "unpin", "mute", "unmute")
MAX_PINNED = 3  # chats WhatsApp lets an account pin (whatsapp-web.js's MAX_PIN_COUNT)
PRESENCES = ("available", "unavailable")  # what other phones see of the account

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
MEDIA_KINDS = ("image", "video", "audio", "voice", "document", "sticker")
SEND_CONTENTS = ("location", "contacts", "poll")  # instead of text (contents.py)
MEDIA_FOLDER = "media"  # beside the profile: <session folder>/media
# Kinds of chat whose messages a session may be set not to report
# (``ignore``): a group, status updates, a broadcast list, a channel.
IGNORABLE = ("groups", "status", "broadcast", "channels")
# In the profile: the session's settings as the node keeps them (JSON,
# ``wwnode/sessionsettings.py``), the proxy's credentials included; read
# by the session (``--settings-file``) and saved with the login's snapshot.
SETTINGS_FILE = "wwnode-settings.json"
MAX_TYPING_MS = 60_000


def chat_kind(message: dict) -> str | None:
    """Which ``IGNORABLE`` kind of chat a reported message belongs to
    (None: a person's chat).  Read from the chat's id as the page gives it
    (``id.remote``, else ``from``): ``...@g.us`` a group,
    ``status@broadcast`` status updates, another ``...@broadcast`` a
    broadcast list, ``...@newsletter`` a channel."""
    ident = message.get("id")
    chat = ident.get("remote") if isinstance(ident, dict) else None
    if not isinstance(chat, str) or not chat:
        sender = message.get("from")
        chat = sender if isinstance(sender, str) else ""
    if message.get("isStatus") is True or chat == "status@broadcast":
        return "status"
    if chat.endswith("@g.us"):
        return "groups"
    if chat.endswith("@broadcast") or message.get("broadcast") is True:
        return "broadcast"
    if chat.endswith("@newsletter"):
        return "channels"
    return None


def id_refusal(value: str, pattern: re.Pattern, refusal: str) -> str | None:
    """Why ``value`` is not an id ``pattern`` takes, as a ``command_failed``
    reason, or None when it is one.  An id that says it is a LID (it ends
    ``@lid``) but is not ``<digits>@lid`` is ``bad_lid``: its own reason,
    so a client that copied a LID wrongly is told so rather than that chats
    look like ``...@c.us``."""
    if pattern.match(value):
        return None
    return "bad_lid" if value.endswith("@lid") else refusal

# Reasons (``disconnected`` / ``auth_failure``) after which the profile no
# longer holds a working link: the phone forgot it, so the profile goes.
UNLINKED_REASONS = frozenset({"LOGOUT", "UNPAIRED", "UNPAIRED_IDLE", "credentials_rejected"})

# ``send_failed`` reasons after which the message may still have gone out:
# the page did not answer in time, or the browser broke mid-send.  The node
# keeps such a send's record, so a retry with the same id is refused
# (``outcome_unknown``) rather than sent a second time.
SEND_OUTCOME_UNKNOWN = frozenset({"timeout", "browser_error"})

# The ``send_failed`` reason of a send the session had queued but not begun
# when it was told to stop: it surely did not go out.
SEND_REFUSED_STOPPING = "stopping"

# A file the session writes in its profile once the device is linked, so a
# later start knows a QR code means the phone rejected the stored link.
LINKED_MARKER = "wwnode-linked"

# Socket states after which the session cannot go on by itself.
ENDING_STATES = frozenset(
    {"CONFLICT", "UNLAUNCHED", "PROXYBLOCK", "TOS_BLOCK", "SMB_TOS_BLOCK", "DEPRECATED_VERSION"}
)
UNPAIRED_STATES = frozenset({"UNPAIRED", "UNPAIRED_IDLE"})


_OPTIONAL = "?"  # a field name ending in it may be missing

# Every event a session may write: field -> accepted types.  Fields not
# listed are allowed (``t``, the time the process wrote the line, on all).
EVENTS: dict[str, dict[str, tuple[type, ...]]] = {
    "starting": {"pid": (int,)},
    "browser": {"pids": (list,)},
    "loaded": {"version": (str,), "user_agent": (str,), "webdriver": (bool, type(None))},
    "qr": {"qr": (str,), "attempt": (int,)},
    "authenticated": {},
    "ready": {"me": (str, type(None)), "me_lid?": (str,)},
    "state": {"state": (str,)},
    "message": {"message": (dict,)},
    "sent": {"id": (str,), "message_id": (str,)},
    "send_failed": {"id": (str,), "reason": (str,), "detail?": (str,)},
    "pong": {"id": (str,), "ok": (bool,), "state?": (str, type(None)), "detail?": (str,)},
    "action_done": {"id": (str,), "result": (dict,)},
    "action_failed": {"id": (str,), "reason": (str,), "detail?": (str,)},
    "ack": {"message_id": (str,), "chat_id": (str, type(None)), "ack": (int,)},
    "reaction": {"message_id": (str,), "reaction": (str,), "sender": (str, type(None)), "sender_pn?": (str,),
                 "sender_lid?": (str,)},
    "message_edit": {"message": (dict,), "previous_body": (str,)},
    "message_revoke": {"message_id": (str,), "chat_id": (str, type(None)), "from_me": (bool,)},
    "poll_vote": {"message_id": (str,), "voter": (str, type(None)), "selected": (list, type(None)),
                  "selected_ids": (list,)},
    "call": {"call": (dict,)},
    "group_update": {"group_id": (str,), "type": (str,), "participants": (list,), "by": (str, type(None))},
    "pairing_code": {"code": (str,), "attempt": (int,)},
    "disconnected": {"reason": (str,), "detail?": (str,)},
    "auth_failure": {"reason": (str,)},
    "error": {"reason": (str,), "detail?": (str,)},
}


class BadEvent(ValueError):
    """A line from a session process is not an event of this protocol."""


def _json_object(line: bytes | bytearray, error: type[ValueError], what: str) -> dict:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise error(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise error(f"{what} must be a JSON object")
    return obj


def decode_event(line: bytes | bytearray) -> dict:
    """Parse and check one event line; raise BadEvent with the reason."""
    event = _json_object(line, BadEvent, "an event")
    name = event.get("event")
    fields = EVENTS.get(name) if isinstance(name, str) else None
    if fields is None:
        raise BadEvent(f"unknown event {name!r}")
    for field, types in fields.items():
        optional = field.endswith(_OPTIONAL)
        field = field.rstrip(_OPTIONAL)
        if field not in event:
            if optional:
                continue
            raise BadEvent(f"{name} needs {field}")
        if not isinstance(event[field], types):
            raise BadEvent(f"{name}: {field} has the wrong type")
    return event


class BadCommand(ValueError):
    """A line from the parent is not a command this process understands."""


def encode(obj: dict) -> bytes:
    return orjson.dumps(obj) + b"\n"


def decode_command(line: bytes) -> dict:
    """Parse and check one command line; raise BadCommand with the reason."""
    cmd = _json_object(line, BadCommand, "a command")
    name = cmd.get("cmd")
    if name not in COMMANDS:
        raise BadCommand(f"unknown command {name!r}; expected one of {', '.join(COMMANDS)}")
    if name not in ("stop", "settings") and not isinstance(cmd.get("id"), str):
        raise BadCommand(f"{name} needs a string id")
    if name == "send":
        if not isinstance(cmd.get("chat_id"), str) or not cmd["chat_id"]:
            raise BadCommand("send needs a string chat_id")
        if not isinstance(cmd.get("text"), str):
            raise BadCommand("send needs a string text")
        if not isinstance(cmd.get("quoted_message_id", ""), str):
            raise BadCommand("send's quoted_message_id must be a string")
        mentions = cmd.get("mentions", [])
        if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
            raise BadCommand("send's mentions must be a list of strings")
        contents = [kind for kind in SEND_CONTENTS if kind in cmd]
        if len(contents) > 1 or (contents and ("media" in cmd or cmd["text"])):
            raise BadCommand("send carries one of text, media, " + ", ".join(SEND_CONTENTS))
        if contents and not isinstance(cmd[contents[0]], dict if contents[0] != "contacts" else (list, dict)):
            raise BadCommand(f"send's {contents[0]} has the wrong type")
        if not isinstance(cmd.get("seen", False), bool):
            raise BadCommand("send's seen must be true or false")
        typing_ms = cmd.get("typing_ms", 0)
        if isinstance(typing_ms, bool) or not isinstance(typing_ms, int) or not 0 <= typing_ms <= MAX_TYPING_MS:
            raise BadCommand(f"send's typing_ms must be a whole number from 0 to {MAX_TYPING_MS}")
        media = cmd.get("media")
        if media is not None and not (isinstance(media, dict) and isinstance(media.get("path"), str)
                                      and isinstance(media.get("mimetype"), str)
                                      and isinstance(media.get("filename"), (str, type(None)))
                                      and media.get("as") in MEDIA_KINDS):
            raise BadCommand("send's media needs a path, a mimetype, a filename (or null) and as")
    if name == "action":
        if cmd.get("action") not in ACTIONS:
            raise BadCommand(f"action must be one of {', '.join(ACTIONS)}")
        if not isinstance(cmd.get("message_id"), str):
            raise BadCommand("action needs a string message_id")
        if cmd["action"] == "react" and not isinstance(cmd.get("emoji"), str):
            raise BadCommand("react needs a string emoji")
        if cmd["action"] == "edit" and not isinstance(cmd.get("text"), str):
            raise BadCommand("edit needs a string text")
        if cmd["action"] == "revoke" and not isinstance(cmd.get("for_me", False), bool):
            raise BadCommand("revoke's for_me must be true or false")
    if name == "settings":
        ignore = cmd.get("ignore")
        if not isinstance(ignore, list) or not all(kind in IGNORABLE for kind in ignore):
            raise BadCommand(f"settings' ignore must be a list of {', '.join(IGNORABLE)}")
    if name == "call":
        if cmd.get("action") not in CALL_ACTIONS:
            raise BadCommand(f"call's action must be one of {', '.join(CALL_ACTIONS)}")
        if not isinstance(cmd.get("call_id"), str):
            raise BadCommand("call needs a string call_id")
    if name == "chat":
        if cmd.get("action") not in CHAT_ACTIONS:
            raise BadCommand(f"chat's action must be one of {', '.join(CHAT_ACTIONS)}")
        if not isinstance(cmd.get("chat_id"), str):
            raise BadCommand("chat needs a string chat_id")
        until = cmd.get("until")
        if until is not None and (isinstance(until, bool) or not isinstance(until, int)):
            raise BadCommand("chat's until must be a whole number of ms, or null")
    if name == "presence" and cmd.get("state") not in PRESENCES:
        raise BadCommand(f"presence's state must be one of {', '.join(PRESENCES)}")
    if name == "query" and not isinstance(cmd.get("what"), str):
        raise BadCommand("query needs a string what")
    if name == "group" and not isinstance(cmd.get("action"), str):
        raise BadCommand("group needs a string action")
    if name == "check_number" and not isinstance(cmd.get("phone"), str):
        raise BadCommand("check_number needs a string phone")
    if name == "stop" and not isinstance(cmd.get("logout", False), bool):
        raise BadCommand("stop's logout must be true or false")
    return cmd


# ------------------------------------------------------------ command line
class BadArguments(ValueError):
    """The command line is not one this process can start with."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # the caller exits EXIT_CANNOT_START, not 2
        raise BadArguments(message)


@dataclass(frozen=True)
class SessionArgs:
    """What a session process is started with.  ``chrome`` and
    ``chromedriver`` None: the process's own defaults."""

    key: str
    profile: Path
    url: str
    log_file: Path | None = None
    chrome: str | None = None
    chromedriver: str | None = None
    qr_max: int = 5
    send_timeout: float = 60.0
    ping_timeout: float = 5.0
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    user_agent: str = ""  # empty: desktop Chromium of the installed version
    send_seen: bool = True
    log_bodies: bool = False
    pair_with_phone: str = ""  # link by a pairing code for this phone instead of QR codes
    pair_interval: float = 180.0  # seconds between pairing codes, as whatsapp-web.js asks for them
    stop_timeout: float = 20.0  # seconds a stop may take before the process leaves (sessionproc/stopping.py)
    # The session's settings (SETTINGS_FILE, written by the node): its
    # proxy and what it ignores.  A file, not arguments: the proxy's
    # password would show in every process list.  None: none.
    settings_file: Path | None = None

    def argv(self, module: str = "sessionproc") -> list[str]:
        """The command that runs it.  ``module`` is the program: the real
        session, or a stand-in in tests (the node's ``SESSION_MODULE``)."""
        args = [sys.executable, "-m", module, "--key", self.key, "--profile", str(self.profile), "--url", self.url]
        for flag, value in (("--log-file", self.log_file), ("--chrome", self.chrome),
                            ("--chromedriver", self.chromedriver)):
            if value is not None:
                args += [flag, str(value)]
        args += ["--qr-max", str(self.qr_max), "--send-timeout", str(self.send_timeout),
                 "--ping-timeout", str(self.ping_timeout), "--boot-timeout", str(self.boot_timeout),
                 "--stop-timeout", str(self.stop_timeout)]
        if self.user_agent:
            args += ["--user-agent", self.user_agent]
        if not self.send_seen:
            args.append("--no-send-seen")
        if self.log_bodies:
            args.append("--log-bodies")
        if self.pair_with_phone:
            args += ["--pair-with-phone", self.pair_with_phone, "--pair-interval", str(self.pair_interval)]
        if self.settings_file is not None:
            args += ["--settings-file", str(self.settings_file)]
        return args

    @classmethod
    def parse(cls, argv: list[str] | None) -> "SessionArgs":
        """The process's side of :meth:`argv`; BadArguments on a bad one."""
        p = _Parser(prog="python -m sessionproc",
                    description="Run one WhatsApp Web session, spoken to over stdin/stdout.")
        p.add_argument("--key", required=True, help="the session's key (1-64 of A-Z a-z 0-9 _ -)")
        p.add_argument("--profile", required=True, type=Path, help="Chromium profile folder of this session")
        p.add_argument("--url", required=True, help="page to open (WhatsApp Web or the stand-in)")
        p.add_argument("--chrome", help="Chromium binary (default: the system's)")
        p.add_argument("--chromedriver", help="chromedriver binary (default: the system's)")
        p.add_argument("--user-agent", default="",
                       help="user agent the browser presents (default: desktop Chromium of the installed version)")
        p.add_argument("--log-file", type=Path, help="this session's log file (default: stderr)")
        p.add_argument("--qr-max", type=int, default=5, help="QR codes shown before auth_failure (default %(default)s)")
        p.add_argument("--send-timeout", type=float, default=60.0, help="seconds a send may take (default %(default)s)")
        p.add_argument("--ping-timeout", type=float, default=5.0,
                       help="seconds the page has to answer a ping (default %(default)s)")
        p.add_argument("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT,
                       help="seconds the page has to load, from the start or a navigation (default %(default)s)")
        p.add_argument("--stop-timeout", type=float, default=20.0,
                       help="seconds a stop may take; then the process leaves and its browser is killed "
                            "(default %(default)s; shorter when the node that started it is gone)")
        p.add_argument("--no-send-seen", dest="send_seen", action="store_false",
                       help="do not mark a chat seen before sending to it (default: mark it, as whatsapp-web.js does)")
        p.add_argument("--log-bodies", action="store_true", help="write message texts to the log")
        p.add_argument("--pair-with-phone", default="",
                       help="link with a pairing code for this phone number (digits) instead of QR codes")
        p.add_argument("--pair-interval", type=float, default=180.0,
                       help="seconds between new pairing codes while none was typed (default %(default)s)")
        p.add_argument("--settings-file", type=Path,
                       help="the session's settings, JSON (its proxy, what it ignores); default: none")
        a = p.parse_args(argv)
        if not KEY_RE.match(a.key):
            p.error("--key must be 1 to 64 characters of A-Z a-z 0-9 _ -")
        if not a.url.startswith(("http://", "https://")):
            p.error("--url must be an http(s) URL")
        if a.user_agent and not USER_AGENT_RE.match(a.user_agent):
            p.error("--user-agent must be 1 to 512 printable ASCII characters")
        if a.pair_with_phone and not PHONE_RE.match(a.pair_with_phone):
            p.error("--pair-with-phone must be 5 to 20 digits")
        if a.qr_max < 1 or a.pair_interval <= 0 or min(a.send_timeout, a.ping_timeout, a.boot_timeout,
                                                        a.stop_timeout) <= 0:
            p.error("--qr-max, --pair-interval, --send-timeout, --ping-timeout, --boot-timeout and --stop-timeout "
                    "must be positive")
        return cls(key=a.key, profile=a.profile, url=a.url, log_file=a.log_file, chrome=a.chrome,
                   chromedriver=a.chromedriver, qr_max=a.qr_max, send_timeout=a.send_timeout,
                   ping_timeout=a.ping_timeout, boot_timeout=a.boot_timeout, user_agent=a.user_agent,
                   send_seen=a.send_seen, log_bodies=a.log_bodies, pair_with_phone=a.pair_with_phone,
                   pair_interval=a.pair_interval, stop_timeout=a.stop_timeout, settings_file=a.settings_file)

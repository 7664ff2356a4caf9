"""Commands as clients publish them: the one table of what exists, and the
checks each passes before anything happens.

:data:`COMMANDS` holds, per command queue: how its body is parsed, and
whether the router routes it to the key's owner (or any node with room
takes it, for a create).  The node's handler for each queue is wired by the
node (``Dispatch`` refuses to start without one for every entry).  A new
command: one entry here, its handler in the node, and, if the session must
act, the line its handler writes in ``sessionproc.protocol`` (checked by
``tests/test_protocol.py`` against what the handlers really write).

A command that fails these checks is rejected once: dead-lettered with its
reason and answered with ``command_failed``; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NoReturn

import orjson

from sessionproc import contents
from sessionproc.protocol import (ACTIONS, CHAT_ID_RE, KEY_RE, MAX_EMOJI, MAX_MENTIONS, MAX_TEXT, MESSAGE_ID_RE,
                                  PHONE_RE, USER_ID_RE, id_refusal)

from . import chatcommands, groupdesk, queries, sessionsettings
from .emoji import is_one_emoji
from .media.request import MediaRequest, parse_media
from .sessionsettings import SessionSettings

MAX_COMMAND_ID = 200


class Rejected(Exception):
    """The command cannot be carried out; ``reason`` is a stable word."""

    def __init__(self, reason: str, detail: str, key: str | None = None, command_id: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.key = key
        self.command_id = command_id


@dataclass(frozen=True)
class Command:
    name: str  # the command queue the client published it to
    key: str
    command_id: str | None = None
    logout: bool = False  # destroy_instance
    chat_id: str = ""  # send_message, chat_action
    text: str = ""  # send_message
    quoted_message_id: str = ""  # send_message: a reply to that message
    mentions: tuple[str, ...] = ()  # send_message: the ids the text mentions
    action: str = ""  # message_action: react, read, edit or revoke; call_action, chat_action
    message_id: str = ""  # message_action
    emoji: str = ""  # message_action react; "" takes a reaction back
    for_me: bool = False  # message_action revoke: delete for this device only
    phone: str = ""  # check_number
    pair_with_phone: str = ""  # create_instance: link by pairing code instead of QR
    media: MediaRequest | None = None  # send_message's ``media`` (media/request.py); ``text`` is then the caption
    media_file: dict | None = None  # that media fetched and checked, as the session is told of it
    # send_message's location, contacts or poll instead of text or media
    # (sessionproc/contents.py): {kind: the content checked}, as the session is told of it.
    content: dict | None = None
    settings: SessionSettings | None = None  # create_instance: the session's settings, whole
    settings_change: dict | None = None  # update_settings: the fields given, checked (None: back to the default)
    call_id: str = ""  # call_action: the call, as call_instance named it
    until: int | None = None  # chat_action mute: until when (ms since the epoch); None: for ever
    presence: str = ""  # set_presence: available or unavailable
    # query (queries.py): {"what", "chat_id"?, "ids"?, "limit"?, "before"?}, checked.
    query: dict | None = None
    # group_action (groupdesk.py): {"action", "group_id"?, "participants"?, "value"?}, checked.
    group: dict | None = None


Reject = Callable[[str, str], NoReturn]


@dataclass(frozen=True)
class Spec:
    queue: str
    # The command's own fields, checked: (body, reject) -> Command keywords.
    fields: Callable[[dict, Reject], dict]
    # True: the router sends it to the node that owns the key.  False: a
    # node with room claims the key and carries it out (a create).
    routed: bool


def _create_fields(data: dict, reject: Reject) -> dict:
    fields = {}
    if "settings" in data and data["settings"] is not None:
        fields["settings"] = sessionsettings.parse(data["settings"], reject)
    if "pair_with_phone" not in data:
        return fields
    phone = data["pair_with_phone"]
    if not isinstance(phone, str):
        reject("wrong_type", "pair_with_phone must be a string of digits")
    if not PHONE_RE.match(phone):
        reject("bad_phone", "pair_with_phone must be 5 to 20 digits, country code first, nothing else")
    return {**fields, "pair_with_phone": phone}


def _update_settings_fields(data: dict, reject: Reject) -> dict:
    if "settings" not in data:
        reject("missing_field", "settings is required")
    return {"settings_change": sessionsettings.check(data["settings"], reject, nulls=True)}


def _destroy_fields(data: dict, reject: Reject) -> dict:
    logout = data.get("logout", False)
    if not isinstance(logout, bool):
        reject("wrong_type", "logout must be true or false")
    return {"logout": logout}


def _send_fields(data: dict, reject: Reject) -> dict:
    if contents.kinds_in(data):
        return _content_send_fields(data, reject)
    media = parse_media(data["media"], reject) if "media" in data else None
    if media is not None and "message" not in data:
        data = {**data, "message": ""}  # no caption
    for name in ("chat_id", "message"):
        if name not in data:
            reject("missing_field", f"{name} is required")
        if not isinstance(data[name], str):
            reject("wrong_type", f"{name} must be a string")
    _check_chat_id(data["chat_id"], reject)
    if not data["message"] and media is None:
        reject("empty_message", "message must not be empty")
    if len(data["message"]) > MAX_TEXT:
        reject("too_long", f"message is longer than WhatsApp's {MAX_TEXT} characters")
    return {"chat_id": data["chat_id"], "text": data["message"], "media": media, **_reply_fields(data, reject)}


def _check_chat_id(chat_id: str, reject: Reject) -> None:
    refusal = id_refusal(chat_id, CHAT_ID_RE, "bad_chat_id")
    if refusal is not None:
        reject(refusal, "chat_id must look like 5511999999999@c.us, a LID 123456789012345@lid, "
                        "or a group's 120363000000000000@g.us")


def _content_send_fields(data: dict, reject: Reject) -> dict:
    """A send of a location, contact cards or a poll: exactly one of them,
    and no text or media beside it (an empty ``message`` counts as none)."""
    kinds = contents.kinds_in(data)
    for name in ("chat_id", "message"):
        if name in data and not isinstance(data[name], str):
            reject("wrong_type", f"{name} must be a string")
    beside = kinds[1:] + [name for name in ("media",) if name in data]
    if data.get("message"):
        beside.append("message")
    if beside:
        reject("conflicting_content", f"send_message carries exactly one of message, media, "
                                      f"{', '.join(contents.KINDS)}; this one has {kinds[0]} and {beside[0]}")
    if "mentions" in data:
        reject("conflicting_content", f"mentions go with a text or a caption, not with a {kinds[0]}")
    if "chat_id" not in data:
        reject("missing_field", "chat_id is required")
    _check_chat_id(data["chat_id"], reject)
    try:
        content = contents.check(kinds[0], data[kinds[0]])
    except contents.ContentError as e:
        reject(e.reason, e.detail)
    return {"chat_id": data["chat_id"], "content": {kinds[0]: content}, **_reply_fields(data, reject)}


def _message_id(data: dict, name: str, reject: Reject) -> str:
    value = data[name]
    if not isinstance(value, str):
        reject("wrong_type", f"{name} must be a string")
    if not MESSAGE_ID_RE.match(value):
        reject("bad_message_id", f"{name} must be a message's _serialized id, like true_5511999999999@c.us_3EB0...")
    return value


def _reply_fields(data: dict, reject: Reject) -> dict:
    """send_message's optional ``quoted_message_id`` and ``mentions``."""
    fields: dict = {}
    if "quoted_message_id" in data:
        fields["quoted_message_id"] = _message_id(data, "quoted_message_id", reject)
    if "mentions" in data:
        mentions = data["mentions"]
        if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
            reject("wrong_type", "mentions must be a list of strings")
        if len(mentions) > MAX_MENTIONS:
            reject("bad_mentions", f"mentions must be at most {MAX_MENTIONS} ids")
        for m in mentions:
            refusal = id_refusal(m, USER_ID_RE, "bad_mentions")
            if refusal is not None:
                reject(refusal, "mentions must be ids like 5511999999999@c.us or a LID 123456789012345@lid")
        fields["mentions"] = tuple(mentions)
    return fields


def _action_fields(data: dict, reject: Reject) -> dict:
    for name in ("action", "message_id"):
        if name not in data:
            reject("missing_field", f"{name} is required")
    if not isinstance(data["action"], str):
        reject("wrong_type", "action must be a string")
    if data["action"] not in ACTIONS:
        reject("bad_action", f"action must be one of {', '.join(ACTIONS)}")
    fields = {"action": data["action"], "message_id": _message_id(data, "message_id", reject)}
    if data["action"] == "react":
        if "emoji" not in data:
            reject("missing_field", "emoji is required to react (\"\" takes a reaction back)")
        emoji = data["emoji"]
        if not isinstance(emoji, str):
            reject("wrong_type", "emoji must be a string")
        if emoji and (len(emoji) > MAX_EMOJI or not is_one_emoji(emoji)):
            reject("bad_emoji", f"emoji must be one emoji (at most {MAX_EMOJI} characters, nothing invisible or "
                                f"right-to-left beside it), or \"\"")
        fields["emoji"] = emoji
    if data["action"] == "edit":
        # The new text, checked as a send's text is (``text``, as a send's).
        if "text" not in data:
            reject("missing_field", "text is required to edit")
        if not isinstance(data["text"], str):
            reject("wrong_type", "text must be a string")
        if not data["text"]:
            reject("empty_message", "text must not be empty")
        if len(data["text"]) > MAX_TEXT:
            reject("too_long", f"text is longer than WhatsApp's {MAX_TEXT} characters")
        fields["text"] = data["text"]
    if data["action"] == "revoke":
        if not isinstance(data.get("for_me", False), bool):
            reject("wrong_type", "for_me must be true or false")
        fields["for_me"] = data.get("for_me", False)
    return fields


def _check_number_fields(data: dict, reject: Reject) -> dict:
    if "phone" not in data:
        reject("missing_field", "phone is required")
    if not isinstance(data["phone"], str):
        reject("wrong_type", "phone must be a string of digits")
    if not PHONE_RE.match(data["phone"]):
        reject("bad_phone", "phone must be 5 to 20 digits, country code first, nothing else")
    return {"phone": data["phone"]}


COMMANDS: dict[str, Spec] = {spec.queue: spec for spec in (
    Spec("create_instance", _create_fields, routed=False),
    Spec("destroy_instance", _destroy_fields, routed=True),
    Spec("send_message", _send_fields, routed=True),
    Spec("message_action", _action_fields, routed=True),
    Spec("check_number", _check_number_fields, routed=True),
    Spec("update_settings", _update_settings_fields, routed=True),
    Spec("call_action", chatcommands.call_action_fields, routed=True),
    Spec("chat_action", chatcommands.chat_action_fields, routed=True),
    Spec("set_presence", chatcommands.presence_fields, routed=True),
    Spec("query", lambda data, reject: queries.fields(data, reject), routed=True),
    Spec("group_action", lambda data, reject: groupdesk.fields(data, reject), routed=True),
)}


def parse(queue: str, body: bytes) -> Command:
    spec = COMMANDS.get(queue)
    if spec is None:
        raise ValueError(f"not a command queue: {queue}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise Rejected("not_json", f"body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise Rejected("not_object", "body must be a JSON object")
    # Salvage what identifies the command first, so a rejection can name it.
    command_id = data.get("id") if isinstance(data.get("id"), str) else None
    raw_key = data.get("key") if isinstance(data.get("key"), str) else None
    key = raw_key if raw_key is not None and KEY_RE.match(raw_key) else None

    def reject(reason: str, detail: str) -> NoReturn:
        raise Rejected(reason, detail, key, command_id)

    if "id" in data and (command_id is None or not 0 < len(command_id) <= MAX_COMMAND_ID):
        reject("wrong_type", f"id must be a string of 1 to {MAX_COMMAND_ID} characters")
    if "key" not in data:
        reject("missing_field", "key is required")
    if raw_key is None:
        reject("wrong_type", "key must be a string")
    if key is None:
        reject("bad_key", "key must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    return Command(queue, key, command_id, **spec.fields(data, reject))

"""The commands' shapes: their names, what their fields hold, the check of a command line."""

from __future__ import annotations

from .framing import json_object

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


class BadCommand(ValueError):
    """A line from the parent is not a command this process understands."""


def decode_command(line: bytes) -> dict:
    """Parse and check one command line; raise BadCommand with the reason."""
    cmd = json_object(line, BadCommand, "a command")
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

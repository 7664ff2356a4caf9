"""Commands as clients publish them, checked before anything happens.

A command that fails these checks is rejected once: dead-lettered with its
reason and answered with ``command_failed``; nothing else changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from sessionproc.protocol import KEY_RE

CHAT_ID_RE = re.compile(r"\A[0-9]{5,20}@c\.us\Z|\A[0-9]{5,20}(-[0-9]{5,20})?@g\.us\Z")
MAX_TEXT = 65536  # WhatsApp's limit for one text message
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
    name: str  # the queue it came from
    key: str
    command_id: str | None = None
    logout: bool = False  # destroy_instance
    chat_id: str = ""  # send_message
    text: str = ""  # send_message


def parse(queue: str, body: bytes) -> Command:
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

    def reject(reason: str, detail: str):
        raise Rejected(reason, detail, key, command_id)

    if "id" in data and (command_id is None or not 0 < len(command_id) <= MAX_COMMAND_ID):
        reject("wrong_type", f"id must be a string of 1 to {MAX_COMMAND_ID} characters")
    if "key" not in data:
        reject("missing_field", "key is required")
    if raw_key is None:
        reject("wrong_type", "key must be a string")
    if key is None:
        reject("bad_key", "key must be 1 to 64 characters of A-Z a-z 0-9 _ -")

    if queue == "create_instance":
        return Command(queue, key, command_id)
    if queue == "destroy_instance":
        logout = data.get("logout", False)
        if not isinstance(logout, bool):
            reject("wrong_type", "logout must be true or false")
        return Command(queue, key, command_id, logout=logout)
    if queue == "send_message":
        for name in ("chat_id", "message"):
            if name not in data:
                reject("missing_field", f"{name} is required")
            if not isinstance(data[name], str):
                reject("wrong_type", f"{name} must be a string")
        if not CHAT_ID_RE.match(data["chat_id"]):
            reject("bad_chat_id", "chat_id must look like 5511999999999@c.us")
        if not data["message"]:
            reject("empty_message", "message must not be empty")
        if len(data["message"]) > MAX_TEXT:
            reject("too_long", f"message is longer than WhatsApp's {MAX_TEXT} characters")
        return Command(queue, key, command_id, chat_id=data["chat_id"], text=data["message"])
    raise ValueError(f"not a command queue: {queue}")

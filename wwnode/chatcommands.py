"""The commands of what the account does live, beside its messages:
``call_action`` (reject a call), ``chat_action`` (typing, recording,
paused; archive, pin, mute and their opposites) and ``set_presence``
(online or not).  For each: its own fields, checked
(``commands.Spec.fields``; a failure rejects the command once, nothing
else changes), what the session process is told, and the event that
answers it once done.  The action desk (``actions.py``) carries them out
like ``message_action``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NoReturn

from sessionproc.protocol import CALL_ACTIONS, CALL_ID_RE, CHAT_ACTIONS, CHAT_ID_RE, PRESENCES, id_refusal

if TYPE_CHECKING:  # commands.py imports this module's checks
    from .commands import Command

Reject = Callable[[str, str], NoReturn]

MAX_UNTIL = 8_640_000_000_000_000  # ms: the last time JavaScript's Date (the page's clock) holds


def _strings(data: dict, names: tuple[str, ...], reject: Reject) -> None:
    for name in names:
        if name not in data:
            reject("missing_field", f"{name} is required")
        if not isinstance(data[name], str):
            reject("wrong_type", f"{name} must be a string")


def call_action_fields(data: dict, reject: Reject) -> dict:
    _strings(data, ("action", "call_id"), reject)
    if data["action"] not in CALL_ACTIONS:
        reject("bad_action", f"action must be one of {', '.join(CALL_ACTIONS)}")
    if not CALL_ID_RE.match(data["call_id"]):
        reject("bad_call_id", "call_id must be the id of a call_instance's call, 1 to 64 letters and digits")
    return {"action": data["action"], "call_id": data["call_id"]}


def chat_action_fields(data: dict, reject: Reject) -> dict:
    _strings(data, ("action", "chat_id"), reject)
    if data["action"] not in CHAT_ACTIONS:
        reject("bad_action", f"action must be one of {', '.join(CHAT_ACTIONS)}")
    refusal = id_refusal(data["chat_id"], CHAT_ID_RE, "bad_chat_id")
    if refusal is not None:
        reject(refusal, "chat_id must look like 5511999999999@c.us, a LID 123456789012345@lid, "
                        "or a group's 120363000000000000@g.us")
    fields = {"action": data["action"], "chat_id": data["chat_id"]}
    until = data.get("until")
    if until is not None:
        if data["action"] != "mute":
            reject("bad_until", "until goes with mute only")
        if isinstance(until, bool) or not isinstance(until, int):
            reject("wrong_type", "until must be a whole number of ms since the epoch")
        if not 0 < until < MAX_UNTIL:
            reject("bad_until", "until must be a time in ms since the epoch")
        fields["until"] = until
    return fields


def presence_fields(data: dict, reject: Reject) -> dict:
    _strings(data, ("state",), reject)
    if data["state"] not in PRESENCES:
        reject("bad_state", f"state must be one of {', '.join(PRESENCES)}")
    return {"presence": data["state"]}


def pipe_command(cmd: Command, child_id: str) -> dict:
    """What the session process is told (``sessionproc.protocol``)."""
    if cmd.name == "set_presence":
        return {"cmd": "presence", "id": child_id, "state": cmd.presence}
    if cmd.name == "chat_action":
        line: dict[str, object] = {"cmd": "chat", "id": child_id, "action": cmd.action, "chat_id": cmd.chat_id}
        if cmd.until is not None:
            line["until"] = cmd.until
        return line
    return {"cmd": "call", "id": child_id, "action": cmd.action, "call_id": cmd.call_id}


def answer(key: str, cmd: Command, result: dict) -> tuple[str, dict]:
    """The event that answers a command done, and its body."""
    if cmd.name == "set_presence":
        return "presence_set_instance", {"key": key, "state": cmd.presence, "command_id": cmd.command_id}
    if cmd.name == "chat_action":
        body: dict[str, object] = {"key": key, "chat_id": cmd.chat_id, "action": cmd.action,
                                   "command_id": cmd.command_id}
        if cmd.action == "mute":
            # As the page has it now: seconds, -1 for ever.
            expiration = result.get("mute_expiration")
            body["until"] = expiration * 1000 if isinstance(expiration, int) and expiration > 0 else None
        return "chat_action_done_instance", body
    return "call_action_done_instance", {"key": key, "action": cmd.action, "call_id": cmd.call_id,
                                         "from": result.get("from"), "command_id": cmd.command_id}


COMMANDS = ("call_action", "chat_action", "set_presence")  # the queues whose commands this module tells and answers

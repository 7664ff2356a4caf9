"""The commands of what the account does live, beside its messages:
``call_action`` (reject a call).  For each: its own fields, checked
(``commands.Spec.fields``; a failure rejects the command once, nothing
else changes), what the session process is told, and the event that
answers it once done.  The action desk (``actions.py``) carries them out
like ``message_action``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NoReturn

from sessionproc.protocol import CALL_ACTIONS, CALL_ID_RE

if TYPE_CHECKING:  # commands.py imports this module's checks
    from .commands import Command

Reject = Callable[[str, str], NoReturn]


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


def pipe_command(cmd: Command, child_id: str) -> dict:
    """What the session process is told (``sessionproc.protocol``)."""
    return {"cmd": "call", "id": child_id, "action": cmd.action, "call_id": cmd.call_id}


def answer(key: str, cmd: Command, result: dict) -> tuple[str, dict]:
    """The event that answers a command done, and its body."""
    return "call_action_done_instance", {"key": key, "action": cmd.action, "call_id": cmd.call_id,
                                         "from": result.get("from"), "command_id": cmd.command_id}


COMMANDS = ("call_action",)  # the queues whose commands this module tells and answers

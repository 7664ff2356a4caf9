"""Groups on the wire: the ``group_action`` command from the moment it
reaches this node to its ``group_action_done_instance``, and what sessions
tell of groups' changes, passed on as ``group_update_instance``.

The rules of an action are ``sessionproc.grouprules``' (checked when the
command is parsed, and again by the session process).  Past the check an
action is one of the action desk's commands (``actions.py``): sent to a
ready session, held while it comes back, answered by the session's
``action_done`` as ``group_action_done_instance`` ``{action, group_id,
result}`` (``group_id``: the new group of a ``create``, the group joined),
or failed with the page's reason (``not_admin``, ``unknown_group``, ...).
An action done twice (a command redelivered after a restart) is carried
out twice: adding someone already in is answered ``already_member``, a
second ``create`` makes a second group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sessionproc import grouprules

if TYPE_CHECKING:  # commands.py imports this module for its table
    from .commands import Command, Reject


def fields(data: dict, reject: Reject) -> dict:
    """``group_action``'s own fields (the command table's parser)."""
    try:
        return {"group": grouprules.check(data)}
    except grouprules.GroupError as e:
        reject(e.reason, e.detail)


def pipe_command(cmd: Command, child_id: str) -> dict:
    """What the session process is told (``sessionproc.protocol``)."""
    return {"cmd": "group", "id": child_id, **_group(cmd)}


def answer(key: str, cmd: Command, result: dict) -> tuple[str, dict]:
    """The event that answers a group action done, and its body."""
    result = dict(result)
    group_id = result.pop("group_id", None) or _group(cmd).get("group_id")
    return "group_action_done_instance", {"key": key, "action": _group(cmd)["action"], "group_id": group_id,
                                          "result": result, "command_id": cmd.command_id}


def _group(cmd: Command) -> dict:
    """A group action's fields: set, checked, by ``fields``."""
    return cast(dict, cmd.group)


class GroupUpdates:
    """Passes on what sessions tell of groups' changes."""

    def __init__(self, bus):
        self.bus = bus

    def handlers(self) -> dict:
        """The session events this part acts on (``protocol.EVENTS``)."""
        return {"group_update": self._on_update}

    def _on_update(self, rec, event: dict, now: float) -> None:
        body = {"key": rec.key, "group_id": event["group_id"], "type": event["type"],
                "participants": event["participants"], "by": event["by"]}
        body.update({k: event[k] for k in ("value", "by_pn", "by_lid") if k in event})
        self.bus.emit("group_update_instance", body)

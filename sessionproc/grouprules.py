"""Groups: what a ``group_action`` may ask and the rules it must keep, and
what a group's change the page reports (``groupevents.js``) is called on
the wire (``groups.py`` carries actions out on the page).

The rules are used twice, as ``contents.py``'s: the node refuses a
command that breaks them (``command_failed`` with the reason, nothing
done), and the session process checks the pipe command again before it
touches the page.  :func:`check` answers the action in the one form both
sides pass on.

Bounds that are ours, not WhatsApp's (nothing read for this project tells
the page's own): a subject of at most 100 characters on one line, a
description of at most 2,048, at most 1,024 people in one action (a
group's size).
"""

from __future__ import annotations

import re

from .protocol import CHAT_ID_RE, USER_ID_RE, id_refusal

ACTIONS = ("create", "add", "remove", "promote", "demote", "subject", "description", "invite_link",
           "revoke_invite", "join", "leave", "settings")
WITHOUT_GROUP = frozenset({"create", "join"})  # the group comes from the answer
WITH_PARTICIPANTS = frozenset({"create", "add", "remove", "promote", "demote"})
WITH_VALUE = frozenset({"create", "subject", "description", "join", "settings"})
MAX_SUBJECT = 100
MAX_DESCRIPTION = 2048
MAX_PARTICIPANTS = 1024
SETTINGS = ("announce", "restrict")
INVITE_LINK = "https://chat.whatsapp.com/"
INVITE_CODE_RE = re.compile(r"\A[A-Za-z0-9]{8,64}\Z")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a subject is one line
_TEXT_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# What the page's notifications of a group's changes (their subtype) are
# on the wire (group_update_instance's ``type``); others are not reported.
# ``create``: the account was put in a new group, so it was added.
UPDATE_TYPES = {"add": "add", "create": "add", "invite": "join", "linked_group_join": "join", "remove": "remove",
                "leave": "leave", "promote": "promote", "demote": "demote", "subject": "subject",
                "description": "description", "announce": "settings", "restrict": "settings"}


class GroupError(ValueError):
    """The action breaks a rule; ``reason`` is a stable word."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check(data: dict) -> dict:
    """The group action in ``data`` (a command's body, or a pipe command)
    checked and in its one form; GroupError with the reason otherwise."""
    if "action" not in data:
        raise GroupError("missing_field", "action is required")
    action = data["action"]
    if not isinstance(action, str):
        raise GroupError("wrong_type", "action must be a string")
    if action not in ACTIONS:
        raise GroupError("bad_action", f"action must be one of {', '.join(ACTIONS)}")
    out: dict = {"action": action}
    if action in WITHOUT_GROUP:
        if data.get("group_id") is not None:
            raise GroupError("bad_group_action", f"{action} takes no group_id: the answer names the group")
    else:
        out["group_id"] = _group_id(data)
    if action in WITH_PARTICIPANTS:
        out["participants"] = _participants(data, required=action != "create")
    elif data.get("participants") is not None:
        raise GroupError("bad_group_action", f"{action} takes no participants")
    if action in WITH_VALUE:
        if "value" not in data:
            raise GroupError("missing_field", f"value is required for {action}")
        out["value"] = _value(action, data["value"])
    elif data.get("value") is not None:
        raise GroupError("bad_group_action", f"{action} takes no value")
    return out


def _group_id(data: dict) -> str:
    if "group_id" not in data:
        raise GroupError("missing_field", "group_id is required")
    group_id = data["group_id"]
    if not isinstance(group_id, str):
        raise GroupError("wrong_type", "group_id must be a string")
    if not CHAT_ID_RE.match(group_id) or not group_id.endswith("@g.us"):
        raise GroupError("bad_group_id", "group_id must be a group's id, like 120363000000000000@g.us")
    return group_id


def _participants(data: dict, required: bool) -> list[str]:
    people = data.get("participants")
    if people is None and not required:
        return []
    if people is None:
        raise GroupError("missing_field", "participants is required")
    if not isinstance(people, list) or not all(isinstance(p, str) for p in people):
        raise GroupError("wrong_type", "participants must be a list of strings")
    if not (0 if not required else 1) <= len(people) <= MAX_PARTICIPANTS:
        raise GroupError("bad_participants", f"participants must list 1 to {MAX_PARTICIPANTS} people")
    for p in people:
        refusal = id_refusal(p, USER_ID_RE, "bad_participants")
        if refusal is not None:
            raise GroupError(refusal, "participants must be people: 5511999999999@c.us or a LID 123456789012345@lid")
    if len(set(people)) != len(people):
        raise GroupError("bad_participants", "participants names someone twice")
    return list(people)


def _value(action: str, value):
    if action in ("create", "subject"):
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_SUBJECT or _CONTROL_RE.search(value):
            raise GroupError("bad_subject", f"value (the subject) must be one line of 1 to {MAX_SUBJECT} characters")
        return value
    if action == "description":
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or _TEXT_CONTROL_RE.search(value):
            raise GroupError("bad_description", f"value (the description) must be a text of at most "
                                                f"{MAX_DESCRIPTION} characters (\"\" clears it)")
        return value
    if action == "join":
        code = value[len(INVITE_LINK):] if isinstance(value, str) and value.startswith(INVITE_LINK) else value
        if not isinstance(code, str) or not INVITE_CODE_RE.match(code):
            raise GroupError("bad_invite", f"value must be an invite code or link, {INVITE_LINK}<code>")
        return code
    if not isinstance(value, dict) or not value or set(value) - set(SETTINGS) \
            or not all(isinstance(v, bool) for v in value.values()):
        raise GroupError("bad_settings", "value must be {\"announce\": true|false, \"restrict\": true|false}, "
                                         "one of them at least (announce: only admins write; restrict: only "
                                         "admins change the group's info)")
    return dict(value)


def update_event(report: dict) -> dict | None:
    """The ``group_update`` event for a page's report of a group's change,
    None for a change not reported (``UPDATE_TYPES``)."""
    kind = UPDATE_TYPES.get(str(report.get("subtype")))
    if kind is None:
        return None
    people = report.get("participants")
    event = {"event": "group_update", "group_id": str(report.get("group_id")), "type": kind,
             "participants": [p for p in people if isinstance(p, str)] if isinstance(people, list) else [],
             "by": report.get("by") if isinstance(report.get("by"), str) else None}
    body = report.get("body") if isinstance(report.get("body"), str) else ""
    settings = report.get("settings") if isinstance(report.get("settings"), dict) else None
    if kind in ("subject", "description"):
        event["value"] = body
    elif kind == "settings" and settings is not None:
        event["value"] = {name: bool(settings.get(name)) for name in SETTINGS}
    for name in ("by_pn", "by_lid"):
        if isinstance(report.get(name), str):
            event[name] = report[name]
    return event

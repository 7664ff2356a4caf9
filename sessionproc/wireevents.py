"""The events' shapes: every event a session may write, and the check of an event line."""

from __future__ import annotations

from .framing import json_object

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


def decode_event(line: bytes | bytearray) -> dict:
    """Parse and check one event line; raise BadEvent with the reason."""
    event = json_object(line, BadEvent, "an event")
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

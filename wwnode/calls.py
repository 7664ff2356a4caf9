"""Calls: ``call_instance`` for each call a session reports ringing, and
the reject path.

``call_action`` ``reject`` is checked in ``chatcommands.py`` and carried out
by the action desk (``actions.py``) like ``message_action``: held while
the session comes back, in order with its sends, answered with
``call_action_done_instance`` or ``command_failed`` (``unknown_call``: the
page holds no incoming call of that id; ``call_ended``: it no longer
rings).  A reject carried out again (a command delivered twice) finds the
call ended and fails so: it never does anything twice.

Rejecting without a command is one function, :meth:`CallDesk.reject`, for
the per-session settings (``reject_calls``, ``call_reply``) to call: a
desk built with ``rejects`` (key, call -> whether to reject it) rejects
each such call as it rings, through the same pipe command as
``call_action``, then publishes ``call_instance`` with ``rejected: true``
(without it when the reject failed, which is logged) and calls
``rejected`` (key, call), where a reply to the caller can be sent.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

import orjson

from . import states as S
from .amqp.topology import Outgoing
from .commands import Command

log = logging.getLogger(__name__)


class Actions(Protocol):
    def ask(self, cmd: Command, then: Callable[[dict | None, str | None], None]) -> None: ...


class Bus(Protocol):
    def emit(self, name: str, body: dict) -> None: ...


def never(key: str, call: dict) -> bool:
    return False


def nothing(key: str, call: dict) -> None:
    return None


class CallDesk:
    def __init__(self, bus: Bus, actions: Actions, rejects: Callable[[str, dict], bool] = never,
                 rejected: Callable[[str, dict], None] = nothing):
        self.bus = bus
        self.actions = actions
        self.rejects = rejects
        self.rejected = rejected

    def handlers(self) -> dict:
        """The session events this desk acts on (``protocol.EVENTS``)."""
        return {"call": self._on_call}

    def _on_call(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        call = event["call"]
        if not self.rejects(rec.key, call):
            self.bus.emit("call_instance", {"key": rec.key, "call": call})
            return

        def then(result: dict | None, reason: str | None) -> None:
            body = {"key": rec.key, "call": call}
            if reason is None:
                body["rejected"] = True
            else:
                log.warning("%s: could not reject call %s: %s", rec.key, call.get("id"), reason)
            self.bus.emit("call_instance", body)
            if reason is None:
                self.rejected(rec.key, call)

        self.reject(rec.key, call["id"], then)

    def reject(self, key: str, call_id: str, then: Callable[[dict | None, str | None], None]) -> None:
        """Reject call ``call_id`` of session ``key`` as ``call_action``
        does; ``then(result, None)`` once done, ``then(None, reason)`` when
        it failed (``unknown_call``, ``call_ended``, ``not_ready``, the
        session gone...)."""
        self.actions.ask(Command("call_action", key, action="reject", call_id=call_id), then)


class CallReply:
    """``call_reply``: after a call was rejected by the session's settings,
    a text to the caller, as a ``send_message`` of the node's own published
    to its queue, so it takes the way every send takes (routed to the key's
    owner, in order with the key's other sends, answered by
    ``message_sent_instance`` or ``command_failed``).  Its id,
    ``call-reply-{call id}``, makes it go out at most once however often
    the call is reported."""

    def __init__(self, publisher, reply_of: Callable[[str], str | None]):
        self.publisher = publisher
        self.reply_of = reply_of

    def send(self, key: str, call: dict) -> None:
        text = self.reply_of(key)
        if not text or not isinstance(call.get("from"), str):
            return
        body = {"key": key, "chat_id": call["from"], "message": text, "id": f"call-reply-{call.get('id')}"}
        self.publisher.publish(Outgoing("", "send_message", orjson.dumps(body), {"x-origin": "call_reply"}))

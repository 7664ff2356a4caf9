"""The action desk: ``message_action`` (react, read, edit, revoke),
``check_number``, ``query`` (``queries.py``), ``group_action``
(``groupdesk.py``) and the commands of ``chatcommands.py``
(``call_action``, ``chat_action``, ``set_presence``),
from the moment they reach this node to their answer.

- a command for a ready session goes to its process at once; one for a
  session coming back by itself (linked, ``starting`` or ``restarting``)
  waits until it is ready, at most ``SEND_HOLD`` seconds, as a send does;
  any other fails (``not_ready``, ``unknown_instance``);
- the answer is ``message_action_done_instance`` or
  ``number_checked_instance`` (acknowledged once the broker confirmed it),
  or ``command_failed`` with the session's reason (``unknown_message``,
  ``page_error``, ...);
- commands a process took and never answered, or refused because it was
  told to stop, go back to their queue; held ones fail when the session
  fails or is destroyed, and go back to their queue when the stop is not
  final (the node going down, a drain moving the key) or the node loses
  the key.  A
  reaction, a read, an edit or a deletion done twice changes nothing (a
  message already deleted for everyone is answered done), so none of this
  needs the send desk's records.

Other parts of the node ask it too (:meth:`ActionDesk.ask`): a command of
their own, with no delivery behind it, whose outcome is handed to a
function of theirs instead of being published (a call rejected by the
session's settings, ``calls.py``).

It also passes on what sessions tell of messages: ``ack`` as
``message_ack_instance``, ``reaction`` as ``message_reaction_instance``,
``message_edit`` as ``message_edit_instance``, ``message_revoke`` as
``message_revoke_instance``, ``poll_vote`` as ``poll_vote_instance``.
It follows the sessions as a listener of their state changes and never
changes a session itself.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Callable, Protocol, cast

from sessionproc.protocol import SEND_REFUSED_STOPPING

from . import chatcommands, groupdesk, queries
from . import states as S
from .children import Child
from .commands import Command
from .heldcommands import KeyedDesk

log = logging.getLogger(__name__)

class Bus(Protocol):
    def emit(self, name: str, body: dict) -> None: ...
    def emit_then_ack(self, name: str, body: dict, d) -> None: ...
    def requeue(self, d) -> None: ...
    def fail(self, d, reason: str, detail: str, key: str | None, command_id: str | None) -> None: ...


class Sessions(Protocol):
    def get(self, key: str) -> S.SessionRecord | None: ...


# What a part of the node that asked gets: (result, None) once done, or
# (None, reason) when it failed.
Then = Callable[[dict | None, str | None], None]


@dataclass
class Pending:
    command: Command
    delivery: object  # None: asked by a part of the node, answered through ``then``
    hold_until: float = 0.0
    then: Then | None = None


# Commands the desk carries that their own modules describe: each has
# ``pipe_command(cmd, child_id)`` and ``answer(key, cmd, result)``.
OWN_MODULES = {"query": queries, "group_action": groupdesk, **{name: chatcommands for name in chatcommands.COMMANDS}}


def pipe_command(cmd: Command, child_id: str) -> dict:
    """What the session process is told (``sessionproc.protocol``)."""
    if cmd.name in OWN_MODULES:
        return OWN_MODULES[cmd.name].pipe_command(cmd, child_id)
    if cmd.name == "check_number":
        return {"cmd": "check_number", "id": child_id, "phone": cmd.phone}
    line: dict[str, object] = {"cmd": "action", "id": child_id, "action": cmd.action, "message_id": cmd.message_id}
    if cmd.action == "react":
        line["emoji"] = cmd.emoji
    elif cmd.action == "edit":
        line["text"] = cmd.text
    elif cmd.action == "revoke":
        line["for_me"] = cmd.for_me
    return line


def answer(key: str, cmd: Command, result: dict) -> tuple[str, dict]:
    """The event that answers a command done, and its body."""
    if cmd.name in OWN_MODULES:
        return OWN_MODULES[cmd.name].answer(key, cmd, result)
    if cmd.name == "check_number":
        return "number_checked_instance", {"key": key, "phone": cmd.phone, "registered": bool(result.get("registered")),
                                           "wid": result.get("wid"), "command_id": cmd.command_id}
    body: dict[str, object]
    body = {"key": key, "action": cmd.action, "message_id": cmd.message_id, "command_id": cmd.command_id}
    if cmd.action == "react":
        body["emoji"] = cmd.emoji
    elif cmd.action == "revoke":
        body["for_me"] = cmd.for_me
    return "message_action_done_instance", body


class ActionDesk(KeyedDesk[Pending]):
    def __init__(self, hold: float, bus: Bus, sessions: Sessions):
        self.hold = hold
        self.bus = bus
        self.sessions = sessions
        self._init_commands()
        self._ids = itertools.count(1)

    def take(self, cmd: Command, d, now: float) -> None:
        """The handler of ``message_action`` and ``check_number``."""
        rec = self.sessions.get(cmd.key)
        if rec is None or rec.state in (S.STOPPING, S.STOPPED):
            self.bus.fail(d, "unknown_instance", f"no session {cmd.key} on this node", cmd.key, cmd.command_id)
        elif rec.state == S.READY:
            self._dispatch(rec, Pending(cmd, d))
        elif rec.linked and rec.state in (S.STARTING, S.RESTARTING):
            self._hold(cmd.key, Pending(cmd, d, now + self.hold))
        else:
            self.bus.fail(d, "not_ready", f"session {cmd.key} is {rec.state}, not ready", cmd.key, cmd.command_id)

    def ask(self, cmd: Command, then: Then) -> None:
        """Carry out a command of the node's own at once, for a ready
        session only (it is never held); ``then`` gets its outcome."""
        rec = self.sessions.get(cmd.key)
        if rec is None or rec.state != S.READY:
            then(None, "not_ready")
            return
        self._dispatch(rec, Pending(cmd, None, then=then))

    def _dispatch(self, rec: S.SessionRecord, p: Pending) -> None:
        child_id = f"a{next(self._ids)}"
        self._inflight.setdefault(rec.key, {})[child_id] = p
        cast(Child, rec.child).send(pipe_command(p.command, child_id))  # ready: its process runs

    # ---------------------------------------------------------- answers
    def handlers(self) -> dict:
        """The session events this desk acts on (``protocol.EVENTS``)."""
        return {"action_done": self._on_done, "action_failed": self._on_failed,
                "ack": self._on_ack, "reaction": self._on_reaction, "message_edit": self._on_edit,
                "message_revoke": self._on_revoke, "poll_vote": self._on_poll_vote}

    def _on_done(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        p = self._inflight.get(rec.key, {}).pop(event["id"], None)
        if p is not None and p.then is not None:
            p.then(event["result"], None)
        elif p is not None:
            name, body = answer(rec.key, p.command, event["result"])
            self.bus.emit_then_ack(name, body, p.delivery)

    def _on_failed(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        p = self._inflight.get(rec.key, {}).pop(event["id"], None)
        if p is None:
            return
        if p.then is not None:
            p.then(None, event["reason"])
            return
        if event["reason"] == SEND_REFUSED_STOPPING:
            # Refused because the process was told to stop before it began:
            # for whoever runs the key next (this node back included).
            self.bus.requeue(p.delivery)
            return
        self.bus.fail(p.delivery, event["reason"], event.get("detail", ""), rec.key, p.command.command_id)

    def _on_ack(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        self.bus.emit("message_ack_instance", {"key": rec.key, "message_id": event["message_id"],
                                               "chat_id": event["chat_id"], "ack": event["ack"]})

    def _on_reaction(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        body = {"key": rec.key, "message_id": event["message_id"], "reaction": event["reaction"],
                "sender": event["sender"]}
        body.update({k: event[k] for k in ("sender_pn", "sender_lid") if isinstance(event.get(k), str)})
        self.bus.emit("message_reaction_instance", body)

    def _on_edit(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        self.bus.emit("message_edit_instance", {"key": rec.key, "message": event["message"],
                                                "previous_body": event["previous_body"]})

    def _on_revoke(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        self.bus.emit("message_revoke_instance", {"key": rec.key, "message_id": event["message_id"],
                                                  "chat_id": event["chat_id"], "from_me": event["from_me"]})

    def _on_poll_vote(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        body = {"key": rec.key, "message_id": event["message_id"], "voter": event["voter"],
                "selected": event["selected"], "selected_ids": event["selected_ids"]}
        body.update({k: event[k] for k in ("voter_pn", "voter_lid") if isinstance(event.get(k), str)})
        self.bus.emit("poll_vote_instance", body)

    # ---------------------------------- following sessions (heldcommands.py)
    def _inflight_gone(self, p: Pending) -> None:
        if p.then is not None:
            p.then(None, "session_gone")  # a moment that has passed: not asked again
        else:
            self.bus.requeue(p.delivery)  # taken, never answered: done again is harmless

    def _carry_out_held(self, key: str, now: float) -> None:
        rec = cast(S.SessionRecord, self.sessions.get(key))  # it has just changed to ready
        for p in self._held.pop(key, ()):
            self._dispatch(rec, p)

    def _fail_held(self, key: str, p: Pending, reason: str, detail: str) -> None:
        self.bus.fail(p.delivery, reason, detail, key, p.command.command_id)

    def _put_back(self, p: Pending) -> None:
        self.bus.requeue(p.delivery)

    def tick(self, now: float) -> None:
        for key in list(self._held):
            self._expire_held(key, now, "not_ready", f"session {key} was not ready in time")

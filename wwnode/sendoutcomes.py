"""How a send ends at the send desk: its session's answer, or what its session's change of state means for it.

Part of :class:`~wwnode.sends.SendDesk` (a base class of it: the same held
and in-flight sends).  The rules are those the docstring of ``sends.py``
lists: a send answered ``sent`` or ``send_failed``; sends in flight put
back when their process is gone; held sends failed, or put back when the
stop is not final; one that went out before answered sent again, one in
doubt failed ``outcome_unknown``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sessionproc.protocol import SEND_OUTCOME_UNKNOWN, SEND_REFUSED_STOPPING

from . import states as S
from .heldcommands import KeyedDesk

if TYPE_CHECKING:  # only for the annotations: sends.py imports this module

    from .counters import Tally
    from .sendpace import SendPace
    from .sends import PendingSend, Sessions, Store

log = logging.getLogger(__name__)


class SendOutcomes(KeyedDesk["PendingSend"]):
    """The answers and the session changes :class:`SendDesk` acts on."""

    # What it uses of SendDesk, declared for the type checker: annotations
    # only (SendDesk's __init__ sets them), and the methods only while type
    # checking, so nothing here shadows what SendDesk defines.
    store: Store
    sessions: Sessions
    unavailable: type[Exception]
    tally: Tally
    pace: SendPace
    _held_back: set[str]

    if TYPE_CHECKING:
        def _dispatch_held(self, rec: S.SessionRecord, now: float) -> None: ...

        def _answer_sent(self, p: PendingSend, body: dict) -> None: ...

        def _fail(self, p: PendingSend, reason: str, detail: str, record: bool = True) -> None: ...

        def _requeue(self, p: PendingSend) -> None: ...

    # ---------------------------------------------------------- answers
    def handlers(self) -> dict:
        """The session events this desk acts on (``protocol.EVENTS``)."""
        return {"sent": self._on_sent, "send_failed": self._on_send_failed}

    def _answered(self, rec: S.SessionRecord, event: dict, now: float) -> PendingSend | None:
        p = self._inflight.get(rec.key, {}).pop(event["id"], None)
        if p is not None:
            self.pace.ended(rec.key, now)  # the next paced send counts its gap from here
        return p

    def _on_sent(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        p = self._answered(rec, event, now)
        if p is not None:
            self.tally.sent(now - p.received)
            if p.command.command_id is not None:
                self.store.end_send(rec.key, p.command.command_id, event["message_id"])
            body = {"key": rec.key, "chat_id": p.command.chat_id, "message_id": event["message_id"],
                    "command_id": p.command.command_id}
            self._answer_sent(p, body)

    def _on_send_failed(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        if event["reason"] == SEND_REFUSED_STOPPING and (not rec.stop_for_good or rec.moving):
            # The process was asked to stop before it began this send, and
            # the stop is not final (the node going down, a restart, a
            # drain moving the key): the send is for whoever runs the key
            # next, this node back included.  Its record is forgotten
            # first, so that run sends it instead of refusing it as
            # ``outcome_unknown``.
            p = self._answered(rec, event, now)
            if p is not None:
                if p.command.command_id is not None:
                    self.store.end_send(rec.key, p.command.command_id, None)
                self._requeue(p)
            return
        p = self._answered(rec, event, now)
        if p is not None and event["reason"] == SEND_REFUSED_STOPPING:
            # Destroyed before it began this send: it surely did not go
            # out.  Said as a send the destroy caught waiting is said
            # (``stopping`` is the session's word, not the contract's).
            self._fail(p, "instance_destroyed", f"session {rec.key} was destroyed before it sent this")
            return
        if p is not None:
            # One that may have gone out keeps its record "pending", so a
            # retry with the same id is refused (outcome_unknown), not sent
            # again.
            self._fail(p, event["reason"], event.get("detail", ""),
                       record=event["reason"] not in SEND_OUTCOME_UNKNOWN)

    # ---------------------------------- following sessions (heldcommands.py)
    def _changing(self, change: S.Change) -> None:
        key = change.key
        if change.new != S.READY:
            self._held_back.discard(key)
        if change.new in (S.FAILED, S.STOPPED, S.DROPPED):
            self.pace.forget(key)

    def _inflight_gone(self, p: PendingSend) -> None:
        self._requeue(p)  # taken and not answered: back to the queue, it may run again

    def _carry_out_held(self, key: str, now: float) -> None:
        rec = self.sessions.get(key)
        if rec is not None:
            self._dispatch_held(rec, now)

    def _fail_held(self, key: str, p: PendingSend, reason: str, detail: str) -> None:
        self._fail_unless_done(key, p, reason, detail)

    def _put_back(self, p: PendingSend) -> None:
        # Not final here (the node going down: at once, before a hold could
        # run out meanwhile) or not ours any more.
        self._requeue(p)

    def _fail_unless_done(self, key: str, p: PendingSend, reason: str, detail: str) -> None:
        """Fail a send that never reached a session here, unless an earlier
        delivery of it went out: a node stopped between a send's answer and
        its acknowledgement gets it again, and its answer must stay "sent".
        One whose earlier attempt is in doubt (``pending``: its session or
        its node's hold on the key ended mid-send) fails ``outcome_unknown``
        and stays in doubt: ``reason`` would say it did not go out.
        (Redis unreachable: it fails; docs/guarantees.md says so.)"""
        cid, seen = p.command.command_id, None
        if cid is not None:
            try:
                seen = self.store.send_record(key, cid)
            except self.unavailable:
                pass
            if seen is not None and seen.startswith("done:"):
                self._done_before(key, p, seen)
                return
            if seen == "pending":
                self._fail(p, "outcome_unknown", f"send {cid} was attempted before and may have gone out; "
                           f"not sending it again ({reason}: {detail})", record=False)
                return
        self._fail(p, reason, detail)

    def _done_before(self, key: str, p: PendingSend, seen: str) -> None:
        log.info("send %s of %s was done before; not sending again", p.command.command_id, key)
        body = {"key": key, "chat_id": p.command.chat_id, "message_id": seen[len("done:"):],
                "command_id": p.command.command_id, "duplicate": True}
        self._answer_sent(p, body)

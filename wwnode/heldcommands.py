"""The skeleton of the send and action desks: a key's commands held while its session comes back, those in flight with its process, and what a change of the session does to each.

A desk (``sends.py``, ``actions.py``) holds a key's commands while its
session is not ready yet, and has commands in flight with a session
process.  Both follow the session's changes by the same rule, so it lives
here once (:class:`KeyedDesk`); the desks drifted apart while each had
its own copy (a drain once failed held actions ``instance_destroyed``
where it put held sends back in their queue).

- Held commands: carried out, in order, once the session is ready; failed
  with the session (``session_failed``) or with a final stop here
  (``instance_destroyed``); put back in their queue when the stop is not
  final here (the node going down, a drain moving the key) or the key is
  not ours any more (dropped): they are for whoever runs the key next, this
  node back included.  One whose hold ran out fails as its desk says.
- Commands in flight: their process is no more once the session restarts,
  fails, stops or is dropped (``GONE``).

What each of these does to one command is its desk's own (a send has
copies and an at-most-once record; an action may be the node's own
question, answered ``session_gone``): the hooks of :class:`KeyedDesk`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from . import states as S

GONE = frozenset({S.RESTARTING, S.FAILED, S.STOPPED, S.DROPPED})  # its process is no more


@dataclass(frozen=True)
class Verdict:
    """What the desk does with the key's held commands."""
    carry_out: bool = False  # the session is ready: to it, in order
    fail: tuple[str, str] | None = None  # (reason, detail): each failed with it
    requeue: bool = False  # back to its queue, for whoever runs the key next


CARRY_OUT = Verdict(carry_out=True)
REQUEUE = Verdict(requeue=True)


def held_verdict(change: S.Change) -> Verdict | None:
    """What a change of the key's session means for its held commands;
    None: nothing (they go on waiting)."""
    if change.new == S.READY:
        return CARRY_OUT
    if change.new == S.FAILED:
        return Verdict(fail=("session_failed", f"session {change.key} failed ({change.reason})"))
    if change.new == S.STOPPED and change.for_good and not change.moving:
        return Verdict(fail=("instance_destroyed", f"session {change.key} was stopped"))
    if change.new == S.DROPPED or (change.new in (S.STOPPING, S.STOPPED) and (not change.for_good or change.moving)):
        return REQUEUE
    return None


class Held(Protocol):
    hold_until: float  # when its hold runs out (monotonic)


P = TypeVar("P", bound=Held)


class KeyedDesk(Generic[P]):
    """Held and in-flight commands by key, and the session's changes
    applied to them.  A desk sets ``_inflight`` and ``_held`` up in its
    ``__init__`` (:meth:`_init_commands`) and says, through the hooks, what
    each verdict does to one of its commands."""

    _inflight: dict[str, dict[str, P]]  # key -> the process's command id -> command
    _held: dict[str, deque[P]]  # key -> commands waiting for ready, in order

    def _init_commands(self) -> None:
        self._inflight = {}
        self._held = {}

    def idle(self, key: str) -> bool:
        """Nothing of the key's here, held or in flight."""
        return not self._inflight.get(key) and not self._held.get(key)

    def _hold(self, key: str, p: P) -> None:
        self._held.setdefault(key, deque()).append(p)

    # ------------------------------------------------ following sessions
    def on_change(self, change: S.Change) -> None:
        key = change.key
        self._changing(change)
        if change.new in GONE:
            for p in self._inflight.pop(key, {}).values():
                self._inflight_gone(p)
        verdict = held_verdict(change)
        if verdict is None:
            return
        if verdict.carry_out:
            self._carry_out_held(key, change.now)
        elif verdict.fail is not None:
            for p in self._held.pop(key, ()):
                self._fail_held(key, p, *verdict.fail)
        else:
            for p in self._held.pop(key, ()):
                self._put_back(p)

    def _expire_held(self, key: str, now: float, reason: str, detail: str) -> None:
        """Fail each of the key's held commands whose hold has run out,
        oldest first."""
        held = self._held.get(key)
        while held and held[0].hold_until <= now:
            self._fail_held(key, held.popleft(), reason, detail)
        if not held:
            self._held.pop(key, None)

    # ------------------------------------------------ the desk's own
    def _changing(self, change: S.Change) -> None:
        """Its own bookkeeping of the change, before the rule runs."""

    def _inflight_gone(self, p: P) -> None:
        """A command its process took and never answered: the process is no more."""
        raise NotImplementedError

    def _carry_out_held(self, key: str, now: float) -> None:
        """The session is ready: the key's held commands to it, in order."""
        raise NotImplementedError

    def _fail_held(self, key: str, p: P, reason: str, detail: str) -> None:
        raise NotImplementedError

    def _put_back(self, p: P) -> None:
        """Back to its queue, for whoever runs the key next."""
        raise NotImplementedError

"""What becomes of the commands a desk holds for a key when its session changes state: one rule for the send and action desks.

A desk (``sends.py``, ``actions.py``) holds a key's commands while its
session is not ready yet, and has commands in flight with a session
process.  Both follow the session's changes by the same rule, so it lives
here once; the desks drifted apart while each had its own copy (a drain
once failed held actions ``instance_destroyed`` where it put held sends
back in their queue).

- Held commands: carried out, in order, once the session is ready; failed
  with the session (``session_failed``) or with a final stop here
  (``instance_destroyed``); put back in their queue when the stop is not
  final here (the node going down, a drain moving the key) or the key is
  not ours any more (dropped): they are for whoever runs the key next, this
  node back included.
- Commands in flight: their process is no more once the session restarts,
  fails, stops or is dropped (``GONE``); what each desk then does with them
  is its own (a send is put back, a query answered ``session_gone``).

Pure: a change in, a verdict out.
"""

from __future__ import annotations

from dataclasses import dataclass

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

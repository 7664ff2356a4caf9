"""The one rule both desks follow for the commands they hold for a key
(wwnode/heldcommands.py): each change of the session, and what it means."""

from __future__ import annotations

import pytest

from wwnode import states as S
from wwnode.heldcommands import CARRY_OUT, GONE, REQUEUE, held_verdict


def change(old: str, new: str, **kw) -> S.Change:
    return S.Change("k", old, new, **kw)


@pytest.mark.parametrize("c, verdict", [
    (change(S.QR, S.READY), CARRY_OUT),
    (change(S.RESTARTING, S.READY), CARRY_OUT),
    (change(S.STOPPING, S.STOPPED), REQUEUE),  # the node going down: for this node back, or the next owner
    (change(S.READY, S.STOPPING), REQUEUE),
    (change(S.READY, S.STOPPING, for_good=True, moving=True), REQUEUE),  # a drain moves the key
    (change(S.STOPPING, S.STOPPED, for_good=True, moving=True), REQUEUE),
    (change(S.READY, S.DROPPED), REQUEUE),  # not ours any more
    (change(S.STARTING, S.QR), None),  # still coming: they wait
    (change(S.READY, S.RESTARTING), None),
    (change(S.READY, S.STOPPING, for_good=True), None),  # a destroy under way: failed once it is stopped
])
def test_what_a_change_means_for_held_commands(c, verdict):
    assert held_verdict(c) == verdict


def test_a_failed_or_destroyed_session_fails_them_and_says_why():
    failed = held_verdict(change(S.STARTING, S.FAILED, reason="crash_loop"))
    assert failed is not None and failed.fail == ("session_failed", "session k failed (crash_loop)")
    destroyed = held_verdict(change(S.STOPPING, S.STOPPED, for_good=True))
    assert destroyed is not None and destroyed.fail == ("instance_destroyed", "session k was stopped")


def test_a_process_is_gone_when_its_session_restarts_fails_stops_or_is_dropped():
    assert GONE == {S.RESTARTING, S.FAILED, S.STOPPED, S.DROPPED}
    assert not GONE & {S.STARTING, S.QR, S.READY, S.STOPPING}

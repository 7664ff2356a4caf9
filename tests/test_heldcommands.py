"""The skeleton both desks share (wwnode/heldcommands.py): the one rule for
the commands they hold for a key, each change of the session and what it
means, and the hooks a desk fills in."""

from __future__ import annotations

import pytest

from wwnode import states as S
from dataclasses import dataclass

from wwnode.heldcommands import CARRY_OUT, GONE, REQUEUE, KeyedDesk, held_verdict


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


@dataclass
class Cmd:
    name: str
    hold_until: float = 0.0


class Desk(KeyedDesk[Cmd]):
    """A desk that only writes down what the skeleton asked of it."""

    def __init__(self):
        self._init_commands()
        self.did: list[tuple] = []

    def _changing(self, change):
        self.did.append(("changing", change.new))

    def _inflight_gone(self, p):
        self.did.append(("gone", p.name))

    def _carry_out_held(self, key, now):
        self.did.extend(("carry_out", p.name) for p in self._held.pop(key, ()))

    def _fail_held(self, key, p, reason, detail):
        self.did.append(("fail", p.name, reason))

    def _put_back(self, p):
        self.did.append(("put_back", p.name))


def test_the_skeleton_applies_the_rule_through_the_desks_hooks():
    desk = Desk()
    desk._inflight["k"] = {"a1": Cmd("in-flight")}
    desk._hold("k", Cmd("first", hold_until=10))
    desk._hold("k", Cmd("second", hold_until=20))
    assert not desk.idle("k")
    desk.on_change(change(S.READY, S.RESTARTING))  # the process is gone; the held wait on
    assert desk.did == [("changing", S.RESTARTING), ("gone", "in-flight")]
    desk.did.clear()
    desk.on_change(change(S.RESTARTING, S.READY, now=5))
    assert desk.did == [("changing", S.READY), ("carry_out", "first"), ("carry_out", "second")]
    assert desk.idle("k")


def test_held_commands_fail_or_go_back_in_order_and_a_hold_runs_out_oldest_first():
    desk = Desk()
    for name, until in (("a", 10), ("b", 20), ("c", 30)):
        desk._hold("k", Cmd(name, hold_until=until))
    desk._expire_held("k", 20, "not_ready", "late")
    assert desk.did == [("fail", "a", "not_ready"), ("fail", "b", "not_ready")]
    desk.did.clear()
    desk.on_change(change(S.READY, S.STOPPING))  # the node going down: back to the queue
    assert desk.did == [("changing", S.STOPPING), ("put_back", "c")] and desk.idle("k")
    desk.did.clear()
    desk._hold("k", Cmd("d", hold_until=40))
    desk.on_change(change(S.STARTING, S.FAILED, reason="cannot_start"))
    assert desk.did == [("changing", S.FAILED), ("fail", "d", "session_failed")]
    desk.did.clear()
    desk._expire_held("gone-key", 100, "not_ready", "late")  # nothing held: nothing done
    assert desk.did == []

"""A part that raises for one session (a session-event handler, a listener
of state changes) ends that session, ``failed`` with ``internal_error``,
and nothing else: the other sessions go on, the node goes on taking work
(``guard.py``, ``Sessions.contain``).  Time handed in, fakes at the edges."""

from __future__ import annotations

import logging

import pytest

from support import delivery, node_rig
from wwnode import states as S
from wwnode.commands import Command


class Faulty:
    """A part with a bug that strikes one key: it raises on that key's
    events, or on its changes of state that ``when`` picks; what it was
    given for other keys goes on to ``then`` (the real handler)."""

    def __init__(self, key: str, then=None, when=lambda change: True):
        self.key = key
        self.then = then
        self.when = when
        self.raised = 0

    def on_event(self, rec, event, now):
        if rec.key == self.key:
            self._raise()
        self.then(rec, event, now)

    def on_change(self, change):
        if change.key == self.key and self.when(change):
            self._raise()

    def _raise(self):
        self.raised += 1
        raise RuntimeError(f"a bug that strikes {self.key}")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rig(tmp_path, clock):
    return node_rig(tmp_path, clock=clock)


def guard_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wwnode.guard"]


def assert_failed_and_let_go(rig, rec, child, previous: str) -> None:
    """Failed with the reason, its process killed and handed over to be
    reaped, its key let go (another node may take a create of it), not to
    be brought back by a restart of the node."""
    assert rec.state == S.FAILED and rec.child is None
    assert child.killed and rig.processes.buried == [child]
    assert not rig.ownership.may_run(rec.key) and rec.key not in rig.store.owners
    assert rig.store.states(rec.key)[-1] == S.FAILED  # written before the lease went
    assert rig.broker.events("state_instance")[-1] == {"key": rec.key, "state": S.FAILED, "previous": previous,
                                                        "reason": "internal_error"}
    assert rig.broker.events("disconnected_instance") == [{"key": rec.key, "reason": "internal_error"}]
    assert rec.key not in rig.node.paths.wanted_keys()


def assert_still_answering(rig, rec, now: float) -> None:
    """A send to this session goes out, its answer comes back, and the
    command is acknowledged."""
    d = delivery("send_message", {"key": rec.key, "chat_id": "5511999999999@c.us", "message": "still here",
                                  "id": f"c-{rec.key}"})
    rig.dispatch.on_command(d, now)
    cmd = rec.child.commands("send")[-1]
    assert cmd["text"] == "still here"
    rig.say(rec, {"event": "sent", "id": cmd["id"], "message_id": f"M-{rec.key}"}, now=now)
    assert {"key": rec.key, "chat_id": "5511999999999@c.us", "message_id": f"M-{rec.key}",
            "command_id": f"c-{rec.key}"} in rig.broker.events("message_sent_instance")
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked


def assert_takes_creates(rig, clock, key: str) -> None:
    """A create in the inbox is carried out by a turn of the loop."""
    d = delivery("create_instance", {"key": key})
    rig.node.inbox.append(d)
    assert rig.node._turn()
    assert rig.sessions.get(key).state == S.STARTING and d.tag in rig.broker.acked
    assert rig.ownership.may_run(key)


def test_a_handler_that_raises_fails_its_session_only(rig, clock, caplog):
    good, _ = rig.start("good")
    rig.make_ready(good)
    bad, _ = rig.start("bad")
    child = bad.child
    faulty = Faulty("bad", then=rig.node.handlers["ready"])
    rig.node.handlers["ready"] = faulty.on_event
    with caplog.at_level(logging.ERROR):
        rig.make_ready(bad, now=1.0)  # its QR code, then ready: the bug
    assert faulty.raised == 1
    assert_failed_and_let_go(rig, bad, child, previous=S.QR)
    assert rig.counters.get("internal_errors") == 1
    [line] = guard_lines(caplog)
    assert line.exc_info is not None and line.exc_info[0] is RuntimeError  # the traceback
    assert "session bad" in line.getMessage() and "the event ready" in line.getMessage()
    assert "Faulty.on_event" in line.getMessage()  # the part
    # Nothing more its process wrote is acted on.
    child.say({"event": "qr", "qr": "stale", "attempt": 2})
    rig.node._session_output(bad, child, 1.5)
    assert bad.state == S.FAILED and ("qr", "bad", "stale") not in rig.store.writes

    assert good.state == S.READY and not good.child.killed
    assert_still_answering(rig, good, now=2.0)
    clock.now = 3.0
    assert_takes_creates(rig, clock, "new")
    # Its key was let go: a new create starts it afresh (the bug strikes at ready only).
    again = delivery("create_instance", {"key": "bad"})
    rig.dispatch.on_command(again, 4.0)
    assert bad.state == S.STARTING and bad.child is not None and again.tag in rig.broker.acked
    assert rig.ownership.may_run("bad")


def test_a_listener_that_raises_fails_its_session_only(rig, clock, caplog):
    good, _ = rig.start("good")
    rig.make_ready(good)
    bad, _ = rig.start("bad")
    child = bad.child
    faulty = Faulty("bad", when=lambda change: change.new == S.READY)
    rig.sessions.subscribe(faulty)
    with caplog.at_level(logging.ERROR):
        rig.make_ready(bad, now=1.0)
    assert faulty.raised == 1
    # Every listener saw the change that happened, then the failure: Redis
    # and the events in the order the changes came.
    assert rig.store.states("bad") == [S.STARTING, S.QR, S.READY, S.FAILED]
    assert [e["state"] for e in rig.broker.events("state_instance") if e["key"] == "bad"] == \
        [S.STARTING, S.QR, S.READY, S.FAILED]
    assert_failed_and_let_go(rig, bad, child, previous=S.READY)
    [line] = guard_lines(caplog)
    assert line.exc_info is not None
    assert "session bad" in line.getMessage() and "the change qr -> ready" in line.getMessage()
    assert "Faulty.on_change" in line.getMessage()

    assert good.state == S.READY and not good.child.killed
    assert_still_answering(rig, good, now=2.0)
    clock.now = 3.0
    assert_takes_creates(rig, clock, "new")


def test_a_listener_that_raises_on_every_change_fails_its_session_once(rig, clock):
    good, _ = rig.start("good")
    rig.make_ready(good)
    faulty = Faulty("bad")  # on ``failed`` too
    rig.sessions.subscribe(faulty)
    d = delivery("create_instance", {"key": "bad"})
    rig.dispatch.on_command(d, 1.0)
    bad = rig.sessions.get("bad")
    assert faulty.raised == 2  # on starting, then on failed: and no more
    assert bad.state == S.FAILED and "bad" not in rig.spawner.keys()  # never launched
    assert not rig.ownership.may_run("bad") and "bad" not in rig.store.owners
    assert rig.broker.events("disconnected_instance") == [{"key": "bad", "reason": "internal_error"}]
    assert rig.counters.get("internal_errors") == 2
    rig.sessions.tick(100.0)  # nothing restarts it
    assert bad.state == S.FAILED and "bad" not in rig.spawner.keys()

    assert_still_answering(rig, good, now=101.0)
    clock.now = 102.0
    assert_takes_creates(rig, clock, "new")


def test_a_part_that_raises_for_a_session_being_stopped_ends_the_stop_at_once(rig):
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    destroy = delivery("destroy_instance")
    rig.carry_out(Command("destroy_instance", "k"), destroy, 1.0)
    rig.node.handlers["ready"] = Faulty("k", then=rig.node.handlers["ready"]).on_event
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=1.5)
    assert rec.state == S.STOPPING and rec.child.killed  # not failed: its destroy ends it
    rig.exit(rec, -9, 2.0)
    assert not rig.sessions.has("k") and destroy.tag in rig.broker.acked
    assert "k" not in rig.store.owners and rig.store.states("k")[-1] == S.STOPPING


def test_a_restored_session_a_listener_fails_on_does_not_wait_for_its_lease(rig):
    for key in ("a", "bad"):
        rig.node.paths.mark_wanted(key)
    rig.sessions.subscribe(Faulty("bad"))
    assert rig.sessions.restore(0.0) == ["a"]  # the keys the node claims next
    assert rig.sessions.get("bad").state == S.FAILED and rig.sessions.waiting_for_lease() == ["a"]
    assert rig.node.paths.wanted_keys() == ["a"]

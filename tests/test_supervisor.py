"""The supervisor's rules, with time handed in and the OS, RabbitMQ and
Redis replaced by recorders (the real ones are in the end-to-end tests)."""

from __future__ import annotations

import dataclasses

import pytest

from sessionproc.protocol import EXIT_CANNOT_START, EXIT_CRASHED, EXIT_ENDED, EXIT_STOPPED
from wwnode import states as S
from wwnode.broker import Delivery
from wwnode.commands import Command
from wwnode.config import Config
from wwnode.paths import Paths
from wwnode.supervisor import Supervisor


class FakeChild:
    pids = iter(range(1000, 100000))

    def __init__(self, args):
        self.args = args
        self.pid = next(self.pids)
        self.sent: list[dict] = []
        self.killed = False

    def send(self, cmd):
        self.sent.append(cmd)

    def kill(self):
        self.killed = True

    def close(self):
        pass


class FakeSpawner:
    def __init__(self):
        self.children: list[FakeChild] = []

    def spawn(self, args):
        child = FakeChild(args)
        self.children.append(child)
        return child


class Recorder:
    """Bus and Store at once: remembers what it was told.  The broker's
    confirms of events arrive when the test says so (``confirm_all``), as
    they do from a real broker a little later, so a test sees whether an
    ack waited for its confirm."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []
        self.acked: list[int] = []
        self.requeued: list[int] = []
        self.failed: list[tuple[int, str]] = []
        self.failed_about: list[tuple[int, str | None, str | None]] = []  # tag, key, command id
        self.redis: list[tuple] = []
        self.sends: dict = {}
        self.unconfirmed: list = []  # on_confirmed callbacks of events the broker has not confirmed yet

    def emit(self, name, body, on_confirmed=None):
        self.events.append((name, body))
        if on_confirmed:
            self.unconfirmed.append(on_confirmed)

    def confirm_all(self):
        """The broker confirms every event emitted so far."""
        callbacks, self.unconfirmed = self.unconfirmed, []
        for callback in callbacks:
            callback()

    def ack(self, d):
        self.acked.append(d.tag)

    def requeue(self, d):
        self.requeued.append(d.tag)

    def fail(self, d, reason, detail, key, command_id):
        self.failed.append((d.tag, reason))
        self.failed_about.append((d.tag, key, command_id))

    def set_qr(self, key, qr):
        self.redis.append(("qr", key, qr))

    def clear_qr(self, key):
        self.redis.append(("clear_qr", key))

    def set_state(self, key, state, me=None):
        self.redis.append(("state", key, state))

    def forget(self, key):
        self.redis.append(("forget", key))

    def begin_send(self, key, command_id):
        seen = self.sends.get((key, command_id))
        if seen is None:
            self.sends[(key, command_id)] = "pending"
        return seen

    def end_send(self, key, command_id, message_id):
        if message_id is None:
            self.sends.pop((key, command_id), None)
        else:
            self.sends[(key, command_id)] = f"done:{message_id}"

    def named(self, name):
        return [b for n, b in self.events if n == name]


_tags = iter(range(1, 10**6))


def delivery(queue="create_instance") -> Delivery:
    return Delivery(queue, next(_tags), 1, False, b"{}")


@pytest.fixture
def sup(tmp_path):
    cfg = dataclasses.replace(Config(), data_dir=tmp_path, backoff_initial=1, backoff_max=8, stable_after=100,
                              crash_limit=3, crash_window=60, ping_interval=30, ping_timeout=10, send_hold=20,
                              stop_timeout=20)
    paths = Paths(tmp_path)
    paths.ensure()
    rec = Recorder()
    s = Supervisor(cfg, paths, rec, rec, FakeSpawner())
    s.rec = rec
    return s


def start(sup, key="k", now=0.0):
    d = delivery()
    sup.create(Command("create_instance", key), d, now)
    return sup.sessions[key], d


def make_ready(sup, session, now=0.0):
    sup.on_events(session, [{"event": "qr", "qr": "a,b,c,d,e", "attempt": 1}], now)
    sup.on_events(session, [{"event": "authenticated"}, {"event": "ready", "me": "1@c.us"}], now)


def test_create_spawns_and_acks_and_twice_is_once(sup):
    s, d = start(sup)
    assert s.state == S.STARTING and d.tag in sup.rec.acked
    d2 = delivery()
    sup.create(Command("create_instance", "k"), d2, 1.0)
    assert d2.tag in sup.rec.acked and len(sup.spawner.children) == 1
    assert sup.paths.wanted_keys() == ["k"]


def test_qr_then_ready(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    assert s.state == S.READY and s.linked
    assert ("qr", "k", "a,b,c,d,e") in sup.rec.redis and ("clear_qr", "k") in sup.rec.redis
    assert [b["state"] for b in sup.rec.named("state_instance")] == [S.STARTING, S.QR, S.READY]


def test_backoff_doubles_to_a_cap_and_resets_after_a_stable_run(sup):
    sup.cfg = dataclasses.replace(sup.cfg, crash_limit=100)
    s, _ = start(sup)
    now, delays = 0.0, []
    for _ in range(5):
        sup.on_exit(s, EXIT_CRASHED, now)
        assert s.state == S.RESTARTING
        delays.append(s.restart_at - now)
        sup.tick(s.restart_at - 0.01)
        assert s.state == S.RESTARTING  # not a moment early
        now = s.restart_at
        sup.tick(now)
        assert s.state == S.STARTING
    assert delays == [1, 2, 4, 8, 8]
    sup.tick(now + 99)
    assert s.backoff == 8  # not stable yet
    sup.tick(now + 100)
    assert s.backoff == 0
    sup.on_exit(s, EXIT_CRASHED, now + 101)
    assert s.restart_at - (now + 101) == 1


def test_too_many_crashes_in_the_window_fail_the_session(sup):
    s, _ = start(sup)
    now = 0.0
    for _ in range(3):
        sup.on_exit(s, EXIT_CRASHED, now)
        now = s.restart_at
        sup.tick(now)
    sup.on_exit(s, EXIT_CRASHED, now)
    assert s.state == S.FAILED
    assert sup.rec.named("disconnected_instance") == [{"key": "k", "reason": "crash_loop"}]
    assert sup.paths.wanted_keys() == []  # not brought back by a node restart


def test_crashes_spread_out_do_not_trip_the_breaker(sup):
    s, _ = start(sup)
    for i in range(10):
        now = i * 61.0
        sup.on_exit(s, EXIT_CRASHED, now)
        sup.tick(s.restart_at)
    assert s.state == S.STARTING


def test_cannot_start_is_not_retried(sup):
    s, _ = start(sup)
    sup.on_exit(s, EXIT_CANNOT_START, 1.0)
    assert s.state == S.FAILED
    sup.tick(1000.0)
    assert len(sup.spawner.children) == 1
    # A new create starts it afresh.
    sup.create(Command("create_instance", "k"), delivery(), 1001.0)
    assert s.state == S.STARTING and len(sup.spawner.children) == 2


def test_session_ending_itself_is_reported_and_removed(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    sup.on_events(s, [{"event": "disconnected", "reason": "LOGOUT"}], 2.0)
    sup.on_exit(s, EXIT_ENDED, 2.1)
    assert sup.rec.named("disconnected_instance") == [{"key": "k", "reason": "LOGOUT"}]
    assert "k" not in sup.sessions and ("forget", "k") in sup.rec.redis
    assert not (sup.paths.sessions / "k").exists()  # a logged-out profile is deleted


def test_auth_failure_is_reported(sup):
    s, _ = start(sup)
    sup.on_events(s, [{"event": "auth_failure", "reason": "qr_attempts_exhausted"}], 2.0)
    sup.on_exit(s, EXIT_ENDED, 2.1)
    assert sup.rec.named("auth_failure_instance") == [{"key": "k", "reason": "qr_attempts_exhausted"}]
    assert "k" not in sup.sessions


def test_destroy_stops_then_acks(sup):
    s, _ = start(sup)
    child = s.child
    d = delivery("destroy_instance")
    sup.destroy(Command("destroy_instance", "k", logout=True), d, 5.0)
    assert s.state == S.STOPPING and child.sent[-1] == {"cmd": "stop", "logout": True}
    assert d.tag not in sup.rec.acked  # not before it is done
    sup.on_exit(s, EXIT_STOPPED, 6.0)
    assert d.tag in sup.rec.acked and "k" not in sup.sessions


def test_a_session_that_will_not_stop_is_killed(sup):
    s, _ = start(sup)
    sup.destroy(Command("destroy_instance", "k"), delivery("destroy_instance"), 0.0)
    sup.tick(19.9)
    assert not s.child.killed
    sup.tick(20.0)
    assert s.child.killed


def test_destroy_of_unknown_key_fails(sup):
    d = delivery("destroy_instance")
    sup.destroy(Command("destroy_instance", "nope"), d, 0.0)
    assert sup.rec.failed == [(d.tag, "unknown_instance")]


def test_send_goes_to_a_ready_session_and_is_acked_on_sent(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    d = delivery("send_message")
    sup.send(Command("send_message", "k", "c1", chat_id="1@c.us", text="hi"), d, 1.0)
    cmd = s.child.sent[-1]
    assert cmd["cmd"] == "send" and cmd["text"] == "hi"
    assert d.tag not in sup.rec.acked
    sup.on_events(s, [{"event": "sent", "id": cmd["id"], "message_id": "M"}], 1.1)
    assert d.tag not in sup.rec.acked  # not before the broker has its message_sent_instance
    sup.rec.confirm_all()
    assert d.tag in sup.rec.acked
    assert sup.rec.named("message_sent_instance") == [{"key": "k", "chat_id": "1@c.us", "message_id": "M",
                                                       "command_id": "c1"}]


def test_send_before_ready_fails_and_during_a_restart_waits(sup):
    s, _ = start(sup)
    early = delivery("send_message")
    sup.send(Command("send_message", "k", chat_id="1@c.us", text="x"), early, 0.0)
    assert sup.rec.failed == [(early.tag, "not_ready")]

    make_ready(sup, s)
    sup.on_exit(s, EXIT_CRASHED, 1.0)
    held = delivery("send_message")
    sup.send(Command("send_message", "k", chat_id="1@c.us", text="y"), held, 1.0)
    assert held.tag not in sup.rec.acked and (held.tag, "not_ready") not in sup.rec.failed
    sup.tick(s.restart_at)
    sup.on_events(s, [{"event": "ready", "me": "1@c.us"}], 3.0)
    assert s.child.sent[-1]["text"] == "y"

    sup.on_exit(s, EXIT_CRASHED, 4.0)
    late = delivery("send_message")
    sup.send(Command("send_message", "k", chat_id="1@c.us", text="z"), late, 4.0)
    sup.tick(4.0 + 20)
    assert (late.tag, "not_ready") in sup.rec.failed


def test_unanswered_sends_of_a_crashed_session_are_requeued(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    d = delivery("send_message")
    sup.send(Command("send_message", "k", chat_id="1@c.us", text="hi"), d, 1.0)
    sup.on_exit(s, EXIT_CRASHED, 2.0)
    assert sup.rec.requeued == [d.tag]


def test_health_check_kills_a_session_that_does_not_answer(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    sup.tick(29.0)
    assert not any(c["cmd"] == "ping" for c in s.child.sent)
    sup.tick(30.0)
    ping = s.child.sent[-1]
    assert ping["cmd"] == "ping"
    sup.on_events(s, [{"event": "pong", "id": ping["id"], "ok": True}], 30.5)
    sup.tick(60.0)
    ping = s.child.sent[-1]
    sup.tick(60.0 + 14.9)
    assert not s.child.killed
    sup.tick(60.0 + 15.0)
    assert s.child.killed


def test_a_pong_saying_the_page_hangs_kills_the_session(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    sup.tick(30.0)
    ping = s.child.sent[-1]
    sup.on_events(s, [{"event": "pong", "id": ping["id"], "ok": False, "detail": "page did not answer"}], 31.0)
    assert s.child.killed


def test_restore_brings_back_wanted_keys_staggered(sup):
    for key in ("a", "b", "c"):
        sup.paths.mark_wanted(key)
    sup.cfg = dataclasses.replace(sup.cfg, restore_stagger=2.0)
    assert sup.restore(10.0) == ["a", "b", "c"]
    sup.tick(10.0)
    assert [c.args.key for c in sup.spawner.children] == ["a"]
    sup.tick(12.0)
    sup.tick(14.0)
    assert [c.args.key for c in sup.spawner.children] == ["a", "b", "c"]


def test_no_illegal_transition(sup):
    s, _ = start(sup)
    with pytest.raises(AssertionError):
        sup.set_state(s, S.STOPPED, 0.0)


def test_a_send_with_an_id_is_done_at_most_once(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    first = delivery("send_message")
    cmd = Command("send_message", "k", "once", chat_id="1@c.us", text="hi")
    sup.send(cmd, first, 1.0)
    child_cmd = s.child.sent[-1]
    sup.on_events(s, [{"event": "sent", "id": child_cmd["id"], "message_id": "M1"}], 1.1)
    again = delivery("send_message")
    sup.send(cmd, again, 2.0)
    assert s.child.sent[-1] is child_cmd  # not sent twice
    assert again.tag not in sup.rec.acked  # acked once its (duplicate) event is confirmed
    sup.rec.confirm_all()
    assert again.tag in sup.rec.acked
    assert sup.rec.named("message_sent_instance")[-1]["duplicate"] is True


def test_a_send_in_doubt_is_not_repeated(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    cmd = Command("send_message", "k", "doubt", chat_id="1@c.us", text="hi")
    first = delivery("send_message")
    sup.send(cmd, first, 1.0)
    sup.on_exit(s, EXIT_CRASHED, 1.5)  # crashed mid-send: did it go out?
    assert sup.rec.requeued == [first.tag]
    sup.tick(s.restart_at)
    sup.on_events(s, [{"event": "ready", "me": "1@c.us"}], 3.0)
    redelivered = delivery("send_message")
    sup.send(cmd, redelivered, 3.0)
    assert (redelivered.tag, "outcome_unknown") in sup.rec.failed
    assert (redelivered.tag, "k", "doubt") in sup.rec.failed_about  # the client learns which command


def test_a_send_that_failed_may_be_retried_with_its_id(sup):
    s, _ = start(sup)
    make_ready(sup, s)
    cmd = Command("send_message", "k", "retry", chat_id="1@c.us", text="hi")
    sup.send(cmd, delivery("send_message"), 1.0)
    sup.on_events(s, [{"event": "send_failed", "id": s.child.sent[-1]["id"], "reason": "timeout"}], 2.0)
    sup.send(cmd, delivery("send_message"), 3.0)
    assert s.child.sent[-1]["text"] == "hi" and len([c for c in s.child.sent if c["cmd"] == "send"]) == 2


def test_starts_beyond_the_concurrency_wait_their_turn(sup):
    sup.start_limit = 2
    for key in ("a", "b", "c"):
        start(sup, key)
    assert [c.args.key for c in sup.spawner.children] == ["a", "b"]
    assert sup.sessions["c"].state == S.STARTING and sup.sessions["c"].child is None
    sup.on_events(sup.sessions["a"], [{"event": "qr", "qr": "q", "attempt": 1}], 1.0)  # a is done booting
    assert [c.args.key for c in sup.spawner.children] == ["a", "b", "c"]


def test_a_session_that_finishes_booting_while_stopping_stays_stopping(sup):
    s, _ = start(sup)
    sup.destroy(Command("destroy_instance", "k"), delivery("destroy_instance"), 1.0)
    sup.on_events(s, [{"event": "qr", "qr": "q", "attempt": 1}, {"event": "authenticated"},
                      {"event": "ready", "me": "1@c.us"}], 1.1)
    assert s.state == S.STOPPING
    assert not sup.rec.named("ready_instance")

"""The session rules (state machine, restarts, health, boot deadline, start
slots), with time handed in and the broker, Redis and the OS replaced by
fakes; the node's real parts are wired as in production (``wiring``)."""

from __future__ import annotations

import pytest

from sessionproc.protocol import EXIT_CANNOT_START, EXIT_CRASHED, EXIT_ENDED, EXIT_STOPPED
from support import delivery, node_rig
from wwnode import states as S
from wwnode.health import BOOT_MARGIN
from wwnode.commands import Command


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path)


def test_create_spawns_and_acks_and_twice_is_once(rig):
    rec, d = rig.start()
    assert rec.state == S.STARTING and d.tag in rig.broker.acked
    d2 = delivery()
    rig.carry_out(Command("create_instance", "k"), d2, 1.0)
    assert d2.tag in rig.broker.acked and len(rig.spawner.children) == 1
    assert rig.node.paths.wanted_keys() == ["k"]


def test_ready_names_the_accounts_lid_beside_its_number_where_the_session_knows_it(rig):
    rec, _ = rig.start()
    rig.say(rec, {"event": "authenticated"}, {"event": "ready", "me": "1@c.us", "me_lid": "123456789012345@lid"})
    assert rig.broker.events("ready_instance") == [{"key": "k", "me": "1@c.us", "me_lid": "123456789012345@lid"}]
    other, _ = rig.start("k2")
    rig.say(other, {"event": "authenticated"}, {"event": "ready", "me": "2@c.us"})
    assert rig.broker.events("ready_instance")[1] == {"key": "k2", "me": "2@c.us"}  # as before


def test_every_change_goes_to_redis_then_to_the_event(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    assert rec.state == S.READY and rec.linked
    assert ("qr", "k", "a,b,c,d,e") in rig.store.writes and ("clear_qr", "k") in rig.store.writes
    assert rig.store.states("k") == [S.STARTING, S.QR, S.READY]
    announced = rig.broker.events("state_instance")
    assert [(b["previous"], b["state"]) for b in announced] == [(None, S.STARTING), (S.STARTING, S.QR),
                                                                 (S.QR, S.READY)]


def paused_past_its_lease(tmp_path):
    """A node with a session showing its QR code, whose last renewal was
    at 0, back from a pause past its lease at the clock's ``now``."""
    now = [0.0]
    rig = node_rig(tmp_path, clock=lambda: now[0])
    rec, _ = rig.start()
    rig.say(rec, {"event": "qr", "qr": "a,b,c,d,e", "attempt": 1})
    rig.node._renew_leases(0.0)
    now[0] = rig.cfg.lease_ttl + 1
    # A line its session wrote during the pause (or one being handled
    # when the pause came: the state change after ``ready_instance``).
    rig.say(rec, {"event": "authenticated"}, {"event": "ready", "me": "1@c.us"}, now=now[0])
    assert rig.broker.events("ready_instance") == [{"key": "k", "me": "1@c.us"}]  # a fact: it did link
    assert [e["state"] for e in rig.broker.events("state_instance")] == [S.STARTING, S.QR]  # held
    return rig, now[0]


def test_a_node_back_from_a_pause_says_nothing_as_owner_of_a_key_another_node_took(tmp_path):
    rig, now = paused_past_its_lease(tmp_path)
    rig.store.owners["k"] = "node-b:9"  # another node runs the key now
    rig.node._renew_leases(now)
    assert rig.sessions.get("k") is None and rig.node.processes.buried
    assert [e["state"] for e in rig.broker.events("state_instance")] == [S.STARTING, S.QR]
    rig.start("k2", now)  # what it says of its other keys goes out at once again
    assert rig.broker.events("state_instance")[-1] == {"key": "k2", "state": S.STARTING, "previous": None}


def test_a_node_back_from_a_pause_that_kept_its_lease_says_what_it_held(tmp_path):
    rig, now = paused_past_its_lease(tmp_path)
    rig.node._renew_leases(now)
    assert rig.sessions.get("k").state == S.READY
    assert [e["state"] for e in rig.broker.events("state_instance")] == [S.STARTING, S.QR, S.READY]


def test_backoff_doubles_to_a_cap_and_resets_after_a_stable_run(tmp_path):
    rig = node_rig(tmp_path, crash_limit=100)
    rec, _ = rig.start()
    now, delays = 0.0, []
    for _ in range(5):
        rig.exit(rec, EXIT_CRASHED, now)
        assert rec.state == S.RESTARTING
        delays.append(rec.restart_at - now)
        rig.sessions.tick(rec.restart_at - 0.01)
        assert rec.state == S.RESTARTING  # not a moment early
        now = rec.restart_at
        rig.sessions.tick(now)
        assert rec.state == S.STARTING
        rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=now)  # booted: no boot deadline
    assert delays == [1, 2, 4, 8, 8]
    rig.sessions.tick(now + 99)
    rig.exit(rec, EXIT_CRASHED, now + 99.5)
    assert rec.restart_at - (now + 99.5) == 8  # not stable yet: the backoff stays
    started = rec.restart_at
    rig.sessions.tick(started)
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=started)
    rig.sessions.tick(started + 100)  # stable now
    rig.exit(rec, EXIT_CRASHED, started + 101)
    assert rec.restart_at - (started + 101) == 1
    assert rig.counters.get("crashes") == 7 and rig.counters.get("restarts") == 6


def test_too_many_crashes_in_the_window_fail_the_session(rig):
    rec, _ = rig.start()
    now = 0.0
    for _ in range(3):
        rig.exit(rec, EXIT_CRASHED, now)
        now = rec.restart_at
        rig.sessions.tick(now)
    rig.exit(rec, EXIT_CRASHED, now)
    assert rec.state == S.FAILED
    assert rig.broker.events("disconnected_instance") == [{"key": "k", "reason": "crash_loop"}]
    assert rig.node.paths.wanted_keys() == []  # not brought back by a node restart


def test_crashes_spread_out_do_not_trip_the_breaker(rig):
    rec, _ = rig.start()
    for i in range(10):
        now = i * 61.0
        rig.exit(rec, EXIT_CRASHED, now)
        rig.sessions.tick(rec.restart_at)
    assert rec.state == S.STARTING


def test_cannot_start_is_not_retried(rig):
    rec, _ = rig.start()
    rig.exit(rec, EXIT_CANNOT_START, 1.0)
    assert rec.state == S.FAILED
    assert rig.broker.events("disconnected_instance") == [{"key": "k", "reason": "cannot_start"}]
    rig.sessions.tick(1000.0)
    assert len(rig.spawner.children) == 1
    # A new create starts it afresh.
    rig.carry_out(Command("create_instance", "k"), delivery(), 1001.0)
    assert rec.state == S.STARTING and len(rig.spawner.children) == 2


def test_cannot_start_carries_the_reason_the_session_gave(rig):
    rec, _ = rig.start()
    rig.say(rec, {"event": "disconnected", "reason": "incompatible_page", "detail": "no WAWebCollections.Msg"})
    rig.exit(rec, EXIT_CANNOT_START, 1.0)
    assert rec.state == S.FAILED
    assert rig.broker.events("disconnected_instance") == [
        {"key": "k", "reason": "incompatible_page", "detail": "no WAWebCollections.Msg"}]
    rig.sessions.tick(1000.0)
    assert len(rig.spawner.children) == 1  # not retried


def test_session_ending_itself_is_reported_and_removed(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.say(rec, {"event": "disconnected", "reason": "LOGOUT"}, now=2.0)
    rig.exit(rec, EXIT_ENDED, 2.1)
    assert rig.broker.events("disconnected_instance") == [{"key": "k", "reason": "LOGOUT"}]
    assert not rig.sessions.has("k") and ("release", "k") in rig.store.writes
    assert not (rig.node.paths.sessions / "k").exists()  # a logged-out profile is deleted


def test_auth_failure_is_reported(rig):
    rec, _ = rig.start()
    rig.say(rec, {"event": "auth_failure", "reason": "qr_attempts_exhausted"}, now=2.0)
    rig.exit(rec, EXIT_ENDED, 2.1)
    assert rig.broker.events("auth_failure_instance") == [{"key": "k", "reason": "qr_attempts_exhausted"}]
    assert not rig.sessions.has("k")


def test_destroy_stops_then_acks(rig):
    rec, _ = rig.start()
    child = rec.child
    d = delivery("destroy_instance")
    rig.carry_out(Command("destroy_instance", "k", logout=True), d, 5.0)
    assert rec.state == S.STOPPING and child.sent[-1] == {"cmd": "stop", "logout": True}
    assert d.tag not in rig.broker.acked  # not before it is done
    rig.exit(rec, EXIT_STOPPED, 6.0)
    assert d.tag in rig.broker.acked and not rig.sessions.has("k")
    assert rig.broker.events("state_instance")[-1] == {"key": "k", "state": S.STOPPED, "previous": S.STOPPING}


def test_a_session_that_will_not_stop_is_killed(rig):
    rec, _ = rig.start()
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 0.0)
    rig.sessions.tick(19.9)
    assert not rec.child.killed
    rig.sessions.tick(20.0)
    assert rec.child.killed


def test_destroy_of_unknown_key_fails(rig):
    d = delivery("destroy_instance")
    rig.carry_out(Command("destroy_instance", "nope"), d, 0.0)
    assert rig.broker.failed() == [(d.tag, "unknown_instance")]


def test_health_check_kills_a_session_that_does_not_answer(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.sessions.tick(29.0)
    assert not rec.child.commands("ping")
    rig.sessions.tick(30.0)
    ping = rec.child.sent[-1]
    assert ping["cmd"] == "ping"
    rig.say(rec, {"event": "pong", "id": ping["id"], "ok": True}, now=30.5)
    rig.sessions.tick(60.0)
    rig.sessions.tick(60.0 + 14.9)
    assert not rec.child.killed
    rig.sessions.tick(60.0 + 15.0)
    assert rec.child.killed


def test_a_pong_saying_the_page_hangs_kills_the_session(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.sessions.tick(30.0)
    ping = rec.child.sent[-1]
    rig.say(rec, {"event": "pong", "id": ping["id"], "ok": False, "detail": "page did not answer"}, now=31.0)
    assert rec.child.killed


def inbound(rig, rec, n: int, now: float) -> None:
    """The page reports a message (the flood of one chat)."""
    rig.say(rec, {"event": "message", "message": {"id": {"_serialized": f"false_1@c.us_M{n}", "id": f"M{n}"},
                                                  "body": f"#{n}"}}, now=now)


def test_a_page_busy_reporting_is_not_killed_for_a_late_pong(rig):
    """Under a flood the pong waits behind the messages: the page that keeps
    reporting is alive; one that falls silent is killed as before."""
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.sessions.tick(30.0)
    assert rec.child.sent[-1]["cmd"] == "ping"
    for n, t in enumerate((33.0, 38.0, 44.0)):
        inbound(rig, rec, n, t)
    rig.sessions.tick(45.0)  # the ping's deadline: PING_TIMEOUT + 5 s
    assert not rec.child.killed and rig.counters.get("pings_busy") == 1
    inbound(rig, rec, 3, 50.0)
    rig.sessions.tick(60.0)
    assert not rec.child.killed
    rig.sessions.tick(75.0)  # nothing from the page for a whole deadline
    assert rec.child.killed and rig.counters.get("health_kills") == 1


def test_a_late_pong_of_a_busy_page_is_taken(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.sessions.tick(30.0)
    ping = rec.child.sent[-1]
    inbound(rig, rec, 0, 40.0)
    rig.sessions.tick(45.0)
    rig.say(rec, {"event": "pong", "id": ping["id"], "ok": True}, now=50.0)
    rig.sessions.tick(75.0)
    assert not rec.child.killed
    assert rec.child.sent[-1]["cmd"] == "ping" and rec.child.sent[-1]["id"] != ping["id"]  # the next one, at 60


def test_a_page_too_busy_to_answer_a_ping_is_asked_again_while_it_reports(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.sessions.tick(30.0)
    ping = rec.child.sent[-1]
    inbound(rig, rec, 0, 31.0)
    rig.say(rec, {"event": "pong", "id": ping["id"], "ok": False, "detail": "page did not answer in 10 s"}, now=40.0)
    assert not rec.child.killed and rig.counters.get("pings_busy") == 1
    rig.sessions.tick(59.9)
    assert rec.child.sent[-1] == ping  # the next ping at its time
    rig.sessions.tick(60.0)
    again = rec.child.sent[-1]
    assert again["cmd"] == "ping" and again["id"] != ping["id"]
    rig.say(rec, {"event": "pong", "id": again["id"], "ok": False, "detail": "page did not answer in 10 s"},
            now=70.0)
    assert rec.child.killed  # nothing from the page since: hung


def test_a_boot_reporting_its_backlog_gets_more_time(rig):
    """A restored page is handed every message it missed before it is
    ready; reporting them is progress, not a hung boot.  (Killed for
    overstaying its boot, it came back to a backlog larger still: a loop.)"""
    rec, _ = rig.start()
    rig.say(rec, {"event": "loaded", "version": "2.3", "user_agent": "x", "webdriver": False}, now=1.0)
    limit = rig.cfg.boot_timeout + BOOT_MARGIN
    t = 1.0
    for n in range(10):
        t += limit - 1
        inbound(rig, rec, n, t)
        rig.sessions.tick(t)
    assert t > 5 * limit and not rec.child.killed and rec.state == S.STARTING
    assert len(rig.broker.events("message_instance")) == 10  # reported as they come, before ready
    rig.sessions.tick(t + limit - 0.1)
    assert not rec.child.killed
    rig.sessions.tick(t + limit)
    assert rec.child.killed and rig.counters.get("boot_timeouts") == 1


def test_restore_brings_back_wanted_keys_staggered_once_their_lease_is_ours(tmp_path):
    rig = node_rig(tmp_path, restore_stagger=2.0)
    for key in ("a", "b", "c"):
        rig.node.paths.mark_wanted(key)
    assert rig.sessions.restore(10.0) == ["a", "b", "c"]
    assert not rig.broker.events("state_instance")  # clients never saw them stop
    rig.sessions.tick(10.0)
    assert rig.spawner.keys() == []  # no lease yet: they wait
    assert rig.sessions.waiting_for_lease() == ["a", "b", "c"]
    for key in ("a", "b", "c"):
        rig.ownership.claim(key)
    rig.sessions.tick(10.0)
    assert rig.spawner.keys() == ["a"]
    rig.sessions.tick(12.0)
    rig.sessions.tick(14.0)
    assert rig.spawner.keys() == ["a", "b", "c"]
    assert rig.counters.get("restarts") == 0  # a restore is not a restart


def test_an_illegal_transition_ends_that_session_not_the_node(rig):
    rec, _ = rig.start()
    other, _ = rig.start("other")
    rig.sessions.set_state(rec, S.STOPPED, 0.0)  # starting -> stopped is no transition
    assert rec.state == S.STARTING and rec.child.killed
    assert not other.child.killed
    assert rig.counters.get("illegal_transitions") == 1
    rig.exit(rec, -9, 1.0)
    assert rec.state == S.RESTARTING  # its death is a crash like any other


def test_starts_beyond_the_concurrency_wait_their_turn(tmp_path):
    rig = node_rig(tmp_path, start_concurrency=2)
    for key in ("a", "b", "c"):
        rig.start(key)
    assert rig.spawner.keys() == ["a", "b"]
    assert rig.sessions.get("c").state == S.STARTING and rig.sessions.get("c").child is None
    rig.say(rig.sessions.get("a"), {"event": "qr", "qr": "q", "attempt": 1}, now=1.0)  # a is done booting
    assert rig.spawner.keys() == ["a", "b", "c"]


def test_a_session_that_finishes_booting_while_stopping_stays_stopping(rig):
    rec, _ = rig.start()
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 1.0)
    rig.say(rec, {"event": "qr", "qr": "q", "attempt": 1}, {"event": "authenticated"},
        {"event": "ready", "me": "1@c.us"}, now=1.1)
    assert rec.state == S.STOPPING
    assert not rig.broker.events("ready_instance")


def test_a_session_stuck_booting_is_killed_as_a_crash_and_frees_its_slot(tmp_path):
    rig = node_rig(tmp_path, start_concurrency=1, boot_timeout=60)
    stuck, _ = rig.start("stuck", now=0.0)
    rig.start("next", now=1.0)
    assert rig.spawner.keys() == ["stuck"]  # the one slot is taken
    deadline = 60 + BOOT_MARGIN  # the session's own report of a boot timeout comes first
    rig.sessions.tick(deadline - 0.1)
    assert not stuck.child.killed
    rig.sessions.tick(deadline)
    assert stuck.child.killed and rig.counters.get("boot_timeouts") == 1
    rig.exit(stuck, -9, deadline + 0.1)
    assert stuck.state == S.RESTARTING and rig.counters.get("crashes") == 1
    rig.sessions.tick(deadline + 0.1)  # the same turn of the loop
    assert rig.spawner.keys() == ["stuck", "next"]  # its slot went to the next start


def test_a_page_load_the_session_reports_gives_the_boot_a_new_budget(tmp_path):
    rig = node_rig(tmp_path, boot_timeout=60)
    rec, _ = rig.start("k", now=0.0)
    rig.say(rec, {"event": "loaded", "version": "2.3000.1", "user_agent": "UA", "webdriver": False}, now=50.0)
    rig.sessions.tick(60 + BOOT_MARGIN + 1)
    assert not rec.child.killed  # a linked profile syncing after a slow load
    rig.sessions.tick(50 + 60 + BOOT_MARGIN)
    assert rec.child.killed and rig.counters.get("boot_timeouts") == 1


def test_a_session_showing_a_qr_code_has_no_boot_deadline(rig):
    rec, _ = rig.start()
    rig.say(rec, {"event": "qr", "qr": "q", "attempt": 1}, now=1.0)
    rig.sessions.tick(600.0)
    assert not rec.child.killed


def test_a_session_that_breaks_the_protocol_is_ended_as_a_crash(rig):
    rec, _ = rig.start()
    other, _ = rig.start("other")
    rig.make_ready(rec)
    rec.child.break_protocol("qr needs qr")
    rig.node._session_output(rec, rec.child, 1.0)
    assert rec.child.killed and rig.counters.get("bad_events") == 1
    rig.node._session_output(rec, rec.child, 1.1)
    assert rig.counters.get("bad_events") == 1  # reported once
    rig.exit(rec, -9, 1.2)
    assert rec.state == S.RESTARTING and rig.counters.get("crashes") == 1
    assert not other.child.killed and other.state == S.STARTING


def test_a_process_that_cannot_be_spawned_is_a_crash(rig):
    rig.spawner.broken = True
    rec, d = rig.start()
    assert rec.state == S.RESTARTING and d.tag in rig.broker.acked
    assert rig.counters.get("crashes") == 1


def test_a_lost_lease_drops_the_session_without_a_word(rig):
    rec, _ = rig.start()
    child = rec.child
    destroy = delivery("destroy_instance")
    rig.carry_out(Command("destroy_instance", "k"), destroy, 1.0)
    events_before = len(rig.broker.published)
    writes_before = len(rig.store.writes)
    rig.node._drop("k", 2.0)
    assert not rig.sessions.has("k") and child.killed and rig.processes.buried == [child]
    assert len(rig.broker.published) == events_before and len(rig.store.writes) == writes_before
    assert rig.broker.requeued == [destroy.tag]  # routed again, to the new owner
    assert rig.node.paths.wanted_keys() == []


def test_the_heartbeat_carries_the_counters(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)
    rig.start("other")
    hb = rig.node.heartbeat()
    assert hb["crashes"] == 1 and hb["restarts"] == 0 and hb["redis_up"] == 1
    assert hb["sessions_restarting"] == 1 and hb["sessions_starting"] == 1 and hb["sessions_ready"] == 0
    assert hb["outbox"] == len(rig.broker.outbox)

"""SESSION_MEMORY_LIMIT: a session whose browser grew too big is restarted
at a quiet moment.  The node's parts around fakes; the measure and time
are handed in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from support import delivery, node_rig
from wwnode.commands import Command
from wwnode.memory import tree_pss_mb


class Meter:
    """Memory in MB by pid, as the test sets it; counts the measures."""

    def __init__(self):
        self.mb: dict[int, float] = {}
        self.measured: list[int] = []

    def __call__(self, pid: int, cutoff: float) -> float:
        self.measured.append(pid)
        return self.mb.get(pid, 100.0)


@pytest.fixture
def meter():
    return Meter()


def rig_with(tmp_path, meter, limit=500.0):
    # Pings far apart: these fake children do not answer them.
    return node_rig(tmp_path, measure=meter, session_memory_limit=limit, memory_check_interval=60,
                    ping_interval=10_000)


def ready(rig, key):
    rec, _ = rig.start(key)
    rig.make_ready(rec)
    return rec


def test_a_session_over_the_limit_is_restarted_from_its_profile_and_says_why(tmp_path, meter):
    rig = rig_with(tmp_path, meter)
    rec = ready(rig, "k1")
    first = rec.child
    rig.node._tick(0)
    rig.node._tick(30)
    assert meter.measured == []  # a fresh start settles first
    rig.node._tick(60)
    assert meter.measured == [first.pid] and first.commands("stop") == []  # 100 MB: under the limit
    meter.mb[first.pid] = 800.0
    rig.node._tick(119)
    assert meter.measured == [first.pid]  # every interval, not every turn
    rig.node._tick(120)
    assert first.commands("stop") == [{"cmd": "stop", "logout": False}]
    assert rec.state == "restarting"
    assert rig.broker.events("state_instance")[-1] == {"key": "k1", "state": "restarting", "previous": "ready",
                                                        "reason": "memory_limit"}
    rig.exit(rec, 0, now=121)
    rig.node._tick(121)
    assert rec.child is None  # it backs off as after a crash: BACKOFF_INITIAL
    rig.node._tick(122)
    assert rec.child is not None and rec.child is not first
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=122)  # linked: no QR code
    assert rec.state == "ready"
    hb = rig.node.heartbeat()
    assert hb["memory_restarts"] == 1 and hb["crashes"] == 0 and hb["restarts"] == 0
    assert rig.broker.events("disconnected_instance") == []


def send(rig, text: str, now: float):
    d = delivery("send_message", {"key": "k1"})
    rig.sends.send(Command("send_message", "k1", chat_id="5511999990001@c.us", text=text), d, now)
    return d


def test_a_busy_session_over_the_limit_is_restarted_once_its_send_in_flight_is_done(tmp_path, meter):
    rig = rig_with(tmp_path, meter)
    rec = ready(rig, "k1")
    first = rec.child
    meter.mb[first.pid] = 800.0
    rig.node._tick(0)
    send(rig, "one", 59)
    rig.node._tick(60)
    assert first.commands("stop") == [] and rec.state == "ready"  # a send is in flight
    # A steady stream of sends never left a moment with none in flight: the
    # ones that come now wait for the restart instead of going to the page.
    send(rig, "two", 60.5)
    assert [c["text"] for c in first.commands("send")] == ["one"]
    sent_id = first.commands("send")[0]["id"]
    rig.say(rec, {"event": "sent", "id": sent_id, "message_id": "true_x_1"}, now=61)
    rig.node._tick(61)
    assert first.commands("stop") == [{"cmd": "stop", "logout": False}]  # safe now: no new measure needed
    assert meter.measured == [first.pid]
    rig.exit(rec, 0, now=62)
    rig.node._tick(63)
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=64)
    assert [c["text"] for c in rec.child.commands("send")] == ["two"]  # the send that waited goes now
    assert [c["text"] for c in first.commands("send")] == ["one"]


def test_a_session_showing_a_qr_code_is_measured_and_restarted_at_once(tmp_path, meter):
    rig = rig_with(tmp_path, meter, limit=1)
    rec, _ = rig.start("k1")
    rig.say(rec, {"event": "qr", "qr": "a,b,c,d,e", "attempt": 1})
    rig.node._tick(0)
    rig.node._tick(60)
    assert meter.measured == [rec.child.pid]
    assert rec.child.commands("stop") == [{"cmd": "stop", "logout": False}] and rec.state == "restarting"


def back_ready(rig, rec, now: float) -> float:
    """Turns of the loop until the session is started again, then ready (a
    linked profile: no QR code); the time then."""
    for _ in range(200):
        if rec.child is not None:
            break
        now += 0.5
        rig.node._tick(now)
    assert rec.child is not None, "not started again"
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=now)
    rig.node._tick(now)
    return now


def test_memory_restarts_back_off_and_end_failed_after_the_breaker(tmp_path, meter):
    """A page over the limit as soon as it has booted: restarted after a
    growing back-off, and failed with the reason once more than CRASH_LIMIT
    restarts in a row did not bring it under (none measured under between)."""
    rig = rig_with(tmp_path, meter)
    rec = ready(rig, "k1")
    now, waits = 0.0, []
    rig.node._tick(now)
    for _ in range(rig.cfg.crash_limit + 1):
        meter.mb[rec.child.pid] = 800.0
        now += 60
        rig.node._tick(now)  # measured: over, and quiet: restarted
        assert rec.state == "restarting"
        now += 1
        rig.exit(rec, 0, now=now)
        if rec.state == "failed":
            break
        stopped = now
        now = back_ready(rig, rec, now)
        waits.append(now - stopped)  # how long it waited to start again
    assert waits == [1.0, 2.0, 4.0]  # BACKOFF_INITIAL, doubling
    assert rec.state == "failed" and rec.child is None
    assert rig.broker.events("state_instance")[-1] == {"key": "k1", "state": "failed", "previous": "restarting",
                                                        "reason": "memory_limit"}
    assert rig.broker.events("disconnected_instance") == [{"key": "k1", "reason": "memory_limit"}]
    hb = rig.node.heartbeat()
    assert hb["memory_restarts"] == rig.cfg.crash_limit + 1 and hb["crashes"] == 0 and hb["restarts"] == 0


def test_a_page_found_back_under_the_limit_starts_a_new_count(tmp_path, meter):
    rig = rig_with(tmp_path, meter)
    rec = ready(rig, "k1")
    now = 0.0
    rig.node._tick(now)
    for round_ in range(2 * rig.cfg.crash_limit):
        now += 60
        rig.node._tick(now)  # measured under the limit: the page grows only later
        meter.mb[rec.child.pid] = 800.0
        now += 60
        rig.node._tick(now)
        assert rec.state == "restarting", round_
        now += 1
        rig.exit(rec, 0, now=now)
        now = back_ready(rig, rec, now)
    assert rec.state == "ready"


def test_one_session_is_measured_per_turn(tmp_path, meter):
    rig = rig_with(tmp_path, meter)
    recs = [ready(rig, k) for k in ("k1", "k2", "k3")]
    rig.node._tick(0)
    rig.node._tick(60)
    rig.node._tick(60.25)
    assert len(meter.measured) == 2
    rig.node._tick(60.5)
    assert sorted(meter.measured) == sorted(r.child.pid for r in recs)


def test_a_restart_that_does_not_stop_is_killed_and_the_session_comes_back(tmp_path, meter):
    rig = rig_with(tmp_path, meter)
    rec = ready(rig, "k1")
    meter.mb[rec.child.pid] = 800.0
    first = rec.child
    rig.node._tick(0)
    rig.node._tick(60)
    assert rec.state == "restarting" and not first.killed
    rig.node._tick(60 + rig.cfg.stop_timeout)
    assert first.killed
    rig.exit(rec, -9, now=81)
    rig.node._tick(82)
    assert rec.child is not None and rec.child is not first and rig.node.heartbeat()["crashes"] == 0


def test_with_no_limit_nothing_is_measured(tmp_path, meter):
    rig = node_rig(tmp_path, measure=meter)
    ready(rig, "k1")
    for t in (60, 120, 600):
        rig.node._tick(t)
    assert meter.measured == []


def test_the_real_measure_sums_a_process_tree():
    # A tree of its own: a shell whose child holds 60 MB it wrote to.
    child = f"{sys.executable} -c \"x = b'x' * 60 * 2**20; print(1, flush=True); import time; time.sleep(60)\""
    holder = subprocess.Popen(["sh", "-c", f"{child}; true"], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout.readline() == b"1\n"
        assert len(psutil.Process(holder.pid).children()) == 1
        pss = tree_pss_mb(holder.pid)
        rss = tree_pss_mb(holder.pid, cutoff=100_000)  # under the cutoff: the RSS sum, PSS not read
        assert 60 < pss <= rss < 100_000
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    assert tree_pss_mb(2 ** 22 + 1) == 0.0  # no such process


@pytest.mark.parametrize("env", [{"SESSION_MEMORY_LIMIT": "-1"}, {"MEMORY_CHECK_INTERVAL": "0"}])
def test_bad_memory_settings_are_refused(env):
    from wwnode.config import ConfigError, load

    with pytest.raises(ConfigError):
        load(environ=env, dotenv=None)
    assert load(environ={"SESSION_MEMORY_LIMIT": "1500"}, dotenv=None).session_memory_limit == 1500

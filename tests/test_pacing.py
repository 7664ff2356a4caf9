"""Boots paced from the machine's cores and load, and a boot that is merely
slow on a busy machine not counted as a crash (issue 12): the rule
(``wwnode/pacing.py``) and the node's session rules around it, with time
handed in and fakes at the edges (``support.node_rig``)."""

from __future__ import annotations

import select

from sessionproc.protocol import EXIT_CRASHED
from support import FakeLoad, node_rig, wait_for
from wwnode.blobstore import open_blob_store
from wwnode import states as S
from wwnode.admission import Reading
from wwnode.health import BOOT_MARGIN
from wwnode.pacing import SLOW_BOOT_LIMIT, SLOW_BROWSER, boot_limit, usable_cores
from wwnode.snapshots import Snapshots


def test_one_boot_per_core_that_other_work_leaves_free():
    assert boot_limit(cores=2, cpu_percent=0, booting=0) == 2
    assert boot_limit(cores=8, cpu_percent=25, booting=0) == 6
    assert boot_limit(cores=2, cpu_percent=50, booting=0) == 1  # other work takes a core
    assert boot_limit(cores=2, cpu_percent=100, booting=0) == 1  # always one: a busy node still starts sessions
    # The boots in flight keep the CPU busy themselves: a burst does not slow
    # itself down, but never passes one per core.
    assert boot_limit(cores=2, cpu_percent=100, booting=2) == 2
    assert boot_limit(cores=2, cpu_percent=0, booting=5) == 2
    assert boot_limit(cores=0.5, cpu_percent=0, booting=0) == 1


def test_the_cores_are_the_cgroup_quota_else_the_cpus_the_node_may_run_on():
    assert usable_cores(2.5) == 2.5
    assert usable_cores(None) >= 1


def _busy(rig, cpu: float = 95.0) -> None:
    for _ in range(rig.cfg.load_window):
        rig.node.admission.update(Reading(cpu, 10.0), 0)


def _qr(rig, rec, now: float) -> None:
    rig.say(rec, {"event": "qr", "qr": f"q-{rec.key}", "attempt": 1}, now=now)


def test_by_default_a_burst_boots_one_per_free_core_and_the_rest_wait(tmp_path):
    rig = node_rig(tmp_path, load=FakeLoad(cpus=2))
    for key in "abcde":
        rig.start(key)
    assert rig.spawner.keys() == ["a", "b"]
    _qr(rig, rig.sessions.get("a"), 1.0)
    assert rig.spawner.keys() == ["a", "b", "c"]
    # Other work takes the machine: one at a time (the boots in flight
    # count as their own).
    _busy(rig, cpu=100.0)
    _qr(rig, rig.sessions.get("b"), 2.0)
    _qr(rig, rig.sessions.get("c"), 3.0)
    assert rig.spawner.keys() == ["a", "b", "c", "d"]
    assert rig.sessions.get("e").child is None and rig.sessions.get("e").state == S.STARTING


def test_a_create_starts_as_soon_as_its_restore_check_is_done(tmp_path):
    # A fresh start first asks the blob store for a saved login (portable.py),
    # on a worker thread; its end wakes the node's loop, and the start goes
    # in the turn that collects it, not one or two turns (a quarter second
    # each) later.
    rig = node_rig(tmp_path / "data", load=FakeLoad(cpus=2),
                   snapshots=Snapshots(open_blob_store("", tmp_path / "blobs")))
    rec, _ = rig.start("k1")
    waker = rig.node.waker  # the one the loop polls
    wait_for(lambda: select.select([waker.read_fd], [], [], 0)[0], what="the restore check's end to wake the loop")
    rig.node._tick(1.0)
    assert rig.spawner.keys() == ["k1"] and rec.child is not None


def test_a_fixed_start_concurrency_ignores_the_load(tmp_path):
    rig = node_rig(tmp_path, load=FakeLoad(cpus=2), start_concurrency=3)
    _busy(rig, cpu=100.0)
    for key in "abcd":
        rig.start(key)
    assert rig.spawner.keys() == ["a", "b", "c"]


def _time_out(rig, rec, now: float) -> None:
    """The session says its page did not load in time, and exits."""
    rig.say(rec, {"event": "disconnected", "reason": "boot_timeout", "detail": "slow"}, now=now)
    rig.exit(rec, EXIT_CRASHED, now)


def _slow_boots(rig, rec, n: int) -> float:
    """``n`` boots in a row that run out of time, each started again;
    returns the time of the last."""
    now = 0.0
    for _ in range(n):
        now += 60.0
        _time_out(rig, rec, now)
        rig.sessions.tick(now)
    return now


def test_a_boot_that_runs_out_of_time_on_a_busy_machine_starts_again_without_a_crash(tmp_path):
    rig = node_rig(tmp_path)
    _busy(rig)
    rec, _ = rig.start("slow", now=0.0)
    _time_out(rig, rec, 60.0)
    assert rec.state == S.RESTARTING and rig.counters.get("crashes") == 0
    assert rig.counters.get("slow_boots") == 1
    assert rig.broker.events("state_instance")[-1] == {"key": "slow", "state": "restarting", "previous": "starting",
                                                       "reason": "slow_boot"}
    rig.sessions.tick(60.0)  # no backoff: started again at once, through the start slots
    assert rec.state == S.STARTING and len(rig.spawner.children) == 2
    assert not rig.broker.events("disconnected_instance")


def test_slow_boots_in_a_row_count_as_a_crash_past_the_limit(tmp_path):
    rig = node_rig(tmp_path)
    _busy(rig)
    rec, _ = rig.start("slow", now=0.0)
    now = _slow_boots(rig, rec, SLOW_BOOT_LIMIT)
    assert rig.counters.get("slow_boots") == SLOW_BOOT_LIMIT and rig.counters.get("crashes") == 0
    now += 60.0
    _time_out(rig, rec, now)
    assert rec.state == S.RESTARTING and rig.counters.get("crashes") == 1


def test_a_boot_that_comes_up_starts_the_count_of_slow_boots_again(tmp_path):
    rig = node_rig(tmp_path)
    _busy(rig)
    rec, _ = rig.start("slow", now=0.0)
    now = _slow_boots(rig, rec, SLOW_BOOT_LIMIT)
    _qr(rig, rec, now + 1)  # it came up
    rig.exit(rec, EXIT_CRASHED, now + 2)  # a crash after booting: a crash
    assert rig.counters.get("crashes") == 1
    rig.sessions.tick(now + 100)
    _time_out(rig, rec, now + 200)
    assert rig.counters.get("slow_boots") == SLOW_BOOT_LIMIT + 1 and rig.counters.get("crashes") == 1


def test_on_a_machine_that_is_not_busy_a_boot_that_runs_out_of_time_is_a_crash(tmp_path):
    rig = node_rig(tmp_path)
    rec, _ = rig.start("slow", now=0.0)
    _time_out(rig, rec, 60.0)
    assert rec.state == S.RESTARTING and rig.counters.get("crashes") == 1 and rig.counters.get("slow_boots") == 0


def test_a_boot_the_node_kills_for_overstaying_on_a_busy_machine_is_slow_not_a_crash(tmp_path):
    rig = node_rig(tmp_path, boot_timeout=60)
    _busy(rig)
    rec, _ = rig.start("stuck", now=0.0)
    rig.sessions.tick(60 + BOOT_MARGIN)
    assert rec.child.killed
    rig.exit(rec, -9, 60 + BOOT_MARGIN + 0.1)
    assert rig.counters.get("slow_boots") == 1 and rig.counters.get("crashes") == 0


def test_a_boot_that_breaks_quickly_is_a_crash_even_on_a_busy_machine(tmp_path):
    rig = node_rig(tmp_path)
    _busy(rig)
    rec, _ = rig.start("broken", now=0.0)
    rig.exit(rec, EXIT_CRASHED, 1.0)  # no word of a timeout
    assert rig.counters.get("crashes") == 1 and rig.counters.get("slow_boots") == 0


def test_a_browser_that_fails_to_come_up_is_slow_only_after_a_long_wait(tmp_path):
    rig = node_rig(tmp_path)
    _busy(rig)
    quick, _ = rig.start("quick", now=0.0)
    rig.say(quick, {"event": "disconnected", "reason": "browser_failed", "detail": "exited"}, now=1.0)
    rig.exit(quick, EXIT_CRASHED, 1.0)
    assert rig.counters.get("crashes") == 1 and rig.counters.get("slow_boots") == 0
    slow, _ = rig.start("slow", now=0.0)
    rig.say(slow, {"event": "disconnected", "reason": "browser_failed", "detail": "timed out"}, now=SLOW_BROWSER)
    rig.exit(slow, EXIT_CRASHED, SLOW_BROWSER)
    assert rig.counters.get("crashes") == 1 and rig.counters.get("slow_boots") == 1

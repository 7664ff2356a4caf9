"""The node's loop around fake edges: signals, shutdown, the exit-code
contract.  (Routing, leases and sessions have their own tests.)"""

from __future__ import annotations

import logging
import signal

import pytest

from support import node_rig
from wwnode import node as node_module
from wwnode import states as S
from wwnode.stopsignals import record_early


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def restore_signals():
    """``Node.run`` installs its handlers: put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    signal.set_wakeup_fd(-1)


def test_sigterm_stops_taking_work_then_stops_the_sessions_then_the_node(tmp_path, clock):
    rig = node_rig(tmp_path, clock=clock)
    rec, _ = rig.start("k")
    assert rig.node._turn()
    rig.node._signals.append(signal.SIGTERM)  # what the handler does, and all it does
    assert rig.node._turn()
    assert rig.node.stopping and rig.broker.closed and rec.state == S.STOPPING
    assert rec.child.sent[-1] == {"cmd": "stop", "logout": False}
    rig.exit(rec, 0, 0.1)
    assert not rig.node._turn()  # every session gone: the loop ends
    assert rig.node.paths.wanted_keys() == ["k"]  # brought back at the next start


def test_sessions_that_do_not_stop_in_time_are_killed_and_killed_again(tmp_path, clock):
    rig = node_rig(tmp_path, clock=clock, stop_timeout=20)
    rec, _ = rig.start("k")
    rig.node._signals.append(signal.SIGTERM)
    rig.node._turn()
    clock.now = 20.0
    rig.node._turn()
    assert rec.child.killed  # the session's own stop deadline
    rec.child.killed = False  # ... and it is still there
    clock.now = 24.9  # the node's: STOP_TIMEOUT, and 5 s more for the process to go
    rig.node._turn()
    assert not rec.child.killed
    clock.now = 25.0
    rig.node._turn()
    assert rec.child.killed


def test_a_second_sigterm_kills_the_sessions_at_once(tmp_path, clock):
    rig = node_rig(tmp_path, clock=clock)
    rec, _ = rig.start("k")
    rig.node._signals.append(signal.SIGTERM)
    rig.node._turn()
    assert not rec.child.killed
    clock.now = 1.0
    rig.node._signals.append(signal.SIGTERM)
    rig.node._turn()
    assert rec.child.killed


def test_an_unexpected_error_is_logged_and_ends_the_node_with_exit_1(tmp_path, clock, caplog, restore_signals):
    rig = node_rig(tmp_path, clock=clock)
    rec, _ = rig.start("k")

    def broken(now):
        raise RuntimeError("a bug")

    rig.store.retry = broken
    with caplog.at_level(logging.CRITICAL, logger="wwnode.node"):
        assert rig.node.run() == 1
    assert "unexpected error" in caplog.text and "a bug" in caplog.text  # with its traceback
    assert rec.child.killed


def test_an_orderly_stop_exits_0(tmp_path, clock, restore_signals):
    rig = node_rig(tmp_path, clock=clock)
    rig.node._signals.append(signal.SIGTERM)
    assert rig.node.run() == 0
    assert ("drop_node", "node-a") in rig.store.writes


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_an_orderly_stop_writes_stopped_and_removes_the_qr_codes(tmp_path, clock, signum):
    rig = node_rig(tmp_path, clock=clock)
    rec, _ = rig.start("k")
    rig.say(rec, {"event": "qr", "qr": "a,b,c,d,e", "attempt": 1})
    rig.node._signals.append(signum)
    rig.node._turn()
    assert rec.state == S.STOPPING
    rig.exit(rec, 0, 0.1)
    assert not rig.node._turn()
    assert rig.store.states("k")[-1] == S.STOPPED and rig.store.writes[-2:] == [
        ("clear_qr", "k"), ("state", "k", S.STOPPED)]
    assert rig.ownership.may_run("k")  # the lease is kept for the node's return


def test_sighup_is_a_graceful_stop(tmp_path, clock, restore_signals):
    rig = node_rig(tmp_path, clock=clock)
    rig.node._install_signals()
    signal.raise_signal(signal.SIGHUP)  # a closed terminal: recorded, not fatal
    assert rig.node._signals == [signal.SIGHUP]
    assert rig.node.run() == 0 and rig.node.stopping


def test_a_stop_asked_while_the_node_is_built_is_an_orderly_one(tmp_path, clock, restore_signals):
    # ``wwnode run`` records stop signals first thing (a restart right
    # after a start, before the node could install its handlers, once
    # ended it with -15); the node takes the record over.
    asked = record_early()
    signal.raise_signal(signal.SIGTERM)  # recorded, not fatal
    assert asked == [signal.SIGTERM]
    rig = node_rig(tmp_path, clock=clock)
    assert rig.node.run(asked) == 0 and rig.node.stopping
    assert ("drop_node", "node-a") in rig.store.writes


def test_a_turn_does_not_wait_while_the_consumer_holds_commands_it_read(tmp_path, clock, monkeypatch):
    """Deliveries pika read while it wrote (an ack) are no longer in the
    socket: a turn that waited on it would leave them a whole turn."""
    waits: list[float] = []

    class Poller:
        def register(self, *_args) -> None:
            pass

        def poll(self, timeout_ms: float) -> list:
            waits.append(timeout_ms)
            return []

    monkeypatch.setattr(node_module.select, "poll", Poller)
    rig = node_rig(tmp_path, clock=clock)
    rig.broker.pending = lambda: True
    assert rig.node._turn()
    rig.broker.pending = lambda: False
    assert rig.node._turn()
    assert waits[0] == 0 and waits[1] > 0

"""How a session process is asked to stop and made to end
(sessionproc/stopping.py), without a browser."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from sessionproc.stopping import ORPHAN_DEADLINE, QUIT_RESERVE, Stopper


class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def stopper(timeout=20.0, parent_alive=True, clock=None, leave=None):
    asked: list[dict] = []
    s = Stopper(asked.append, timeout, lambda: parent_alive, leave or (lambda: None), clock or Clock())
    return s, asked


def test_a_stop_is_handed_to_the_main_loop_with_its_reason_and_logout():
    s, asked = stopper()
    s.ask("stop command", logout=True)
    assert asked == [{"logout": True, "why": "stop command"}]
    assert s.asked and s.why == "stop command"


def test_the_deadline_is_the_stop_timeout_while_the_node_lives():
    clock = Clock(100.0)
    s, _ = stopper(timeout=20.0, clock=clock)
    assert s.deadline is None and s.left(65.0) == 65.0  # no stop: waits are not cut
    s.ask("stop command")
    assert s.deadline == 120.0
    assert s.left(65.0) == 20.0 - QUIT_RESERVE
    assert s.left(3.0) == 3.0
    clock.now = 119.0
    assert s.left(65.0) == 0.0


def test_a_session_whose_node_is_gone_gets_a_short_deadline():
    s, _ = stopper(timeout=60.0, parent_alive=False)
    s.ask("end of input")
    assert s.orphaned()
    assert s.deadline == 100.0 + ORPHAN_DEADLINE


def test_a_later_request_only_brings_the_deadline_closer():
    clock = Clock(100.0)
    alive = {"parent": True}
    s = Stopper(lambda item: None, 60.0, lambda: alive["parent"], lambda: None, clock)
    s.ask("end of input")  # the pipe closed first, the node not yet reaped
    assert s.deadline == 160.0
    alive["parent"] = False
    clock.now = 101.0
    s.ask("signal SIGTERM")  # then the parent-death signal
    assert s.deadline == 101.0 + ORPHAN_DEADLINE
    alive["parent"] = True
    s.ask("stop command")
    assert s.deadline == 101.0 + ORPHAN_DEADLINE
    assert s.why == "end of input"  # the first reason is the one told


def test_past_the_deadline_the_process_leaves():
    left = threading.Event()
    s = Stopper(lambda item: None, 0.3, lambda: True, left.set)
    s.ask("stop command")
    assert left.wait(10), "the deadline did not end the stop"


# The regression itself, in a process of its own (signal handlers belong to
# the main thread, and the old failure was a hang): a stop signal that lands
# while the main thread holds the inbox's lock, as it does inside
# ``queue.Queue.get``.  A handler that put into the inbox there waited for
# ever on its own thread's lock.
SIGNAL_WHILE_LOCKED = textwrap.dedent("""
    import os, queue, signal, sys, time
    from sessionproc.stopping import Stopper
    inbox = queue.Queue()
    stopper = Stopper(lambda item: inbox.put(("stop", item)), 60.0, lambda: True, lambda: os._exit(9))
    stopper.install_signals()
    with inbox.mutex:
        os.kill(os.getpid(), signal.SIG{name})
        end = time.monotonic() + 0.3
        while time.monotonic() < end:  # bytecodes, so the handler runs here
            pass
    kind, item = inbox.get(timeout=10)
    print(kind, item["why"], flush=True)
""")


@pytest.mark.parametrize("name", ["TERM", "INT"])
def test_a_stop_signal_while_the_inbox_is_locked_still_stops(name):
    done = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_LOCKED.replace("{name}", name)],
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["stop", "signal", f"SIG{name}"]


def test_signals_other_than_the_stop_signals_do_not_stop():
    script = textwrap.dedent("""
        import os, queue, signal
        from sessionproc.stopping import Stopper
        inbox = queue.Queue()
        signal.signal(signal.SIGUSR1, lambda *_: None)  # a handler of someone else's: it writes to the pipe too
        stopper = Stopper(lambda item: inbox.put(("stop", item)), 60.0, lambda: True, lambda: os._exit(9))
        stopper.install_signals()
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)  # behind it in the pipe: the first stop must be this one
        print(inbox.get(timeout=10)[1]["why"], flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "signal SIGTERM"

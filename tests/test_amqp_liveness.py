"""The pure parts of wwnode.amqp: the link's timing rules, with time handed
in, and names and records that need no broker library."""

from __future__ import annotations

import subprocess
import sys

from wwnode.amqp.liveness import Backoff, Silence


def test_a_link_is_silent_after_two_heartbeats_without_a_byte():
    silence = Silence(heartbeat=5)
    assert not silence.silent(100, now=0.0)
    assert not silence.silent(100, now=10.0)  # two heartbeats, not more
    assert not silence.silent(180, now=10.5)  # a byte came: counting starts again
    assert not silence.silent(180, now=20.5)
    assert silence.silent(180, now=20.6)
    silence.reset()  # a new connection
    assert not silence.silent(0, now=100.0)


def test_reconnect_delays_grow_to_a_cap_with_jitter_and_start_again_after_a_success():
    backoff = Backoff(initial=1.0, cap=4.0)
    delays = [backoff.next() for _ in range(5)]
    for delay, base in zip(delays, (1, 2, 4, 4, 4)):
        assert base / 2 <= delay <= base
    backoff.reset()
    assert backoff.next() <= 1.0


def test_the_topology_imports_no_pika():
    code = "import sys, wwnode.amqp.topology; print('pika' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "False"

"""Two nodes under one NODE_ID: what counts as a live twin (units; the
whole refusal, with two node processes, is in test_operator.py)."""

from __future__ import annotations

import socket
import subprocess
import sys

import psutil
import pytest

from support import FakeStore, wait_for
from wwnode import twins
from wwnode.twins import TwinRunning, find_twin, refuse_twins


class Heartbeats:
    """The heartbeat hash as each read finds it, the last one for ever."""

    def __init__(self, *seen):
        self.seen = list(seen)

    def __call__(self):
        return self.seen.pop(0) if len(self.seen) > 1 else self.seen[0]


def twin(read, host="here", pid=1, runs=lambda pid: True):
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    return find_twin(read, host, pid, watch=3, is_node=runs, sleep=sleep, clock=lambda: now[0])


def test_twins_on_this_host_are_told_by_their_process():
    hb = {"host": "here", "pid": "77", "started": "5", "ts": "9"}
    assert twin(Heartbeats(hb), runs=lambda pid: pid == 77) == hb  # a node runs as 77
    assert twin(Heartbeats(hb), runs=lambda pid: False) is None  # 77 died: what it left is stale
    assert twin(Heartbeats({**hb, "pid": "1"})) is None  # our own pid: our last run's (pid 1 in a container)
    assert twin(Heartbeats({})) is None


def test_twins_on_another_host_are_told_by_a_heartbeat_that_moves():
    hb = {"host": "there", "pid": "77", "started": "5", "ts": "9"}
    assert twin(Heartbeats(hb, hb, {**hb, "ts": "10"})) == {**hb, "ts": "10"}  # renewed while watched
    assert twin(Heartbeats(hb)) is None  # still: its node died
    assert twin(Heartbeats(hb, {})) is None  # expired while watched


def test_a_live_twin_is_refused_with_its_host_pid_and_start(monkeypatch):
    store = FakeStore("node-a")
    here = socket.gethostname()
    store.nodes["node-a"] = {"host": here, "pid": "4242", "started": "1700000000000", "ts": "1"}
    monkeypatch.setattr(twins, "runs_a_node", lambda pid: pid == 4242)  # a node runs as 4242
    with pytest.raises(TwinRunning, match=rf"node node-a is already running \(host {here}, pid 4242, "
                                          r"started 2023-11-14 22:13:20 UTC\)"):
        refuse_twins(store, "node-a", watch=1)
    store.up = False
    refuse_twins(store, "node-a", watch=1)  # Redis cannot say: the node starts (and says so)


def test_a_running_node_is_told_by_its_command_line(tmp_path):
    log = tmp_path / "wwnode.log"
    log.write_text("")
    # A process whose command line is a node's (``python -m wwnode.tools.cli run``),
    # and one that only mentions the name.
    node = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "wwnode.tools.cli", "run"])
    other = subprocess.Popen(["tail", "-f", str(log)], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: "wwnode.tools.cli" in psutil.Process(node.pid).cmdline(), what="the command line")
        assert twins.runs_a_node(node.pid)
        assert not twins.runs_a_node(other.pid)
    finally:
        for proc in (node, other):
            proc.kill()
            proc.wait()
    assert not twins.runs_a_node(node.pid)  # gone

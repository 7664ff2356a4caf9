"""The node under the project's supervisord configuration: killed with
SIGKILL, it is restarted, its sessions come back without a QR, the command
it held unacknowledged is carried out, and no Chrome is left over."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from support import all_gone, chrome_processes_under, create_ready, idle_cgroup, new_phone, wait_for

pytestmark = pytest.mark.browser

CONF = Path(__file__).resolve().parent.parent / "deploy" / "supervisord.conf"


def tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


@pytest.fixture
def supervised(tmp_path, wa, rabbit_url, redis_url):
    run = tmp_path / "run"
    run.mkdir()
    env = {
        **os.environ, "WWNODE_HOME": str(tmp_path), "WWNODE_RUN": str(run), "WWNODE_PYTHON": sys.executable,
        "WWNODE_LOCAL_REDIS": "false", "WWNODE_LOCAL_RABBITMQ": "false",
        "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, "WA_URL": wa.url, "NODE_ID": "sup-node",
        "DATA_DIR": str(tmp_path / "data"), "PING_INTERVAL": "30", "RESTORE_STAGGER": "0.3", "LEASE_TTL": "6",
        "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp_path / "idle-cgroup")),  # a busy machine still takes the create
    }
    proc = subprocess.Popen([tool("supervisord"), "-c", str(CONF)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def node_pid() -> int:
        out = subprocess.run([tool("supervisorctl"), "-c", str(CONF), "pid", "wwnode"], env=env,
                             capture_output=True, text=True).stdout.strip()
        return int(out) if out.isdigit() and out != "0" else 0

    yield node_pid, tmp_path / "data"
    proc.send_signal(signal.SIGTERM)
    proc.wait(90)
    wait_for(lambda: all_gone(chrome_processes_under(tmp_path / "data")), timeout=15, what="no Chrome left")


def test_kill_9_under_supervisord(supervised, rabbit, control):
    node_pid, data = supervised
    first = wait_for(node_pid, timeout=30, what="supervisord to start the node")
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-sup", phone)
    old_tree = psutil.Process(first).children(recursive=True)

    control.freeze(phone)  # the send below hangs in the page: in flight, unacked
    # Without an id, so it is done again when redelivered (at least once; a
    # send with an id would end in outcome_unknown instead: at most once).
    rabbit.publish("send_message", {"key": "k-sup", "chat_id": f"{friend}@c.us", "message": "in flight"})
    wait_for(lambda: rabbit.depth("send_message")[0] == 0, what="the node to take the send")
    os.kill(first, signal.SIGKILL)

    second = wait_for(lambda: node_pid() not in (0, first) and node_pid(), timeout=30, what="a new node")
    assert second != first
    rabbit.expect("ready_instance", key="k-sup", timeout=60)  # the restored session
    assert rabbit.expect("message_sent_instance", key="k-sup", timeout=60)["command_id"] is None
    assert [m["body"] for m in control.sent_by(phone)] == ["in flight"]
    assert len(rabbit.find("qr_instance", key="k-sup")) == 1
    wait_for(lambda: all_gone(old_tree), timeout=15, what="the old node's sessions and Chrome to be gone")
    assert len(chrome_processes_under(data)) > 0  # the restored session's browser runs

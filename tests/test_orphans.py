"""A session whose node dies ends by itself, with its browser, whatever it
was doing: booting, showing a QR code, idle, sending, stopping.  The node
is killed with SIGKILL, so each session sees its input end and gets the
parent-death signal in the same instant (sessionproc/stopping.py)."""

from __future__ import annotations

import psutil
import pytest

from support import all_gone, chrome_processes_under, create_ready, new_phone, processes_using, wait_for
from sessionproc.stopping import ORPHAN_DEADLINE

pytestmark = pytest.mark.browser

# What may pass between the node's death and the last process of its
# sessions: the orphan's deadline, then the reaper's kill, on a loaded
# machine.
GONE_WITHIN = ORPHAN_DEADLINE + 15


def tree_of(node) -> list[psutil.Process]:
    try:
        return psutil.Process(node.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_and_expect_nothing_left(node) -> None:
    tree = tree_of(node)
    node.kill()
    wait_for(lambda: all_gone(tree) and not processes_using(node.data_dir), timeout=GONE_WITHIN,
             what="the node's sessions and browsers to end with it")
    assert chrome_processes_under(node.data_dir) == []


def has_chromedriver(node) -> bool:
    for p in tree_of(node):
        try:
            if "chromedriver" in p.name():
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def test_the_node_dies_as_its_session_process_starts(nodes, rabbit):
    node = nodes()
    rabbit.publish("create_instance", {"key": "orphan-boot"})
    wait_for(lambda: node.session_pids(), what="the session process")
    kill_and_expect_nothing_left(node)


def test_the_node_dies_while_its_session_starts_the_browser(nodes, rabbit):
    node = nodes()
    rabbit.publish("create_instance", {"key": "orphan-browser"})
    wait_for(lambda: has_chromedriver(node), what="chromedriver under the session")
    kill_and_expect_nothing_left(node)


def test_the_node_dies_while_its_session_shows_a_qr_code(nodes, rabbit):
    node = nodes()
    rabbit.publish("create_instance", {"key": "orphan-qr"})
    rabbit.expect("qr_instance", key="orphan-qr")
    kill_and_expect_nothing_left(node)


def test_the_node_dies_while_its_session_sends(nodes, rabbit, control):
    node = nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "orphan-send", phone)
    control.sends(phone, "slow", delay=60)  # the send stays in flight in the page
    rabbit.publish("send_message", {"key": "orphan-send", "chat_id": f"{friend}@c.us", "message": "held",
                                    "id": "o-1"})
    wait_for(lambda: rabbit.depth("send_message") == (0, 1), what="the node to hold the send")
    kill_and_expect_nothing_left(node)


def test_the_node_dies_while_its_session_stops(nodes, rabbit, control):
    node = nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "orphan-stop", phone)
    control.sends(phone, "slow", delay=60)  # the stop then waits for the send in flight
    rabbit.publish("send_message", {"key": "orphan-stop", "chat_id": f"{friend}@c.us", "message": "held",
                                    "id": "o-2"})
    wait_for(lambda: rabbit.depth("send_message") == (0, 1), what="the node to hold the send")
    rabbit.publish("destroy_instance", {"key": "orphan-stop"})
    rabbit.expect("state_instance", key="orphan-stop", state="stopping")
    kill_and_expect_nothing_left(node)

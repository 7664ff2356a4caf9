"""What the account does live beside its messages, end to end through the
public contract only: RabbitMQ, Redis, a real node, Chromium and the
stand-in.  Calls: a call that rings is ``call_instance``, ``call_action``
``reject`` reaches the caller, and a reject of an unknown or ended call is
refused with its own reason and changes nothing.

One node with one linked session serves the whole module (a browser
starts once); each test uses phones of its own."""

from __future__ import annotations

import itertools

import pytest
import redis as redislib

from conftest import _node_queues
from support import (TEST_REDIS_DB, Client, NodeProcess, all_gone, chrome_processes_under, create_ready, idle_cgroup,
                     new_phone, purge_queues, wait_for)
from wwnode.amqp.topology import COMMAND_QUEUES, DEAD_LETTER_QUEUE, LEGACY_EVENT_QUEUES, REROUTE_QUEUE, node_queue_name
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

KEY = "live-1"
NODE = "node-live"


class World:
    """What the module's tests share: the stand-in, the node, a client, the
    linked session's phone."""

    def __init__(self, wa: FakeWA, node: NodeProcess, rabbit: Client, phone: str):
        self.wa, self.node, self.rabbit, self.phone = wa, node, rabbit, phone
        self.control = Control(wa.url)
        self.ids = itertools.count(1)

    def command(self, queue: str, **body) -> str:
        """Publish a command for the module's key; its command id."""
        cid = f"{queue}-{next(self.ids)}"
        self.rabbit.publish(queue, {"key": KEY, "id": cid, **body})
        return cid

    def answer(self, done: str, cid: str) -> dict:
        """The event that answers command ``cid``: ``done`` or ``command_failed``."""
        return wait_for(lambda: next(iter(self.rabbit.find(done, command_id=cid)
                                          + self.rabbit.find("command_failed", command_id=cid)), None),
                        timeout=30, what=f"an answer to {cid}")


@pytest.fixture(scope="module")
def world(tmp_path_factory, rabbit_url):
    tmp = tmp_path_factory.mktemp("live")
    r = redislib.Redis(db=TEST_REDIS_DB, decode_responses=True)
    r.flushdb()
    r.close()
    _node_queues.add(node_queue_name(NODE))
    rabbit = Client(rabbit_url)
    queues = COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE)
    for queue in queues:
        rabbit.ch.queue_declare(queue, durable=True)
    purge_queues(rabbit.conn, queues + tuple(sorted(_node_queues)))
    wa = FakeWA(settings=Settings(sync_delay=0.25)).start()
    node = NodeProcess(NODE, tmp / NODE, {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": f"redis://127.0.0.1:6379/{TEST_REDIS_DB}",
                                          "WA_URL": wa.url, "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp / "cgroup"))})
    phone = new_phone()
    try:
        create_ready(rabbit, Control(wa.url), KEY, phone)
        yield World(wa, node, rabbit, phone)
    finally:
        node.terminate()
        wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), timeout=15, what="no Chrome left")
        rabbit.close()
        wa.stop()


# ----------------------------------------------------------------- calls
def ringing(w: World, caller: str, **how) -> dict:
    """``caller`` calls the account; the call of its call_instance."""
    call_id = w.control.ring(w.phone, caller, **how)
    return w.rabbit.expect("call_instance", key=KEY, timeout=20)["call"] | {"rung": call_id}


def test_a_call_is_reported_and_a_reject_reaches_the_caller(world):
    w, caller = world, new_phone()
    call = ringing(w, caller, video=True)
    [placed] = w.control.calls(caller)
    assert call == {"id": placed["id"], "from": f"{caller}@c.us", "from_lid": w.control.lid(caller),
                    "is_video": True, "is_group": False, "ts": placed["t"] * 1000, "rung": placed["id"]}
    done = w.answer("call_action_done_instance", w.command("call_action", action="reject", call_id=call["id"]))
    assert (done["event"], done["action"], done["call_id"], done["from"]) == (
        "call_action_done_instance", "reject", call["id"], f"{caller}@c.us")
    wait_for(lambda: [c["state"] for c in w.control.calls(caller)] == ["rejected"], what="the caller to see it")


def test_a_group_call_is_reported_as_one(world):
    w, caller = world, new_phone()
    call = ringing(w, caller, group="120363000000000055@g.us")
    assert (call["is_group"], call["is_video"], call["from"]) == (True, False, f"{caller}@c.us")
    w.control.hang_up(call["id"])


def test_a_reject_of_an_unknown_or_ended_call_has_its_own_reason_and_changes_nothing(world):
    w, caller = world, new_phone()
    call = ringing(w, caller)
    w.control.hang_up(call["id"])

    def refused_as_ended() -> bool:  # the page learns of the end a moment after the caller hung up
        answer = w.answer("call_action_done_instance", w.command("call_action", action="reject", call_id=call["id"]))
        return answer.get("reason") == "call_ended"

    wait_for(refused_as_ended, timeout=20, what="a reject refused as call_ended")
    unknown = w.answer("call_action_done_instance", w.command("call_action", action="reject", call_id="ABCDEF012345"))
    assert (unknown["event"], unknown["reason"]) == ("command_failed", "unknown_call")
    assert "ABCDEF012345" in unknown["detail"]
    bad = w.answer("call_action_done_instance", w.command("call_action", action="reject", call_id="../x"))
    assert (bad["event"], bad["reason"]) == ("command_failed", "bad_call_id")
    assert [c["state"] for c in w.control.calls(caller)] == ["missed"]
    # The session rejects the next call all the same.
    other = ringing(w, caller)
    done = w.answer("call_action_done_instance", w.command("call_action", action="reject", call_id=other["id"]))
    assert done["event"] == "call_action_done_instance"
    wait_for(lambda: [c["state"] for c in w.control.calls(caller)] == ["missed", "rejected"], what="the rejection")

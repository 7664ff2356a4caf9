"""What the account does live beside its messages, end to end through the
public contract only: RabbitMQ, Redis, a real node, Chromium and the
stand-in.  Calls: a call that rings is ``call_instance``, ``call_action``
``reject`` reaches the caller, and a reject of an unknown or ended call is
refused with its own reason and changes nothing.  Chats: ``chat_action``
typing, recording and paused are what the other side sees; archive, pin,
mute and their opposites reach the account's phone; bad input (and a
fourth pin, a mute until a time past) is refused with its own reason and
changes nothing.  Presence: ``set_presence`` is what other phones see.

One node with one linked session serves the whole module (a browser
starts once); each test uses phones of its own."""

from __future__ import annotations

import itertools

import pytest

from conftest import linked_node
from support import Client, NodeProcess, new_phone, wait_for
from wwnode.fakewa import FakeWA
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
    with linked_node(tmp_path_factory.mktemp("live"), rabbit_url, NODE, KEY) as l:
        yield World(l.wa, l.node, l.rabbit, l.phone)


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


# ----------------------------------------------------------------- chats
def chat_action(w: World, action: str, chat: str, **extra) -> dict:
    return w.answer("chat_action_done_instance", w.command("chat_action", action=action, chat_id=chat, **extra))


def test_typing_recording_and_paused_are_what_the_other_side_of_the_chat_sees(world):
    w, chat, group = world, f"{new_phone()}@c.us", "120363000000000061@g.us"
    for action, shown in (("typing", "composing"), ("recording", "recording"), ("paused", "paused")):
        done = chat_action(w, action, chat)
        assert (done["event"], done["action"], done["chat_id"]) == ("chat_action_done_instance", action, chat)
        assert w.control.chat_states(w.phone)["now"][chat] == shown  # done once the page sent it
    chat_action(w, "typing", group)
    assert w.control.chat_states(w.phone)["now"][group] == "composing"


def test_archive_pin_and_mute_reach_the_accounts_phone(world):
    w, chat = world, f"{new_phone()}@c.us"
    chat_action(w, "archive", chat)
    assert w.control.chats(w.phone)[chat]["archive"] is True
    chat_action(w, "unarchive", chat)
    assert w.control.chats(w.phone)[chat]["archive"] is False
    chat_action(w, "pin", chat)
    assert w.control.chats(w.phone)[chat]["pin"] > 0
    chat_action(w, "unpin", chat)
    assert w.control.chats(w.phone)[chat]["pin"] == 0
    until = 4_102_444_800_000  # 2100-01-01
    done = chat_action(w, "mute", chat, until=until)
    assert done["until"] == until and w.control.chats(w.phone)[chat]["mute"] == until // 1000
    assert chat_action(w, "mute", chat)["until"] is None and w.control.chats(w.phone)[chat]["mute"] == -1
    assert "until" not in chat_action(w, "unmute", chat) and w.control.chats(w.phone)[chat]["mute"] == 0


def test_bad_chat_actions_have_their_own_reason_and_change_nothing(world):
    w, chats = world, [f"{new_phone()}@c.us" for _ in range(4)]
    for chat in chats[:3]:
        chat_action(w, "pin", chat)
    chat_action(w, "mute", chats[0], until=4_102_444_800_000)
    before = w.control.chats(w.phone)
    refusals = [
        (("pin", chats[3]), {}, "too_many_pinned"),
        (("mute", chats[0]), {"until": 1_000_000_000_000}, "bad_until"),  # past, by the page's clock
        (("archive", chats[0]), {"until": 4_102_444_800_000}, "bad_until"),
        (("mute", chats[0]), {"until": "tomorrow"}, "wrong_type"),
        (("star", chats[0]), {}, "bad_action"),
        (("typing", "5511999990002"), {}, "bad_chat_id"),
        (("typing", "12@lid"), {}, "bad_lid"),
    ]
    for (action, chat), extra, reason in refusals:
        got = chat_action(w, action, chat, **extra)
        assert (got["event"], got["reason"]) == ("command_failed", reason), got
    assert w.control.chats(w.phone) == before  # the fourth chat not pinned, the mute as it was
    for chat in chats[:3]:  # for the module's other tests
        chat_action(w, "unpin", chat)


# --------------------------------------------------------------- presence
def test_set_presence_is_what_other_phones_see_and_a_bad_state_changes_nothing(world):
    w = world
    for state in ("available", "unavailable"):
        done = w.answer("presence_set_instance", w.command("set_presence", state=state))
        assert (done["event"], done["state"]) == ("presence_set_instance", state)
        assert w.control.presence(w.phone)["presence"] == state
    for state, reason in (("online", "bad_state"), (None, "wrong_type")):
        bad = w.answer("presence_set_instance", w.command("set_presence", state=state))
        assert (bad["event"], bad["reason"]) == ("command_failed", reason)
    assert [c["state"] for c in w.control.presence(w.phone)["changes"]] == ["available", "unavailable"]

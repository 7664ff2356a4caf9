"""The send desk: dispatch, holding, at-most-once with ids, answers, and
when a send is acknowledged (only once its event is confirmed)."""

from __future__ import annotations

import dataclasses

import pytest

from sessionproc.protocol import EXIT_CANNOT_START, EXIT_CRASHED
from support import delivery, node_rig
from wwnode.commands import Command


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path)


def send(rig, text="hi", cid=None, now=1.0, key="k"):
    d = delivery("send_message")
    rig.sends.send(Command("send_message", key, cid, chat_id="1@c.us", text=text), d, now)
    return d


def test_send_goes_to_a_ready_session_and_is_acked_only_once_its_event_is_confirmed(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = send(rig, cid="c1")
    cmd = rec.child.sent[-1]
    assert cmd["cmd"] == "send" and cmd["text"] == "hi"
    rig.say(rec, {"event": "sent", "id": cmd["id"], "message_id": "M"}, now=1.1)
    assert rig.broker.events("message_sent_instance") == [{"key": "k", "chat_id": "1@c.us", "message_id": "M",
                                                          "command_id": "c1"}]
    assert d.tag not in rig.broker.acked  # the event is not confirmed yet
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked


def test_send_before_ready_fails_and_during_a_restart_waits(rig):
    rec, _ = rig.start()
    early = send(rig, "x", now=0.0)
    assert rig.broker.failed() == [(early.tag, "not_ready")]

    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)
    held = send(rig, "y", now=1.0)
    assert held.tag not in rig.broker.acked and (held.tag, "not_ready") not in rig.broker.failed()
    rig.sessions.tick(rec.restart_at)
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=3.0)
    assert rec.child.sent[-1]["text"] == "y"

    rig.exit(rec, EXIT_CRASHED, 4.0)
    late = send(rig, "z", now=4.0)
    rig.sends.tick(4.0 + 19.9)
    assert (late.tag, "not_ready") not in rig.broker.failed()
    rig.sends.tick(4.0 + 20)
    assert (late.tag, "not_ready") in rig.broker.failed()


def test_unanswered_sends_of_a_crashed_session_are_requeued(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = send(rig)
    rig.exit(rec, EXIT_CRASHED, 2.0)
    assert rig.broker.requeued == [d.tag]


def test_a_send_with_an_id_is_done_at_most_once(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    send(rig, cid="once")
    child_cmd = rec.child.sent[-1]
    rig.say(rec, {"event": "sent", "id": child_cmd["id"], "message_id": "M1"}, now=1.1)
    again = send(rig, cid="once", now=2.0)
    assert rec.child.sent[-1] is child_cmd  # not sent twice
    assert rig.broker.events("message_sent_instance")[-1]["duplicate"] is True
    assert again.tag not in rig.broker.acked
    rig.broker.confirm_all()
    assert again.tag in rig.broker.acked


def test_a_send_in_doubt_is_not_repeated(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    first = send(rig, cid="doubt")
    rig.exit(rec, EXIT_CRASHED, 1.5)  # crashed mid-send: did it go out?
    assert rig.broker.requeued == [first.tag]
    rig.sessions.tick(rec.restart_at)
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=3.0)
    redelivered = send(rig, cid="doubt", now=3.0)
    assert (redelivered.tag, "outcome_unknown") in rig.broker.failed()


def test_a_send_that_failed_may_be_retried_with_its_id(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    failed = send(rig, cid="retry")
    rig.say(rec, {"event": "send_failed", "id": rec.child.sent[-1]["id"], "reason": "rejected"}, now=2.0)
    assert rig.broker.failed() == [(failed.tag, "rejected")]  # refused: it did not go out
    send(rig, cid="retry", now=3.0)
    assert rec.child.sent[-1]["text"] == "hi" and len(rec.child.commands("send")) == 2


def test_a_send_with_an_id_waits_while_redis_cannot_say(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.store.up = False
    d = send(rig, cid="r1", now=1.0)
    assert not rec.child.commands("send") and not rig.broker.failed()
    rig.store.up = True
    rig.sends.tick(2.0)
    assert rec.child.commands("send")[0]["text"] == "hi"
    assert d.tag not in rig.broker.acked


def test_held_sends_fail_when_the_session_fails(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)
    held = send(rig, now=1.0)
    rig.sessions.tick(rec.restart_at)
    rig.exit(rec, EXIT_CANNOT_START, 2.5)
    assert (held.tag, "session_failed") in rig.broker.failed()


def test_held_sends_fail_when_the_session_is_destroyed_and_go_back_when_the_key_is_lost(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)
    held = send(rig, now=1.0)
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 1.5)
    assert (held.tag, "instance_destroyed") in rig.broker.failed()

    other, _ = rig.start("other")
    rig.make_ready(other)
    rig.exit(other, EXIT_CRASHED, 2.0)
    back = send(rig, key="other", now=2.0)
    rig.node._drop("other", 2.5)
    assert back.tag in rig.broker.requeued


def test_a_held_send_that_went_out_before_is_answered_sent_again_not_failed(rig):
    # The node stopped after the session sent it but before its ack: the
    # broker delivers it again, the session is held (restarting), and is
    # then destroyed.  The answer stays "sent", never "sent" then "failed".
    rec, _ = rig.start()
    rig.make_ready(rec)
    first = send(rig, cid="c1", now=1.0)
    rig.say(rec, {"event": "sent", "id": rec.child.sent[-1]["id"], "message_id": "M"}, now=1.1)
    rig.exit(rec, EXIT_CRASHED, 1.2)
    again = send(rig, cid="c1", now=1.3)  # the redelivery, before its first ack
    other = send(rig, cid="c2", now=1.3)  # never sent anywhere
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 1.5)
    rig.broker.confirm_all()
    assert first.tag in rig.broker.acked and again.tag in rig.broker.acked
    assert (again.tag, "instance_destroyed") not in rig.broker.failed()
    sent = rig.broker.events("message_sent_instance")
    assert [e["message_id"] for e in sent] == ["M", "M"] and sent[1]["duplicate"] is True
    assert rig.broker.failed() == [(other.tag, "instance_destroyed")]


@pytest.mark.parametrize("reason", ["browser_error", "timeout"])
def test_a_send_that_may_have_gone_out_is_not_sent_again_on_a_retry(rig, reason):
    rec, _ = rig.start()
    rig.make_ready(rec)
    first = send(rig, cid="c1", now=1.0)
    rig.say(rec, {"event": "send_failed", "id": rec.child.sent[-1]["id"], "reason": reason}, now=1.1)
    assert (first.tag, reason) in rig.broker.failed()
    sent_before = len(rec.child.commands("send"))
    retry = send(rig, cid="c1", now=2.0)
    assert len(rec.child.commands("send")) == sent_before  # not handed to the session again
    assert (retry.tag, "outcome_unknown") in rig.broker.failed()


def test_a_send_for_a_stopping_or_unknown_session_fails(rig):
    rec, _ = rig.start()
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 1.0)
    stopping = send(rig)
    unknown = send(rig, key="nope")
    assert rig.broker.failed() == [(stopping.tag, "unknown_instance"), (unknown.tag, "unknown_instance")]


def test_a_stop_that_is_not_final_puts_held_sends_back_without_a_word(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)  # restarting: sends for it are held
    held = [send(rig, text, cid=f"c{i}", now=1.0) for i, text in enumerate(("a", "b"))]
    rig.sessions.shutdown(2.0)  # SIGTERM: the node goes down
    assert rig.broker.requeued == [d.tag for d in held]
    assert rig.broker.failed() == [] and rig.broker.events("command_failed") == []
    # Nothing more comes of them here: no answer when the hold would have
    # run out, none when the session ends stopped.
    rig.sends.tick(1.0 + 20)
    rig.node._tick(30.0)
    assert rig.broker.failed() == [] and rig.broker.events("message_sent_instance") == []
    assert not rig.sessions.has("k")


def test_sends_the_process_refused_for_a_stop_that_is_not_final_go_back_and_run_once_after(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = send(rig, cid="c1", now=1.0)
    child_id = rec.child.sent[-1]["id"]
    rig.sessions.shutdown(2.0)  # SIGTERM: the process refuses what it had queued
    rig.say(rec, {"event": "send_failed", "id": child_id, "reason": "stopping"}, now=2.1)
    assert rig.broker.requeued == [d.tag]
    assert rig.broker.failed() == [] and rig.broker.events("command_failed") == []
    # Redelivered once the key runs again: sent, not refused as outcome_unknown.
    assert rig.store.send_record("k", "c1") is None


def test_sends_refused_by_a_process_being_destroyed_fail_as_destroyed(rig):
    """``stopping`` is the session's word; the client is told a reason of
    the table of docs/protocol.md, "Commands" (it used to get ``stopping``, which is in none)."""
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = send(rig, cid="c1", now=1.0)
    child_id = rec.child.sent[-1]["id"]
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 2.0)
    rig.say(rec, {"event": "send_failed", "id": child_id, "reason": "stopping"}, now=2.1)
    assert rig.broker.failed() == [(d.tag, "instance_destroyed")] and rig.broker.requeued == []
    [event] = rig.broker.events("command_failed")
    assert (event["reason"], event["command_id"]) == ("instance_destroyed", "c1")
    assert rig.store.send_record("k", "c1") == "failed:instance_destroyed"  # a retry after it is sent


def test_sends_refused_by_a_process_a_drain_moves_go_to_the_next_owner(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = send(rig, cid="c1", now=1.0)
    child_id = rec.child.sent[-1]["id"]
    rig.sessions.move_out("k", 2.0)  # stopped for good here, to run elsewhere
    rig.say(rec, {"event": "send_failed", "id": child_id, "reason": "stopping"}, now=2.1)
    assert rig.broker.requeued == [d.tag] and rig.broker.failed() == []
    assert rig.store.send_record("k", "c1") is None


def test_a_send_delivered_again_while_in_flight_shares_the_first_ones_answer(rig):
    # The broker link broke: what was not acknowledged comes again, while
    # the session is still sending the first copy.
    rec, _ = rig.start()
    rig.make_ready(rec)
    first = send(rig, cid="c1", now=1.0)
    again = send(rig, cid="c1", now=1.5)
    assert len(rec.child.commands("send")) == 1 and rig.broker.failed() == []
    rig.say(rec, {"event": "sent", "id": rec.child.sent[-1]["id"], "message_id": "M"}, now=2.0)
    assert len(rig.broker.events("message_sent_instance")) == 1
    assert first.tag not in rig.broker.acked and again.tag not in rig.broker.acked
    rig.broker.confirm_all()
    assert {first.tag, again.tag} <= set(rig.broker.acked)


def test_a_send_delivered_again_while_held_goes_out_once(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)  # restarting: sends for it are held
    first = send(rig, cid="c1", now=1.0)
    again = send(rig, cid="c1", now=1.5)
    rig.sessions.tick(rec.restart_at)
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=3.0)
    assert len(rec.child.commands("send")) == 1
    rig.say(rec, {"event": "send_failed", "id": rec.child.sent[-1]["id"], "reason": "bad_chat_id"}, now=3.1)
    assert rig.broker.failed() == [(first.tag, "bad_chat_id")]
    assert len(rig.broker.events("command_failed")) == 1
    rig.broker.confirm_all()
    assert {first.tag, again.tag} <= set(rig.broker.acked)


def test_a_failed_send_delivered_again_gets_the_same_failure_and_a_new_try_is_sent(rig):
    # Failed while its key was being destroyed; the link broke before the
    # acknowledgement, and the key runs again when the copy comes.
    rec, _ = rig.start()
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 1.0)
    first = send(rig, cid="c1", now=1.0)
    assert rig.broker.failed() == [(first.tag, "unknown_instance")]
    rig.exit(rec, 0, 1.5)
    rec, _ = rig.start()
    rig.make_ready(rec, now=2.0)
    again = dataclasses.replace(delivery("send_message"), redelivered=True)
    rig.sends.send(Command("send_message", "k", "c1", chat_id="1@c.us", text="hi"), again, 3.0)
    assert rig.broker.failed()[-1] == (again.tag, "unknown_instance")
    assert rec.child.commands("send") == []
    # The client publishes it anew with the same id: a new try.
    fresh = send(rig, cid="c1", now=4.0)
    assert len(rec.child.commands("send")) == 1 and (fresh.tag, "unknown_instance") not in rig.broker.failed()


def test_a_sent_send_delivered_again_to_a_session_not_ready_is_answered_sent(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    send(rig, cid="c1", now=1.0)
    rig.say(rec, {"event": "sent", "id": rec.child.sent[-1]["id"], "message_id": "M"}, now=1.1)
    rig.exit(rec, EXIT_CRASHED, 2.0)
    again = dataclasses.replace(delivery("send_message"), headers={"x-redelivered": True})  # handed on by a router
    rig.sends.send(Command("send_message", "k", "c1", chat_id="1@c.us", text="hi"), again, 2.5)
    [_, dup] = rig.broker.events("message_sent_instance")
    assert dup["duplicate"] is True and dup["message_id"] == "M"


def test_a_send_in_doubt_delivered_again_where_its_key_stops_fails_outcome_unknown(rig):
    # Its session crashed mid-send (did it go out?); the copy comes while
    # the key is being destroyed here: not unknown_instance, which would
    # say the text did not go out.
    rec, _ = rig.start()
    rig.make_ready(rec)
    first = send(rig, cid="c1", now=1.0)
    rig.exit(rec, EXIT_CRASHED, 1.5)
    assert rig.broker.requeued == [first.tag]
    rig.carry_out(Command("destroy_instance", "k"), delivery("destroy_instance"), 2.0)
    again = dataclasses.replace(delivery("send_message"), redelivered=True)
    rig.sends.send(Command("send_message", "k", "c1", chat_id="1@c.us", text="hi"), again, 2.5)
    assert rig.broker.failed() == [(again.tag, "outcome_unknown")]
    assert rig.store.send_record("k", "c1") == "pending"


def test_a_failed_send_back_from_a_node_queue_gets_the_same_failure_not_a_new_try(rig):
    # Failed not_ready after its hold; the link broke before the
    # acknowledgement, and the copy put back in the node's queue was past
    # its time there: dead-lettered to wa.reroute (``x-death``, without
    # the broker's redelivered mark) and routed here again.
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)
    first = send(rig, cid="c1", now=1.0)
    rig.sends.tick(1.0 + 20)
    assert rig.broker.failed() == [(first.tag, "not_ready")]
    rig.sessions.tick(rec.restart_at + 20)
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=22.0)
    back = delivery("wa.node.node-a", headers={"x-queue": "send_message", "x-routed-by": "node-a",
                                               "x-death": [{"queue": "wa.node.node-a", "reason": "expired"}]})
    rig.sends.send(Command("send_message", "k", "c1", chat_id="1@c.us", text="hi"), back, 23.0)
    assert rig.broker.failed()[-1] == (back.tag, "not_ready") and rec.child.commands("send") == []

"""The publisher's outbox and its spool: what survives a restart, and what
is dropped when too much waits.  No broker needed."""

from __future__ import annotations

import pytest

from wwnode.amqp.publisher import Outbox
from wwnode.amqp.topology import DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, Outgoing
from wwnode.amqp.spool import Spool


def event(name: str) -> Outgoing:
    return Outgoing(EVENTS_EXCHANGE, name, b'{"event": "%s"}' % name.encode())


def names(outbox: Outbox) -> list[str]:
    return [item.routing_key for item in outbox]


def test_events_an_earlier_run_left_are_queued_again_in_order(tmp_path):
    path = tmp_path / "events.log"
    before = Outbox(Spool(path))
    for name in ("e1", "e2", "e3"):
        before.put(event(name))
    before.done()  # e1 was confirmed

    after = Outbox(Spool(path))  # a restart: a new node process
    assert names(after) == ["e2", "e3"]
    assert [item.body for item in after] == [b'{"event": "e2"}', b'{"event": "e3"}']
    after.done()
    after.done()
    assert path.stat().st_size == 0 and names(Outbox(Spool(path))) == []


def test_past_the_limit_the_oldest_event_is_dropped_and_commands_are_kept(tmp_path):
    path = tmp_path / "events.log"
    outbox = Outbox(Spool(path, limit=3))
    dead_letter = Outgoing("", DEAD_LETTER_QUEUE, b"{}", mandatory=True)
    outbox.put(dead_letter)  # still unacked in its queue: not the spool's to drop
    for name in ("e1", "e2", "e3", "e4", "e5"):
        outbox.put(event(name))
    assert names(outbox) == [DEAD_LETTER_QUEUE, "e3", "e4", "e5"]

    assert names(Outbox(Spool(path, limit=3))) == ["e3", "e4", "e5"]  # the disk agrees


def test_a_spool_left_over_its_limit_keeps_the_newest(tmp_path):
    path = tmp_path / "events.log"
    outbox = Outbox(Spool(path, limit=10))
    for i in range(6):
        outbox.put(event(f"e{i}"))
    assert names(Outbox(Spool(path, limit=4))) == ["e2", "e3", "e4", "e5"]


def test_the_spool_is_read_back_once(tmp_path):
    spool = Spool(tmp_path / "events.log")
    Outbox(spool).put(event("e1"))
    with pytest.raises(RuntimeError, match="recovered already"):
        spool.recover()  # a caller that replays it again would queue every event twice

"""The spool: events not yet confirmed by RabbitMQ, kept on disk so a node
restarted during an outage still publishes them, in order."""

from __future__ import annotations

import orjson

from wwnode.amqp.spool import Spool


def journal(spool: Spool) -> list[bytes]:
    return spool.path.read_bytes().splitlines() if spool.path.exists() else []


def test_what_a_run_did_not_get_confirmed_comes_back_in_order(tmp_path):
    path = tmp_path / "spool" / "events.log"
    first = Spool(path)
    seqs = [first.add(f"ev{i}", orjson.dumps({"n": i, "text": "é\n\"x\""})) for i in range(4)]
    first.confirmed(seqs[0])
    first.confirmed(seqs[1])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    # The node dies here; the next run reads the journal.
    again = Spool(path)
    waiting = again.recover()
    assert waiting == [("ev2", orjson.dumps({"n": 2, "text": "é\n\"x\""})),
                       ("ev3", orjson.dumps({"n": 3, "text": "é\n\"x\""}))]
    assert journal(again) == []  # emptied: the caller queues them again


def test_the_journal_is_emptied_whenever_nothing_waits(tmp_path):
    spool = Spool(tmp_path / "events.log")
    a = spool.add("ev", b"{}")
    b = spool.add("ev", b"{}")
    spool.confirmed(a)
    assert len(journal(spool)) == 3  # two events and a confirm
    spool.confirmed(b)
    assert journal(spool) == []
    assert Spool(tmp_path / "events.log").recover() == []


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    spool = Spool(tmp_path / "events.log")
    spool.add("ev1", b'{"a":1}')
    spool.add("ev2", b'{"a":2}')
    with open(spool.path, "ab") as f:
        f.write(b'E 3 {"k": "ev3", "b": "{\\"a')  # the crash came mid-write
    assert Spool(spool.path).recover() == [("ev1", b'{"a":1}'), ("ev2", b'{"a":2}')]


def test_past_the_limit_the_oldest_are_dropped(tmp_path):
    spool = Spool(tmp_path / "events.log", limit=2)
    seqs = [spool.add(f"ev{i}", b"{}") for i in range(3)]
    assert spool.over_limit
    spool.dropped(seqs[0])  # the publisher gives the oldest up
    assert not spool.over_limit
    assert [k for k, _ in Spool(spool.path, limit=2).recover()] == ["ev1", "ev2"]

    crowded = Spool(tmp_path / "crowded.log", limit=100)
    for i in range(5):
        crowded.add(f"ev{i}", b"{}")
    assert [k for k, _ in Spool(crowded.path, limit=3).recover()] == ["ev2", "ev3", "ev4"]  # a smaller limit now

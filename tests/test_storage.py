"""A full or read-only disk under DATA_DIR: the node lives through it.
Units: the storage rule with a probe handed in, the spool on a file that
takes no writes (``/dev/full``), and the node's parts around them."""

from __future__ import annotations

import errno

import orjson

from sessionproc.protocol import EXIT_CANNOT_START
from support import delivery, node_rig
from wwnode import states as S
from wwnode.amqp.publisher import Outbox
from wwnode.amqp.topology import EVENTS_EXCHANGE, Outgoing
from wwnode.commands import Command
from wwnode.amqp.spool import Spool
from wwnode.storage import Storage


class Disk:
    """A probe the test fills and frees."""

    def __init__(self):
        self.full = False
        self.probes = 0

    def probe(self) -> None:
        self.probes += 1
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_sets_the_condition_and_a_probe_that_works_clears_it():
    disk = Disk()
    storage = Storage(disk.probe, check_every=5)
    redone = []
    storage.on_recovery(lambda: redone.append(True))
    storage.tick(0)
    assert storage.ok and disk.probes == 1
    storage.tick(4)
    assert disk.probes == 1  # not before check_every
    disk.full = True
    storage.failed("the event spool", OSError(errno.ENOSPC, "No space left on device"))
    assert not storage.ok and storage.gauges()["disk_ok"] == 0
    storage.tick(4.5)  # probed at once once something failed
    assert not storage.ok and disk.probes == 2 and storage.errors == 2
    disk.full = False
    storage.tick(6)
    assert not storage.ok  # next probe at 9.5
    assert storage.usable(6)  # a create probes at once
    assert storage.ok and redone == [True]
    assert storage.gauges() == {"disk_ok": 1, "storage_errors": 2, "events_not_journaled": 0}


def outbox_on_a_full_disk(tmp_path, storage) -> Outbox:
    path = tmp_path / "spool" / "events.log"
    outbox = Outbox(Spool(path, storage=storage))  # reads back what an earlier run left: nothing
    path.unlink()
    path.symlink_to("/dev/full")  # from here on every write: ENOSPC
    return outbox


def event(n: int) -> Outgoing:
    return Outgoing(EVENTS_EXCHANGE, "message_instance", orjson.dumps({"n": n}))


def test_an_event_the_spool_cannot_write_is_queued_all_the_same_and_counted(tmp_path):
    storage = Storage(lambda: None, check_every=5)
    outbox = outbox_on_a_full_disk(tmp_path, storage)
    outbox.put(event(1))
    outbox.put(event(2))
    assert [orjson.loads(i.body)["n"] for i in outbox] == [1, 2]  # still to be published
    assert not storage.ok and storage.not_journaled == 2 and storage.errors >= 2
    assert outbox.done().seq == 1  # the confirm's "C" line fails too: no harm
    # The disk takes writes again: the journal is written afresh from what waits.
    outbox.rejournal()
    assert outbox.spool.complete
    assert Spool(outbox.spool.path).recover() == [("message_instance", orjson.dumps({"n": 2}))]


def test_a_line_a_failed_write_cut_short_is_skipped_and_the_next_ones_kept(tmp_path):
    path = tmp_path / "events.log"
    spool = Spool(path)
    spool.add("ev1", b'{"n":1}')
    with open(path, "ab") as f:
        f.write(b'E 2 {"k":"ev2","b":"{\\"n')  # the disk filled in the middle of this line
    spool._torn = True
    spool.add("ev3", b'{"n":3}')
    assert Spool(path).recover() == [("ev1", b'{"n":1}'), ("ev3", b'{"n":3}')]


def test_a_rewrite_that_fails_leaves_the_old_journal(tmp_path):
    path = tmp_path / "events.log"
    spool = Spool(path)
    spool.add("ev1", b"{}")
    (tmp_path / "events.log.tmp").mkdir()  # the new journal cannot be written
    spool.rewrite([(1, "ev1", b"{}"), (2, "ev2", b"{}")])
    assert Spool(path).recover() == [("ev1", b"{}")]


def test_on_a_full_disk_inbound_messages_go_out_and_creates_fail_storage_error(tmp_path):
    disk = Disk()
    rig = node_rig(tmp_path, probe=disk.probe)
    rec, _ = rig.start("k1")
    rig.make_ready(rec)
    disk.full = True
    rig.node._tick(10)  # the probe finds it
    assert rig.node.heartbeat()["disk_ok"] == 0
    rig.say(rec, {"event": "message", "message": {"id": {"_serialized": "m1"}, "body": "hi"}}, now=10)
    assert [e["message"]["body"] for e in rig.broker.events("message_instance")] == ["hi"]
    d = _create(rig, "k2", now=11)
    assert rig.broker.failed() == [(d.tag, "storage_error")]
    assert rig.sessions.get("k2") is None and rig.spawner.keys() == ["k1"]
    # Space comes back: the next create finds it at once.
    disk.full = False
    _create(rig, "k2", now=12)
    assert rig.spawner.keys() == ["k1", "k2"] and rig.node.heartbeat()["disk_ok"] == 1


def test_a_create_refused_for_storage_gives_its_claim_back(tmp_path):
    disk = Disk()
    disk.full = True
    rig = node_rig(tmp_path, probe=disk.probe)
    rig.node._tick(0)  # the probe finds it full
    d = delivery("create_instance", {"key": "k2"})
    rig.dispatch.on_command(d, 1)
    assert rig.broker.failed() == [(d.tag, "storage_error")]
    # Another node may take the client's retry: the lease is not kept here.
    assert "k2" not in rig.store.owners and not rig.ownership.may_run("k2")


def test_a_create_of_a_key_that_failed_here_refused_for_storage_gives_its_claim_back(tmp_path):
    disk = Disk()
    rig = node_rig(tmp_path, probe=disk.probe)
    rig.dispatch.on_command(delivery("create_instance", {"key": "k"}), 0)
    rig.exit(rig.sessions.get("k"), EXIT_CANNOT_START, 1)
    assert rig.sessions.get("k").state == S.FAILED and "k" not in rig.store.owners  # failed, let go
    disk.full = True
    rig.node._tick(2)  # the probe finds it full
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 3)
    assert rig.broker.failed() == [(d.tag, "storage_error")]
    # Its failed record stays here, but not the claim: another node may
    # take the client's retry, rather than hear "runs on node-a".
    assert rig.sessions.get("k").state == S.FAILED
    assert "k" not in rig.store.owners and not rig.ownership.may_run("k") and not rig.sessions.runs("k")


def test_a_create_whose_folder_cannot_be_written_fails_storage_error(tmp_path):
    rig = node_rig(tmp_path)
    (tmp_path / "sessions" / "k1").mkdir(parents=True)
    (tmp_path / "sessions" / "k1" / "wanted").mkdir()  # the marker cannot be written
    d = _create(rig, "k1", now=0)
    assert rig.broker.failed() == [(d.tag, "storage_error")]
    assert not rig.node.storage.ok and rig.node.heartbeat()["storage_errors"] == 1


def _create(rig, key: str, now: float):
    d = delivery(body={"key": key})
    assert rig.node.ownership.claim(key)
    rig.carry_out(Command("create_instance", key), d, now)
    rig.broker.confirm_all()
    return d

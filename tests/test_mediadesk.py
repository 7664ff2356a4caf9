"""The node's media desk and inbound media, assembled around fakes: a
media send reaches the session as a path in its folder, waits behind
nothing else, goes back to its queue when the node goes down, and an
inbound file becomes inline data or a blob.  With an S3 blob store that
refuses or never answers, a send naming a blob is refused and an inbound
file is reported with ``media.error``; the loop never waits for the store."""

from __future__ import annotations

import base64
import binascii
import gc
import threading
import time
import weakref

import orjson
import pytest

from mediafiles import FileServer, jpeg, pdf
from support import SilentServer, closed_port, delivery, node_rig, wait_for
from wwnode.blobstore import S3BlobStore, open_blob_store
from wwnode.commands import parse
from wwnode.media.desk import MediaDesk
from wwnode.media.inbound import InboundMedia
from wwnode.media.request import MediaRequest
from wwnode.snapshots import SnapshotName


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path, media_inline_limit=1000)


def desk(rig) -> MediaDesk:
    return next(c for c in rig.node.chores if isinstance(c, MediaDesk))


def media_send(rig, media: dict, text: str = "caption", cid: str | None = None, key: str = "k"):
    body = {"key": key, "chat_id": "5511999990001@c.us", "message": text, "media": media}
    if cid:
        body["id"] = cid
    d = delivery("send_message", body)
    rig.dispatch.handlers["send_message"](parse("send_message", d.body), d, 1.0)
    return d


def settle(rig, now: float = 1.0) -> None:
    m = desk(rig)
    wait_for(lambda: all(e.future is None or e.future.done() for q in m._waiting.values() for e in q),
             what="the media to be prepared")
    m.tick(now)


def inbound(rig) -> InboundMedia:
    return next(c for c in rig.node.chores if isinstance(c, InboundMedia))


def settle_inbound(rig, now: float = 3.0, timeout: float = 10.0) -> None:
    m = inbound(rig)
    wait_for(lambda: all(e.future is None or e.future.done() for q in m._waiting.values() for e in q),
             timeout=timeout, what="the inbound media to be stored")
    m.tick(now)
    assert not m.busy()


def say_file(rig, rec, name: str, data: bytes, now: float = 2.0) -> None:
    """The session got a message with this file (``in-...`` in its folder)."""
    folder = rig.cfg.data_dir / "sessions" / rec.key / "media"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    rig.say(rec, {"event": "message", "message": {"id": {"id": name.upper()}, "hasMedia": True},
                  "media": {"path": str(folder / name), "mimetype": "application/pdf", "filename": "Ä.pdf",
                            "size": len(data)}}, now=now)


def say_text(rig, rec, msg_id: str, now: float = 2.0) -> None:
    rig.say(rec, {"event": "message", "message": {"id": {"id": msg_id}, "hasMedia": False, "body": "hi"}}, now=now)


def reported(rig) -> list[tuple[str, str, dict | None]]:
    return [(e["key"], e["message"]["id"]["id"], e["message"].get("media"))
            for e in rig.broker.events("message_instance")]


def test_a_media_send_reaches_the_session_as_a_path_in_its_folder(rig, tmp_path):
    rec, _ = rig.start()
    rig.make_ready(rec)
    photo = jpeg(3000)
    media_send(rig, {"data": base64.b64encode(photo).decode()}, cid="c1")
    settle(rig)
    line = rec.child.sent[-1]
    assert (line["cmd"], line["text"]) == ("send", "caption")
    path = line["media"].pop("path")
    assert line["media"] == {"mimetype": "image/jpeg", "filename": None, "as": "image"}
    assert path.startswith(str((tmp_path / "sessions" / "k" / "media").resolve()))
    with open(path, "rb") as f:
        assert f.read() == photo


def test_base64_media_is_decoded_on_a_worker_never_on_the_loop(rig, monkeypatch):
    """A large file's decoding held the loop for seconds; the send's base64
    text waits with the worker's task only, not with the queued command."""
    decoded_on: list[str] = []
    real = base64.b64decode

    def noting(*args, **kwargs):
        decoded_on.append(threading.current_thread().name)
        return real(*args, **kwargs)

    rec, _ = rig.start()
    rig.make_ready(rec)
    photo = jpeg(3 * 1024 * 1024)  # three slices of base64 (media.B64_SLICE)
    monkeypatch.setattr(base64, "b64decode", noting)
    media_send(rig, {"data": real_b64(photo)}, cid="c1")
    assert all(e.command.media is None for e in desk(rig)._waiting["k"])
    settle(rig)
    monkeypatch.undo()
    assert len(decoded_on) >= 4 and threading.main_thread().name not in decoded_on, decoded_on
    with open(rec.child.sent[-1]["media"]["path"], "rb") as f:
        assert f.read() == photo


def real_b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


def test_a_refusal_fails_the_command_and_sends_nothing(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    before = len(rec.child.sent)
    d = media_send(rig, {"data": base64.b64encode(b"<html></html>").decode(), "as": "image"})
    settle(rig)
    assert rig.broker.failed() == [(d.tag, "not_media")]
    assert len(rec.child.sent) == before
    assert not list((rig.cfg.data_dir / "sessions" / "k" / "media").glob("out-*"))


def test_a_refused_send_lets_its_body_and_its_base64_text_go_once_answered(rig):
    """F7: the refusal, raised again on the loop, made a cycle (its
    traceback held the desk's frame, the frame the future, the future the
    refusal) that kept each refused send's body and base64 text until the
    garbage collector came by: fifteen 120 MiB sends held 3 GB, all of it
    acknowledged.  Now they go as soon as the command is answered, with
    the collector off; and COMMAND_BYTES_LIMIT counted the text meanwhile."""
    rec, _ = rig.start()
    rig.make_ready(rec)
    text = base64.b64encode(bytes(3 * 1024 * 1024)).decode()  # zeros: no image
    gc.collect()
    gc.disable()
    try:
        d = media_send(rig, {"data": text, "as": "image"})
        assert rig.broker.copies[d.tag] == len(text)  # counted with its body while it waits
        settle(rig)
        assert rig.broker.copies[d.tag] == 0  # and no longer once its turn came
        rig.broker.confirm_all()  # the dead letter is confirmed: acknowledged
        assert [e["reason"] for e in rig.broker.events("command_failed")] == ["not_media"]
        assert d.tag in rig.broker.acked
        rig.broker.published.clear()  # (the fake broker's own record of what went out)
        gone = weakref.ref(d)
        del d
        assert gone() is None
        assert not [o for o in gc.get_objects() if isinstance(o, MediaRequest) and o.base64 == text]
    finally:
        gc.enable()


def test_sends_waiting_for_media_go_back_to_their_queue_when_the_node_goes_down(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d1 = media_send(rig, {"data": base64.b64encode(jpeg(2000)).decode()})
    d2 = delivery("send_message", {"key": "k", "chat_id": "5511999990001@c.us", "message": "text after"})
    rig.dispatch.handlers["send_message"](parse("send_message", d2.body), d2, 1.0)
    rig.sessions.shutdown(1.0)  # the node stops: not a destroy
    assert {d1.tag, d2.tag} <= set(rig.broker.requeued)
    settle(rig)
    assert all(line.get("text") != "text after" for line in rec.child.sent)
    wait_for(lambda: not list((rig.cfg.data_dir / "sessions" / "k" / "media").glob("out-*")),
             what="the prepared file to be removed")


def test_slow_servers_hold_the_media_workers_no_longer_than_the_fetch_deadline(tmp_path):
    """Two URLs that trickle (headers, body) take both workers; another
    key's media waits for one, and the whole wait is bounded by
    MEDIA_FETCH_TIMEOUT, not by how long the servers go on."""
    rig = node_rig(tmp_path, media_fetch_timeout=1, media_allow_private_urls=True)
    files = FileServer()
    try:
        files.files["photo.jpg"] = (jpeg(2000), "image/jpeg")
        recs = {}
        for key in ("slow1", "slow2", "other"):
            recs[key], _ = rig.start(key)
            rig.make_ready(recs[key])
        started = time.monotonic()
        slow = [media_send(rig, {"url": files.url(name)}, key=key)
                for key, name in (("slow1", "trickle-head"), ("slow2", "trickle-body"))]
        media_send(rig, {"url": files.url("photo.jpg")}, key="other", cid="fast")
        settle(rig)
        assert time.monotonic() - started < 3.0  # two deadlines run side by side, then the fast fetch
        assert rig.broker.failed() == [(d.tag, "media_unreachable") for d in slow]
        [sent] = recs["other"].child.commands("send")  # the fast one went out to its session
        assert sent["media"]["as"] == "image"
    finally:
        files.stop()


def test_inbound_media_is_inline_up_to_the_limit_else_a_blob(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    small, big = pdf(900), pdf(5000)
    say_file(rig, rec, "in-a", small)
    say_file(rig, rec, "in-b", big)
    say_text(rig, rec, "AFTER")  # waits for the blob before it
    settle_inbound(rig)
    first, second, third = rig.broker.events("message_instance")
    assert base64.b64decode(first["message"]["media"]["data"]) == small
    assert first["message"]["media"]["filename"] == "Ä.pdf"
    blob = second["message"]["media"]["blob"]
    assert "data" not in second["message"]["media"]
    assert open_blob_store("", rig.cfg.data_dir).get_bytes(blob) == big
    assert third["message"]["id"]["id"] == "AFTER" and "media" not in third["message"]
    assert not list((rig.cfg.data_dir / "sessions" / "k" / "media").iterdir())  # both files taken


def test_the_accounts_own_messages_are_their_own_event_in_order_with_the_others(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    big = pdf(5000)
    say_file(rig, rec, "in-a", big)  # stored as a blob: what follows waits behind it
    rig.say(rec, {"event": "message", "message": {"id": {"id": "OWN", "fromMe": True}, "fromMe": True,
                                                  "hasMedia": False, "body": "from the phone"}}, now=2.0)
    say_text(rig, rec, "THEIRS")
    settle_inbound(rig)
    names = ("message_instance", "own_message_instance")
    assert [(i.routing_key, orjson.loads(i.body)["message"]["id"]["id"]) for i in rig.broker.published
            if i.exchange == "wa.events" and i.routing_key in names] == [
        ("message_instance", "IN-A"), ("own_message_instance", "OWN"), ("message_instance", "THEIRS")]
    [own] = rig.broker.events("own_message_instance")
    assert own["key"] == "k" and own["message"]["fromMe"] is True


def event_ids(rig, name: str = "message_instance") -> list[tuple[str, str, str]]:
    """(key, message id, event id) of each event of that name, in order."""
    return [(doc["key"], doc["message"]["id"].get("_serialized"), doc["id"])
            for doc in (orjson.loads(i.body) for i in rig.broker.published
                        if i.exchange == "wa.events" and i.routing_key == name)]


def test_a_message_reported_again_keeps_its_event_id(rig):
    """A restarted page is handed every message the one before had not
    acknowledged, and reports it again: the same event id, so a client that
    deduplicates on it (as docs/protocol.md says) sees it once."""
    def message(serialized: str) -> dict:
        return {"event": "message", "message": {"id": {"_serialized": serialized, "id": serialized[-3:]},
                                                "body": "hi", "hasMedia": False}}

    rec, _ = rig.start()
    other, _ = rig.start("k2")  # another key paired with the same phone gets the same message
    for r in (rec, other):
        rig.make_ready(r)
    rig.say(rec, message("false_5511@c.us_AAA"), message("false_5511@c.us_BBB"), now=2.0)
    rig.say(other, message("false_5511@c.us_AAA"), now=2.0)
    rig.exit(rec, -9, now=3.0)  # a crash: the new page reports AAA again
    rig.node._tick(5.0)
    rig.make_ready(rec, now=6.0)
    rig.say(rec, message("false_5511@c.us_AAA"), now=7.0)
    rig.say(rec, {"event": "message", "message": {"id": {"id": "NOSER"}, "body": "no id", "hasMedia": False}},
            {"event": "message", "message": {"id": {"id": "NOSER"}, "body": "no id", "hasMedia": False}}, now=8.0)
    (k, a, first), (_, b, second), (k2, a2, elsewhere), (_, a_again, again), (_, _, n1), (_, _, n2) = event_ids(rig)
    assert (k, a, k2, a2, a_again) == ("k", "false_5511@c.us_AAA", "k2", "false_5511@c.us_AAA", "false_5511@c.us_AAA")
    assert again == first  # reported again: the same event
    assert len({first, second, elsewhere, n1, n2}) == 5  # other messages, another key, no id to go by: new ids
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in (first, second, n1))  # as any event id: 32 hex digits


def test_inbound_media_outside_the_sessions_folder_is_not_read(rig, tmp_path):
    rec, _ = rig.start()
    rig.make_ready(rec)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    rig.say(rec, {"event": "message", "message": {"id": {"id": "X"}, "hasMedia": True},
                  "media": {"path": str(secret), "mimetype": "text/plain", "filename": None, "size": 9}}, now=2.0)
    [event] = rig.broker.events("message_instance")
    assert "data" not in event["message"]["media"] and event["message"]["media"]["error"]
    assert secret.read_bytes() == b"not yours"


def test_a_key_sends_its_own_media_blobs_and_nothing_else_of_the_store(rig):
    """A client of ``k`` cannot make the node send another key's saved login
    or media, nor learn from the answers what the store holds."""
    rec, _ = rig.start()
    rig.make_ready(rec)
    folder = rig.cfg.data_dir / "sessions" / "k" / "media"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "in-a").write_bytes(pdf(5000))
    rig.say(rec, {"event": "message", "message": {"id": {"id": "A1"}, "hasMedia": True},
                  "media": {"path": str(folder / "in-a"), "mimetype": "application/pdf", "filename": None,
                            "size": 5000}}, now=2.0)
    settle_inbound(rig)
    [inbound] = rig.broker.events("message_instance")
    received = inbound["message"]["media"]["blob"]
    blobs = open_blob_store("", rig.cfg.data_dir)
    snapshot = SnapshotName(3, 1700000000123).blob_id("v")
    blobs.put_bytes(snapshot, b"\x1f\x8b v's saved login")
    blobs.put_bytes("media/v/photo", jpeg(800))
    blobs.put_bytes("media/k/album/photo", jpeg(800))
    before = len(rec.child.sent)
    tries = {"missing": "media/k/none", "snapshot": snapshot, "v's media": "media/v/photo",
             "v's folder": "snapshots/v", "a folder": "media/k/album"}
    for what, blob_id in tries.items():
        media_send(rig, {"blob": blob_id, "as": "document"}, cid=what)
    settle(rig)
    failed = {e["command_id"]: (e["reason"], e["detail"]) for e in rig.broker.events("command_failed")}
    assert set(failed) == set(tries)
    assert len(set(failed.values())) == 1 and failed["missing"][0] == "media_unreachable"
    assert len(rec.child.sent) == before  # nothing went to the session
    # What the key received, and what its client put among its media, go out.
    media_send(rig, {"blob": received}, cid="back")
    media_send(rig, {"blob": "media/k/album/photo"}, cid="own")
    settle(rig)
    sent = rec.child.sent[before:]
    assert [(line["cmd"], line["media"]["as"]) for line in sent] == [("send", "document"), ("send", "image")]
    with open(sent[0]["media"]["path"], "rb") as f:
        assert f.read() == blobs.get_bytes(received)


def test_a_media_send_for_a_key_not_here_makes_no_folder(rig):
    d = media_send(rig, {"data": base64.b64encode(jpeg(2000)).decode()})
    assert rig.broker.failed() == [(d.tag, "unknown_instance")]
    assert not (rig.cfg.data_dir / "sessions" / "k").exists()


# ------------------------------------------------ a blob store that fails
@pytest.fixture
def refused(aws_credentials):
    """An S3 store on a closed port, its endpoint carrying a password."""
    closed = closed_port()
    yield S3BlobStore("bucket", "pre", f"http://wwnode:s3cret-pw@127.0.0.1:{closed.getsockname()[1]}", attempts=2)
    closed.close()


def test_a_send_naming_a_blob_the_store_cannot_give_is_refused_and_the_key_sends_on(refused, tmp_path):
    rig = node_rig(tmp_path, blobs=refused)
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = media_send(rig, {"blob": "media/k/photo", "as": "image"}, cid="b1")
    media_send(rig, {"data": base64.b64encode(jpeg(2000)).decode()}, text="a photo after it", cid="b2")
    settle(rig)
    settle(rig)  # the photo, which waited behind the refused one
    assert rig.broker.failed() == [(d.tag, "media_unreachable")]
    [failed] = rig.broker.events("command_failed")
    assert failed["command_id"] == "b1" and "media/k/photo" in failed["detail"]
    assert "s3cret" not in failed["detail"] and "127.0.0.1" not in failed["detail"]  # the store's address is ours
    assert rec.child.sent[-1]["text"] == "a photo after it"
    assert [p.name for p in (tmp_path / "sessions" / "k" / "media").iterdir()] == \
        [rec.child.sent[-1]["media"]["path"].rpartition("/")[2]]  # nothing of the refused one


def test_an_inbound_file_the_store_refuses_is_reported_with_an_error_in_order(refused, tmp_path):
    rig = node_rig(tmp_path, media_inline_limit=1000, blobs=refused)
    rec, _ = rig.start()
    rig.make_ready(rec)
    small = pdf(900)
    say_file(rig, rec, "in-big", pdf(5000))
    say_file(rig, rec, "in-small", small)
    settle_inbound(rig)
    (_, first, big), (_, second, inline) = reported(rig)
    assert (first, second) == ("IN-BIG", "IN-SMALL")
    assert big == {"mimetype": "application/pdf", "filename": "Ä.pdf", "size": 5000,
                   "error": "the media could not be stored"}
    assert base64.b64decode(inline["data"]) == small
    assert not list((tmp_path / "sessions" / "k" / "media").iterdir())  # the refused file is not left behind


def test_a_silent_store_never_holds_the_loop(aws_credentials, tmp_path):
    """While the store holds the upload of one key's file, the message
    handler has returned, another key's message goes out at once, and the
    first key's later message waits behind its file."""
    silent = SilentServer()
    try:
        store = S3BlobStore("bucket", "pre", silent.endpoint, connect_timeout=1, read_timeout=2, attempts=1)
        rig = node_rig(tmp_path, media_inline_limit=1000, blobs=store)
        rec, _ = rig.start("k")
        rig.make_ready(rec)
        other, _ = rig.start("other")
        rig.make_ready(other)
        say_file(rig, rec, "in-big", pdf(5000))
        # Returned with the upload under way: the store has the request and
        # has not answered (on the loop, the handler would have returned
        # only after its 2 s timeout, the message reported).
        wait_for(lambda: silent.count("PUT") == 1, what="the upload to reach the store")
        assert inbound(rig).busy() and reported(rig) == []
        say_text(rig, other, "OTHER")
        say_text(rig, rec, "LATER")
        inbound(rig).tick(2.5)
        assert [(key, msg) for key, msg, _ in reported(rig)] == [("other", "OTHER")]
        settle_inbound(rig)
        assert [(key, msg) for key, msg, _ in reported(rig)] == [("other", "OTHER"), ("k", "IN-BIG"), ("k", "LATER")]
        assert reported(rig)[1][2]["error"] == "the media could not be stored"
    finally:
        silent.close()

"""The node's media desk and inbound media, assembled around fakes: a
media send reaches the session as a path in its folder, waits behind
nothing else, goes back to its queue when the node goes down, and an
inbound file becomes inline data or a blob."""

from __future__ import annotations

import base64

import pytest

from mediafiles import jpeg, pdf
from support import delivery, node_rig, wait_for
from wwnode.blobstore import open_blob_store
from wwnode.commands import parse
from wwnode.mediadesk import MediaDesk
from wwnode.snapshots import SnapshotName


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path, media_inline_limit=1000)


def desk(rig) -> MediaDesk:
    return next(c for c in rig.node.chores if isinstance(c, MediaDesk))


def media_send(rig, media: dict, text: str = "caption", cid: str | None = None):
    body = {"key": "k", "chat_id": "5511999990001@c.us", "message": text, "media": media}
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


def test_a_refusal_fails_the_command_and_sends_nothing(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    before = len(rec.child.sent)
    d = media_send(rig, {"data": base64.b64encode(b"<html></html>").decode(), "as": "image"})
    settle(rig)
    assert rig.broker.failed() == [(d.tag, "not_media")]
    assert len(rec.child.sent) == before
    assert not list((rig.cfg.data_dir / "sessions" / "k" / "media").glob("out-*"))


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


def test_inbound_media_is_inline_up_to_the_limit_else_a_blob(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    folder = rig.cfg.data_dir / "sessions" / "k" / "media"
    folder.mkdir(parents=True, exist_ok=True)
    small, big = pdf(900), pdf(5000)
    for name, data in (("in-a", small), ("in-b", big)):
        (folder / name).write_bytes(data)
        rig.say(rec, {"event": "message", "message": {"id": {"id": name.upper()}, "hasMedia": True},
                      "media": {"path": str(folder / name), "mimetype": "application/pdf", "filename": "Ä.pdf",
                                "size": len(data)}}, now=2.0)
    first, second = rig.broker.events("message_instance")
    assert base64.b64decode(first["message"]["media"]["data"]) == small
    assert first["message"]["media"]["filename"] == "Ä.pdf"
    blob = second["message"]["media"]["blob"]
    assert "data" not in second["message"]["media"]
    assert open_blob_store("", rig.cfg.data_dir).get_bytes(blob) == big
    assert not list(folder.iterdir())  # both files taken


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

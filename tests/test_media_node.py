"""The node's part of media sends, with fake session processes (no
browser): what is refused before a session is asked, the order of a key's
sends while a file is fetched, and a blob store that fails.  Real RabbitMQ,
Redis and nodes."""

from __future__ import annotations

import base64

import pytest

from mediafiles import FileServer, jpeg
from support import closed_port, create_ready, new_phone
from wwnode.blobstore import open_blob_store
from wwnode.snapshots import SnapshotName

pytestmark = pytest.mark.services


@pytest.fixture
def files():
    server = FileServer()
    yield server
    server.stop()


def send(rabbit, key, friend, cid, message, media=None):
    body = {"key": key, "chat_id": f"{friend}@c.us", "message": message, "id": cid}
    if media is not None:
        body["media"] = media
    rabbit.publish("send_message", body)


def test_a_private_address_is_refused_by_default(fake_nodes, fake, rabbit, files):
    fake_nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "m-priv", phone)
    files.files["photo.jpg"] = (jpeg(2000), "image/jpeg")
    send(rabbit, "m-priv", friend, "p1", "", {"url": files.url("photo.jpg")})
    failed = rabbit.expect("command_failed", command_id="p1")
    assert failed["reason"] == "media_url_refused" and "127.0.0.1" in failed["detail"]
    send(rabbit, "m-priv", friend, "p2", "", {"url": "http://localhost:9/x.jpg"})
    assert rabbit.expect("command_failed", command_id="p2")["reason"] == "media_url_refused"
    send(rabbit, "m-priv", friend, "p3", "still here")
    rabbit.expect("message_sent_instance", command_id="p3")
    assert [m["body"] for m in fake.sent_by(phone)] == ["still here"]  # nothing of the refused ones


def test_a_keys_sends_keep_their_order_while_a_file_is_fetched(fake_nodes, fake, rabbit, files):
    node = fake_nodes(media_allow_private_urls="true", media_fetch_timeout="1")
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "m-order", phone)
    send(rabbit, "m-order", friend, "o1", "", {"url": files.url("slow")})  # answers never: fails after 1 s
    send(rabbit, "m-order", friend, "o2", "after the slow one")
    send(rabbit, "m-order", friend, "o3", "a photo", {"data": base64.b64encode(jpeg(5000)).decode()})
    send(rabbit, "m-order", friend, "o4", "last")
    rabbit.expect("message_sent_instance", command_id="o4")
    outcomes = [e.get("command_id") for e in rabbit.events
                if e.get("event") in ("command_failed", "message_sent_instance")]
    assert outcomes == ["o1", "o2", "o3", "o4"]
    assert rabbit.find("command_failed", command_id="o1")[0]["reason"] == "media_unreachable"
    assert [m["body"] for m in fake.sent_by(phone)] == ["after the slow one", "a photo", "last"]
    left = list((node.data_dir / "sessions" / "m-order" / "media").glob("out-*"))
    assert len(left) == 1 and left[0].stat().st_mode & 0o777 == 0o600  # the photo, for the session to take


def test_large_base64_sends_wait_in_their_queue_past_the_bytes_limit_and_all_go_in_order(fake_nodes, fake,
                                                                                           rabbit):
    """Six sends of 3 MiB of base64 with COMMAND_BYTES_LIMIT 7 MiB: the node
    holds at most two at once (the rest wait in the queue, the log says so),
    and every send of the key is answered once, in order; another key's text
    goes through."""
    node = fake_nodes(command_bytes_limit=str(7 * 1024 * 1024))
    phone, other, friend = new_phone(), new_phone(), new_phone()
    create_ready(rabbit, fake, "m-big", phone)
    create_ready(rabbit, fake, "m-calm", other)
    fake.sends(phone, "slow", delay=0.5)  # each send takes its time: the later ones pile up meanwhile
    photo = base64.b64encode(jpeg(int(2.25 * 1024 * 1024))).decode()  # 3 MiB of base64
    for n in range(6):
        send(rabbit, "m-big", friend, f"b{n}", f"photo {n}", {"data": photo})
    send(rabbit, "m-calm", friend, "c1", "meanwhile")
    send(rabbit, "m-big", friend, "b6", "last")
    rabbit.expect("message_sent_instance", command_id="b6", timeout=60)
    rabbit.expect("message_sent_instance", command_id="c1")
    outcomes = [e.get("command_id") for e in rabbit.events
                if e.get("event") in ("command_failed", "message_sent_instance") and e.get("key") == "m-big"]
    assert outcomes == [f"b{n}" for n in range(7)]
    assert [m["body"] for m in fake.sent_by(phone)] == [f"photo {n}" for n in range(6)] + ["last"]
    assert "waits in its queue until some are done" in node.log_text()


def test_a_failing_blob_store_fails_what_needs_it_and_the_node_runs_on(fake_nodes, fake, rabbit, aws_credentials):
    """An S3 store that refuses (an outage): the create's restore check
    fails and the key starts with a QR code; a send naming a blob is
    refused; a contact's file over the inline limit comes with
    ``media.error``; the node serves the next command, and its log never
    shows the endpoint's password."""
    closed = closed_port()
    try:
        node = fake_nodes(blob_store_url="s3://bucket/pre", media_inline_limit=1000,
                          blob_store_endpoint=f"http://wwnode:s3cret-pw@127.0.0.1:{closed.getsockname()[1]}")
        phone, friend = new_phone(), new_phone()
        create_ready(rabbit, fake, "m-s3", phone)
        send(rabbit, "m-s3", friend, "b1", "", {"blob": "media/m-s3/photo", "as": "image"})
        failed = rabbit.expect("command_failed", command_id="b1")
        assert failed["reason"] == "media_unreachable" and "media/m-s3/photo" in failed["detail"]
        assert "s3cret" not in failed["detail"]
        send(rabbit, "m-s3", friend, "b2", "still here")
        rabbit.expect("message_sent_instance", command_id="b2")
        assert [m["body"] for m in fake.sent_by(phone)] == ["still here"]

        big = fake.deliver(phone, friend, "a file", media={"size": 5000, "mimetype": "application/pdf",
                                                            "filename": "big.pdf"})
        after = fake.deliver(phone, friend, "after the file")
        first = rabbit.expect("message_instance", key="m-s3")
        second = rabbit.expect("message_instance", key="m-s3")
        assert [first["message"]["id"]["id"], second["message"]["id"]["id"]] == [big, after]
        assert first["message"]["hasMedia"] is True
        assert first["message"]["media"] == {"mimetype": "application/pdf", "filename": "big.pdf", "size": 5000,
                                             "error": "the media could not be stored"}
        assert not list((node.data_dir / "sessions" / "m-s3" / "media").glob("in-*"))

        send(rabbit, "m-s3", friend, "b3", "and on")
        rabbit.expect("message_sent_instance", command_id="b3")
        assert node.alive()
        log = node.log_text()
        assert "could not restore its saved login" in log and "cannot store inbound media" in log
        assert "s3cret-pw" not in node.output()
    finally:
        closed.close()


def test_a_client_of_one_key_gets_nothing_of_anothers_through_media_blob(fake_nodes, fake, rabbit):
    """Another key's saved login and media, and the store's folders, are
    refused by one answer, the same as a blob that is not there; the key's
    own media go out."""
    node = fake_nodes()
    phone, victim_phone, friend = new_phone(), new_phone(), new_phone()
    create_ready(rabbit, fake, "m-own", phone)
    create_ready(rabbit, fake, "m-victim", victim_phone)
    blobs = open_blob_store("", node.data_dir)
    snapshot = SnapshotName(1, 1700000000123).blob_id("m-victim")
    blobs.put_bytes(snapshot, b"\x1f\x8b the victim's saved login")
    blobs.put_bytes("media/m-victim/photo", jpeg(900))
    blobs.put_bytes("media/m-own/album/photo", jpeg(900))
    tries = {"b-missing": "media/m-own/none", "b-snapshot": snapshot, "b-victims": "media/m-victim/photo",
             "b-folder": "media/m-own/album", "b-victims-folder": "snapshots/m-victim"}
    for cid, blob_id in tries.items():
        send(rabbit, "m-own", friend, cid, "", {"blob": blob_id, "as": "document"})
    send(rabbit, "m-own", friend, "b-own", "mine", {"blob": "media/m-own/album/photo"})
    rabbit.expect("message_sent_instance", command_id="b-own")
    answers = {cid: (e["reason"], e["detail"]) for cid in tries for e in rabbit.find("command_failed", command_id=cid)}
    assert set(answers) == set(tries)
    assert len(set(answers.values())) == 1 and answers["b-missing"][0] == "media_unreachable"
    assert [m["body"] for m in fake.sent_by(phone)] == ["mine"]

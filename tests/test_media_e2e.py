"""Media through the whole service: send_message with media and inbound
media, through RabbitMQ, Redis, a node, its session's Chromium and the
stand-in, compared byte for byte with what the stand-in's media server
holds.  One node and one linked session serve the whole module."""

from __future__ import annotations

import base64
import hashlib

import pytest
import redis as redislib

from mediafiles import FileServer, jpeg, mp4, ogg, pdf, webp
from support import (TEST_REDIS_DB, Client, NodeProcess, all_gone, chrome_processes_under, create_ready, idle_cgroup,
                     new_phone, purge_queues, wait_for)
from wwnode.amqp.topology import COMMAND_QUEUES, DEAD_LETTER_QUEUE, node_queue_name
from wwnode.blobstore import open_blob_store
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

KEY = "media-1"
INLINE = 256 * 1024
NODE = "node-media"


class Rig:
    def __init__(self, tmp, rabbit_url):
        self.wa = FakeWA(settings=Settings(sync_delay=0.25)).start()
        self.control = Control(self.wa.url, timeout=60)
        self.files = FileServer()
        r = redislib.Redis(db=TEST_REDIS_DB)
        r.flushdb()
        r.close()
        self.rabbit = Client(rabbit_url)
        for queue in COMMAND_QUEUES + (DEAD_LETTER_QUEUE,):
            self.rabbit.ch.queue_declare(queue, durable=True)
        purge_queues(self.rabbit.conn, COMMAND_QUEUES + (DEAD_LETTER_QUEUE, node_queue_name(NODE)))
        self.data_dir = tmp / NODE
        self.node = NodeProcess(NODE, self.data_dir, {
            "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": f"redis://127.0.0.1:6379/{TEST_REDIS_DB}",
            "WA_URL": self.wa.url, "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp / "idle")),
            "MEDIA_ALLOW_PRIVATE_URLS": "true", "MEDIA_FETCH_TIMEOUT": "3", "MEDIA_INLINE_LIMIT": str(INLINE),
            # A health check that tolerates a 15 MB file crossing the page on a 2-core machine
            # loaded far past its cores (answers then take over 10 s: see docs/protocol.md, "Media").
            "SEND_TIMEOUT": "90", "PING_TIMEOUT": "30",
        })
        self.blobs = open_blob_store("", self.data_dir)
        self.phone, self.friend = new_phone(), new_phone()
        create_ready(self.rabbit, self.control, KEY, self.phone)

    def send(self, command_id: str, media: dict, caption: str = "") -> dict:
        self.rabbit.publish("send_message", {"key": KEY, "chat_id": f"{self.friend}@c.us", "message": caption,
                                             "media": media, "id": command_id})
        outcome = wait_for(lambda: self.rabbit.find("message_sent_instance", command_id=command_id)
                           or self.rabbit.find("command_failed", command_id=command_id), timeout=90,
                           what=f"the outcome of {command_id}")
        assert outcome[0]["event"] == "message_sent_instance", outcome[0]
        return outcome[0]

    def sent_record(self, sent: dict) -> dict:
        [record] = [m for m in self.control.sent_by(self.phone) if sent["message_id"].endswith("_" + m["id"])]
        return record

    def close(self):
        self.node.terminate()
        wait_for(lambda: all_gone(chrome_processes_under(self.data_dir)), timeout=15, what="no Chrome left")
        self.rabbit.close()
        self.files.stop()
        self.wa.stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory, rabbit_url):
    rig = Rig(tmp_path_factory.mktemp("media-e2e"), rabbit_url)
    yield rig
    rig.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_an_image_with_a_caption_from_base64(rig):
    photo = jpeg(1024 * 1024)
    sent = rig.send("img-1", {"data": b64(photo)}, caption="Your order, ünïcode 😀")
    record = rig.sent_record(sent)
    assert record["body"] == "Your order, ünïcode 😀"
    m = record["media"]
    assert (m["type"], m["mimetype"], m["size"]) == ("image", "image/jpeg", len(photo))
    assert m["filehash"] == base64.b64encode(hashlib.sha256(photo).digest()).decode()
    assert rig.control.media_bytes(m["directPath"]) == photo
    assert not list((rig.data_dir / "sessions" / KEY / "media").glob("out-*"))  # the session took its file


def test_a_15_mb_video_from_a_url(rig):
    video = mp4(15 * 1000 * 1000)
    rig.files.files["clip.mp4"] = (video, "video/mp4")
    sent = rig.send("vid-1", {"url": rig.files.url("clip.mp4")})
    m = rig.sent_record(sent)["media"]
    assert (m["type"], m["mimetype"], m["size"]) == ("video", "video/mp4", len(video))
    assert rig.control.media_bytes(m["directPath"]) == video


def test_a_pdf_with_a_non_ascii_name_from_a_blob(rig):
    doc = pdf(300 * 1024)
    rig.blobs.put_bytes(f"media/{KEY}/invoice-7", doc)  # among the key's media: its sends may name it
    sent = rig.send("doc-1", {"blob": f"media/{KEY}/invoice-7", "filename": "Überweisung März Nº7 — ok.pdf",
                              "as": "document"}, caption="invoice")
    m = rig.sent_record(sent)["media"]
    assert (m["type"], m["mimetype"], m["filename"]) == ("document", "application/pdf", "Überweisung März Nº7 — ok.pdf")
    assert rig.control.media_bytes(m["directPath"]) == doc


def test_a_voice_note_and_a_sticker(rig):
    voice = ogg(40 * 1024)
    m = rig.sent_record(rig.send("ptt-1", {"data": b64(voice), "as": "voice"}))["media"]
    assert (m["type"], m["isPtt"], m["mimetype"]) == ("ptt", True, "audio/ogg; codecs=opus")
    assert rig.control.media_bytes(m["directPath"]) == voice
    sticker = webp(30 * 1024)
    m = rig.sent_record(rig.send("stk-1", {"data": b64(sticker), "as": "sticker"}))["media"]
    assert (m["type"], m["mimetype"]) == ("sticker", "image/webp")
    assert rig.control.media_bytes(m["directPath"]) == sticker


@pytest.mark.parametrize("media,reason", [
    ({"data": b64(b"<html>no</html>"), "as": "image"}, "not_media"),
    ({"data": "AA==", "as": "hologram"}, "media_unknown_type"),
    ({"url": "URL:huge"}, "media_too_large"),
    ({"url": "URL:missing"}, "media_unreachable"),
    ({"url": "URL:slow"}, "media_unreachable"),
    ({"blob": f"media/{KEY}/none"}, "media_unreachable"),
    ({"data": "%%%"}, "bad_media"),
])
def test_refusals_name_their_reason_and_send_nothing(rig, media, reason):
    if media.get("url", "").startswith("URL:"):
        media = {"url": rig.files.url(media["url"][4:])}
    before = len(rig.control.sent_by(rig.phone))
    cid = f"bad-{reason}-{len(rig.rabbit.events)}"
    rig.rabbit.publish("send_message", {"key": KEY, "chat_id": f"{rig.friend}@c.us", "message": "", "media": media,
                                        "id": cid})
    failed = rig.rabbit.expect("command_failed", timeout=30, command_id=cid)
    assert (failed["reason"], failed["key"], failed["command"]) == (reason, KEY, "send_message")
    assert len(rig.control.sent_by(rig.phone)) == before


def test_media_in_inline_and_as_blob(rig):
    note = ogg(20 * 1024)
    rig.control.deliver_media(rig.phone, rig.friend, note, "ptt", "audio/ogg; codecs=opus")
    msg = rig.rabbit.expect("message_instance", timeout=60, key=KEY)["message"]
    assert (msg["hasMedia"], msg["type"]) == (True, "ptt")
    assert msg["media"]["mimetype"] == "audio/ogg; codecs=opus" and msg["media"]["size"] == len(note)
    assert base64.b64decode(msg["media"]["data"]) == note and "blob" not in msg["media"]

    doc = pdf(INLINE - 1000)
    rig.control.deliver_media(rig.phone, rig.friend, doc, "document", "application/pdf",
                              filename="Überweisung März.pdf", caption="see attached")
    msg = rig.rabbit.expect("message_instance", timeout=60, key=KEY)["message"]
    assert (msg["type"], msg["body"], msg["media"]["filename"]) == ("document", "see attached", "Überweisung März.pdf")
    assert base64.b64decode(msg["media"]["data"]) == doc

    video = mp4(15 * 1000 * 1000)
    rig.control.deliver_media(rig.phone, rig.friend, video, "video", "video/mp4", caption="big one")
    msg = rig.rabbit.expect("message_instance", timeout=90, key=KEY)["message"]
    assert (msg["type"], msg["body"], msg["media"]["size"]) == ("video", "big one", len(video))
    assert "data" not in msg["media"]
    assert rig.blobs.get_bytes(msg["media"]["blob"]) == video
    # The session's files were taken by the node.
    wait_for(lambda: not list((rig.data_dir / "sessions" / KEY / "media").glob("in-*")), what="no file left")


def test_a_text_that_comes_while_a_file_is_fetched_is_reported_after_it(rig):
    # A message without a file is written at once by the session's main
    # thread when nothing waits (pagereports.emit_all); one that comes while
    # a file is being fetched from the page waits its turn behind it.
    video = mp4(5 * 1000 * 1000)
    rig.control.deliver_media(rig.phone, rig.friend, video, "video", "video/mp4", caption="the file first")
    rig.control.deliver(rig.phone, rig.friend, "the text second")
    rig.control.deliver(rig.phone, rig.friend, "the text third")
    bodies = [rig.rabbit.expect("message_instance", timeout=90, key=KEY)["message"]["body"] for _ in range(3)]
    assert bodies == ["the file first", "the text second", "the text third"]

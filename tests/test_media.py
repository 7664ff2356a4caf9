"""wwnode/media/ (request, checks, prepare, fetch): the ``media`` field,
what bytes are, WhatsApp's limits, and fetching a URL (size cap, time
limit, private addresses), without a node."""

from __future__ import annotations

import base64
import time

import pytest

from mediafiles import FileServer, jpeg, mp4, ogg, pdf, webp
from wwnode.blobstore import BlobNotFound, open_blob_store
from wwnode.media import prepare as media_prepare
from wwnode.media.blobs import inbound_id, sendable, upload_id
from wwnode.media.checks import sniff
from wwnode.media.fetch import address_allowed
from wwnode.media.prepare import decoded_size, prepare
from wwnode.media.request import MB, MediaLimits, MediaRefused, parse_media
from wwnode.snapshots import SnapshotName


class Rejected(Exception):
    pass


def reject(reason, detail):
    raise Rejected(reason, detail)


def parse(value):
    return parse_media(value, reject)


def reason_of(fn, *args, **kwargs):
    with pytest.raises((Rejected, MediaRefused)) as e:
        fn(*args, **kwargs)
    return e.value.args[0] if isinstance(e.value, Rejected) else e.value.reason


@pytest.fixture(scope="module")
def files():
    server = FileServer()
    yield server
    server.stop()


OPEN = MediaLimits(allow_private_urls=True, fetch_timeout=2)


def test_the_field_is_checked_for_shape():
    assert reason_of(parse, "x") == "wrong_type"
    assert reason_of(parse, {}) == "bad_media"
    assert reason_of(parse, {"url": "http://a/x", "data": "AA=="}) == "bad_media"
    assert reason_of(parse, {"data": "not base64!"}) == "bad_media"
    assert reason_of(parse, {"url": "ftp://host/file"}) == "bad_media"
    assert reason_of(parse, {"blob": "../etc/passwd"}) == "bad_media"
    assert reason_of(parse, {"data": "AA==", "as": "gif"}) == "media_unknown_type"
    assert reason_of(parse, {"data": "AA==", "mimetype": "not a type"}) == "bad_media"
    assert reason_of(parse, {"data": "AA==", "filename": "a/b"}) == "bad_media"
    req = parse({"data": base64.b64encode(b"abc").decode(), "filename": "Überweisung März.pdf", "as": "document"})
    assert (req.source, req.base64, req.filename, req.kind) == ("data", "YWJj", "Überweisung März.pdf", "document")


@pytest.mark.parametrize("data,mimetype", [(jpeg(100), "image/jpeg"), (mp4(100), "video/mp4"),
                                           (ogg(100), "audio/ogg"), (pdf(100), "application/pdf"),
                                           (webp(100), "image/webp")],
                         ids=lambda value: value if isinstance(value, str) else "bytes")  # the same in every worker
def test_sniff_knows_the_formats(data, mimetype):
    assert sniff(data[:64]) == mimetype


def prepare_data(tmp_path, data: bytes, **fields):
    req = parse({"data": base64.b64encode(data).decode(), **fields})
    return prepare(req, tmp_path / "out-1", OPEN)


def test_kinds_limits_and_contents(tmp_path):
    got = prepare_data(tmp_path, jpeg(1000))
    assert (got.kind, got.mimetype, got.size) == ("image", "image/jpeg", 1000)
    assert (tmp_path / "out-1").read_bytes()[:3] == b"\xff\xd8\xff"
    got = prepare_data(tmp_path, pdf(500), filename="Rechnung Nº 7.pdf")
    assert (got.kind, got.mimetype, got.filename) == ("document", "application/pdf", "Rechnung Nº 7.pdf")
    assert prepare_data(tmp_path, ogg(500), **{"as": "voice"}).mimetype == "audio/ogg; codecs=opus"
    assert prepare_data(tmp_path, b"anything at all", **{"as": "document"}).filename == "file.bin"
    # Refusals leave no file behind.
    for data, fields, reason in [
        (jpeg(16 * MB + 1), {}, "media_too_large"),
        (webp(100 * 1024 + 1), {"as": "sticker"}, "media_too_large"),
        (b"<html>not a picture</html>", {"as": "image"}, "not_media"),
        (pdf(100), {"as": "video"}, "not_media"),
        (mp4(100), {"as": "voice"}, "not_media"),
    ]:
        assert reason_of(prepare_data, tmp_path, data, **fields) == reason, (fields, reason)
        assert not (tmp_path / "out-1").exists()


def test_base64_is_decoded_a_slice_at_a_time_as_strictly_as_a_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(media_prepare, "B64_SLICE", 8)  # many slices of a small file
    data = pdf(1001)
    got = prepare_data(tmp_path, data)
    assert got.size == 1001 and (tmp_path / "out-1").read_bytes() == data
    for text in ("QUFB" + "QQ==" + "QUFB", "QUFBQUFB" + "QU=B" + "QUFB", "QUFBQUFB" + "QU\nB" + "QUFB",
                 "QUFBQUFB" + "QUÄB" + "QUFB"):
        # Padding or a foreign character in the middle: only the ends are
        # looked at as the command is parsed, the rest as it is decoded.
        req = parse({"data": text, "as": "document"})
        assert reason_of(prepare, req, tmp_path / "out-2", OPEN) == "bad_media", text
        assert not (tmp_path / "out-2").exists()


def test_base64_too_large_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    monkeypatch.setattr(base64, "b64decode", lambda *a, **k: pytest.fail("decoded"))
    req = parse({"data": "QUFB" * 1000, "as": "document"})  # 3000 bytes
    limits = MediaLimits(max_size=2999)
    assert reason_of(prepare, req, tmp_path / "out-1", limits) == "media_too_large"
    assert decoded_size("QUFB") == 3 and decoded_size("QUE=") == 2 and decoded_size("QQ==") == 1


def test_a_blob_is_taken_from_the_store(tmp_path):
    blobs = open_blob_store("", tmp_path / "data")
    blobs.put_bytes("media/k/clip.mp4", mp4(2000))
    got = prepare(parse({"blob": "media/k/clip.mp4"}), tmp_path / "out-2", OPEN, blobs, "k")
    assert got.kind == "video" and (tmp_path / "out-2").read_bytes() == blobs.get_bytes("media/k/clip.mp4")
    made, doc = upload_id("k"), pdf(300)  # an id as ``wwnode blob put`` names one
    blobs.put_bytes(made, doc)
    got = prepare(parse({"blob": made}), tmp_path / "out-3", OPEN, blobs, "k")
    assert got.kind == "document" and (tmp_path / "out-3").read_bytes() == doc
    assert reason_of(prepare, parse({"blob": "media/k/none"}), tmp_path / "out-4", OPEN, blobs,
                     "k") == "media_unreachable"
    assert not (tmp_path / "out-4").exists()
    with pytest.raises(BlobNotFound):
        blobs.get_bytes("media/k/none")


class AskedStore:
    """A blob store that notes every id it is asked for."""

    def __init__(self, store):
        self.store = store
        self.asked: list[str] = []

    def get_file(self, blob_id, path):
        self.asked.append(blob_id)
        return self.store.get_file(blob_id, path)


def test_a_send_takes_only_its_own_keys_media_and_every_other_blob_is_refused_alike(tmp_path):
    blobs = open_blob_store("", tmp_path / "data")
    snapshot = SnapshotName(7, 1700000000123).blob_id("victim")
    blobs.put_bytes(snapshot, b"\x1f\x8b the victim's saved login")
    blobs.put_bytes("media/victim/photo-1", jpeg(500))  # another key's media
    blobs.put_bytes("media/victimx/photo-1", jpeg(500))  # a key whose name starts like this one's
    blobs.put_bytes("media/k/album/photo-1", jpeg(500))  # makes media/k/album a folder
    blobs.put_bytes("uploads/photo-1", jpeg(500))  # a blob of no key
    asked = AskedStore(blobs)

    def refusal(blob_id, key="k"):
        with pytest.raises(MediaRefused) as e:
            prepare(parse({"blob": blob_id, "as": "document"}), tmp_path / "out-1", OPEN, asked, key)
        assert not (tmp_path / "out-1").exists()
        return e.value.reason, e.value.detail

    missing = refusal("media/k/none")
    assert missing[0] == "media_unreachable"
    others = {
        "a snapshot": refusal(snapshot),
        "a snapshot, as its own key": refusal(snapshot, key="victim"),
        "another key's media": refusal("media/victim/photo-1"),
        "a key named like it": refusal("media/victimx/photo-1", key="victim"),
        "a blob of no key": refusal("uploads/photo-1"),
        "a folder": refusal("media/k/album"),
        "the key's own folder": refusal("media/k"),
        "the snapshots' folder": refusal("snapshots/victim"),
        "no sending key": refusal("media/k/album/photo-1", key=None),
    }
    assert others == {what: missing for what in others}  # nothing tells them apart
    assert "victim" not in missing[1] and "media/k/none" not in missing[1]
    # Only ids among the sending key's media reached the store.
    assert asked.asked == ["media/k/none", "media/k/album"]
    # The key's own media go out: what a client put there, and what the key received.
    got = prepare(parse({"blob": "media/k/album/photo-1"}), tmp_path / "out-1", OPEN, asked, "k")
    assert got.kind == "image"


def test_the_ids_the_node_makes_belong_to_their_key_and_cannot_be_guessed():
    made = [inbound_id("k", "3EB0ABC"), inbound_id("k", "3EB0ABC"), upload_id("k"), upload_id("k")]
    assert len(set(made)) == 4 and all(sendable("k", i) and not sendable("j", i) for i in made)
    assert made[0].startswith("media/k/3EB0ABC-") and len(made[0].rpartition("-")[2]) == 32
    assert made[2].startswith("media/k/up-") and len(made[2].rpartition("-")[2]) == 32
    assert inbound_id("k", "../../x y").startswith("media/k/xy-")
    assert not sendable("k", "media/k/../j/x") and not sendable("k", "media/k") and not sendable("k/..", "media/k/x")


def test_urls_are_fetched_within_limits(tmp_path, files):
    photo = jpeg(5000)
    files.files["photo.jpg"] = (photo, "image/jpeg")
    files.files["page.html"] = (b"<html>hello</html>", "text/html")
    files.files["Bericht Ä.pdf"] = (pdf(3000), "application/pdf")
    got = prepare(parse({"url": files.url("photo.jpg")}), tmp_path / "out-u", OPEN)
    assert got.kind == "image" and (tmp_path / "out-u").read_bytes() == photo
    got = prepare(parse({"url": files.url("redirect")}), tmp_path / "out-u", OPEN)
    assert (tmp_path / "out-u").read_bytes() == photo
    got = prepare(parse({"url": files.url("Bericht Ä.pdf")}), tmp_path / "out-u", OPEN)
    assert (got.kind, got.filename) == ("document", "Bericht Ä.pdf")
    for name, fields, reason in [("missing", {}, "media_unreachable"), ("slow", {}, "media_unreachable"),
                                 ("huge", {}, "media_too_large"), ("page.html", {"as": "image"}, "not_media")]:
        assert reason_of(prepare, parse({"url": files.url(name), **fields}), tmp_path / "out-u", OPEN) == reason
        assert not (tmp_path / "out-u").exists()
    closed = MediaLimits()
    assert reason_of(prepare, parse({"url": files.url("photo.jpg")}), tmp_path / "o", closed) == "media_url_refused"
    assert reason_of(prepare, parse({"url": "http://localhost:1/x"}), tmp_path / "o", closed) == "media_url_refused"
    assert reason_of(prepare, parse({"url": "http://10.1.2.3/x"}), tmp_path / "o", closed) == "media_url_refused"
    assert reason_of(prepare, parse({"url": "http://[::1]:9/x"}), tmp_path / "o", closed) == "media_url_refused"


@pytest.mark.parametrize("name", ["trickle-head", "trickle-body"])
def test_a_fetch_ends_at_its_deadline_however_slowly_the_server_trickles(tmp_path, files, name):
    """A byte every 0.2 s never lets a 1 s socket timeout run out: the
    deadline bounds the whole fetch, headers included (this fetch used to
    run until the server had trickled everything: hours for 10 kB)."""
    limits = MediaLimits(allow_private_urls=True, fetch_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(MediaRefused) as refused:
        prepare(parse({"url": files.url(name)}), tmp_path / "out-t", limits)
    assert refused.value.reason == "media_unreachable" and "took longer than 1 s" in refused.value.detail
    assert time.monotonic() - started < 2.0  # the server would go on for 6 s
    assert not (tmp_path / "out-t").exists()


def test_addresses():
    assert address_allowed("93.184.216.34")
    for ip in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1",
               "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1"):
        assert not address_allowed(ip), ip

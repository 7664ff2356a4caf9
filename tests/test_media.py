"""media.py: the ``media`` field, what bytes are, WhatsApp's limits, and
fetching a URL (size cap, time limit, private addresses), without a node."""

from __future__ import annotations

import base64

import pytest

from mediafiles import FileServer, jpeg, mp4, ogg, pdf, webp
from wwnode import media as M
from wwnode.blobstore import BlobNotFound, open_blob_store


class Rejected(Exception):
    pass


def reject(reason, detail):
    raise Rejected(reason, detail)


def parse(value):
    return M.parse_media(value, reject)


def reason_of(fn, *args, **kwargs):
    with pytest.raises((Rejected, M.MediaRefused)) as e:
        fn(*args, **kwargs)
    return e.value.args[0] if isinstance(e.value, Rejected) else e.value.reason


@pytest.fixture(scope="module")
def files():
    server = FileServer()
    yield server
    server.stop()


OPEN = M.MediaLimits(allow_private_urls=True, fetch_timeout=2)


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
    assert (req.source, req.data, req.filename, req.kind) == ("data", b"abc", "Überweisung März.pdf", "document")


@pytest.mark.parametrize("data,mimetype", [(jpeg(100), "image/jpeg"), (mp4(100), "video/mp4"),
                                           (ogg(100), "audio/ogg"), (pdf(100), "application/pdf"),
                                           (webp(100), "image/webp")])
def test_sniff_knows_the_formats(data, mimetype):
    assert M.sniff(data[:64]) == mimetype


def prepare_data(tmp_path, data: bytes, **fields):
    req = parse({"data": base64.b64encode(data).decode(), **fields})
    return M.prepare(req, tmp_path / "out-1", OPEN)


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
        (jpeg(16 * M.MB + 1), {}, "media_too_large"),
        (webp(100 * 1024 + 1), {"as": "sticker"}, "media_too_large"),
        (b"<html>not a picture</html>", {"as": "image"}, "not_media"),
        (pdf(100), {"as": "video"}, "not_media"),
        (mp4(100), {"as": "voice"}, "not_media"),
    ]:
        assert reason_of(prepare_data, tmp_path, data, **fields) == reason, (fields, reason)
        assert not (tmp_path / "out-1").exists()


def test_a_blob_is_taken_from_the_store(tmp_path):
    blobs = open_blob_store("", tmp_path / "data")
    blobs.put_bytes("up/clip.mp4", mp4(2000))
    got = M.prepare(parse({"blob": "up/clip.mp4"}), tmp_path / "out-2", OPEN, blobs)
    assert got.kind == "video" and (tmp_path / "out-2").read_bytes() == blobs.get_bytes("up/clip.mp4")
    assert reason_of(M.prepare, parse({"blob": "up/none"}), tmp_path / "out-3", OPEN, blobs) == "media_unreachable"
    with pytest.raises(BlobNotFound):
        blobs.get_bytes("up/none")


def test_urls_are_fetched_within_limits(tmp_path, files):
    photo = jpeg(5000)
    files.files["photo.jpg"] = (photo, "image/jpeg")
    files.files["page.html"] = (b"<html>hello</html>", "text/html")
    files.files["Bericht Ä.pdf"] = (pdf(3000), "application/pdf")
    got = M.prepare(parse({"url": files.url("photo.jpg")}), tmp_path / "out-u", OPEN)
    assert got.kind == "image" and (tmp_path / "out-u").read_bytes() == photo
    got = M.prepare(parse({"url": files.url("redirect")}), tmp_path / "out-u", OPEN)
    assert (tmp_path / "out-u").read_bytes() == photo
    got = M.prepare(parse({"url": files.url("Bericht Ä.pdf")}), tmp_path / "out-u", OPEN)
    assert (got.kind, got.filename) == ("document", "Bericht Ä.pdf")
    for name, fields, reason in [("missing", {}, "media_unreachable"), ("slow", {}, "media_unreachable"),
                                 ("huge", {}, "media_too_large"), ("page.html", {"as": "image"}, "not_media")]:
        assert reason_of(M.prepare, parse({"url": files.url(name), **fields}), tmp_path / "out-u", OPEN) == reason
        assert not (tmp_path / "out-u").exists()
    closed = M.MediaLimits()
    assert reason_of(M.prepare, parse({"url": files.url("photo.jpg")}), tmp_path / "o", closed) == "media_url_refused"
    assert reason_of(M.prepare, parse({"url": "http://localhost:1/x"}), tmp_path / "o", closed) == "media_url_refused"
    assert reason_of(M.prepare, parse({"url": "http://10.1.2.3/x"}), tmp_path / "o", closed) == "media_url_refused"
    assert reason_of(M.prepare, parse({"url": "http://[::1]:9/x"}), tmp_path / "o", closed) == "media_url_refused"


def test_addresses():
    assert M.address_allowed("93.184.216.34")
    for ip in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1",
               "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1"):
        assert not M.address_allowed(ip), ip

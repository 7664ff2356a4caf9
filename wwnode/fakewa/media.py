"""Media on the stand-in: the media server a page uploads to and downloads
from, and the control calls that play a phone sending a file.

The real service encrypts media with a per-file ``mediaKey`` and serves it
from a CDN under a ``directPath``; the stand-in keeps the plain bytes under
a ``directPath`` of its own (and hands out a random ``mediaKey`` and the
hashes the page expects), so a test can compare, byte for byte, what a
client uploaded with what it meant to send.

HTTP (``server.py`` routes them here):

- ``POST /_wa/upload?type=T&mimetype=M`` (the page; raw body): stores the
  bytes, answers ``{url, directPath, mediaKey, mediaKeyTimestamp,
  encFilehash, filehash}``;
- ``GET /_wa/media?path=P`` (the page): the bytes of an upload;
- ``GET /_sim/media?path=P`` (control): the same bytes, for tests;
- ``POST /_sim/media {"to", "from", "type", "data", "mimetype",
  "filename"?, "caption"?}`` (control): the phone ``from`` sends a file
  (base64 ``data``) to ``to``'s browsers; answers ``{"id", "directPath"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time

from .errors import BadRequest, NotFound

MAX_UPLOAD = 128 * 1024 * 1024
MEDIA_TYPES = ("image", "video", "audio", "ptt", "document", "sticker")


class MediaStore:
    """Uploaded files by ``directPath``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._files: dict[str, dict] = {}

    def put(self, data: bytes, media_type: str, mimetype: str) -> dict:
        direct_path = f"/v/t62.{secrets.token_hex(4)}/{secrets.token_hex(16)}"
        entry = {
            "url": f"https://mmg.whatsapp.net{direct_path}",
            "directPath": direct_path,
            "mediaKey": base64.b64encode(secrets.token_bytes(32)).decode(),
            "mediaKeyTimestamp": int(time.time()),
            "filehash": base64.b64encode(hashlib.sha256(data).digest()).decode(),
            # The stand-in does not encrypt: the "encrypted" file is the file.
            "encFilehash": base64.b64encode(hashlib.sha256(data).digest()).decode(),
            "type": media_type,
            "mimetype": mimetype,
            "size": len(data),
        }
        with self._lock:
            self._files[direct_path] = {**entry, "data": data}
        return entry

    def get(self, direct_path: str) -> dict:
        with self._lock:
            entry = self._files.get(direct_path)
        if entry is None:
            raise NotFound("no media at that path")
        return entry


# ---------------------------------------------------------------- HTTP
def page_upload(handler, query) -> None:
    media_type = _q(query, "type")
    mimetype = _q(query, "mimetype")
    length = handler.headers.get("Content-Length", "")
    if not length.isdigit() or int(length) > MAX_UPLOAD:
        raise BadRequest(f"an upload needs a Content-Length of at most {MAX_UPLOAD}")
    data = _read_exactly(handler, int(length))
    entry = handler.world.media.put(data, media_type, mimetype)
    handler._json(200, {k: v for k, v in entry.items() if k not in ("type", "size")})


def page_download(handler, query) -> None:
    entry = handler.world.media.get(_q(query, "path"))
    handler._send(200, entry["data"], entry["mimetype"] or "application/octet-stream")


def sim_media_bytes(handler, query) -> None:
    page_download(handler, query)


def sim_deliver_media(handler, query) -> None:
    body = handler._body(MAX_UPLOAD * 4 // 3 + 65536)
    media_type = body.get("type")
    if media_type not in MEDIA_TYPES:
        raise BadRequest(f"type must be one of {', '.join(MEDIA_TYPES)}")
    mimetype = body.get("mimetype")
    if not isinstance(mimetype, str) or "/" not in mimetype:
        raise BadRequest("mimetype must look like image/jpeg")
    for name in ("filename", "caption"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadRequest(f"{name} must be a string")
    try:
        data = base64.b64decode(body.get("data") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise BadRequest("data must be base64") from None
    if not data:
        raise BadRequest("data must not be empty")
    entry = handler.world.media.put(data, media_type, mimetype)
    media = {k: entry[k] for k in ("directPath", "mediaKey", "mediaKeyTimestamp", "filehash", "encFilehash",
                                   "mimetype", "size", "type")}
    media["filename"] = body.get("filename")
    msg_id = handler.world.deliver(body.get("to"), body.get("from"), body.get("caption") or "", media=media)
    handler._json(200, {"id": msg_id, "directPath": entry["directPath"]})


def _q(query: dict, name: str) -> str:
    values = query.get(name)
    if not values or not values[0]:
        raise BadRequest(f"query parameter {name!r} is required")
    return values[0]


def _read_exactly(handler, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = handler.rfile.read(min(left, 1024 * 1024))
        if not chunk:
            raise BadRequest("the upload ended early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


GET_ROUTES = {"/_wa/media": page_download, "/_sim/media": sim_media_bytes}
POST_ROUTES = {"/_wa/upload": page_upload, "/_sim/media": sim_deliver_media}

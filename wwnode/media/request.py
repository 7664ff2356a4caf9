"""The ``media`` field of ``send_message``: its shape checked on the node's loop, nothing fetched.

:func:`parse_media` is pure and cheap (it runs while a command is parsed:
it looks at the shape, and keeps base64 ``data`` as the text it came as);
``prepare.py`` does the I/O on a worker thread.  Every refusal of a media
is a :class:`MediaRefused` with a stable reason:

==================  ===========================================================
``bad_media``       the field is malformed (no source or two, bad base64, a URL
                    that is not http(s), a bad blob id, mimetype or filename)
``media_unknown_type``  ``as`` is none of image, video, audio, voice,
                    document, sticker
``media_too_large`` more bytes than WhatsApp takes for that kind (or than
                    ``MEDIA_MAX_SIZE``)
``media_unreachable``   the URL did not answer with the file in time (DNS,
                    refused, HTTP error, ``MEDIA_FETCH_TIMEOUT``), no
                    blob of that id among the sending key's media
                    (``blobs.py``), or the blob store failed (down,
                    refused, timed out)
``media_url_refused``   the URL names a private, loopback or link-local
                    address (``MEDIA_ALLOW_PRIVATE_URLS`` allows them)
``not_media``       the bytes are not a file of that kind (an image that is
                    not a JPEG, PNG, GIF or WebP; an empty file; ...)
==================  ===========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, NoReturn
from urllib.parse import urlsplit

from sessionproc.protocol import MEDIA_KINDS as KINDS  # what ``as`` may be: one list, the session checks it too

MB = 1024 * 1024
MIMETYPE_RE = re.compile(r"\A[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
                         r"(;[ ]?[a-z0-9_.-]+=[A-Za-z0-9_.\-\"]+)*\Z")
MAX_FILENAME = 255
MAX_URL = 4096
B64_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")




class MediaRefused(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class MediaRequest:
    """The ``media`` field of a send, checked but not fetched."""

    source: str  # "url", "data" or "blob"
    url: str = ""
    # ``data`` as sent: base64, decoded only on a worker (``prepare``).  A
    # large file's decoding held the node's loop for seconds (up to
    # MEDIA_MAX_SIZE: 133 MiB of base64 for 100 MiB).
    base64: str = ""
    blob: str = ""
    mimetype: str | None = None
    filename: str | None = None
    kind: str | None = None  # ``as``; None: from the mimetype


@dataclass(frozen=True)
class MediaLimits:
    max_size: int = 100 * MB
    fetch_timeout: float = 30.0
    allow_private_urls: bool = False


def parse_media(value, reject: Callable[[str, str], NoReturn]) -> MediaRequest:
    """The ``media`` object of a command, checked for shape only."""
    if not isinstance(value, dict):
        reject("wrong_type", "media must be an object")
    sources = [name for name in ("url", "data", "blob") if name in value]
    if len(sources) != 1:
        reject("bad_media", "media needs exactly one of url, data, blob")
    source = sources[0]
    if not isinstance(value[source], str) or not value[source]:
        reject("wrong_type", f"media.{source} must be a non-empty string")
    for name in ("mimetype", "filename", "as"):
        if name in value and not isinstance(value[name], str):
            reject("wrong_type", f"media.{name} must be a string")
    kind = value.get("as")
    if kind is not None and kind not in KINDS:
        reject("media_unknown_type", f"media.as must be one of {', '.join(KINDS)}, not {kind[:40]!r}")
    mimetype = value.get("mimetype")
    if mimetype is not None:
        mimetype = mimetype.strip().lower()
        if not MIMETYPE_RE.match(mimetype):
            reject("bad_media", "media.mimetype must look like image/jpeg")
    filename = value.get("filename")
    if filename is not None and (not 0 < len(filename) <= MAX_FILENAME or any(ord(c) < 32 for c in filename)
                                 or "/" in filename or "\\" in filename):
        reject("bad_media", f"media.filename must be 1 to {MAX_FILENAME} characters, no / \\ or control characters")
    fields: dict[str, Any] = {"mimetype": mimetype, "filename": filename, "kind": kind}  # MediaRequest's
    if source == "url":
        url = value["url"]
        parts = urlsplit(url)
        if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
            reject("bad_media", "media.url must be an http(s) URL")
        return MediaRequest("url", url=url, **fields)
    if source == "blob":
        from ..blobstore import BlobError, check_id
        try:
            check_id(value["blob"])
        except BlobError as e:
            reject("bad_media", f"media.blob: {e}")
        return MediaRequest("blob", blob=value["blob"], **fields)
    text = value["data"]
    # Only what costs nothing: the whole of it is checked as it is decoded,
    # on a worker (``_write_base64``).
    if len(text) % 4 or not B64_ALPHABET.fullmatch(text[:4]) or not B64_ALPHABET.fullmatch(text[-4:]):
        reject("bad_media", "media.data is not base64")
    return MediaRequest("data", base64=text, **fields)

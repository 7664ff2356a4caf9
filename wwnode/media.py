"""Media of ``send_message``: the ``media`` field checked, its bytes fetched
(a URL, base64 ``data`` or a ``blob``) into a file in the session's folder,
and that file checked against what WhatsApp takes.

Nothing here knows about RabbitMQ or sessions: :func:`parse_media` is pure
and cheap (it runs on the node's loop while a command is parsed: it looks
at the shape, and keeps base64 ``data`` as the text it came as),
:func:`prepare` does the I/O and the decoding (it runs on a worker thread,
see ``mediadesk.py``) and raises :class:`MediaRefused` with a stable reason:

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
                    (``mediablobs.py``), or the blob store failed (down,
                    refused, timed out)
``media_url_refused``   the URL names a private, loopback or link-local
                    address (``MEDIA_ALLOW_PRIVATE_URLS`` allows them)
``not_media``       the bytes are not a file of that kind (an image that is
                    not a JPEG, PNG, GIF or WebP; an empty file; ...)
==================  ===========================================================
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import ipaddress
import mimetypes
import os
import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, NoReturn, cast
from urllib.parse import unquote, urljoin, urlsplit

from sessionproc.protocol import MEDIA_KINDS as KINDS  # what ``as`` may be: one list, the session checks it too

MB = 1024 * 1024
# WhatsApp's limits: photos, videos, audio and voice notes up to 16 MB;
# stickers are 512x512 WebP of at most 100 KB (animated: 500 KB);
# documents up to 2 GB on the phone apps, but a document crosses the
# browser whole, so MEDIA_MAX_SIZE (100 MB by default) bounds it.
KIND_LIMITS = {"image": 16 * MB, "video": 16 * MB, "audio": 16 * MB, "voice": 16 * MB,
               "sticker": 500 * 1024, "document": 2048 * MB}
STATIC_STICKER_LIMIT = 100 * 1024

# What each kind may be, by the bytes themselves (sniff()).
KIND_TYPES = {
    "image": ("image/jpeg", "image/png", "image/gif", "image/webp"),
    "video": ("video/mp4", "video/3gpp", "video/quicktime"),
    "audio": ("audio/mpeg", "audio/ogg", "audio/mp4", "audio/aac", "audio/amr", "audio/wav"),
    "voice": ("audio/ogg",),  # voice notes are Ogg Opus
    "sticker": ("image/webp",),
}

MIMETYPE_RE = re.compile(r"\A[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
                         r"(;[ ]?[a-z0-9_.-]+=[A-Za-z0-9_.\-\"]+)*\Z")
MAX_FILENAME = 255
MAX_URL = 4096
HEAD = 64  # bytes sniff() needs
# Base64 characters decoded at a time (a multiple of 4): the decoder holds the
# interpreter's lock while it runs, so a worker decoding 133 MiB at once kept
# the loop from running for 0.5 s or more; one slice takes a few ms.
B64_SLICE = 1024 * 1024
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
class PreparedMedia:
    """A checked file in the session's folder, as the session is told of it."""

    path: Path
    mimetype: str
    filename: str | None
    kind: str
    size: int

    def as_pipe(self) -> dict:
        return {"path": str(self.path), "mimetype": self.mimetype, "filename": self.filename, "as": self.kind}


@dataclass(frozen=True)
class MediaLimits:
    max_size: int = 100 * MB
    fetch_timeout: float = 30.0
    allow_private_urls: bool = False


# ------------------------------------------------------------------ parsing
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
        from .blobstore import BlobError, check_id
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


# ------------------------------------------------------------ what it is
def sniff(head: bytes) -> str | None:
    """The mimetype the first bytes of a file show, for the kinds WhatsApp
    sends as media (and PDF); None when they show none of them."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"3g"):
            return "video/3gpp"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG frame sync: layer bits 00 are AAC's ADTS, the rest MP3.
        return "audio/aac" if head[1] & 0x06 == 0 else "audio/mpeg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def kind_of(mimetype: str) -> str:
    """``as`` by default: from the mimetype's family."""
    family = mimetype.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(family, "document")


def check_file(req: MediaRequest, path: Path, hint_type: str | None, hint_name: str | None,
               limits: MediaLimits) -> PreparedMedia:
    """The file at ``path`` as WhatsApp would take it, or MediaRefused.
    ``hint_type``/``hint_name``: what the URL's answer said."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEAD)
    sniffed = sniff(head)
    filename = req.filename or hint_name
    mimetype = req.mimetype or sniffed or hint_type or (mimetypes.guess_type(filename)[0] if filename else None)
    mimetype = (mimetype or "application/octet-stream").lower()
    kind = req.kind or kind_of(mimetype)
    if size == 0:
        raise MediaRefused("not_media", "the file is empty")
    if kind in KIND_TYPES:
        if sniffed not in KIND_TYPES[kind]:
            what = f"a {sniffed} file" if sniffed else "none of the formats WhatsApp plays"
            raise MediaRefused("not_media", f"{kind} must be {', '.join(KIND_TYPES[kind])}; the bytes are {what}")
        if not mimetype.startswith(sniffed.split("/")[0] + "/") or kind == "sticker":
            mimetype = sniffed  # what the bytes are wins over a contradicting label
        if kind == "voice":
            mimetype = "audio/ogg; codecs=opus"
    limit = min(KIND_LIMITS[kind], limits.max_size)
    if kind == "sticker" and b"ANIM" not in head:  # an animated WebP says so in its first chunks
        limit = min(limit, STATIC_STICKER_LIMIT)
    if size > limit:
        raise MediaRefused("media_too_large", f"{kind} of {size} bytes; WhatsApp takes at most {limit}")
    if kind == "document" and not filename:
        ext = mimetypes.guess_extension(mimetype.split(";")[0]) or ""
        filename = "file" + ext
    return PreparedMedia(path, mimetype, filename, kind, size)


# ------------------------------------------------------------- preparing
def prepare(req: MediaRequest, dest: Path, limits: MediaLimits, blobs=None, key: str | None = None
            ) -> PreparedMedia:
    """Fetch the media into ``dest`` (a new 0600 file) and check it.  On
    MediaRefused nothing is left at ``dest``.  ``key``: the key that sends
    it; a blob must be one of its media (without a key, none is)."""
    try:
        hint_type = hint_name = None
        if req.source == "data":
            size = decoded_size(req.base64)
            if size > limits.max_size:
                raise MediaRefused("media_too_large", f"{size} bytes; MEDIA_MAX_SIZE is {limits.max_size}")
            _write_new(dest, lambda f: _write_base64(req.base64, f))
        elif req.source == "blob":
            _fetch_blob(key, req.blob, dest, blobs, limits)
        else:
            hint_type, hint_name = fetch_url(req.url, dest, limits)
        return check_file(req, dest, hint_type, hint_name, limits)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def decoded_size(text: str) -> int:
    """The bytes a base64 text of a length that is a multiple of 4 decodes to."""
    return len(text) // 4 * 3 - (2 if text.endswith("==") else 1 if text.endswith("=") else 0)


def _write_base64(text: str, f) -> None:
    """Decode ``text`` into ``f`` a slice at a time (``B64_SLICE``), each
    checked as strictly as ``b64decode(validate=True)`` checks the whole:
    only the alphabet, padding only at the very end."""
    for start in range(0, len(text), B64_SLICE):
        piece = text[start:start + B64_SLICE]
        last = start + B64_SLICE >= len(text)
        try:
            if not last and piece.endswith("="):
                raise ValueError("padding before the end")
            f.write(base64.b64decode(piece, validate=True))
        except (binascii.Error, ValueError):
            raise MediaRefused("bad_media", "media.data is not base64") from None


def _write_new(dest: Path, fill) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        fill(f)


NOT_SENDABLE = "no blob of that id among this key's media (a send takes only a blob under media/KEY/)"


def _fetch_blob(key: str | None, blob_id: str, dest: Path, blobs, limits: MediaLimits) -> None:
    from .blobstore import BlobError, BlobNotFound
    from .mediablobs import sendable
    if blobs is None:
        raise MediaRefused("media_unreachable", "this node has no blob store")
    # One refusal, word for word, for a blob that is missing, a folder, a
    # snapshot or another key's; what is not the key's is refused before
    # the store is asked (mediablobs.py says why).
    refused = MediaRefused("media_unreachable", NOT_SENDABLE)
    if key is None or not sendable(key, blob_id):
        raise refused
    _write_new(dest, lambda f: None)
    try:
        blobs.get_file(blob_id, dest)
    except BlobNotFound:
        raise refused from None
    except BlobError as e:
        # The store is down, refuses or is slow: this send fails, nothing
        # else.  The client is told which blob, not the store's own words
        # (they name its endpoint); the node's log has them, as the cause.
        raise MediaRefused("media_unreachable", f"the blob store could not give blob {blob_id}") from e
    if dest.stat().st_size > limits.max_size:
        raise MediaRefused("media_too_large", f"blob {blob_id} is larger than MEDIA_MAX_SIZE ({limits.max_size})")


# ------------------------------------------------------------------ URLs
MAX_REDIRECTS = 3


def address_allowed(ip: str) -> bool:
    """A public address: not private, loopback, link-local, multicast,
    reserved or unspecified (IPv4 in IPv6 looked at as IPv4)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


class _Refused(Exception):
    pass


def _connect(host: str, port: int, left: Callable[[], float], allow_private: bool) -> socket.socket:
    """A connection to ``host``, to an address checked *before* connecting
    (a name resolved twice could change in between); each address tried
    within what is ``left()`` of the fetch's time."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OSError(f"cannot resolve {host}: {e.strerror}") from None
    last: OSError | None = None
    for family, type_, proto, _, sockaddr in infos:
        address = cast(str, sockaddr[0])  # an IPv4 or IPv6 address: a string
        if not allow_private and not address_allowed(address):
            raise _Refused(f"{host} is {sockaddr[0]}, a private or local address")
        timeout = left()
        s = socket.socket(family, type_, proto)
        s.settimeout(timeout)
        try:
            s.connect(sockaddr)
            return s
        except OSError as e:
            s.close()
            last = e
    raise last or OSError(f"no address for {host}")


def fetch_url(url: str, dest: Path, limits: MediaLimits, now: Callable[[], float] = time.monotonic
              ) -> tuple[str | None, str | None]:
    """GET ``url`` into ``dest``: at most ``limits.max_size`` bytes within
    ``limits.fetch_timeout`` seconds, redirects followed (checked the same
    way).  Returns the answer's content type and a file name from its
    headers or path.  The deadline bounds the whole fetch, every connect,
    handshake, header and body of every redirect (``_Timed``), but for the
    name lookups: those are the system resolver's, bounded by its own
    timeouts."""
    deadline = now() + limits.fetch_timeout

    def left() -> float:
        remaining = deadline - now()
        if remaining <= 0:
            raise MediaRefused("media_unreachable", f"{_safe(url)} took longer than {limits.fetch_timeout:g} s")
        return remaining

    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MediaRefused("bad_media", "a redirect led to a URL that is not http(s)")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            sock = _connect(parts.hostname, port, left, limits.allow_private_urls)
        except _Refused as e:
            raise MediaRefused("media_url_refused", str(e)) from None
        except OSError as e:
            raise MediaRefused("media_unreachable", f"{_safe(url)}: {e}") from None
        if parts.scheme == "https":
            ctx = ssl.create_default_context()
            try:
                # The handshake as a whole runs under the socket's timeout
                # (CPython counts it down across the handshake's waits).
                sock.settimeout(left())
                sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
            except (OSError, ssl.SSLError) as e:
                sock.close()
                raise MediaRefused("media_unreachable", f"{_safe(url)}: TLS: {e}") from None
            except MediaRefused:
                sock.close()
                raise
        conn = http.client.HTTPConnection(parts.hostname, port)
        conn.sock = _Timed(sock, left)
        resp = None
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("GET", path, headers={"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "wwnode",
                                               "Accept-Encoding": "identity"})
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                url = urljoin(url, resp.getheader("Location"))
                continue
            if resp.status != 200:
                raise MediaRefused("media_unreachable", f"{_safe(url)} answered HTTP {resp.status}")
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > limits.max_size:
                raise MediaRefused("media_too_large", f"{_safe(url)} is {length} bytes; MEDIA_MAX_SIZE is "
                                                      f"{limits.max_size}")
            _write_new(dest, lambda f: _copy_capped(resp, f, limits.max_size))
            ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower() or None
            if ctype in ("application/octet-stream", "binary/octet-stream"):
                ctype = None
            return ctype, _name_from(resp.getheader("Content-Disposition"), parts.path)
        except (OSError, http.client.HTTPException) as e:
            raise MediaRefused("media_unreachable", f"{_safe(url)}: {e or type(e).__name__}") from None
        finally:
            if resp is not None:
                resp.close()  # the connection's socket goes with the last file made of it
            conn.close()
    raise MediaRefused("media_unreachable", f"more than {MAX_REDIRECTS} redirects")


class _Timed:
    """A connected socket whose every wait is cut to what is ``left()`` of
    the fetch's time, for ``http.client``.  It reads the headers and the
    body through a buffered file that calls ``recv_into`` until it has what
    it asked for (a line, 256 KiB), each call under the socket's timeout
    afresh: a server that sends a byte every few seconds never lets one run
    out, and a fetch took hours.  Here each call gets only the time left, so
    the fetch ends at its deadline whatever the server does."""

    def __init__(self, sock: socket.socket, left: Callable[[], float]):
        self._sock = sock
        self._left = left
        # As a socket does: closed once it is closed and so is every file
        # made of it (http.client closes the connection, then reads on
        # through the answer's file when the server closes after it).
        self._files = 0
        self._closed = False

    def _timed(self, call, *args):
        self._sock.settimeout(self._left())  # MediaRefused once none is left
        try:
            return call(*args)
        except TimeoutError:
            self._left()  # said as the fetch's deadline, which it was
            raise

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        return self._timed(self._sock.recv_into, buffer, nbytes, flags)

    def send(self, data, flags: int = 0) -> int:
        return self._timed(self._sock.send, data, flags)

    def sendall(self, data, flags: int = 0) -> None:
        return self._timed(self._sock.sendall, data, flags)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        # What socket.makefile("rb") gives, reading through this object.
        if mode != "rb":
            raise ValueError(f"only 'rb', not {mode!r}")
        self._files += 1
        # Not a socket, but has what SocketIO uses of one for reading (recv_into, _decref_socketios).
        return io.BufferedReader(socket.SocketIO(cast(socket.socket, self), "rb"))

    def _decref_socketios(self) -> None:  # a file made above closes
        self._files -= 1
        if self._closed and self._files <= 0:
            self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._closed = True
        if self._files <= 0:
            self._sock.close()


def _copy_capped(resp, f, cap: int) -> None:
    total = 0
    while True:
        chunk = resp.read(256 * 1024)
        if not chunk:
            return
        total += len(chunk)
        if total > cap:
            raise MediaRefused("media_too_large", f"the answer is larger than MEDIA_MAX_SIZE ({cap})")
        f.write(chunk)


def _name_from(disposition: str | None, path: str) -> str | None:
    if disposition:
        m = re.search(r"filename\*=UTF-8''([^;]+)", disposition, re.I) or re.search(r'filename="?([^";]+)', disposition)
        if m:
            name = unquote(m.group(1)).strip()
            if name and "/" not in name and "\\" not in name and len(name) <= MAX_FILENAME:
                return name
    name = unquote(PurePosixPath(path).name)
    return name if name and len(name) <= MAX_FILENAME and not any(ord(c) < 32 for c in name) else None


def _safe(url: str) -> str:
    """The URL as a detail may show it: no user, password or query (a
    signed URL's token)."""
    p = urlsplit(url)
    host = p.hostname or ""
    return f"{p.scheme}://{host}{f':{p.port}' if p.port else ''}{p.path}"

"""A fetched file checked against what WhatsApp takes for its kind.

What the bytes are (``sniff``), its size, its type and its name.

Pure but for reading the file's size and first bytes.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from .request import MB, MediaLimits, MediaRefused, MediaRequest

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


HEAD = 64  # bytes sniff() needs


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

"""A send's media made a checked file in the session's folder, on a worker thread.

Base64 decoded, a blob copied or a URL fetched (``fetch.py``), then checked
(``checks.py``).

On :class:`~wwnode.media.request.MediaRefused` nothing is left at the
destination.  It runs on the send desk's workers (``desk.py``).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from .checks import PreparedMedia, check_file
from .fetch import fetch_url, write_new
from .request import MediaLimits, MediaRefused, MediaRequest

# Base64 characters decoded at a time (a multiple of 4): the decoder holds the
# interpreter's lock while it runs, so a large decode at once keeps the loop
# from running (docs/decisions.md, "Base64 decoded in slices").
B64_SLICE = 1024 * 1024


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
            write_new(dest, lambda f: _write_base64(req.base64, f))
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


NOT_SENDABLE = "no blob of that id among this key's media (a send takes only a blob under media/KEY/)"


def _fetch_blob(key: str | None, blob_id: str, dest: Path, blobs, limits: MediaLimits) -> None:
    from ..blobstore import BlobError, BlobNotFound
    from .blobs import sendable
    if blobs is None:
        raise MediaRefused("media_unreachable", "this node has no blob store")
    # One refusal, word for word, for a blob that is missing, a folder, a
    # snapshot or another key's; what is not the key's is refused before
    # the store is asked (blobs.py says why).
    refused = MediaRefused("media_unreachable", NOT_SENDABLE)
    if key is None or not sendable(key, blob_id):
        raise refused
    write_new(dest, lambda f: None)
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

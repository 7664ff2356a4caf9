"""Inbound media: the session process wrote the file of a message it got
to its folder (``DATA_DIR/sessions/{key}/media/in-*``) and names it in its
``message`` event; here it becomes the message's ``media`` object, inline
(``data``, base64) up to ``MEDIA_INLINE_LIMIT`` bytes, else a blob among
the key's media in the blob store (``blob``, its id, ``mediablobs.py``:
one the key's sends may name again, and no other key's), and the file is
removed.

A file that is missing or outside the session's media folder is not
trusted: the message goes out with ``hasMedia`` and a ``media`` object
without ``data`` or ``blob`` but with ``error``.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

from . import states as S
from .mediablobs import inbound_id
from .paths import Paths

log = logging.getLogger(__name__)


class InboundMedia:
    def __init__(self, paths: Paths, inline_limit: int, blobs, emit):
        self.paths = paths
        self.inline_limit = inline_limit
        self.blobs = blobs
        self.emit = emit  # the bus's emit(name, body)

    def handlers(self) -> dict:
        return {"message": self.on_message}

    def on_message(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        message = event["message"]
        media = event.get("media")
        if isinstance(media, dict):
            message = {**message, "media": self._media(rec.key, message, media)}
        self.emit("message_instance", {"key": rec.key, "message": message})

    def _media(self, key: str, message: dict, media: dict) -> dict:
        out = {"mimetype": media.get("mimetype"), "filename": media.get("filename"), "size": media.get("size")}
        if media.get("error"):
            return out | {"error": str(media["error"])}
        try:
            path = self._file(key, media.get("path"))
        except (ValueError, OSError) as e:
            log.warning("session %s: media of a message not taken: %s", key, e)
            return out | {"error": "the media could not be read"}
        try:
            size = path.stat().st_size
            out["size"] = size
            if size <= self.inline_limit:
                return out | {"data": base64.b64encode(path.read_bytes()).decode()}
            blob_id = inbound_id(key, str((message.get("id") or {}).get("id") or ""))
            self.blobs.put_file(blob_id, path)
            return out | {"blob": blob_id}
        except OSError as e:
            log.error("session %s: cannot store inbound media: %s", key, e)
            return out | {"error": "the media could not be stored"}
        finally:
            path.unlink(missing_ok=True)

    def _file(self, key: str, raw) -> Path:
        if not isinstance(raw, str):
            raise ValueError("no path")
        folder = (self.paths.session_dir(key) / "media").resolve()
        path = Path(raw).resolve()
        if path.parent != folder or not path.name.startswith("in-") or not path.is_file():
            raise ValueError(f"{raw!r} is not a media file of this session")
        return path

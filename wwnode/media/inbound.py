"""Messages a session reports, out as events, their media inline or written to the blob store.

Messages a session reports, out as events (``message_instance``, or
``own_message_instance`` for the account's own written on another device),
each with its media.

Inbound media: the session process wrote the file of a message it got
to its folder (``DATA_DIR/sessions/{key}/media/in-*``) and names it in its
``message`` event; here it becomes the message's ``media`` object, inline
(``data``, base64) up to ``MEDIA_INLINE_LIMIT`` bytes, else a blob among
the key's media in the blob store (``blob``, its id, ``blobs.py``:
one the key's sends may name again, and no other key's), and the file is
removed.

A file that is missing or outside the session's media folder is not
trusted, and a file the blob store would not take (down, refused, slow) is
not lost with its message: either way the message goes out with
``hasMedia`` and a ``media`` object without ``data`` or ``blob`` but with
``error``.

The blob store is written from worker threads, never from the node's loop:
an S3 service that does not answer holds a worker for as long as the
store's timeouts allow (``blobstore.py``), and the loop keeps serving every
other session meanwhile.  A key's messages are reported in the order they
came: while one of its files is being stored, its later messages (with a
file or not) wait behind it here.  An inline file is small (the limit) and
read at once, on the loop, so the session's folder holds nothing for long.
The results are handed to the loop (``tick``, a chore), which is woken by
``wake`` as soon as one is ready; a node going down waits for what is
still being stored (``busy``), within its stop deadline.
"""

from __future__ import annotations

import base64
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import states as S
from ..blobstore import BlobError
from ..bus import message_event_id
from .blobs import inbound_id
from ..paths import Paths

log = logging.getLogger(__name__)

WORKERS = 2


@dataclass
class _Inbound:
    key: str
    message: dict
    future: Future | None = None  # the message's media being stored (its ``media`` object)


class InboundMedia:
    def __init__(self, paths: Paths, inline_limit: int, blobs, emit, workers: int = WORKERS,
                 wake: Callable[[], None] = lambda: None):
        self.paths = paths
        self.inline_limit = inline_limit
        self.blobs = blobs
        self.emit = emit  # the bus's emit(name, body, event_id=...)
        self.wake = wake  # wakes the node's loop: a stored file's message goes out at once (``waker.py``)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media-in")
        self._waiting: dict[str, deque[_Inbound]] = {}

    def handlers(self) -> dict:
        return {"message": self.on_message}

    def on_message(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        entry = _Inbound(rec.key, event["message"])
        media = event.get("media")
        if isinstance(media, dict):
            done = self._take(rec.key, entry.message, media)
            if isinstance(done, Future):
                entry.future = done
                done.add_done_callback(lambda _f: self.wake())
            else:
                entry.message = {**entry.message, "media": done}
        queue = self._waiting.get(rec.key)
        if entry.future is None and not queue:
            self._report(entry.key, entry.message)
            return
        self._waiting.setdefault(rec.key, deque()).append(entry)

    # ------------------------------------------------------------ taking
    def _take(self, key: str, message: dict, media: dict) -> dict | Future:
        """The message's ``media`` object, or a Future of it (stored in
        the blob store on a worker)."""
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
                data = path.read_bytes()
                path.unlink(missing_ok=True)
                return out | {"data": base64.b64encode(data).decode()}
        except OSError as e:
            log.error("session %s: cannot read inbound media: %s", key, e)
            path.unlink(missing_ok=True)
            return out | {"error": "the media could not be read"}
        blob_id = inbound_id(key, str((message.get("id") or {}).get("id") or ""))
        return self._pool.submit(self._store, key, blob_id, path, out)

    def _store(self, key: str, blob_id: str, path: Path, out: dict) -> dict:
        """On a worker: the file into the blob store; its ``media`` object
        either way."""
        try:
            self.blobs.put_file(blob_id, path)
            return out | {"blob": blob_id}
        except (BlobError, OSError) as e:
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

    # ----------------------------------------------------------- out
    def tick(self, now: float) -> None:
        """Report the messages whose turn has come (on the loop)."""
        for key in list(self._waiting):
            queue = self._waiting[key]
            while queue and (queue[0].future is None or queue[0].future.done()):
                entry = queue.popleft()
                message = entry.message
                if entry.future is not None:
                    message = {**message, "media": entry.future.result()}
                self._report(key, message)
            if not queue:
                self._waiting.pop(key, None)

    def _report(self, key: str, message: dict) -> None:
        # A message the account wrote on another device (the phone) is its
        # own event: a v1 client reading message_instance never sees the
        # account's own words come back as if someone had written them.
        name = "own_message_instance" if message.get("fromMe") is True else "message_instance"
        # A message reported again (a restarted page is handed what the
        # last one had not acknowledged) keeps its event id.
        self.emit(name, {"key": key, "message": message}, event_id=message_event_id(name, key, message))

    def busy(self) -> bool:
        return bool(self._waiting)

    def close(self) -> None:
        """The node has stopped: a file not yet stored stays where it is
        (the media sweep removes it)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

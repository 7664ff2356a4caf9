"""The ``inbound`` thread: writes the page's events in order, a message once its media is fetched."""

from __future__ import annotations

import logging
import time

from .devtools import DevToolsError
from .mediafiles import MediaFileError, media_dir, new_inbound
from .mediasend import call_for_file
from .pagescripts import DOWNLOAD_MEDIA_FN
from .sessionstate import SessionState

log = logging.getLogger(__name__)


def needs_the_page(event: dict) -> bool:
    """A message with media: its file is fetched from the page before it is written."""
    return bool((event.get("message") or {}).get("hasMedia"))


class InboundWriter:
    """Takes the ``inbound`` queue's events until a None."""

    def __init__(self, state: SessionState):
        self.state = state  # its devtools, which the main thread sets
        self.opts, self.out, self.inbound = state.opts, state.out, state.inbound

    def run(self) -> None:
        """The page's events, in the order they came, a message with media
        once its file is fetched: on a thread of its own, so a large file
        holds up no ping or page report, and no event overtakes a message."""
        while True:
            event = self.inbound.get()
            if event is None:
                self.inbound.task_done()
                return
            try:
                if needs_the_page(event):
                    event = self._with_media(event)
                self.out.emit(event)
            finally:
                self.inbound.task_done()

    def wait(self, timeout: float) -> None:
        """Until the messages taken so far are reported (their media needs
        the page still open)."""
        deadline = time.monotonic() + timeout
        with self.inbound.all_tasks_done:
            while self.inbound.unfinished_tasks and time.monotonic() < deadline:
                self.inbound.all_tasks_done.wait(deadline - time.monotonic())

    def _with_media(self, event: dict) -> dict:
        """A message with media: its file fetched from the page (as
        whatsapp-web.js's downloadMedia) and written for the node.  Done
        here, in order, so messages keep the order they came in."""
        msg = event["message"]
        info = {"mimetype": None, "filename": None, "size": None}
        path = None
        try:
            path = new_inbound(media_dir(self.opts.profile_dir), msg["id"].get("id") or "")
            with open(path, "wb") as sink:
                got = call_for_file(self.state.live_devtools(), DOWNLOAD_MEDIA_FN, [msg["id"]["_serialized"]], sink,
                                    self.opts.send_timeout)
            if got.get("error"):
                raise MediaFileError(str(got["error"]))
            info = {"mimetype": got.get("mimetype"), "filename": got.get("filename"), "size": got.get("size")}
            return event | {"media": info | {"path": str(path), "size": path.stat().st_size}}
        except (DevToolsError, TimeoutError, MediaFileError, OSError, KeyError, TypeError) as e:
            log.warning("message %s: could not fetch its media: %s", msg.get("id"), e)
            if path is not None:
                path.unlink(missing_ok=True)
            return event | {"media": info | {"error": str(e)[:300] or "media not available"}}


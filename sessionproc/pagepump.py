"""The session's part of the ``devtools`` thread: what the page pushes, into the inbox in order."""

from __future__ import annotations

import logging
import queue

import orjson

from .sessionstate import BINDING

log = logging.getLogger(__name__)


class PagePump:
    """Called by the DevTools connection's reader for each event, in the
    order they came: the page's binding calls (its reports) and a crash."""

    def __init__(self, inbox: queue.Queue):
        self.inbox = inbox

    def on_event(self, method: str, params: dict) -> None:
        if method == "Runtime.bindingCalled" and params.get("name") == BINDING:
            try:
                report = _loads(params.get("payload", ""))
            except ValueError:
                log.warning("unreadable report from the page")
                return
            self.inbox.put(("page", report))
        elif method == "Inspector.targetCrashed":
            self.inbox.put(("page", {"type": "crashed"}))


def _loads(payload: str) -> dict:
    obj = orjson.loads(payload)
    if not isinstance(obj, dict):
        raise ValueError("report is not an object")
    return obj

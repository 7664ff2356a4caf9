"""The table of session events: one part per event, checked when the node
is built."""

from __future__ import annotations

import pytest

from support import node_rig
from wwnode.bus import EventBus
from wwnode.media.inbound import InboundMedia
from wwnode.sessionevents import event_table


class Echo:
    def __init__(self, event: str = "message"):
        self.event = event

    def handlers(self):
        return {self.event: self.on_message}

    def on_message(self, rec, event, now):
        pass


class Archive:
    def handlers(self):
        return {"message": self.on_message}

    def on_message(self, rec, event, now):
        pass


def test_an_event_two_parts_handle_is_refused():
    with pytest.raises(ValueError, match=r"'message' has two handlers: Echo.on_message and Archive.on_message"):
        event_table(Echo(), Archive())


def test_an_event_no_session_writes_is_refused():
    with pytest.raises(ValueError, match=r"Echo.on_message handles 'mesage'"):
        event_table(Echo("mesage"))


def test_the_node_is_not_built_with_an_event_handled_twice(tmp_path, monkeypatch):
    monkeypatch.setattr(EventBus, "handlers", lambda self: {"error": self._on_error, "message": self._on_error})
    with pytest.raises(ValueError, match=r"'message' has two handlers"):
        node_rig(tmp_path)


def test_inbound_messages_go_to_the_media_part(tmp_path):
    handler = node_rig(tmp_path).node.handlers["message"]
    assert isinstance(handler.__self__, InboundMedia)

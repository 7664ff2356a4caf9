"""The node's parts play the roles ``parts.py`` declares, and the listeners
of a session's changes hear them in the one order ``wiring.LISTENERS``
gives."""

from __future__ import annotations

import pytest

from support import node_rig
from wwnode import wiring
from wwnode.blobstore import open_blob_store
from wwnode.parts import Background, Chore, EventHandlers, Gauges, Listener
from wwnode.snapshots import Snapshots


@pytest.fixture
def rig(tmp_path):
    """A node with every optional part: portable logins (and drains), failover."""
    return node_rig(tmp_path / "data", snapshots=Snapshots(open_blob_store("", tmp_path / "blobs")), failover="auto")


def test_each_part_plays_the_role_the_loop_calls_it_in(rig):
    assert rig.node.chores and all(isinstance(chore, Chore) for chore in rig.node.chores)
    assert [type(part).__name__ for part in rig.node.background] == ["InboundMedia", "Portable", "FakeSpawner"]
    assert all(isinstance(part, Background) for part in rig.node.background)
    assert isinstance(rig.node.drain, Gauges) and isinstance(rig.node.storage, Gauges)
    assert all(isinstance(part, Listener) for part in rig.sessions.listeners)
    assert all(isinstance(handler.__self__, EventHandlers) for handler in rig.node.handlers.values())


def test_listeners_hear_a_change_in_the_order_listeners_gives(rig):
    names = [type(part).__name__ for part in rig.sessions.listeners]
    assert names == ["Portable", "Drain", "Ownership", "Pairing", "EventBus", "SendDesk", "ActionDesk", "Starts",
                     "Tally", "MediaDesk", "SettingsDesk", "SessionDesk"]
    assert [name for name, _why in wiring.LISTENERS] == ["portable", "drain", "ownership", "pairing", "bus", "sends",
                                                          "actions", "starts", "tally", "media", "settings", "desk"]
    assert all(why for _name, why in wiring.LISTENERS)  # each with its reason


def test_without_a_blob_store_the_absent_parts_are_skipped_in_that_order(tmp_path):
    names = [type(part).__name__ for part in node_rig(tmp_path).sessions.listeners]
    assert names == ["Ownership", "Pairing", "EventBus", "SendDesk", "ActionDesk", "Starts", "Tally", "MediaDesk",
                     "SettingsDesk", "SessionDesk"]


def test_a_listener_without_its_place_in_the_list_is_refused_when_the_node_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(wiring, "LISTENERS", tuple(entry for entry in wiring.LISTENERS if entry[0] != "desk"))
    with pytest.raises(ValueError, match=r"disagree on \['desk'\]"):
        node_rig(tmp_path)

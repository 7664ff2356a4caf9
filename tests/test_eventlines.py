"""The new events as ``wwnode events`` shows them: one readable line each."""

from __future__ import annotations

from wwnode.tools.eventlines import describe

ENVELOPE = {"node": "node-a", "ts": 1_700_000_000_123, "id": "e1", "key": "shop"}


def test_a_call_reads_as_who_calls_and_how():
    line = describe({"event": "call_instance", **ENVELOPE,
                     "call": {"id": "3A1B2C", "from": "5511999990002@c.us", "is_video": True, "is_group": False,
                              "ts": 1_700_000_000_000}})
    assert "call=video from=5511999990002@c.us call_id=3A1B2C" in line and "{" not in line
    line = describe({"event": "call_instance", **ENVELOPE, "rejected": True,
                     "call": {"id": "9F", "from": "148729301938475@lid", "is_video": False, "is_group": True}})
    assert "call=voice-group from=148729301938475@lid call_id=9F" in line and "rejected=true" in line

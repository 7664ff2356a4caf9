"""Events as one readable line each, for ``wwnode events``, ``create`` and the demo.

The JSON body stays the reference (``--json``); a line shows the time, the
node, the event and the fields a person looks for first. Any event, a future
one included, gets a line: its other fields follow as ``name=value``."""

from __future__ import annotations

import time

import orjson

# Envelope fields, shown in the line's first columns or not at all.
_ENVELOPE = ("event", "node", "ts", "id", "key")
LONG = 60  # characters of a field shown before it is cut


def _short(value) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = text.replace("\n", " ")
    return text if len(text) <= LONG else text[:LONG - 3] + "..."


def _message(m: dict) -> str:
    sender = m.get("from", "?")
    return f"from={sender} type={m.get('type', '?')} body={_short(m.get('body', ''))!s}"


def _call(c: dict) -> str:
    kind = ("video" if c.get("is_video") else "voice") + ("-group" if c.get("is_group") else "")
    return f"call={kind} from={c.get('from', '?')} call_id={c.get('id', '?')}"


def describe(event: dict) -> str:
    ts = event.get("ts")
    clock = time.strftime("%H:%M:%S", time.localtime(ts / 1000)) + f".{int(ts) % 1000:03d}" \
        if isinstance(ts, int) else "--:--:--.---"
    name = event.get("event", "?")
    parts = [clock, f"{event.get('node', '?'):<12}", f"{name:<24}"]
    if "key" in event:
        parts.append(f"key={event['key']}")
    for field, value in event.items():
        if field in _ENVELOPE or value is None:
            continue
        if field == "message" and isinstance(value, dict):
            parts.append(_message(value))
        elif field == "call" and isinstance(value, dict):
            parts.append(_call(value))
        elif field == "qr":
            parts.append(f"qr={_short(value)[:24]}...")
        else:
            parts.append(f"{field}={_short(value)}")
    return " ".join(parts)

"""The pipe's framing: one JSON object a line, both ways, and how long a line may be."""

from __future__ import annotations

import orjson

MAX_COMMAND_LINE = 1024 * 1024  # node -> session; a send is far smaller
MAX_EVENT_LINE = 4 * 1024 * 1024  # session -> node; an inbound message is far smaller


def encode(obj: dict) -> bytes:
    return orjson.dumps(obj) + b"\n"


def json_object(line: bytes | bytearray, error: type[ValueError], what: str) -> dict:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise error(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise error(f"{what} must be a JSON object")
    return obj

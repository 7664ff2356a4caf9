"""Chat states on the stand-in: what a linked page said it is doing in a
chat ("typing...", "recording audio...", or nothing any more), in order,
with the server's time in milliseconds, as the contact's phone would see
it.  Read back through ``GET /_sim/chatstates?phone=P``.

Mixed into :class:`~wwnode.fakewa.world.World`: it uses the world's lock
and its linked devices."""

from __future__ import annotations

import time

from .errors import BadRequest
from .messaging import CHAT_RE, _phone

STATES = ("typing", "recording", "paused")


class ChatStateWorld:
    def _init_chatstates(self) -> None:
        self._chatstates: dict[str, list[dict]] = {}  # phone -> what its devices said, in order

    def record_chatstate(self, device_id: str, chat, state) -> None:
        if not isinstance(chat, str) or not CHAT_RE.match(chat):
            raise BadRequest("chat must be a chat id")
        if state not in STATES:
            raise BadRequest(f"state must be one of {', '.join(STATES)}")
        with self._lock:
            device = self._linked_device(device_id)
            self._chatstates.setdefault(device.phone, []).append(
                {"chat": chat, "state": state, "at_ms": int(time.time() * 1000)})

    def chatstates_by(self, phone) -> list[dict]:
        phone = _phone(phone, "phone")
        with self._lock:
            return [dict(r) for r in self._chatstates.get(phone, [])]

"""What other phones see of an account on the stand-in, besides its
messages: that it is online (its *presence*), and that it types or records
a voice note in a chat (its *chat state*).  A part of :class:`~wwnode.fakewa.world.World` (it is mixed in),
using the world's lock and devices the same way ``world.py`` does; the
HTTP routes at the end are merged into the server's.

- **From a page**: ``WAWebChatStateBridge`` (``sendChatStateComposing``,
  ``sendChatStateRecording``, ``sendChatStatePaused``, as whatsapp-web.js's
  ``Chat.sendStateTyping``, ``sendStateRecording`` and ``clearState`` call
  them) posts ``/_wa/chatstate``; the server keeps each, in order.
- **Presence**: ``WAWebPresenceChatAction`` (``sendPresenceAvailable``,
  ``sendPresenceUnavailable``, as whatsapp-web.js's client methods of the
  same names call them) posts ``/_wa/presence``; ``GET
  /_sim/presence?phone=P`` is what other phones see of P now, and every
  change its pages sent.
- **What the other side sees**: ``GET /_sim/chatstates?from=P`` -- every
  chat state P's pages sent, and per chat the one the other phone shows
  now: ``composing`` and ``recording`` last ``CHAT_STATE_LIFETIME``
  seconds unless sent again (whatsapp-web.js documents 25 s for both), then
  show as ``paused``.
"""

from __future__ import annotations

import re
import time

from .errors import BadRequest
from .messaging import CHAT_RE
from .worldbase import WorldBase

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")
CHAT_STATES = ("composing", "recording", "paused")
PRESENCES = ("available", "unavailable")
CHAT_STATE_LIFETIME = 25.0  # seconds a composing or recording state shows without being sent again
KEPT = 1000  # chat states kept per phone, the oldest dropped first


class PresenceWorld(WorldBase):
    """Mixed into World; uses its ``_lock`` and ``_linked_device``."""

    def _init_presence(self) -> None:
        # phone -> [{"chat", "state", "t" (ms since the epoch), "at" (monotonic)}], oldest first
        self._chat_states: dict[str, list[dict]] = {}
        self._presences: dict[str, list[dict]] = {}  # phone -> [{"state", "t" (ms since the epoch)}], oldest first

    # ------------------------------------------------------ from the page
    def record_chat_state(self, device_id: str, chat, state, now: float) -> None:
        if not isinstance(chat, str) or not CHAT_RE.match(chat):
            raise BadRequest("chat must be a chat id")
        if state not in CHAT_STATES:
            raise BadRequest(f"state must be one of {', '.join(CHAT_STATES)}")
        with self._lock:
            phone = self._linked_device(device_id).phone
            kept = self._chat_states.setdefault(phone, [])
            kept.append({"chat": chat, "state": state, "t": int(time.time() * 1000), "at": now})
            del kept[:-KEPT]

    def record_presence(self, device_id: str, state) -> None:
        if state not in PRESENCES:
            raise BadRequest(f"state must be one of {', '.join(PRESENCES)}")
        with self._lock:
            kept = self._presences.setdefault(self._linked_device(device_id).phone, [])
            kept.append({"state": state, "t": int(time.time() * 1000)})
            del kept[:-KEPT]

    # -------------------------------------------------- the control API
    def presence_of(self, phone) -> dict:
        """``{"presence": the last state or None, "changes": [{"state", "t"}]}``."""
        if not isinstance(phone, str) or not _PHONE_RE.match(phone):
            raise BadRequest("phone must be a phone number of 5 to 20 digits")
        with self._lock:
            kept = [dict(p) for p in self._presences.get(phone, [])]
        return {"presence": kept[-1]["state"] if kept else None, "changes": kept}

    def chat_states_of(self, phone, now: float) -> dict:
        """``{"states": [{"chat", "state", "t"}], "now": {chat: state}}``."""
        if not isinstance(phone, str) or not _PHONE_RE.match(phone):
            raise BadRequest("from must be a phone number of 5 to 20 digits")
        with self._lock:
            kept = [dict(s) for s in self._chat_states.get(phone, [])]
        shown: dict[str, str] = {}
        for s in kept:
            at = s.pop("at")
            lapsed = s["state"] != "paused" and now - at >= CHAT_STATE_LIFETIME
            shown[s["chat"]] = "paused" if lapsed else s["state"]
        return {"states": kept, "now": shown}


# ------------------------------------------------------------------ HTTP
def page_chat_state(handler, query) -> None:
    b = handler._body()
    device = b.get("device")
    if not isinstance(device, str) or not device:
        raise BadRequest("device must be a non-empty string")
    handler.world.record_chat_state(device, b.get("chat"), b.get("state"), time.monotonic())
    handler._json(200, {"ok": True})


def page_presence(handler, query) -> None:
    b = handler._body()
    device = b.get("device")
    if not isinstance(device, str) or not device:
        raise BadRequest("device must be a non-empty string")
    handler.world.record_presence(device, b.get("state"))
    handler._json(200, {"ok": True})


def sim_presence(handler, query) -> None:
    handler._json(200, handler.world.presence_of((query.get("phone") or [""])[0]))


def sim_chat_states(handler, query) -> None:
    phone = (query.get("from") or [""])[0]
    handler._json(200, handler.world.chat_states_of(phone, time.monotonic()))


POST_ROUTES = {"/_wa/chatstate": page_chat_state, "/_wa/presence": page_presence}
GET_ROUTES = {"/_sim/chatstates": sim_chat_states, "/_sim/presence": sim_presence}

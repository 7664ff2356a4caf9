"""An account's chat list on the stand-in: which chats it archived, pinned
and muted.  A part of :class:`~wwnode.fakewa.world.World` (it is mixed in),
using the world's lock and devices the same way ``world.py`` does; the
HTTP routes at the end are merged into the server's.

- **From a page**: ``Cmd.archiveChat(chat, bool)``, ``Cmd.pinChat(chat,
  bool)`` and a chat's ``mute.mute({expiration})`` / ``mute.unmute()``, as
  whatsapp-web.js's ``Chat.archive``, ``pin``, ``mute`` and their opposites
  call them, change the chat on the page and post ``/_wa/chat``: the
  account's phone and its other devices keep it (on the real service,
  through its app-state sync).  The page itself pins at most
  ``MAX_PINNED`` chats (``page_chatlist.js``).
- **What the phone shows**: ``GET /_sim/chats?phone=P`` -- each chat P's
  pages changed, with ``archive`` (true or false), ``pin`` (when it was
  pinned, seconds since the epoch; 0: not pinned) and ``mute`` (0: not
  muted, -1: muted for ever, else until when, seconds since the epoch).
"""

from __future__ import annotations

import re

from .errors import BadRequest
from .messaging import CHAT_RE

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")
MAX_PINNED = 3  # chats WhatsApp lets an account pin (whatsapp-web.js's MAX_PIN_COUNT)
_FOREVER = 2**53  # beyond any time a page can give


class ChatListWorld:
    """Mixed into World; uses its ``_lock`` and ``_linked_device``."""

    def _init_chat_list(self) -> None:
        self._chat_list: dict[str, dict[str, dict]] = {}  # phone -> chat -> {"archive", "pin", "mute"}

    # ------------------------------------------------------ from the page
    def record_chat_change(self, device_id: str, chat, change) -> dict:
        if not isinstance(chat, str) or not CHAT_RE.match(chat):
            raise BadRequest("chat must be a chat id")
        if not isinstance(change, dict) or not change or set(change) - {"archive", "pin", "mute"}:
            raise BadRequest("change must hold some of archive, pin and mute")
        if "archive" in change and not isinstance(change["archive"], bool):
            raise BadRequest("archive must be true or false")
        for name, least in (("pin", 0), ("mute", -1)):
            value = change.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or not least <= value < _FOREVER:
                raise BadRequest(f"{name} must be a whole number of seconds from {least}")
        with self._lock:
            phone = self._linked_device(device_id).phone
            kept = self._chat_list.setdefault(phone, {}).setdefault(chat, {"archive": False, "pin": 0, "mute": 0})
            kept.update(change)
            return dict(kept)

    # -------------------------------------------------- the control API
    def chats_of(self, phone) -> list[dict]:
        if not isinstance(phone, str) or not _PHONE_RE.match(phone):
            raise BadRequest("phone must be a phone number of 5 to 20 digits")
        with self._lock:
            return [{"chat": chat, **kept} for chat, kept in self._chat_list.get(phone, {}).items()]


# ------------------------------------------------------------------ HTTP
def page_chat(handler, query) -> None:
    b = handler._body()
    device = b.get("device")
    if not isinstance(device, str) or not device:
        raise BadRequest("device must be a non-empty string")
    change = {k: b[k] for k in ("archive", "pin", "mute") if k in b}
    handler._json(200, {"ok": True, **handler.world.record_chat_change(device, b.get("chat"), change)})


def sim_chats(handler, query) -> None:
    phone = (query.get("phone") or [""])[0]
    handler._json(200, {"chats": handler.world.chats_of(phone)})


POST_ROUTES = {"/_wa/chat": page_chat}
GET_ROUTES = {"/_sim/chats": sim_chats}

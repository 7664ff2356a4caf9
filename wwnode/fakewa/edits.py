"""Edits and deletions on the stand-in.  A part of
:class:`~wwnode.fakewa.world.World` (it is mixed in), using the world's
lock, devices and outbox the same way ``world.py`` does.

- **From a page**: a page edits a message it sent (``/_wa/edit``) or
  deletes it for everyone (``/_wa/revoke``); the server keeps it in the
  message's record (``body`` the new text, ``previous_bodies`` the old
  ones, ``revoked``), which ``GET /_sim/messages`` lists.  The page itself
  decides whether the message may still be edited or deleted
  (``page_edits.js``, the ``edit_window`` and ``revoke_window`` settings).
- **From a phone**: the sender of a message a linked page holds edits it
  (``POST /_sim/edit``) or deletes it for everyone (``POST /_sim/revoke``):
  another person, or the account itself on its phone.  The open pages
  linked to ``to`` apply it to the message they hold with that id.

The stand-in does not pass a page's edit on to the recipient's own linked
pages, nor keep the messages phones wrote: an edit from a page of a message
its phone wrote is refused (404), where the real service would take it.
"""

from __future__ import annotations

import re
import time

from .errors import BadRequest, NotFound
from .worldbase import WorldBase

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")
_BARE_ID_RE = re.compile(r"^[0-9A-Za-z]{1,64}$")


class EditWorld(WorldBase):
    """Mixed into World; uses its ``_lock``, ``_devices``,
    ``_linked_devices`` and ``_outbox``."""

    # ------------------------------------------------------ from the page
    def record_edit(self, device_id: str, msg_id, body) -> dict:
        msg_id = _bare_id(msg_id)
        if not isinstance(body, str):
            raise BadRequest("body must be a string")
        with self._lock:
            return self._outbox.edit(self._sender_of(device_id), msg_id, body)

    def record_revoke(self, device_id: str, msg_id) -> dict:
        msg_id = _bare_id(msg_id)
        with self._lock:
            return self._outbox.revoke(self._sender_of(device_id), msg_id)

    def _sender_of(self, device_id: str) -> str:
        device = self._devices.get(device_id)
        if device is None or device.phone is None:
            raise NotFound("device is not linked to a phone")
        return device.phone

    # -------------------------------------------------- the control API
    def phone_edits(self, to, message_id, body) -> None:
        """The sender of message ``message_id`` (bare id) edits it; the
        open pages linked to ``to`` show the new text."""
        if not isinstance(body, str):
            raise BadRequest("body must be a string")
        self._push_change(to, {"type": "edit", "id": _bare_id(message_id), "body": body,
                               "t": int(time.time() * 1000)})

    def phone_revokes(self, to, message_id) -> None:
        """The sender of message ``message_id`` deletes it for everyone."""
        self._push_change(to, {"type": "revoke", "id": _bare_id(message_id)})

    def _push_change(self, to, event: dict) -> None:
        if not isinstance(to, str) or not _PHONE_RE.match(to):
            raise BadRequest("to must be a phone number of 5 to 20 digits")
        with self._lock:
            links = [d.link for d in self._linked_devices(to) if d.link is not None and d.link.mode == "paired"]
            if not links:
                raise NotFound(f"no open page is linked to phone {to}")
            for link in links:
                link.push(event)


def _bare_id(value) -> str:
    if not isinstance(value, str) or not _BARE_ID_RE.match(value):
        raise BadRequest("message_id must be a message's bare id")
    return value

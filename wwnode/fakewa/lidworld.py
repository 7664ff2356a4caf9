"""The stand-in's phones by their hidden ids (LIDs), and writing from the
phone itself.  A part of :class:`~wwnode.fakewa.world.World` (it is mixed
in), using the world's lock, devices and links the same way ``world.py``
does; the rules of who is shown how are in ``lids.py``.

- **LIDs**: ``POST /_sim/lids`` tells (or chooses) a phone's LID;
  ``POST /_sim/contacts`` puts a number in an account's contacts, so its
  pages map that person's LID to the number and back;
  ``POST /_sim/groups`` puts a group in LID addressing mode (its members
  show by LID).
- **The account's own messages**: the phone writes to someone itself
  (``POST /_sim/own``).  Its linked pages get the message as one of the
  account's own (``fromMe``), as they get what the phone sends on the real
  service; the other person's linked pages, if any, get it as a message
  from the phone.  Into a chat addressed by LID (a ``@lid`` chat, a group
  in LID addressing mode) the phone writes as its own LID, as the page
  does.
- **What reached a phone**: ``GET /_sim/received`` lists what linked
  browsers sent to a phone, whether they wrote to its number or its LID
  (the server routes both to the same phone).
"""

from __future__ import annotations

import re
import time
from typing import cast

from .errors import BadRequest, NotFound
from .lids import lid_wid, pn_wid
from .messaging import CHAT_RE, GROUP_RE, new_message_id
from .worldbase import WorldBase

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")


class LidWorld(WorldBase):
    """Mixed into World; uses its ``_lock``, ``_devices``,
    ``_linked_devices``, ``_deliver``, ``_push_message``, ``_outbox``,
    ``_send_due_receipts`` and ``lids``."""

    # -------------------------------------------------- the control API
    def lid_of(self, phone, lid=None) -> str:
        """The phone's LID (``<digits>@lid``); ``lid`` (digits) chooses it
        for a phone that has none yet."""
        phone = _phone(phone, "phone")
        with self._lock:
            return lid_wid(self.lids.of(phone) if lid is None else self.lids.choose(phone, lid))

    def add_contact(self, phone, contact) -> None:
        """``phone``'s account has ``contact``'s number in its contacts:
        its open pages learn the contact's LID and number at once (others
        with their next pairing)."""
        phone = _phone(phone, "phone")
        contact = _phone(contact, "contact")
        with self._lock:
            if self.lids.learn(phone, contact):
                self._push_to_paired(self._linked_devices(phone), {"type": "lids", "pairs": [self.lids.pair(contact)]})
            # The page's contact of that person (chats.py), named as saved:
            # told again only when it changed.
            info = self._contact_info(phone, pn_wid(contact))
            if self._contacts_told.get((phone, contact)) != info:
                self._contacts_told[(phone, contact)] = info
                self._push_to_paired(self._linked_devices(phone), {"type": "contact", "contact": info})

    def set_group_addressing(self, group, addressing) -> None:
        """A group's addressing mode, ``pn`` or ``lid``.  The stand-in keeps
        no members, so every open page learns it (as a member's would)."""
        if not isinstance(group, str) or not GROUP_RE.match(group):
            raise BadRequest("group must be a group id, <digits>-<digits>@g.us")
        with self._lock:
            self.lids.set_addressing(group, addressing)
            self._push_to_paired(list(self._devices.values()),
                                 {"type": "group", "id": group, "addressing": self.lids.addressing(group)})

    def write_own(self, phone, chat, body) -> str:
        """The phone writes ``body`` into ``chat`` (a person's ``@c.us`` or
        ``@lid``, or a group) itself; returns the message's id."""
        phone = _phone(phone, "phone")
        if not isinstance(chat, str) or not CHAT_RE.match(chat):
            raise BadRequest("chat must be <digits>@c.us, <digits>@lid or a group id")
        if not isinstance(body, str):
            raise BadRequest("body must be a string")
        with self._lock:
            if not self._linked_devices(phone):
                raise NotFound(f"no device is linked to phone {phone}")
            server = chat.partition("@")[2]
            by_lid = server == "lid" or (server == "g.us" and self.lids.addressing(chat) == "lid")
            me = lid_wid(self.lids.of(phone)) if by_lid else pn_wid(phone)
            msg_id = new_message_id()
            msg = {"id": msg_id, "from": me, "to": chat, "from_me": True, "body": body, "t": int(time.time())}
            if server == "g.us":
                msg |= {"author": me, "addressing": self.lids.addressing(chat)}
            else:
                person = self.lids.resolve(chat)
                if server == "c.us":
                    self.lids.learn(phone, cast(str, person))  # it wrote to the number (a number resolves to itself)
                if person is not None and self.lids.knows(phone, person):
                    msg["lids"] = [self.lids.pair(person)]
            self._push_message(phone, msg)
            # The other person's own browsers see it come in, by the id it
            # was written to: their number, or their LID.
            recipient = self.lids.resolve(chat) if server != "g.us" else None
            if recipient is not None and recipient != phone and self._linked_devices(recipient):
                self._deliver(recipient, phone, body, None, by_lid, msg_id=msg_id)
            return msg_id

    def received_by(self, phone, now: float) -> list[dict]:
        """What linked browsers sent to ``phone``, by its number or its LID:
        each record as ``sent_by`` lists it, with ``sender``, the phone whose
        browser sent it."""
        phone = _phone(phone, "phone")
        with self._lock:
            self._send_due_receipts(now)
            return [record | {"sender": sender} for sender, record in self._outbox.all()
                    if self.lids.resolve(record["to"]) == phone]

    @staticmethod
    def _push_to_paired(devices, event: dict) -> None:
        for device in devices:
            if device.phone is not None and device.link is not None and device.link.mode == "paired":
                device.link.push(event)


def _phone(value, name: str) -> str:
    if not isinstance(value, str) or not _PHONE_RE.match(value):
        raise BadRequest(f"{name} must be a phone number of 5 to 20 digits")
    return value

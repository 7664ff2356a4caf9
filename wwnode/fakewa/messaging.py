"""The stand-in's phones beyond text: reactions, chats marked read, which
numbers have WhatsApp, linking with a pairing code, and group messages.

A part of :class:`~wwnode.fakewa.world.World` (it is mixed in), using the
world's lock, devices and links the same way ``world.py`` does.

- **Reactions**: a page reacts to a message (``/_wa/react``); the reacting
  phone's reactions are listed by the control API.  A phone reacts to a
  message a linked account sent or received (``POST /_sim/reactions``):
  its open pages store the reaction as the real page does, through the
  reaction table (whatsapp-web.js's ``message_reaction`` hooks it there).
  With ``lid`` the reaction comes from the phone's LID, as a message from
  someone the account knows only so does (``deliver``'s ``lid``); where the
  account knows both ids, the page learns the pair with it, as with a
  message.
- **Read**: a page that marks a chat read (``sendSeen`` with unread
  messages) sends read receipts for it; the control API lists those chats.
- **Numbers**: a number has WhatsApp if a phone of it linked a device, or
  the control API says so (``POST /_sim/numbers``, optionally with the id
  WhatsApp answers for it, which may differ from the number typed).
- **Pairing codes**: a page asked for a code for a phone number
  (``WAWebAltDeviceLinkingApi.startAltLinkingFlow``) stops showing QR codes
  and waits; the phone typing the code (``POST /_sim/pair``) links it as a
  scan would.  A new request replaces the code.  Codes are eight
  characters of the alphabet WhatsApp uses (no 0, O, I or U); how long the
  real one lives is not known here: the stand-in's lives until replaced or
  typed.
- **Groups**: a message from a phone in a group (``POST /_sim/messages``
  with ``group``) reaches the linked browsers from the group, with the
  phone as ``author`` (its LID in a group in LID addressing mode, lids.py).
  Any phone may write to any group id; a page may send to any group id
  but those of groups made through the stand-in, whose rules hold there
  (groups.py).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import cast

from .errors import BadRequest, NotFound
from .lids import lid_wid, pn_wid
from .links import LinkedDevice
from .worldbase import WorldBase

GROUP_RE = re.compile(r"^[0-9]{5,20}(-[0-9]{5,20})?@g\.us$")
CHAT_RE = re.compile(r"^[0-9]{5,20}(-[0-9]{5,20})?@(c\.us|g\.us|lid)$")
PERSON_RE = re.compile(r"^[0-9]{5,20}@(c\.us|lid)$")
CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
CODE_LENGTH = 8
MAX_REACTION = 32


def new_message_id() -> str:
    # The real service uses 20 (web) or 32 (phones) upper-case hex digits.
    return secrets.token_hex(10).upper()


def new_pairing_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class MessagingWorld(WorldBase):
    """Mixed into World; uses its ``_lock``, ``_devices``, ``_phone_info``,
    ``_pair``, ``_linked_devices`` and ``lids``."""

    def _init_messaging(self) -> None:
        # codes: device id -> (code, phone) its page asked for last.
        self._messaging: dict[str, dict] = {"reactions": {}, "seen": {}, "numbers": {}, "codes": {}}

    def _messaging_state(self) -> dict:
        return self._messaging

    def _linked_device(self, device_id: str) -> LinkedDevice:
        device = self._devices.get(device_id)
        if device is None or device.phone is None:
            raise NotFound("device is not linked to a phone")
        return cast("LinkedDevice", device)  # its phone is set: checked above

    # ------------------------------------------------------ from the page
    def record_reaction(self, device_id: str, msg_id: object, chat: object, reaction: object) -> dict:
        if not isinstance(msg_id, str) or not msg_id or not isinstance(chat, str) or not CHAT_RE.match(chat):
            raise BadRequest("id and chat must name a message and its chat")
        if not isinstance(reaction, str) or len(reaction) > MAX_REACTION:
            raise BadRequest(f"reaction must be a string of at most {MAX_REACTION} characters")
        with self._lock:
            device = self._linked_device(device_id)
            record = {"message_id": msg_id, "chat": chat, "reaction": reaction, "t": int(time.time())}
            self._messaging_state()["reactions"].setdefault(device.phone, []).append(record)
            return dict(record)

    def mark_seen(self, device_id: str, chat: object) -> None:
        if not isinstance(chat, str) or not CHAT_RE.match(chat):
            raise BadRequest("chat must be a chat id")
        with self._lock:
            device = self._linked_device(device_id)
            self._messaging_state()["seen"].setdefault(device.phone, []).append(
                {"chat": chat, "t": int(time.time())})
            self.history.seen(device.phone, chat)

    def query_exists(self, device_id: str, wid: object) -> dict | None:
        """What WhatsApp answers for a person's id, None if it has no
        WhatsApp: ``{"wid"}`` (the id to write to), ``"lid"`` (its LID) and
        ``"pn"`` (its number) where the asking account may know it.  Asking
        for a number makes the account know that number's LID; asking for a
        LID tells its number only to an account that knows it already
        (lids.py)."""
        if not isinstance(wid, str) or not PERSON_RE.match(wid):
            raise BadRequest("wid must be <digits>@c.us or <digits>@lid")
        user, _, server = wid.partition("@")
        with self._lock:
            account = self._linked_device(device_id).phone
            if server == "lid":
                phone = self.lids.phone_of(user)
                if phone is None:
                    return None
                answer = {"wid": wid, "lid": wid}
                if self.lids.knows(account, phone):
                    answer["pn"] = f"{phone}@c.us"
                return answer
            numbers = self._messaging_state()["numbers"]
            answered = numbers[user] if user in numbers else (wid if user in self._phones else None)
            if answered is None:
                return None
            phone = answered[:-len("@c.us")]
            self.lids.learn(account, phone)
            return {"wid": answered, "lid": f"{self.lids.of(phone)}@lid", "pn": answered}

    def _registered(self, phone: str) -> bool:
        """Under the lock: whether a number has WhatsApp (the control API
        says so, or a phone of it linked a device)."""
        numbers = self._messaging_state()["numbers"]
        return numbers[phone] is not None if phone in numbers else phone in self._phones

    def request_pairing_code(self, device_id: str, phone: object) -> str:
        phone = _phone(phone, "phone")
        with self._lock:
            device = self._devices.get(device_id)
            link = device.link if device is not None else None
            if link is None or link.mode not in ("qr", "idle", "code"):
                raise NotFound("this page is not waiting to be linked")
            link.mode = "code"
            link.ref = link.ref_deadline = None  # no more QR codes
            code = new_pairing_code()
            self._messaging_state()["codes"][device_id] = (code, phone)
            return code

    # -------------------------------------------------- the control API
    def pair(self, phone, code, now: float) -> str:
        """The phone types a pairing code a page shows for it."""
        phone = _phone(phone, "phone")
        if not isinstance(code, str) or not code:
            raise BadRequest("code must be a non-empty string")
        code = code.replace("-", "").upper()
        with self._lock:
            codes = self._messaging_state()["codes"]
            for device_id, asked in list(codes.items()):
                device = self._devices.get(device_id)
                link = device.link if device is not None else None
                # The code is the device's: a page whose live link was cut
                # and came back (showing QR codes again) still takes it.
                if (asked == (code, phone) and device is not None and link is not None
                        and link.mode in ("code", "qr", "idle")):
                    del codes[device_id]
                    device.phone = phone
                    self._phone_info(phone)
                    self._pair(link, restored=False, now=now)
                    return f"{phone}@c.us"
        raise NotFound(f"no page waits for code {code} for phone {phone}")

    def react(self, to, sender, message_id, reaction, by_lid=False) -> None:
        """``sender`` reacts to message ``message_id`` (the bare id) in its
        chat with ``to``; the pages linked to ``to`` learn of it.  With
        ``by_lid``, from ``sender``'s LID."""
        to = _phone(to, "to")
        sender = _phone(sender, "from")
        if not isinstance(by_lid, bool):
            raise BadRequest("lid must be true or false")
        if not isinstance(message_id, str) or not re.match(r"^[0-9A-Za-z]{1,64}$", message_id):
            raise BadRequest("message_id must be a message's bare id")
        if not isinstance(reaction, str) or len(reaction) > MAX_REACTION:
            raise BadRequest(f"reaction must be a string of at most {MAX_REACTION} characters ('' takes it back)")
        event = {"type": "reaction", "id": message_id, "reaction": reaction,
                 "reaction_id": secrets.token_hex(10).upper(), "t": int(time.time() * 1000)}
        with self._lock:
            links = [d.link for d in self._linked_devices(to) if d.link is not None and d.link.mode == "paired"]
            if not links:
                raise NotFound(f"no open page is linked to phone {to}")
            event["from"] = lid_wid(self.lids.of(sender)) if by_lid else pn_wid(sender)
            if not by_lid:
                self.lids.learn(to, sender)  # the number is on the reaction
            if self.lids.knows(to, sender):
                event["lids"] = [self.lids.pair(sender)]
            for link in links:
                link.push(event)

    def reactions_by(self, phone) -> list[dict]:
        phone = _phone(phone, "from")
        with self._lock:
            return [dict(r) for r in self._messaging_state()["reactions"].get(phone, [])]

    def seen_by(self, phone) -> list[dict]:
        phone = _phone(phone, "phone")
        with self._lock:
            return [dict(r) for r in self._messaging_state()["seen"].get(phone, [])]

    def set_number(self, phone, registered, wid=None) -> None:
        phone = _phone(phone, "phone")
        if not isinstance(registered, bool):
            raise BadRequest("registered must be true or false")
        if wid is not None and (not isinstance(wid, str) or not re.match(r"^[0-9]{5,20}@c\.us$", wid)):
            raise BadRequest("wid must be <digits>@c.us")
        with self._lock:
            self._messaging_state()["numbers"][phone] = (wid or f"{phone}@c.us") if registered else None


def check_group(group) -> str:
    if not isinstance(group, str) or not GROUP_RE.match(group):
        raise BadRequest("group must be a group id, <digits>-<digits>@g.us")
    return group


def _phone(value, name: str) -> str:
    if not isinstance(value, str) or not re.match(r"^[0-9]{5,20}$", value):
        raise BadRequest(f"{name} must be a phone number of 5 to 20 digits")
    return value

"""What an account has on the stand-in's server: its chats, every message
in them, their state (unread, archived, pinned, muted), and profile
pictures.  A part of :class:`~wwnode.fakewa.world.World` (it is mixed
in), using the world's lock and devices the same way ``world.py`` does;
the HTTP routes at the end are merged into the server's (``server.py``).

As on the real service, what an account has lives beyond any one page: a
page that links (a scan) or comes back (a restored profile) is given the
account's chats with their latest messages (``history``, before the sync
ends; the real page reads its own store and the phone's history sync), and
loads earlier messages when a client asks for them
(``WAWebChatLoadMessages.loadEarlierMsgs``: ``/_wa/history``), or finds a
message by its id (``Msg.getMessagesById``: ``/_wa/messages``).  A message
the page deletes for this account only (``Cmd.sendDeleteMsgs``) is gone
from its chats (``/_wa/forget``).  Messages
still held for a closed page are left out of what it is given: they come
afterwards as new ones, once each.

- **Chats**: every message that reaches the account's pages (from a phone,
  the account's own from its phone) and every message its pages send is
  kept in its chat, in order.  A message from someone else counts as
  unread until a page marks the chat seen.  ``POST /_sim/chats`` plays the
  phone archiving, pinning or muting a chat (the pages follow, as they
  follow the phone's app state on the real service).
- **Archive, pin, mute from a page**: ``Cmd.archiveChat(chat, bool)``,
  ``Cmd.pinChat(chat, bool)`` and a chat's ``mute.mute({expiration})`` /
  ``mute.unmute()``, as whatsapp-web.js's ``Chat.archive``, ``pin``,
  ``mute`` and their opposites (and our session's ``chat`` command) call
  them, change the chat on the page and post ``/_wa/chat``: the same chat
  the history keeps changes (the account's phone keeps it; its other open
  pages follow, as through the real service's app-state sync).  The page
  itself pins at most ``MAX_PINNED`` chats (``page_history.js``).
- **What the phone shows**: ``GET /_sim/chats?phone=P`` -- each of P's
  chats: ``archive`` (true or false), ``pin`` (when it was pinned, seconds
  since the epoch; 0: not pinned), ``mute`` (0: not muted, -1: muted for
  ever, else until when, seconds since the epoch), ``t``, ``unreadCount``
  and how many ``messages`` it keeps.
- **Pictures**: ``POST /_sim/pictures`` sets (or, without ``data``,
  removes) the profile picture of a phone or a group; a page asks for one
  (``WAWebContactProfilePicThumbBridge.requestProfilePicFromServer``:
  ``/_wa/picture``) and gets a URL of the stand-in that serves the bytes
  (``GET /_wa/pps``), or a server error where there is none.

Guesses, where nothing read here tells how the real service behaves: how
many messages a page is given per chat (``WINDOW``) and loads at a time
(``EARLIER``); that notifications (a group's changes) count as no unread
message; and that edits and deletions change what the history keeps only
on the pages that were open (a page given the history later shows the
message as it came).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
import time

from .errors import BadRequest, NotFound, refusing
from .lids import pn_wid
from .worldbase import WorldBase

WINDOW = 20  # messages per chat a page is given when it links or comes back
EARLIER = 50  # messages a page loads at a time, going back
MAX_PICTURE = 1024 * 1024
MAX_MUTE = 2 ** 53  # ms; -1 mutes for ever
MAX_PINNED = 3  # chats WhatsApp lets an account pin (whatsapp-web.js's MAX_PIN_COUNT)
_FOREVER = 2 ** 53  # seconds: beyond any time a page can give

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")
_CHAT_RE = re.compile(r"^[0-9]{5,20}(-[0-9]{5,20})?@(c\.us|g\.us|lid)$")
_GROUP_RE = re.compile(r"^[0-9]{5,20}(-[0-9]{5,20})?@g\.us$")
_BARE_ID_RE = re.compile(r"^[0-9A-Za-z]{1,64}$")


def chat_of(msg: dict) -> str:
    """The chat a message (as pushed to a page) belongs to: the other
    person's id, or the group's."""
    return msg["to"] if msg.get("from_me") else msg["from"]


class History:
    """Every account's chats.  No lock of its own: the world calls it
    under its lock."""

    def __init__(self):
        self._chats: dict[str, dict[str, dict]] = {}  # account -> chat id -> chat
        self._seq = itertools.count(1)

    def chat(self, account: str, chat_id: str) -> dict:
        chats = self._chats.setdefault(account, {})
        chat = chats.get(chat_id)
        if chat is None:
            chat = chats[chat_id] = {"id": chat_id, "t": 0, "unread": 0, "archive": False, "pin": 0, "mute": 0,
                                     "messages": [], "ids": set()}
        return chat

    def find(self, account: str, chat_id: str) -> dict | None:
        return self._chats.get(account, {}).get(chat_id)

    def add(self, account: str, msg: dict) -> None:
        """A message reached the account's pages, or one of them sent it;
        kept once (a message pushed again is the same message)."""
        chat = self.chat(account, chat_of(msg))
        if msg["id"] in chat["ids"]:
            return
        chat["ids"].add(msg["id"])
        chat["messages"].append({**msg, "seq": next(self._seq)})
        chat["t"] = max(chat["t"], int(msg.get("t") or 0))
        if counts_unread(msg):
            chat["unread"] += 1

    def set_ack(self, account: str, chat_id: str, msg_id: str, ack: int) -> None:
        """A message the account sent got further (a receipt)."""
        chat = self.find(account, chat_id)
        for msg in chat["messages"] if chat is not None else ():
            if msg["id"] == msg_id and msg.get("from_me"):
                msg["ack"] = max(msg.get("ack", 1), ack)

    def seen(self, account: str, chat_id: str) -> None:
        chat = self.find(account, chat_id)
        if chat is not None:
            chat["unread"] = 0

    def chats(self, account: str) -> list[dict]:
        return list(self._chats.get(account, {}).values())

    def latest(self, account: str, leave_out: set[str], window: int = WINDOW) -> list[dict]:
        """The latest ``window`` messages of each chat, those in
        ``leave_out`` (held for the page) left out; oldest first."""
        out = []
        for chat in self.chats(account):
            kept = [m for m in chat["messages"] if m["id"] not in leave_out]
            out += kept[-window:]
        return sorted(out, key=lambda m: m["seq"])

    def earlier(self, account: str, chat_id: str, before: str | None, count: int) -> tuple[list[dict], bool]:
        """Up to ``count`` messages of the chat before message ``before``
        (bare id; None: the latest), oldest first, and whether there are
        more before those."""
        chat = self.find(account, chat_id)
        if chat is None:
            return [], False
        messages = chat["messages"]
        end = len(messages)
        if before is not None:
            found = next((i for i, m in enumerate(messages) if m["id"] == before), None)
            if found is None:
                raise NotFound(f"chat {chat_id} has no message {before!r}")
            end = found
        start = max(0, end - count)
        return messages[start:end], start > 0

    def forget(self, account: str, ids: list[str]) -> None:
        """Messages deleted for the account only: gone from its chats."""
        gone = set(ids)
        for chat in self.chats(account):
            chat["messages"] = [m for m in chat["messages"] if m["id"] not in gone]

    def by_ids(self, account: str, ids: list[str]) -> list[dict]:
        wanted = set(ids)
        return [m for chat in self.chats(account) for m in chat["messages"] if m["id"] in wanted]

    def state(self, account: str, chat_id: str, leave_out: set[str] | frozenset[str] = frozenset()) -> dict:
        """What a page shows of a chat besides its messages; the unread
        messages in ``leave_out`` (held for the page, which counts them as
        they come) not counted."""
        chat = self.find(account, chat_id) or self.chat(account, chat_id)
        coming = sum(1 for m in chat["messages"] if m["id"] in leave_out and counts_unread(m))
        return {"id": chat["id"], "t": chat["t"], "unreadCount": max(0, chat["unread"] - coming),
                "archive": chat["archive"], "pin": chat["pin"], "muteExpiration": chat["mute"]}


def counts_unread(msg: dict) -> bool:
    """Someone else's message (a notification is none)."""
    return not msg.get("from_me") and msg.get("type") != "gp2"


def sent_as_message(phone: str, record: dict) -> dict:
    """A message a page sent, as the account's pages are given it: its
    own, in the shape a message reaches a page in (``content`` in the
    page's field names, ``media`` as the page posted it)."""
    msg = {"id": record["id"], "from": record.get("from") or pn_wid(phone), "to": record["to"], "from_me": True,
           "body": record["body"], "t": record["t"], "ack": record.get("ack", 1)}
    if record["to"].endswith("@g.us"):
        msg["author"] = msg["from"]
    if record.get("media") is not None:
        msg["media"] = record["media"]
    content = page_content(record)
    if content:
        msg["content"] = content
    if record.get("quoted_id"):
        msg["quoted_id"] = record["quoted_id"]
    return msg


def page_content(record: dict) -> dict:
    """A sent record's location, poll or cards in the page's field names
    (as a phone's reach the page: ``contents.py``)."""
    kind = record.get("type")
    if kind == "location":
        loc = record["location"]
        return {"type": kind, "lat": loc["latitude"], "lng": loc["longitude"], "loc": loc["description"] or None,
                "clientUrl": loc["url"]}
    if kind == "poll_creation":
        poll = record["poll"]
        return {"type": kind, "pollName": poll["name"],
                "pollOptions": [{"name": n, "localId": i} for n, i in zip(poll["options"], poll["option_ids"])],
                "pollSelectableOptionsCount": 0 if poll["multiple"] else 1}
    if kind == "vcard":
        return {"type": kind, "vcardFormattedName": record["names"][0]}
    if kind == "multi_vcard":
        return {"type": kind, "vcardList": [{"displayName": n, "vcard": v}
                                            for n, v in zip(record["names"], record["vcards"])]}
    return {}


class ChatsWorld(WorldBase):
    """Mixed into World; uses its ``_lock``, ``_devices``,
    ``_linked_devices``, ``_linked_device``, ``_contact_info``,
    ``_metadata``, ``_groups_of`` and ``history``."""

    def _init_chats(self) -> None:
        self.history = History()
        self._pictures: dict[str, tuple[str, bytes]] = {}  # phone or group id -> (token, JPEG bytes)
        self._contacts_told: dict[tuple[str, str], dict] = {}  # (account, phone) -> what its pages were told

    def _history_event(self, device) -> dict:
        """What a page is given of its account when it links or comes back."""
        account = device.phone
        chats = self.history.chats(account)
        people = {c["id"] for c in chats if not c["id"].endswith("@g.us")} | {
            pn_wid(p) for p in self.lids.known_by(account)}
        held = set(device.pending)
        return {"type": "history",
                "chats": [self.history.state(account, c["id"], held) for c in chats],
                "messages": self.history.latest(account, held),
                "contacts": [self._contact_info(account, wid) for wid in sorted(people)],
                "groups": [self._metadata(g, account) for g in self._groups_of(account)]}

    # ------------------------------------------------------ from the page
    def earlier_messages(self, device_id: str, chat, before, count) -> dict:
        if not isinstance(chat, str) or not _CHAT_RE.match(chat):
            raise BadRequest("chat must be a chat id")
        if before is not None and (not isinstance(before, str) or not _BARE_ID_RE.match(before)):
            raise BadRequest("before must be a message's bare id or null")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 500:
            raise BadRequest("count must be from 1 to 500")
        with self._lock:
            account = self._linked_device(device_id).phone
            messages, more = self.history.earlier(account, chat, before, count)
            return {"messages": messages, "more": more}

    def messages_by_id(self, device_id: str, ids) -> list[dict]:
        if not isinstance(ids, list) or not all(isinstance(i, str) and _BARE_ID_RE.match(i) for i in ids) \
                or len(ids) > 500:
            raise BadRequest("ids must be a list of at most 500 bare message ids")
        with self._lock:
            return self.history.by_ids(self._linked_device(device_id).phone, ids)

    def forget_messages(self, device_id: str, ids) -> None:
        """The page deleted messages for this account only."""
        if not isinstance(ids, list) or not all(isinstance(i, str) and _BARE_ID_RE.match(i) for i in ids) \
                or len(ids) > 500:
            raise BadRequest("ids must be a list of at most 500 bare message ids")
        with self._lock:
            self.history.forget(self._linked_device(device_id).phone, ids)

    def picture_of(self, device_id: str, wid) -> str:
        """The path of a person's or a group's picture; NotFound if none."""
        if not isinstance(wid, str) or not _CHAT_RE.match(wid):
            raise BadRequest("wid must be a person's or a group's id")
        with self._lock:
            self._linked_device(device_id)
            owner = wid if wid.endswith("@g.us") else self.lids.resolve(wid)
            picture = self._pictures.get(owner or "")
            if picture is None:
                raise NotFound(f"no profile picture for {wid}")
            return f"/_wa/pps?t={picture[0]}"

    def picture_bytes(self, token: str) -> bytes:
        with self._lock:
            for found, data in self._pictures.values():
                if secrets.compare_digest(found, token):
                    return data
        raise NotFound("no such picture")

    def record_chat_change(self, device_id: str, chat, change) -> dict:
        """A page archived, pinned or muted a chat (``pin``: when, seconds
        since the epoch, 0: unpinned; ``mute``: 0, -1 for ever, else until
        when, seconds): the chat the history keeps changes, and the
        account's other open pages follow.  Returns archive, pin, mute."""
        if not isinstance(chat, str) or not _CHAT_RE.match(chat):
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
            kept = self.history.chat(phone, chat)
            kept.update(change)
            self._tell_pages(phone, chat, but=device_id)
            return {"archive": kept["archive"], "pin": kept["pin"], "mute": kept["mute"]}

    def _tell_pages(self, phone: str, chat: str, but: str | None = None) -> dict:
        """The account's open pages (but ``but``) are told a chat's state."""
        event = {"type": "chat_state", **self.history.state(phone, chat)}
        for device in self._linked_devices(phone):
            if device.id != but and device.link is not None and device.link.mode == "paired":
                device.link.push(event)
        return event

    # -------------------------------------------------- the control API
    def set_chat_state(self, phone, chat, archive=None, pin=None, mute_until=None) -> dict:
        """The phone archives, pins or mutes one of its chats (``pin``:
        true or false; ``mute_until``: ms since the epoch, -1 for ever, 0
        unmutes); its open pages follow.  Returns the chat's state."""
        phone = _phone(phone)
        if not isinstance(chat, str) or not _CHAT_RE.match(chat):
            raise BadRequest("chat must be a chat id")
        for name, value in (("archive", archive), ("pin", pin)):
            if value is not None and not isinstance(value, bool):
                raise BadRequest(f"{name} must be true or false")
        if mute_until is not None and (not isinstance(mute_until, int) or isinstance(mute_until, bool)
                                       or not -1 <= mute_until <= MAX_MUTE):
            raise BadRequest("mute_until must be ms since the epoch, -1 (for ever) or 0 (unmuted)")
        with self._lock:
            if not self._linked_devices(phone):
                raise NotFound(f"no device is linked to phone {phone}")
            state = self.history.chat(phone, chat)
            if archive is not None:
                state["archive"] = archive
            if pin is not None:
                state["pin"] = int(time.time()) if pin else 0
            if mute_until is not None:
                state["mute"] = mute_until // 1000 if mute_until > 0 else mute_until
            return dict(self._tell_pages(phone, chat))

    def set_picture(self, phone=None, group=None, data=None) -> None:
        """A phone's or a group's profile picture (``data``: base64 JPEG);
        without ``data``, it has none any more."""
        if (phone is None) == (group is None):
            raise BadRequest("give one of phone and group")
        owner = _phone(phone) if phone is not None else group
        if group is not None and (not isinstance(group, str) or not _GROUP_RE.match(group)):
            raise BadRequest("group must be a group id")
        picture = None
        if data is not None:
            try:
                raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
            except binascii.Error:
                raw = None
            if not raw or len(raw) > MAX_PICTURE:
                raise BadRequest(f"data must be base64 of 1 byte to {MAX_PICTURE // 1024} KiB")
            picture = (secrets.token_urlsafe(24), raw)
        with self._lock:
            if picture is None:
                self._pictures.pop(owner, None)
            else:
                self._pictures[owner] = picture

    def chats_of(self, phone) -> list[dict]:
        """The phone's chats as the server keeps them (what a page is
        given, ``mute`` for the page's ``muteExpiration``)."""
        phone = _phone(phone)
        with self._lock:
            out = []
            for c in self.history.chats(phone):
                state = self.history.state(phone, c["id"])
                state["mute"] = state.pop("muteExpiration")
                out.append(state | {"messages": len(c["messages"])})
            return out


def _phone(value) -> str:
    if not isinstance(value, str) or not _PHONE_RE.match(value):
        raise BadRequest("phone must be a phone number of 5 to 20 digits")
    return value


# ------------------------------------------------------------------ HTTP
def _device(body: dict) -> str:
    device = body.get("device")
    if not isinstance(device, str) or not device:
        raise BadRequest("device must be a non-empty string")
    return device


def page_history(handler, query) -> None:
    b = handler._body()
    handler._json(200, handler.world.earlier_messages(_device(b), b.get("chat"), b.get("before"), b.get("count")))


def page_messages(handler, query) -> None:
    b = handler._body()
    handler._json(200, {"messages": handler.world.messages_by_id(_device(b), b.get("ids"))})


def page_forget(handler, query) -> None:
    b = handler._body()
    handler.world.forget_messages(_device(b), b.get("ids"))
    handler._json(200, {"ok": True})


def page_picture(handler, query) -> None:
    b = handler._body()
    handler._json(200, refusing(lambda: {"path": handler.world.picture_of(_device(b), b.get("wid"))}))


def page_pps(handler, query) -> None:
    token = (query.get("t") or [""])[0]
    handler._send(200, handler.world.picture_bytes(token), "image/jpeg")


def page_chat(handler, query) -> None:
    b = handler._body()
    change = {k: b[k] for k in ("archive", "pin", "mute") if k in b}
    handler._json(200, {"ok": True, **handler.world.record_chat_change(_device(b), b.get("chat"), change)})


def sim_chats(handler, query) -> None:
    b = handler._body()
    handler._json(200, handler.world.set_chat_state(b.get("phone"), b.get("chat"), archive=b.get("archive"),
                                                    pin=b.get("pin"), mute_until=b.get("mute_until")))


def sim_chat_list(handler, query) -> None:
    handler._json(200, {"chats": handler.world.chats_of((query.get("phone") or [None])[0])})


def sim_pictures(handler, query) -> None:
    b = handler._body()
    handler.world.set_picture(phone=b.get("phone"), group=b.get("group"), data=b.get("data"))
    handler._json(200, {"ok": True})


GET_ROUTES = {"/_wa/pps": page_pps, "/_sim/chats": sim_chat_list}
POST_ROUTES = {"/_wa/history": page_history, "/_wa/messages": page_messages, "/_wa/forget": page_forget,
               "/_wa/picture": page_picture, "/_wa/chat": page_chat,
               "/_sim/chats": sim_chats, "/_sim/pictures": sim_pictures}

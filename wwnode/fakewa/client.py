"""A small client for the stand-in's control API, for tests of the service
and of users' bots.  It only speaks HTTP, so it works against a stand-in
in this process or in another one (``fakewa --port ...``)."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request


class ControlError(Exception):
    def __init__(self, status: int, error: str):
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error


class Control:
    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base = base_url.rstrip("/") + "/_sim/"
        self.timeout = timeout
        # ``fakewa --tls`` has a self-signed certificate; this client only
        # ever talks to a stand-in, so it does not check it.
        self._context = ssl._create_unverified_context() if self.base.startswith("https:") else None

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._context) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                error = json.load(e).get("error", "")
            except ValueError:
                error = e.reason
            raise ControlError(e.code, error) from None

    def health(self) -> bool:
        return self._call("GET", "health").get("ok") is True

    def pending_qr(self) -> list[dict]:
        """QR codes some browser shows now: [{"ref", "qr"}]."""
        return self._call("GET", "qr")["pending"]

    def scan(self, qr: str | None, phone: str, pushname: str | None = None, platform: str | None = None) -> str:
        """The phone scans a QR code (None: the only one shown now; with
        several shown that is refused, HTTP 409); returns the linked id
        (phone@c.us).
        ``pushname`` and ``platform`` describe the phone (the page's
        ``Conn.pushname`` and ``Conn.platform``)."""
        body = {"phone": phone}
        body.update({k: v for k, v in (("qr", qr), ("pushname", pushname), ("platform", platform)) if v is not None})
        return self._call("POST", "scan", body)["wid"]

    def deliver(self, to: str, sender: str, body: str, group: str | None = None, lid: bool = False) -> str:
        """A message from ``sender`` to ``to``'s linked browsers (written
        in ``group``, a ``...@g.us`` id, if given; with ``lid``, one-to-one
        from ``sender``'s LID, as from someone ``to`` knows only so);
        returns its id."""
        call: dict[str, object] = {"to": to, "from": sender, "body": body}
        if group is not None:
            call["group"] = group
        if lid:
            call["lid"] = True
        return self._call("POST", "messages", call)["id"]

    def lid(self, phone: str, lid: str | None = None) -> str:
        """The phone's LID, ``<digits>@lid`` (``lid``, digits: choose it,
        for a phone that has none yet)."""
        body = {"phone": phone} if lid is None else {"phone": phone, "lid": lid}
        return self._call("POST", "lids", body)["lid"]

    def add_contact(self, phone: str, contact: str, name: str | None = None) -> None:
        """``phone``'s account has ``contact``'s number (saved as ``name``,
        if given): its pages map the contact's LID to the number and back."""
        body = {"phone": phone, "contact": contact}
        if name is not None:
            body["name"] = name
        self._call("POST", "contacts", body)

    def group_addressing(self, group: str, addressing: str) -> None:
        """A group's members show by ``"lid"`` or by ``"pn"`` (phone number)."""
        self._call("POST", "groups", {"group": group, "addressing": addressing})

    def write_own(self, phone: str, chat: str, body: str) -> str:
        """The phone itself writes ``body`` into ``chat``; its linked pages
        see one of the account's own messages.  Returns its id."""
        return self._call("POST", "own", {"phone": phone, "chat": chat, "body": body})["id"]

    def edit(self, to: str, message_id: str, body: str) -> None:
        """The sender of message ``message_id`` (bare id) edits it; the
        pages linked to ``to`` show ``body`` instead."""
        self._call("POST", "edit", {"to": to, "message_id": message_id, "body": body})

    def revoke(self, to: str, message_id: str) -> None:
        """The sender of message ``message_id`` deletes it for everyone."""
        self._call("POST", "revoke", {"to": to, "message_id": message_id})

    def share_location(self, to: str, sender: str, latitude: float, longitude: float, name: str | None = None,
                       address: str | None = None, url: str | None = None, group: str | None = None) -> str:
        """``sender`` shares a location with ``to``'s linked browsers; returns its id."""
        body = {"to": to, "from": sender, "latitude": latitude, "longitude": longitude}
        body.update({k: v for k, v in (("name", name), ("address", address), ("url", url), ("group", group))
                     if v is not None})
        return self._call("POST", "location", body)["id"]

    def send_cards(self, to: str, sender: str, contacts: list[str] | None = None, vcards: list[str] | None = None,
                   group: str | None = None) -> str:
        """``sender`` sends contact cards: of phone numbers (``contacts``)
        or as given (``vcards``); returns the message's id."""
        body: dict[str, object] = {"to": to, "from": sender}
        body.update({k: v for k, v in (("contacts", contacts), ("vcards", vcards), ("group", group))
                     if v is not None})
        return self._call("POST", "cards", body)["id"]

    def send_poll(self, to: str, sender: str, name: str, options: list[str], multiple: bool = False,
                  group: str | None = None) -> str:
        """``sender`` sends a poll; returns its id."""
        body = {"to": to, "from": sender, "name": name, "options": options, "multiple": multiple}
        if group is not None:
            body["group"] = group
        return self._call("POST", "polls", body)["id"]

    def vote(self, to: str, voter: str, message_id: str, selected: list[str]) -> str:
        """``voter`` now chooses ``selected`` (option names; ``[]``: none) in
        poll ``message_id`` (bare id) that ``to`` sent or got; returns the vote's id."""
        return self._call("POST", "votes", {"to": to, "from": voter, "message_id": message_id,
                                            "selected": selected})["id"]

    def ring(self, to: str, caller: str, video: bool = False, group: str | None = None) -> str:
        """``caller`` calls ``to`` (a video call, or a call in ``group``);
        ``to``'s open pages see it ring.  Returns the call's id."""
        body = {"to": to, "from": caller, "video": video}
        if group is not None:
            body["group"] = group
        return self._call("POST", "calls", body)["id"]

    def hang_up(self, call_id: str) -> None:
        """The caller gives up before anyone answered: a missed call."""
        self._call("POST", "calls/end", {"call_id": call_id})

    def calls(self, phone: str) -> list[dict]:
        """The calls ``phone`` made or got: [{"id", "from", "to", "video",
        "group", "t", "state"}], ``state`` ``ringing``, ``rejected`` or
        ``missed`` (what the caller saw)."""
        return self._call("GET", "calls?" + urllib.parse.urlencode({"phone": phone}))["calls"]

    def chat_states(self, phone: str) -> dict:
        """What the browsers linked to ``phone`` showed of typing and
        recording: {"states": [{"chat", "state", "t"}], "now": {chat:
        state}}, ``now`` being what the other side of each chat sees now
        (``composing``, ``recording`` or ``paused``)."""
        return self._call("GET", "chatstates?" + urllib.parse.urlencode({"from": phone}))

    def presence(self, phone: str) -> dict:
        """What other phones see of ``phone``'s account: {"presence":
        "available", "unavailable" or None (never said), "changes":
        [{"state", "t"}]}."""
        return self._call("GET", "presence?" + urllib.parse.urlencode({"phone": phone}))

    def received_by(self, phone: str) -> list[dict]:
        """What linked browsers sent to ``phone``, by its number or its LID:
        [{"id", "to", "body", "t", "ack", "sender", ...}]."""
        return self._call("GET", "received?" + urllib.parse.urlencode({"phone": phone}))["messages"]

    def sent_by(self, phone: str) -> list[dict]:
        """What the browsers linked to ``phone`` sent: [{"id", "to", "body",
        "t", "ack"}] (ack 1 server, 2 delivered, 3 read)."""
        return self._call("GET", "messages?" + urllib.parse.urlencode({"from": phone}))["messages"]

    def logout(self, phone: str) -> None:
        """The phone unlinks its devices."""
        self._call("POST", "logout", {"phone": phone})

    def conflict(self, phone: str) -> None:
        """WhatsApp Web is opened elsewhere: the phone's open pages go to CONFLICT."""
        self._call("POST", "conflict", {"phone": phone})

    def freeze(self, phone: str) -> int:
        """The phone's open pages stop running JavaScript (a hung page).
        Returns once each says it is hung (at most 5 s): how many did."""
        return int(self._call("POST", "freeze", {"phone": phone})["frozen"])

    def cut(self, phone: str) -> None:
        """The phone's open pages lose their live link (they reconnect)."""
        self._call("POST", "cut", {"phone": phone})

    def sends(self, phone: str, mode: str, delay: float = 0.0) -> None:
        """Sends from the phone's pages: ``ok``, ``fail`` (refused) or
        ``slow`` (each accepted after ``delay`` seconds)."""
        self._call("POST", "sends", {"phone": phone, "mode": mode, "delay": delay})

    def receipt(self, message_id: str, ack: str) -> int:
        """The recipient's phone reports a sent message ``delivered`` or
        ``read``; returns the message's ack now (2 or 3)."""
        return self._call("POST", "receipts", {"message_id": message_id, "ack": ack})["ack"]

    def pair(self, phone: str, code: str) -> str:
        """The phone types a pairing code a page shows for it; returns the
        linked id (phone@c.us)."""
        return self._call("POST", "pair", {"phone": phone, "code": code})["wid"]

    def react(self, to: str, sender: str, message_id: str, reaction: str, lid: bool = False) -> None:
        """``sender`` reacts to message ``message_id`` (bare id) of its
        chat with ``to`` ("" takes the reaction back); with ``lid``, from
        ``sender``'s LID (someone ``to`` knows only so)."""
        body: dict[str, object] = {"to": to, "from": sender, "message_id": message_id, "reaction": reaction}
        if lid:
            body["lid"] = True
        self._call("POST", "reactions", body)

    def reactions_by(self, phone: str) -> list[dict]:
        """Reactions the browsers linked to ``phone`` sent: [{"message_id",
        "chat", "reaction", "t"}]."""
        return self._call("GET", "reactions?" + urllib.parse.urlencode({"from": phone}))["reactions"]

    def peers(self) -> dict:
        """Where the pages' requests came from: ``{"requests": [{"address",
        "method", "path", "device"?}], "devices": {device: phone or None}}``."""
        return self._call("GET", "peers")

    def seen_by(self, phone: str) -> list[dict]:
        """Chats the browsers linked to ``phone`` marked read: [{"chat", "t"}]."""
        return self._call("GET", "seen?" + urllib.parse.urlencode({"phone": phone}))["chats"]

    def number(self, phone: str, registered: bool, wid: str | None = None) -> None:
        """Whether ``phone`` has WhatsApp (and the id WhatsApp answers for it)."""
        body = {"phone": phone, "registered": registered}
        if wid is not None:
            body["wid"] = wid
        self._call("POST", "numbers", body)
    def deliver_media(self, to: str, sender: str, data: bytes, type: str, mimetype: str,
                      filename: str | None = None, caption: str | None = None) -> str:
        """The phone ``sender`` sends a file (``type``: image, video, audio,
        ptt, document, sticker) to ``to``'s linked browsers; returns its id."""
        body = {"to": to, "from": sender, "type": type, "mimetype": mimetype,
                "data": base64.b64encode(data).decode()}
        body.update({k: v for k, v in (("filename", filename), ("caption", caption)) if v is not None})
        return self._call("POST", "media", body)["id"]

    def media_bytes(self, direct_path: str) -> bytes:
        """The bytes a page uploaded under ``direct_path`` (the ``media``
        of a message ``sent_by`` lists)."""
        url = self.base + "media?" + urllib.parse.urlencode({"path": direct_path})
        try:
            with urllib.request.urlopen(url, timeout=self.timeout, context=self._context) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            raise ControlError(e.code, e.reason) from None

    # ------------------------------------------ chats and pictures (chats.py)
    def chat_state(self, phone: str, chat: str, archive: bool | None = None, pin: bool | None = None,
                   mute_until: int | None = None) -> dict:
        """The phone archives, pins or mutes one of its chats (``mute_until``:
        ms since the epoch, -1 for ever, 0 unmutes); returns the chat's state."""
        body: dict[str, object] = {"phone": phone, "chat": chat}
        body.update({k: v for k, v in (("archive", archive), ("pin", pin), ("mute_until", mute_until))
                     if v is not None})
        return self._call("POST", "chats", body)

    def chats(self, phone: str) -> dict[str, dict]:
        """The phone's chats as the server keeps them, whoever archived,
        pinned or muted them (the phone or a page): {chat: {"t",
        "unreadCount", "archive", "pin", "mute", "messages"}} (``pin``: when,
        seconds since the epoch, 0: not pinned; ``mute``: 0 not muted, -1
        for ever, else until when, seconds since the epoch)."""
        listed = self._call("GET", "chats?" + urllib.parse.urlencode({"phone": phone}))["chats"]
        return {c.pop("id"): c for c in listed}

    def picture(self, data: bytes | None, phone: str | None = None, group: str | None = None) -> None:
        """The profile picture of a phone or a group (JPEG bytes); None: it has none."""
        body = {"phone": phone} if phone is not None else {"group": group}
        if data is not None:
            body["data"] = base64.b64encode(data).decode()
        self._call("POST", "pictures", body)

    # ------------------------------------------------------ groups (groups.py)
    def create_group(self, phone: str, subject: str, participants: list[str], addressing: str = "pn",
                     limit: int | None = None) -> tuple[str, dict]:
        """The phone creates a group with these phones (``limit``: the most
        members it takes); (its id, WhatsApp's code for each phone: 200 added)."""
        body: dict[str, object] = {"phone": phone, "subject": subject, "participants": participants,
                                   "addressing": addressing}
        if limit is not None:
            body["limit"] = limit
        r = self._call("POST", "groups/create", body)
        return r["id"], r["participants"]

    def group(self, op: str, group: str, by: str, **fields) -> dict:
        """The phone ``by`` acts on a group: ``op`` is add, remove, promote,
        demote (``participants=[phones]``: WhatsApp's code for each),
        subject (``subject=``), description (``description=``), settings
        (``announce=``, ``restrict=``) or invite (``reset=``: the code)."""
        return self._call("POST", f"groups/{op}", {"group": group, "by": by, **fields})

    def leave_group(self, group: str, phone: str) -> None:
        self._call("POST", "groups/leave", {"group": group, "phone": phone})

    def join_group(self, code: str, phone: str) -> str:
        """The phone joins by an invite code or link; the group's id."""
        return self._call("POST", "groups/join", {"code": code, "phone": phone})["id"]

    def group_info(self, group: str) -> dict:
        """The group as the server keeps it: {"id", "subject", "description",
        "owner", "members": {phone: role}, "announce", "restrict", "invite", "addressing"}."""
        return self._call("GET", "groups/info?" + urllib.parse.urlencode({"id": group}))

    def group_actions(self, phone: str) -> list[dict]:
        """What the phone's linked pages did to groups: [{"action", "group", "t", ...}]."""
        return self._call("GET", "groups/actions?" + urllib.parse.urlencode({"phone": phone}))["actions"]

    def privacy(self, phone: str, groups_add: str) -> None:
        """Who may add the phone to groups: everyone, contacts or nobody."""
        self._call("POST", "privacy", {"phone": phone, "groups_add": groups_add})

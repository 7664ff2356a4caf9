"""Locations, contact cards and polls on the stand-in, and votes on polls.
A part of :class:`~wwnode.fakewa.world.World` (it is mixed in), using the
world's lock, devices, outbox and LIDs the same way ``world.py`` does; the
HTTP routes at the end are merged into the server's (``server.py``).

- **From a page**: a send of a location, contact cards or a poll is kept
  with its content in the message's record (``GET /_sim/messages``:
  ``type`` and ``location``, ``poll`` or ``vcards`` and ``names``).  A page
  that needs a person it does not hold (``WAWebCollections.Contact.find``,
  for a contact card) asks the server (``/_wa/contact``): the number where
  the account may know it, the phone's push name, and the name the account
  saved the number under (``POST /_sim/contacts`` with ``name``).
- **From a phone**: ``POST /_sim/location``, ``/_sim/cards`` and
  ``/_sim/polls`` send one to the browsers linked to ``to`` (in a
  ``group`` if given), held for a closed page as any message is.  Cards
  made from phone numbers are written as the page writes them (N, FN, the
  number with its WhatsApp id); the name on a card is the phone's push name
  where it has one, else the number.
- **Votes**: ``POST /_sim/votes`` -- a phone votes on a poll the account
  sent from a browser or got from a phone (named by the options it now
  chooses; ``[]`` takes its vote back).  One-to-one, only the other person
  of the chat may vote; in a group anyone may (the members are not checked).  The
  open pages linked to the account store it in their vote table, as the
  real page does; a closed page does not get it later (as reactions).
"""

from __future__ import annotations

import math
import re
import time
from typing import TypeGuard
from urllib.parse import urlsplit

from .errors import BadRequest, NotFound
from .lids import lid_wid, pn_wid
from .messaging import PERSON_RE, check_group, new_message_id
from .worldbase import WorldBase

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")
_BARE_ID_RE = re.compile(r"^[0-9A-Za-z]{1,64}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 1024  # a place's name or address, a poll's name or option, a contact's name
MAX_CARDS = 250
MAX_VCARD = 65536
POLL_OPTIONS = (2, 12)
SENT_TYPES = ("location", "poll_creation", "vcard", "multi_vcard")


class ContentWorld(WorldBase):
    """Mixed into World; uses its ``_lock``, ``_devices``,
    ``_linked_devices``, ``_linked_device``, ``_deliver``, ``_phones``,
    ``_outbox`` and ``lids``."""

    def _init_contents(self) -> None:
        # polls: (account, bare id) -> a poll a phone sent the account;
        # names: (account, phone) -> the name the account saved it under.
        self._contents: dict[str, dict] = {"polls": {}, "names": {}}

    # ------------------------------------------------------ from the page
    def contact_info(self, device_id: str, wid) -> dict:
        """What a page learns of a person it asks for: ``{"wid"}``, with
        ``pn`` (the number, where the account may know it), ``pushname``
        and ``name`` (saved in the account's contacts) where there are."""
        if not isinstance(wid, str) or not PERSON_RE.match(wid):
            raise BadRequest("wid must be <digits>@c.us or <digits>@lid")
        with self._lock:
            return self._contact_info(self._linked_device(device_id).phone, wid)

    def _contact_info(self, account: str, wid: str) -> dict:
        """Under the lock: what ``account``'s pages may know of a person."""
        user, _, server = wid.partition("@")
        phone = user if server == "c.us" else self.lids.phone_of(user)
        info: dict = {"wid": wid}
        if phone is None:
            return info
        if server == "c.us" or self.lids.knows(account, phone):
            info["pn"] = pn_wid(phone)
        if phone in self._phones:
            info |= {"pushname": self._phones[phone]["pushname"], "registered": True}
        name = self._contents["names"].get((account, phone))
        if name:
            info["name"] = name
        return info

    # -------------------------------------------------- the control API
    def name_contact(self, phone, contact, name) -> None:
        """``phone``'s account saved ``contact``'s number as ``name``."""
        phone, contact = _phone(phone, "phone"), _phone(contact, "contact")
        name = _text(name, "name")
        with self._lock:
            self._contents["names"][(phone, contact)] = name

    def deliver_location(self, to, sender, latitude, longitude, name=None, address=None, url=None,
                         group=None) -> str:
        """``sender`` shares a location with ``to``'s browsers."""
        content = {"type": "location", "lat": _coordinate(latitude, "latitude", 90),
                   "lng": _coordinate(longitude, "longitude", 180)}
        name = _text(name, "name") if name is not None else None
        address = _text(address, "address") if address is not None else None
        if url is not None and (not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")
                                or _CONTROL_RE.search(url)):
            raise BadRequest("url must be an http(s) URL")
        description = "\n".join(part for part in (name, address) if part)
        if description:
            content["loc"] = description
        if url:
            content["clientUrl"] = url
        return self._deliver_content(to, sender, "", content, group)

    def deliver_cards(self, to, sender, contacts=None, vcards=None, group=None) -> str:
        """``sender`` sends contact cards: of phone numbers (``contacts``,
        written as the page writes them) or as given (``vcards``)."""
        if (contacts is None) == (vcards is None):
            raise BadRequest("give contacts (phone numbers) or vcards (texts)")
        items = contacts if contacts is not None else vcards
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_CARDS:
            raise BadRequest(f"contacts or vcards must list 1 to {MAX_CARDS} cards")
        if contacts is not None:
            phones = [_phone(p, "contacts") for p in contacts]
            with self._lock:
                cards = [card_of(p, self._phones[p]["pushname"] if p in self._phones else f"+{p}") for p in phones]
        else:
            cards = [given_card(v) for v in vcards]
        if len(cards) == 1:
            content = {"type": "vcard", "vcardFormattedName": cards[0]["displayName"]}
            return self._deliver_content(to, sender, cards[0]["vcard"], content, group)
        return self._deliver_content(to, sender, "", {"type": "multi_vcard", "vcardList": cards}, group)

    def deliver_poll(self, to, sender, name, options, multiple=False, group=None) -> str:
        """``sender`` sends a poll; its options are numbered from 0."""
        name = _text(name, "name")
        if not isinstance(options, list) or not POLL_OPTIONS[0] <= len(options) <= POLL_OPTIONS[1]:
            raise BadRequest(f"options must list {POLL_OPTIONS[0]} to {POLL_OPTIONS[1]} options")
        options = [_text(o, "options") for o in options]
        if len(set(options)) != len(options):
            raise BadRequest("options must differ")
        if not isinstance(multiple, bool):
            raise BadRequest("multiple must be true or false")
        content = {"type": "poll_creation", "pollName": name,
                   "pollOptions": [{"name": o, "localId": i} for i, o in enumerate(options)],
                   "pollSelectableOptionsCount": 0 if multiple else 1}
        chat = group if group is not None else pn_wid(_phone(sender, "from"))
        poll = {"chat": chat, "from_me": False, "creator": sender, "options": options,
                "option_ids": list(range(len(options))), "multiple": multiple}
        return self._deliver_content(to, sender, "", content, group, poll=poll)

    def vote(self, to, voter, message_id, selected) -> str:
        """``voter`` now chooses ``selected`` (option names; ``[]``: none)
        in poll ``message_id`` (bare id), which the account ``to`` sent or
        got; its open pages learn of it.  Returns the vote's id."""
        to, voter = _phone(to, "to"), _phone(voter, "from")
        if not isinstance(message_id, str) or not _BARE_ID_RE.match(message_id):
            raise BadRequest("message_id must be a poll's bare id")
        if not isinstance(selected, list) or not all(isinstance(s, str) for s in selected):
            raise BadRequest("selected must be a list of option names")
        with self._lock:
            poll = self._poll(to, message_id)
            if poll is None:
                raise NotFound(f"phone {to} sent or got no poll {message_id!r}")
            unknown = [s for s in selected if s not in poll["options"]]
            if unknown or len(set(selected)) != len(selected):
                raise BadRequest(f"selected must name options of the poll, each once: {poll['options']!r}")
            if len(selected) > 1 and not poll["multiple"]:
                raise BadRequest("the poll takes one option")
            chat = poll["chat"]
            by_lid = self._voter_by_lid(chat)
            if not chat.endswith("@g.us"):
                other = self.lids.resolve(chat) if poll["from_me"] else poll["creator"]
                if other != voter:
                    raise BadRequest(f"only the other person of chat {chat} votes on this poll")
            links = [d.link for d in self._linked_devices(to) if d.link is not None and d.link.mode == "paired"]
            if not links:
                raise NotFound(f"no open page is linked to phone {to}")
            event = {"type": "vote", "id": new_message_id(), "parent_id": message_id, "parent_from_me": poll["from_me"],
                     "chat": chat, "voter": lid_wid(self.lids.of(voter)) if by_lid else pn_wid(voter),
                     "selected_ids": [poll["option_ids"][poll["options"].index(s)] for s in selected],
                     "t": int(time.time()), "sender_ts": int(time.time() * 1000)}
            if self.lids.knows(to, voter):
                event["lids"] = [self.lids.pair(voter)]  # the page can map the voter's ids
            for link in links:
                link.push(event)
            return event["id"]

    # ---------------------------------------------------------- helpers
    def _deliver_content(self, to, sender, body: str, content: dict, group, poll: dict | None = None) -> str:
        """The message to ``to``'s browsers; a ``poll`` is kept for votes."""
        to, sender = _phone(to, "to"), _phone(sender, "from")
        if group is not None:
            check_group(group)
        with self._lock:
            if not self._linked_devices(to):
                raise NotFound(f"no device is linked to phone {to}")
            msg_id = self._deliver(to, sender, body, group, False, content=content)
            if poll is not None:
                self._contents["polls"][(to, msg_id)] = poll
            return msg_id

    def _poll(self, account: str, message_id: str) -> dict | None:
        """A poll ``account``'s browsers sent, or a phone sent it."""
        for record in self._outbox.sent_by(account):
            if record["id"] == message_id and record.get("type") == "poll_creation":
                return {"chat": record["to"], "from_me": True, "creator": account, **record["poll"]}
        return self._contents["polls"].get((account, message_id))

    def _voter_by_lid(self, chat: str) -> bool:
        """How a voter shows in ``chat``: by LID in a chat addressed by LID."""
        server = chat.partition("@")[2]
        return server == "lid" or (server == "g.us" and self.lids.addressing(chat) == "lid")


# ------------------------------------------------------------------ cards
def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


def card_of(phone: str, display: str) -> dict:
    """A person's card as the page writes one: ``{"displayName", "vcard"}``."""
    words = display.split()
    given, family = (words[0], " ".join(words[1:])) if len(words) > 1 else (display, "")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"N:{_escape(family)};{_escape(given)};;;", f"FN:{_escape(display)}",
             f"TEL;type=CELL;waid={phone}:+{phone}", "END:VCARD"]
    return {"displayName": _escape(display), "vcard": "\n".join(lines)}


def given_card(text) -> dict:
    """A vCard as a phone gives it, with the name its FN line says."""
    if not isinstance(text, str) or len(text) > MAX_VCARD:
        raise BadRequest(f"each vcard must be a text of at most {MAX_VCARD} characters")
    lines = text.strip("\r\n").splitlines()
    if not lines or lines[0] != "BEGIN:VCARD" or lines[-1] != "END:VCARD":
        raise BadRequest("each vcard must begin with BEGIN:VCARD and end with END:VCARD")
    names = [line.split(":", 1)[1] for line in lines if re.match(r"^FN[;:]", line, re.IGNORECASE) and ":" in line]
    return {"displayName": names[0] if names else "", "vcard": text}


# ------------------------------------------------------------ from a page
def sent_content(body: dict) -> dict:
    """What a page's send carries besides its text (``/_wa/send``), for
    the message's record: ``{}`` for a text or a file."""
    kind = body.get("type")
    if kind is None:
        return {}
    if kind not in SENT_TYPES:
        raise BadRequest(f"type must be one of {', '.join(SENT_TYPES)}")
    if kind == "location":
        loc = body.get("location")
        if not (isinstance(loc, dict) and all(_number(loc.get(k)) for k in ("latitude", "longitude"))
                and isinstance(loc.get("description"), str) and isinstance(loc.get("url"), (str, type(None)))):
            raise BadRequest("location must have numbers latitude and longitude, a description and a url or null")
        return {"type": kind, "location": {k: loc[k] for k in ("latitude", "longitude", "description", "url")}}
    if kind == "poll_creation":
        poll = body.get("poll")
        if not (isinstance(poll, dict) and isinstance(poll.get("name"), str) and _strings(poll.get("options"))
                and isinstance(poll.get("option_ids"), list)
                and len(poll["option_ids"]) == len(poll["options"])
                and all(isinstance(i, int) for i in poll["option_ids"]) and isinstance(poll.get("multiple"), bool)):
            raise BadRequest("poll must have a name, options, their option_ids and multiple")
        return {"type": kind, "poll": {k: poll[k] for k in ("name", "options", "option_ids", "multiple")}}
    vcards, names = body.get("vcards"), body.get("names")
    if not (_strings(vcards) and _strings(names) and vcards and len(vcards) == len(names)):
        raise BadRequest("vcards and names must be lists of as many strings")
    return {"type": kind, "vcards": vcards, "names": names}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _strings(value) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _coordinate(value, name: str, bound: int) -> float:
    if not _number(value) or not -bound <= value <= bound:
        raise BadRequest(f"{name} must be a number from -{bound} to {bound}")
    return float(value)


def _text(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or _CONTROL_RE.search(value):
        raise BadRequest(f"{name} must be one line of 1 to {MAX_TEXT} characters")
    return value


def _phone(value, name: str) -> str:
    if not isinstance(value, str) or not _PHONE_RE.match(value):
        raise BadRequest(f"{name} must be a phone number of 5 to 20 digits")
    return value


# ------------------------------------------------------------------ HTTP
def page_contact(handler, query) -> None:
    body = handler._body()
    device = body.get("device")
    if not isinstance(device, str) or not device:
        raise BadRequest("device must be a non-empty string")
    handler._json(200, handler.world.contact_info(device, body.get("wid")))


def sim_location(handler, query) -> None:
    b = handler._body()
    msg_id = handler.world.deliver_location(b.get("to"), b.get("from"), b.get("latitude"), b.get("longitude"),
                                            name=b.get("name"), address=b.get("address"), url=b.get("url"),
                                            group=b.get("group"))
    handler._json(200, {"id": msg_id})


def sim_cards(handler, query) -> None:
    b = handler._body()
    msg_id = handler.world.deliver_cards(b.get("to"), b.get("from"), contacts=b.get("contacts"),
                                         vcards=b.get("vcards"), group=b.get("group"))
    handler._json(200, {"id": msg_id})


def sim_polls(handler, query) -> None:
    b = handler._body()
    msg_id = handler.world.deliver_poll(b.get("to"), b.get("from"), b.get("name"), b.get("options"),
                                        multiple=b.get("multiple", False), group=b.get("group"))
    handler._json(200, {"id": msg_id})


def sim_votes(handler, query) -> None:
    b = handler._body()
    handler._json(200, {"id": handler.world.vote(b.get("to"), b.get("from"), b.get("message_id"), b.get("selected"))})


POST_ROUTES = {"/_wa/contact": page_contact, "/_sim/location": sim_location, "/_sim/cards": sim_cards,
               "/_sim/polls": sim_polls, "/_sim/votes": sim_votes}

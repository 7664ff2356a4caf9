"""Groups on the stand-in: who is in them with which role, their subject,
description, settings and invite code, and the rules WhatsApp keeps.  A
part of :class:`~wwnode.fakewa.world.World` (it is mixed in), using the
world's lock, devices and LIDs the same way ``world.py`` does; the HTTP
routes at the end are merged into the server's (``server.py``).

The same rules hold whoever acts, a linked page (the account, through the
modules whatsapp-web.js 1.34.7 uses: ``/_wa/group/...``) or a phone (the
control API, ``/_sim/groups/...``):

- only an admin adds, removes, promotes and demotes members, changes the
  settings, and reads or resets the invite code; the group's creator (its
  super admin) is not removed or demoted;
- anyone in the group changes its subject and description, unless the
  group is ``restrict``-ed (then admins only); ``announce``: only admins
  write (a member's message is refused);
- a person is added if their number has WhatsApp (``404`` otherwise),
  is not a member already (``409``), the group is not full (``419``; 1,024
  members, or a smaller ``limit`` given at creation) and their privacy
  lets the adder add them (``POST /_sim/privacy``: ``everyone``, the
  default; ``contacts``, people whose number they have; ``nobody``):
  otherwise ``403``, with an invite code the adder may send them instead;
- an invite code (``https://chat.whatsapp.com/<code>``) lets anyone join
  until an admin resets it.

Every change reaches each member's linked pages (and a removed or leaving
member's) as the real page gets it: the group's new metadata, then a
notification message (``type`` ``gp2`` with a ``subtype``: ``create``,
``add``, ``invite`` (joined by link), ``remove``, ``leave``, ``promote``,
``demote``, ``subject``, ``description``, ``announce``, ``restrict``;
``author`` who did it, ``recipients`` whom it concerns), held for a
closed page as any message is.  ``GET /_sim/groups/info`` shows a group,
``GET /_sim/groups/actions`` what a phone's pages did to groups.

Members show by phone number, or by LID in a group in LID addressing mode
(``lids.py``); a group a page creates is in LID mode, as whatsapp-web.js
asks for it (``addressingModeOverride: 'lid'``).

Guesses, where nothing read here tells how the real service behaves: the
``body`` of a settings notification (``on``/``off``), the recipients of a
``create`` notification (the members added besides the creator), that a
member who leaves gets the notification of it, that nobody is promoted
when the last admin leaves, how long an invite code or a ``403``'s
invite lives (until reset, here), and the codes of refusals the public
sources do not list (a page's change refused is a ``403``, an unknown
group a ``404``).
"""

from __future__ import annotations

import re
import secrets
import time

from .errors import BadRequest, Forbidden, NotFound, refusing
from .lids import lid_wid, pn_wid
from .messaging import new_message_id
from .worldbase import WorldBase

MAX_MEMBERS = 1024
MAX_SUBJECT = 100
MAX_DESCRIPTION = 2048
PRIVACY = ("everyone", "contacts", "nobody")
INVITE_PREFIX = "https://chat.whatsapp.com/"
ROLES = ("member", "admin", "superadmin")

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")
_GROUP_RE = re.compile(r"^[0-9]{5,20}(-[0-9]{5,20})?@g\.us$")
_PERSON_RE = re.compile(r"^[0-9]{5,20}@(c\.us|lid)$")
_CODE_RE = re.compile(r"^[A-Za-z0-9]{8,64}$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def new_group_id() -> str:
    # Current groups: 120363 and 12 more digits.
    return f"120363{secrets.randbelow(10 ** 12):012d}@g.us"


def new_invite_code() -> str:
    return secrets.token_urlsafe(16).replace("-", "A").replace("_", "B")[:22]


class GroupWorld(WorldBase):
    """Mixed into World; uses its ``_lock``, ``_devices``,
    ``_linked_devices``, ``_linked_device``, ``_push_message``,
    ``_registered``, ``lids`` and ``history``."""

    def _init_groups(self) -> None:
        self._groups: dict[str, dict] = {}
        self._privacy: dict[str, str] = {}  # phone -> who may add it to groups
        self._group_log: dict[str, list[dict]] = {}  # phone -> what its pages did

    # ------------------------------------------------------------ views
    def _member_id(self, group: dict, phone: str) -> str:
        """How a person shows in the group: by number, or by LID."""
        return lid_wid(self.lids.of(phone)) if self.lids.addressing(group["id"]) == "lid" else pn_wid(phone)

    def _metadata(self, group: dict, account: str) -> dict:
        """The group as a page of ``account`` gets it (the real page's
        group metadata fields), with the people's ids it may map."""
        members = group["members"]
        return {"id": group["id"], "subject": group["subject"], "subjectTime": group["subject_t"],
                "desc": group["desc"], "descId": group["desc_id"], "owner": self._member_id(group, group["owner"]),
                "creation": group["creation"], "announce": group["announce"], "restrict": group["restrict"],
                "memberAddMode": "admin_add", "isLidAddressingMode": self.lids.addressing(group["id"]) == "lid",
                "size": len(members),
                "participants": [{"id": self._member_id(group, p), "isAdmin": role != "member",
                                  "isSuperAdmin": role == "superadmin"} for p, role in members.items()],
                "lids": [self.lids.pair(p) for p in members if self.lids.knows(account, p)]}

    def _groups_of(self, account: str) -> list[dict]:
        """Groups ``account`` is in, or was in and still has the chat of."""
        return [g for g in self._groups.values() if account in g["members"] or account in g["was"]]

    def _group(self, group_id) -> dict:
        if not isinstance(group_id, str) or not _GROUP_RE.match(group_id):
            raise BadRequest("group must be a group id, <digits>@g.us")
        group = self._groups.get(group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        return group

    def _phone_of(self, group: dict, who) -> str:
        """The phone behind a person's id (or phone number) named in a request."""
        if isinstance(who, str) and _PHONE_RE.match(who):
            return who
        phone = self.lids.resolve(who) if isinstance(who, str) and _PERSON_RE.match(who) else None
        if phone is None:
            raise BadRequest(f"{str(who)[:40]!r} is not a person: a phone number, <digits>@c.us or a known LID")
        return phone

    # ------------------------------------------------------------ rules
    def _admin(self, group: dict, actor: str) -> None:
        role = group["members"].get(actor)
        if role is None:
            raise Forbidden(f"{actor} is not in group {group['id']}")
        if role == "member":
            raise Forbidden(f"{actor} is not an admin of group {group['id']}")

    def _member(self, group: dict, actor: str) -> None:
        if actor not in group["members"]:
            raise Forbidden(f"{actor} is not in group {group['id']}")

    def _may_add(self, group: dict, actor: str, phone: str) -> int:
        """The code WhatsApp answers for adding ``phone``: 200 to add."""
        if phone in group["members"]:
            return 409
        if not self._registered(phone):
            return 404
        if len(group["members"]) >= group["limit"]:
            return 419
        privacy = self._privacy.get(phone, "everyone")
        if privacy == "nobody" or (privacy == "contacts" and not self.lids.knows(phone, actor)):
            return 403
        return 200

    # ---------------------------------------------------------- changes
    def _create(self, creator: str, subject, phones: list[str], addressing: str = "pn", limit=None) -> tuple:
        subject = _subject(subject)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or not 2 <= limit <= MAX_MEMBERS):
            raise BadRequest(f"limit must be 2 to {MAX_MEMBERS} members")
        now = int(time.time())
        gid = new_group_id()
        while gid in self._groups:
            gid = new_group_id()
        group = {"id": gid, "subject": subject, "subject_t": now, "desc": "", "desc_id": None, "owner": creator,
                 "creation": now, "members": {creator: "superadmin"}, "was": set(), "announce": False,
                 "restrict": False, "invite": None, "limit": limit or MAX_MEMBERS, "invites": {}}
        self._groups[gid] = group
        if addressing == "lid":
            self.lids.set_addressing(gid, "lid")
        codes = {}
        for phone in dict.fromkeys(phones):
            code = self._may_add(group, creator, phone) if phone != creator else 409
            if code == 200:
                group["members"][phone] = "member"
            elif code == 403:
                group["invites"][phone] = new_invite_code()
            codes[phone] = code
        added = [p for p, c in codes.items() if c == 200]
        self._notify(group, "create", creator, added, body=subject)
        return group, codes

    def _add(self, group: dict, actor: str, phones: list[str]) -> dict:
        self._admin(group, actor)
        codes = {}
        for phone in dict.fromkeys(phones):
            code = self._may_add(group, actor, phone)
            if code == 200:
                group["members"][phone] = "member"
                group["was"].discard(phone)
                self._notify(group, "add", actor, [phone])
            elif code == 403:
                group["invites"][phone] = new_invite_code()
            codes[phone] = code
        return codes

    def _change_members(self, group: dict, actor: str, op: str, phones: list[str]) -> dict:
        """remove, promote, demote: a code per person (200 done, 404 not
        in the group, 403 the creator, who stays as they are)."""
        self._admin(group, actor)
        codes = {}
        for phone in dict.fromkeys(phones):
            role = group["members"].get(phone)
            if role is None:
                codes[phone] = 404
                continue
            if role == "superadmin" and op in ("remove", "demote"):
                codes[phone] = 403
                continue
            codes[phone] = 200
            if op == "remove":
                self._notify(group, "remove", actor, [phone])
                del group["members"][phone]
                group["was"].add(phone)
            elif (role == "member") == (op == "promote"):  # a change: notified
                group["members"][phone] = "admin" if op == "promote" else "member"
                self._notify(group, op, actor, [phone])
        return codes

    def _set_subject(self, group: dict, actor: str, subject) -> None:
        subject = _subject(subject)
        self._info_rights(group, actor)
        group["subject"], group["subject_t"] = subject, int(time.time())
        self._notify(group, "subject", actor, [], body=subject)

    def _set_description(self, group: dict, actor: str, desc) -> None:
        if not isinstance(desc, str) or len(desc) > MAX_DESCRIPTION or _CONTROL_RE.search(desc):
            raise BadRequest(f"description must be a text of at most {MAX_DESCRIPTION} characters")
        self._info_rights(group, actor)
        group["desc"], group["desc_id"] = desc, secrets.token_hex(8).upper()
        self._notify(group, "description", actor, [], body=desc)

    def _info_rights(self, group: dict, actor: str) -> None:
        if group["restrict"]:
            self._admin(group, actor)
        else:
            self._member(group, actor)

    def _set_settings(self, group: dict, actor: str, announce=None, restrict=None) -> None:
        for name, value in (("announce", announce), ("restrict", restrict)):
            if value is not None and not isinstance(value, bool):
                raise BadRequest(f"{name} must be true or false")
        self._admin(group, actor)
        for name, value in (("announce", announce), ("restrict", restrict)):
            if value is not None and value != group[name]:
                group[name] = value
                self._notify(group, name, actor, [], body="on" if value else "off")

    def _invite_code(self, group: dict, actor: str, reset: bool = False) -> str:
        self._admin(group, actor)
        if reset or group["invite"] is None:
            group["invite"] = new_invite_code()
        return group["invite"]

    def _join(self, phone: str, code) -> dict:
        if isinstance(code, str) and code.startswith(INVITE_PREFIX):
            code = code[len(INVITE_PREFIX):]
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise BadRequest("code must be an invite code or link")
        group = next((g for g in self._groups.values()
                      if g["invite"] == code or g["invites"].get(phone) == code), None)
        if group is None:
            raise NotFound("no group has that invite code (reset, or never given)")
        if phone not in group["members"]:
            if len(group["members"]) >= group["limit"]:
                raise Forbidden(f"group {group['id']} is full")
            group["members"][phone] = "member"
            group["was"].discard(phone)
            group["invites"].pop(phone, None)
            self._notify(group, "invite", phone, [phone])
        return group

    def _leave(self, group: dict, phone: str) -> None:
        self._member(group, phone)
        self._notify(group, "leave", phone, [phone])
        del group["members"][phone]
        group["was"].add(phone)

    def _notify(self, group: dict, subtype: str, actor: str, concerned: list[str], body: str = "") -> None:
        """The change reaches every member's pages (and those it removes:
        called before they go): the metadata, then the notification."""
        now = int(time.time())
        for member in list(group["members"]) + [p for p in concerned if p not in group["members"]]:
            devices = self._linked_devices(member)
            if not devices:
                continue
            meta = {"type": "group_meta", "meta": self._metadata(group, member)}
            msg = {"id": new_message_id(), "from": group["id"], "to": pn_wid(member),
                   "author": self._member_id(group, actor), "body": body, "t": now, "type": "gp2",
                   "notification": {"subtype": subtype,
                                    "recipients": [self._member_id(group, p) for p in concerned]},
                   "lids": [self.lids.pair(p) for p in {actor, *concerned} if self.lids.knows(member, p)]}
            self._meta_after(member, meta, msg)

    def _meta_after(self, member: str, meta: dict, msg: dict) -> None:
        """The metadata first, to open pages; then the notification, held
        for closed ones.  A page closed now gets the metadata with its
        history (``chats.py``)."""
        for device in self._linked_devices(member):
            if device.link is not None and device.link.mode == "paired":
                device.link.push(meta)
        self._push_message(member, msg)

    def _check_write(self, phone: str, chat: str) -> None:
        """Whether ``phone`` may write into ``chat``: in a group the server
        keeps, only its members, and only admins once it is ``announce``.
        (Other group ids take anything: the stand-in keeps only the groups
        made through it.)"""
        group = self._groups.get(chat)
        if group is None:
            return
        if group["announce"]:
            self._admin(group, phone)
        else:
            self._member(group, phone)

    def _log(self, phone: str, action: str, group: str | None, **details) -> None:
        self._group_log.setdefault(phone, []).append({"action": action, "group": group, "t": int(time.time()),
                                                      **details})

    # ------------------------------------------------------ from a page
    def page_group(self, device_id: str, op: str, body: dict) -> dict:
        """One group operation of a linked page, as ``op`` names it."""
        with self._lock:
            account = self._linked_device(device_id).phone
            if op == "create":
                phones = [self._phone_of({}, w) for w in _list(body.get("participants"), "participants")]
                group, codes = self._create(account, body.get("subject"), phones,
                                            addressing="lid" if body.get("addressing") == "lid" else "pn")
                self._log(account, "create", group["id"], participants=codes)
                return {"id": group["id"], "subject": group["subject"], "creation": group["creation"],
                        "participants": [{"id": self._member_id(group, p), "code": c,
                                          "invite_code": group["invites"].get(p)} for p, c in codes.items()]
                        + [{"id": self._member_id(group, account), "code": 200, "type": "superadmin"}]}
            if op == "join":
                group = self._join(account, body.get("code"))
                self._log(account, "join", group["id"])
                return {"id": group["id"]}
            group = self._group(body.get("group"))
            if op == "meta":
                if account not in group["members"] and account not in group["was"]:
                    raise NotFound(f"no group {group['id']} for this account")
                return self._metadata(group, account)
            if op == "add":
                phone = self._phone_of(group, body.get("participant"))
                codes = self._add(group, account, [phone])
                self._log(account, "add", group["id"], participants=codes)
                return {"code": codes[phone], "invite_code": group["invites"].get(phone)}
            if op in ("remove", "promote", "demote"):
                phones = [self._phone_of(group, w) for w in _list(body.get("participants"), "participants")]
                codes = self._change_members(group, account, op, phones)
                self._log(account, op, group["id"], participants=codes)
                return {"participants": {self._member_id(group, p): c for p, c in codes.items()}}
            if op == "subject":
                self._set_subject(group, account, body.get("subject"))
            elif op == "description":
                self._set_description(group, account, body.get("description"))
            elif op == "property":
                name, value = body.get("property"), body.get("value")
                if name not in ("announcement", "restrict") or value not in (0, 1):
                    raise BadRequest("property must be announcement or restrict, value 0 or 1")
                self._set_settings(group, account, **{"announce" if name == "announcement" else "restrict":
                                                      bool(value)})
            elif op in ("invite", "reset_invite"):
                code = self._invite_code(group, account, reset=op == "reset_invite")
                self._log(account, op, group["id"])
                return {"code": code}
            elif op == "leave":
                self._leave(group, account)
            else:
                raise NotFound(f"no group operation {op!r}")
            self._log(account, op, group["id"], **{k: body[k] for k in ("subject", "description", "property", "value")
                                                   if k in body})
            return {}

    # -------------------------------------------------- the control API
    def phone_group(self, op: str, body: dict) -> dict:
        """One group operation of a phone (the control API)."""
        with self._lock:
            if op == "create":
                creator = _phone(body.get("phone"), "phone")
                phones = [_phone(p, "participants") for p in _list(body.get("participants"), "participants")]
                addressing = body.get("addressing", "pn")
                if addressing not in ("pn", "lid"):
                    raise BadRequest("addressing must be pn or lid")
                group, codes = self._create(creator, body.get("subject"), phones, addressing, body.get("limit"))
                return {"id": group["id"], "participants": codes}
            if op == "join":
                return {"id": self._join(_phone(body.get("phone"), "phone"), body.get("code"))["id"]}
            if op == "privacy":
                phone = _phone(body.get("phone"), "phone")
                if body.get("groups_add") not in PRIVACY:
                    raise BadRequest(f"groups_add must be one of {', '.join(PRIVACY)}")
                self._privacy[phone] = body["groups_add"]
                return {}
            group = self._group(body.get("group"))
            if op == "leave":
                self._leave(group, _phone(body.get("phone"), "phone"))
                return {}
            actor = _phone(body.get("by"), "by")
            if op == "add":
                phones = [_phone(p, "participants") for p in _list(body.get("participants"), "participants")]
                return {"participants": self._add(group, actor, phones)}
            if op in ("remove", "promote", "demote"):
                phones = [_phone(p, "participants") for p in _list(body.get("participants"), "participants")]
                return {"participants": self._change_members(group, actor, op, phones)}
            if op == "subject":
                self._set_subject(group, actor, body.get("subject"))
            elif op == "description":
                self._set_description(group, actor, body.get("description"))
            elif op == "settings":
                self._set_settings(group, actor, body.get("announce"), body.get("restrict"))
            elif op == "invite":
                return {"code": self._invite_code(group, actor, reset=bool(body.get("reset")))}
            else:
                raise NotFound(f"no group operation {op!r}")
            return {}

    def group_info(self, group_id) -> dict:
        """A group as the server keeps it: members by phone with their roles."""
        with self._lock:
            g = self._group(group_id)
            return {"id": g["id"], "subject": g["subject"], "description": g["desc"], "owner": g["owner"],
                    "members": dict(g["members"]), "announce": g["announce"], "restrict": g["restrict"],
                    "invite": g["invite"], "addressing": self.lids.addressing(g["id"])}

    def group_actions_of(self, phone) -> list[dict]:
        """What ``phone``'s pages did to groups, in order."""
        phone = _phone(phone, "phone")
        with self._lock:
            return [dict(a) for a in self._group_log.get(phone, [])]


def _subject(subject) -> str:
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT \
            or _CONTROL_RE.search(subject) or "\n" in subject:
        raise BadRequest(f"subject must be one line of 1 to {MAX_SUBJECT} characters")
    return subject


def _list(value, name: str) -> list:
    if not isinstance(value, list) or len(value) > MAX_MEMBERS:
        raise BadRequest(f"{name} must be a list of at most {MAX_MEMBERS} people")
    return value


def _phone(value, name: str) -> str:
    if not isinstance(value, str) or not _PHONE_RE.match(value):
        raise BadRequest(f"{name} must be a phone number of 5 to 20 digits")
    return value


# ------------------------------------------------------------------ HTTP
PAGE_OPS = ("create", "join", "meta", "add", "remove", "promote", "demote", "subject", "description", "property",
            "invite", "reset_invite", "leave")
PHONE_OPS = ("create", "join", "privacy", "leave", "add", "remove", "promote", "demote", "subject", "description",
             "settings", "invite")


def _page_route(op: str):
    def route(handler, query) -> None:
        body = handler._body()
        device = body.get("device")
        if not isinstance(device, str) or not device:
            raise BadRequest("device must be a non-empty string")
        handler._json(200, refusing(lambda: handler.world.page_group(device, op, body)))
    return route



def _phone_route(op: str):
    def route(handler, query) -> None:
        handler._json(200, handler.world.phone_group(op, handler._body()))
    return route


def sim_group_info(handler, query) -> None:
    handler._json(200, handler.world.group_info((query.get("id") or [None])[0]))


def sim_group_actions(handler, query) -> None:
    handler._json(200, {"actions": handler.world.group_actions_of((query.get("phone") or [None])[0])})


GET_ROUTES = {"/_sim/groups/info": sim_group_info, "/_sim/groups/actions": sim_group_actions}
POST_ROUTES = {**{f"/_wa/group/{op}": _page_route(op) for op in PAGE_OPS},
               **{f"/_sim/groups/{op}": _phone_route(op) for op in PHONE_OPS if op != "privacy"},
               "/_sim/privacy": _phone_route("privacy")}

"""The phone side of the stand-in: phones, linked devices, QR codes, messages.

Everything the control API and the pages' live links change lives here,
behind one lock; ``server.py`` only translates HTTP into these calls.

Vocabulary, as on the real service:

- a *device* is one browser profile.  The page keeps its id and its
  registration keys in the profile (IndexedDB), so a browser restarted on
  the same profile is the same device;
- a *phone* links devices by scanning their QR code and can unlink them.
  It has a push name and a platform (``android``, ``iphone``, ...), which
  the page shows as ``Conn.pushname`` and ``Conn.platform``;
- a *link* is one open page's live connection to the server.  Events for
  the page are queued on it; the HTTP handler that streams them to the page
  calls :meth:`World.advance` to let QR codes rotate, the sync end, and
  scheduled receipts arrive on time.

A linked page is ``CONNECTED`` at once but *synced* only ``sync_delay``
later, as the real page syncs after it connects.  Messages held while the
browser was closed arrive halfway through, each followed by the offline
delivery progress the page reports.

Time is handed in (``now``, from a monotonic clock) so these rules can be
tested without sleeping.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Any, cast

from .errors import Ambiguous, BadRequest, NotFound
from .calls import CallWorld
from .chats import ChatsWorld, sent_as_message
from .contents import ContentWorld
from .groups import GroupWorld
from .peers import PeerWorld
from .edits import EditWorld
from .lids import Lids, lid_wid
from .lidworld import LidWorld
from .links import Device, Link
from .messaging import MessagingWorld, check_group, new_message_id
from .media import MediaStore
from .outbox import Outbox
from .presence import PresenceWorld
from .settings import PLATFORMS, PUSHNAME_MAX, Settings

__all__ = ["BadRequest", "NotFound", "Settings", "World"]

PHONE_RE = re.compile(r"^[0-9]{5,20}$")


def wid(phone: str) -> str:
    return f"{phone}@c.us"


def default_pushname(phone: str) -> str:
    return f"Phone {phone[-4:]}"


class World(MessagingWorld, LidWorld, EditWorld, ContentWorld, PeerWorld, CallWorld, PresenceWorld, ChatsWorld,
            GroupWorld):
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        # This run of the stand-in: its pages name it when they open their
        # live link, so a page another run served (a browser left open on a
        # port this run took after it) is turned away instead of showing a
        # QR code here that a scan could link.
        self.run_id = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._devices: dict[str, Device] = {}
        self._phones: dict[str, dict] = {}  # phone -> {"pushname", "platform"}
        self._outbox = Outbox(self.settings.auto_delivered, self.settings.auto_read)
        self._send_modes: dict[str, tuple[str, float]] = {}
        self._init_messaging()
        self._init_contents()
        self._init_peers()
        self._init_calls()
        self._init_presence()
        self._init_chats()  # what each account has: chats, messages, pictures, archive/pin/mute (chats.py)
        self._init_groups()  # groups, their members and rules (groups.py)
        self.lids = Lids()  # the phones' hidden ids, and whose number each account knows (lids.py)
        self.media = MediaStore()  # uploads by directPath (media.py)

    # ----------------------------------------------------------- live links
    def open_link(self, device_id: str, qr_tail: str, claims_paired: bool, now: float) -> Link:
        """A page connected.  Returns its link with the first events queued."""
        if not device_id or len(device_id) > 128:
            raise BadRequest("device id missing or too long")
        if len(qr_tail.split(",")) != 4:
            raise BadRequest("qr tail must have four comma-separated parts")
        with self._lock:
            device = self._devices.setdefault(device_id, Device(device_id))
            if device.link is not None:
                # One page per profile: the newer one wins, as on the real service.
                device.link.mode = "closed"
                device.link.push({"type": "replaced"})
            link = Link(device, qr_tail)
            device.link = link
            if device.phone is not None:
                self._pair(link, restored=True, now=now)
            elif claims_paired:
                # The profile says it is linked but the phone unlinked it
                # while the browser was closed: the page must start over.
                link.push({"type": "unpaired", "reason": "unlinked"})
            else:
                link.mode = "qr"
                self._next_ref(link, now)
            return link

    def close_link(self, link: Link) -> None:
        with self._lock:
            if link.device.link is link:
                link.device.link = None
            link.mode = "closed"

    def advance(self, link: Link, now: float) -> float | None:
        """Rotate the QR code, end the sync, send scheduled receipts when
        their time is up; return seconds to the next deadline, or None when
        nothing is scheduled.  Calls ring out here too (calls.py)."""
        with self._lock:
            self._send_due_receipts(now)
            self._end_due_calls(now)
            if link.mode == "qr" and link.ref_deadline is not None and now >= link.ref_deadline:
                if link.refs_shown >= self.settings.qr_count:
                    link.mode = "idle"
                    link.ref = None
                    link.ref_deadline = None
                    link.push({"type": "idle"})
                else:
                    self._next_ref(link, now)
            while link.mode == "paired" and link.sync_steps and now >= link.sync_steps[0][0]:
                _, step = link.sync_steps.pop(0)
                if step == "offline":
                    self._push_held(link)
                else:
                    link.push({"type": "synced"})
            deadlines = [d for d in (link.ref_deadline if link.mode == "qr" else None,
                                     link.sync_steps[0][0] if link.mode == "paired" and link.sync_steps else None,
                                     self._outbox.next_due(), self._next_ring_end()) if d is not None]
            return max(0.0, min(deadlines) - now) if deadlines else None

    @staticmethod
    def _push_held(link: Link) -> None:
        """Messages held for a restored page, each followed by the offline
        delivery progress (in percent) the real page reports."""
        held = list(link.device.pending.values())
        for i, msg in enumerate(held, 1):
            link.push({"type": "msg", "msg": msg})
            link.push({"type": "offline", "progress": 100 * i // len(held)})
        if not held:
            link.push({"type": "offline", "progress": 100})

    def _pair(self, link: Link, restored: bool, now: float) -> None:
        phone = cast(str, link.device.phone)  # the callers link the device to a phone first
        info = self._phone_info(phone)
        link.mode = "paired"
        link.ref = link.ref_deadline = None
        # The page learns its own LID, and whom the account knows by both
        # ids, with the pairing, as the real page syncs them.
        link.push({"type": "paired", "wid": wid(phone), "lid": lid_wid(self.lids.of(phone)), "restored": restored,
                   "lids": self.lids.pairs_known_to(phone), "lid_groups": self.lids.lid_groups(), **info})
        # What the account has (chats, their latest messages, contacts),
        # as the page has it from its store and the phone's history sync.
        link.push(self._history_event(link.device))
        link.sync_steps = [(now + self.settings.sync_delay, "synced")]
        if restored:
            link.push({"type": "offline", "progress": 0})
            link.sync_steps.insert(0, (now + self.settings.sync_delay / 2, "offline"))

    def _phone_info(self, phone: str) -> dict:
        """The phone's pushname and platform; a name made from the number
        and ``android`` until a scan says otherwise."""
        return self._phones.setdefault(phone, {"pushname": default_pushname(phone), "platform": "android"})

    def _next_ref(self, link: Link, now: float) -> None:
        link.refs_shown += 1
        link.ref = "2@" + secrets.token_urlsafe(48)
        lifetime = self.settings.qr_first if link.refs_shown == 1 else self.settings.qr_next
        link.ref_deadline = now + lifetime
        link.push({"type": "ref", "ref": link.ref})

    def _linked_devices(self, phone: str) -> list[Device]:
        return [d for d in self._devices.values() if d.phone == phone]

    # ------------------------------------------------------ from the page
    def ack(self, device_id: str, ids: list[str]) -> None:
        with self._lock:
            device = self._devices.get(device_id)
            if device is None:
                raise NotFound("unknown device")
            for i in ids:
                device.pending.pop(i, None)

    def record_sent(self, device_id: str, msg_id: str, to: str, body: str, t: int, now: float,
                    extra: dict | None = None, media: dict | None = None) -> dict:
        """``extra``: what the message carries besides its text (the
        quoted message's id, mentions), kept in its record; ``media``: what
        the page said of the file it uploaded."""
        with self._lock:
            device = self._devices.get(device_id)
            if device is None or device.phone is None:
                raise NotFound("device is not linked to a phone")
            self._check_write(device.phone, to)  # a group's rules (groups.py)
            record = self._outbox.record(device.phone, msg_id, to, body, t, now, extra, media)
            self.history.add(device.phone, sent_as_message(device.phone, record))
            return dict(record)

    def page_logout(self, device_id: str) -> None:
        with self._lock:
            device = self._devices.get(device_id)
            if device is None or device.phone is None:
                raise NotFound("device is not linked")
            self._unlink(device, by="page")

    def takeover(self, device_id: str) -> None:
        with self._lock:
            device = self._devices.get(device_id)
            if device is None or device.phone is None or device.link is None:
                raise NotFound("device is not linked")
            device.link.push({"type": "connected"})

    def _unlink(self, device: Device, by: str) -> None:
        device.phone = None
        device.pending.clear()
        if device.link is not None:
            device.link.mode = "closed"
            device.link.push({"type": "logout", "by": by})

    # -------------------------------------------------- the control API
    def held_for(self, msg_id: str) -> list[dict]:
        """The devices that still hold ``msg_id`` for their page (pushed,
        not yet acknowledged by it), with their phone and their page's
        state (``None``: no page open).  Empty once every page that got it
        took it: a message a test never saw reported, and held nowhere,
        was taken by a page that did not pass it on."""
        with self._lock:
            return [{"device": d.id, "phone": d.phone, "page": d.link.mode if d.link is not None else None}
                    for d in self._devices.values() if msg_id in d.pending]

    def pending_qr(self) -> list[dict]:
        with self._lock:
            return [
                {"ref": d.link.ref, "qr": d.link.qr}
                for d in self._devices.values()
                if d.link is not None and d.link.qr is not None
            ]

    def scan(self, qr: object, phone: object, now: float, pushname=None, platform=None) -> str:
        """The phone scans a QR code (without ``qr``: the one code shown
        now, see ``_the_one_code``).  ``pushname`` and ``platform`` (the
        primary device's) are kept for the phone; they default to a name
        made from the number and ``android``."""
        phone = _phone(phone, "phone")
        if qr is None:
            qr = self._the_one_code()
        if not isinstance(qr, str) or not qr:
            raise BadRequest("qr must be a non-empty string")
        if pushname is not None and (not isinstance(pushname, str) or not 1 <= len(pushname) <= PUSHNAME_MAX):
            raise BadRequest(f"pushname must be a string of 1 to {PUSHNAME_MAX} characters")
        if platform is not None and platform not in PLATFORMS:
            raise BadRequest(f"platform must be one of {', '.join(PLATFORMS)}")
        with self._lock:
            for device in self._devices.values():
                link = device.link
                if link is not None and link.qr == qr:
                    info = self._phone_info(phone)
                    info.update({k: v for k, v in (("pushname", pushname), ("platform", platform)) if v is not None})
                    device.phone = phone
                    self._pair(link, restored=False, now=now)
                    return wid(phone)
        raise NotFound("no page shows that QR code now")

    def _the_one_code(self) -> str:
        """The code a scan without ``qr`` means: the only one shown now.
        Someone trying the service by hand has one session waiting, and
        copying a 200-character code into a command line is where that
        goes wrong; with several waiting, guessing would link a phone to
        the wrong session, so the caller is told to choose."""
        pending = self.pending_qr()
        if not pending:
            raise NotFound("no page shows a QR code now")
        if len(pending) > 1:
            raise Ambiguous(f"{len(pending)} pages show a QR code now: name the one to scan with \"qr\"",
                            pending=pending)
        return pending[0]["qr"]

    def deliver(self, to: object, sender: object, body: object, group: str | None = None, media: dict | None = None,
                by_lid: bool = False) -> str:
        """A message from ``sender`` to ``to``; with ``group``, written in
        that group (from the group, ``sender`` its author: by LID if the
        group is in LID addressing mode); with ``by_lid``, one-to-one from
        ``sender``'s LID (someone ``to`` knows only so); with ``media``, a
        file the phone sent (media.py)."""
        to = _phone(to, "to")
        sender = _phone(sender, "from")
        if not isinstance(body, str):
            raise BadRequest("body must be a string")
        if not isinstance(by_lid, bool):
            raise BadRequest("lid must be true or false")
        if group is not None:
            check_group(group)
            if by_lid:
                raise BadRequest("in a group its addressing mode decides how members show (POST /_sim/groups)")
        with self._lock:
            if not self._linked_devices(to):
                raise NotFound(f"no device is linked to phone {to}")
            return self._deliver(to, sender, body, group, by_lid, media)

    def _deliver(self, to: str, sender: str, body: str, group: str | None, by_lid: bool, media: dict | None = None,
                 msg_id: str | None = None, content: dict | None = None) -> str:
        """Under the lock: the message to ``to``'s devices (held for those
        whose page is closed); ``content``: a location, contact cards or a
        poll, in the page's field names (contents.py)."""
        if group is not None:
            by_lid = self.lids.addressing(group) == "lid"
            person = lid_wid(self.lids.of(sender)) if by_lid else wid(sender)
            origin = {"from": group, "author": person, "addressing": self.lids.addressing(group)}
        else:
            origin = {"from": lid_wid(self.lids.of(sender)) if by_lid else wid(sender)}
        if not by_lid:
            self.lids.learn(to, sender)  # the number is on the message
        msg: dict[str, Any]
        msg = {"id": msg_id or new_message_id(), **origin, "to": wid(to), "body": body, "t": int(time.time())}
        if self.lids.knows(to, sender):
            msg["lids"] = [self.lids.pair(sender)]  # the page can map the sender's ids
        if media is not None:
            msg["media"] = media  # a file the phone sent (media.py)
        if content is not None:
            msg["content"] = content
        self._push_message(to, msg)
        return msg["id"]

    def _push_message(self, phone: str, msg: dict) -> None:
        self.history.add(phone, msg)  # the account has it, whichever page is open
        for device in self._linked_devices(phone):
            device.pending[msg["id"]] = msg
            if device.link is not None and device.link.mode == "paired":
                device.link.push({"type": "msg", "msg": msg})

    def sent_by(self, phone: str, now: float) -> list[dict]:
        phone = _phone(phone, "from")
        with self._lock:
            self._send_due_receipts(now)
            return self._outbox.sent_by(phone)

    def receipt(self, msg_id, receipt) -> int:
        """The recipient's phone reports a sent message ``delivered`` or
        ``read``; the sender's open pages see the ack go up.  Returns the
        message's ack (1 server, 2 delivered, 3 read)."""
        with self._lock:
            phone, record, raised = self._outbox.receipt(msg_id, receipt)
            if raised:
                self._push_receipt(phone, record)
            return record["ack"]

    def _send_due_receipts(self, now: float) -> None:
        for phone, record in self._outbox.due(now):
            self._push_receipt(phone, record)

    def _push_receipt(self, phone: str, record: dict) -> None:
        # Open pages see it now; one that comes back later is given the
        # message with its ack (chats.py), so nothing is held for it.
        self.history.set_ack(phone, record["to"], record["id"], record["ack"])
        event = {"type": "receipt", "id": record["id"], "to": record["to"], "ack": record["ack"]}
        for device in self._linked_devices(phone):
            if device.link is not None and device.link.mode == "paired":
                device.link.push(event)

    def logout(self, phone: object) -> None:
        phone = _phone(phone, "phone")
        with self._lock:
            devices = self._linked_devices(phone)
            if not devices:
                raise NotFound(f"no device is linked to phone {phone}")
            for device in devices:
                self._unlink(device, by="phone")

    def freeze(self, phone: object) -> list[Link]:
        """Hang the phone's open pages; returns their links, each of which
        is ``frozen`` once its page says it took the freeze."""
        return self._push_to_open_pages(phone, {"type": "freeze"})

    def page_frozen(self, device_id: str) -> None:
        """A page took the freeze: it runs no script from now on."""
        with self._lock:
            device = self._devices.get(device_id)
            link = device.link if device is not None else None
        if link is None:
            raise NotFound("unknown device or no open page")
        link.frozen.set()

    def cut_links(self, phone: object) -> None:
        """Drop the phone's pages' live links (they reconnect by themselves)."""
        self._push_to_open_pages(phone, {"type": "drop"})

    def set_send_mode(self, phone: object, mode: object, delay: object = 0.0) -> None:
        """``ok``; ``fail``: the server refuses sends; ``slow``: it takes
        ``delay`` seconds to accept each."""
        phone = _phone(phone, "phone")
        if not isinstance(mode, str) or mode not in ("ok", "fail", "slow"):
            raise BadRequest("mode must be ok, fail or slow")
        if not isinstance(delay, (int, float)) or not 0 <= delay <= 600:
            raise BadRequest("delay must be a number of seconds from 0 to 600")
        with self._lock:
            self._send_modes[phone] = (mode, float(delay))

    def send_mode(self, device_id: str) -> tuple[str, float]:
        with self._lock:
            device = self._devices.get(device_id)
            if device is None or device.phone is None:
                return ("ok", 0.0)
            return self._send_modes.get(device.phone, ("ok", 0.0))

    def conflict(self, phone: object) -> None:
        self._push_to_open_pages(phone, {"type": "conflict"})

    def _push_to_open_pages(self, phone: object, event: dict) -> list[Link]:
        phone = _phone(phone, "phone")
        with self._lock:
            links = [d.link for d in self._linked_devices(phone) if d.link is not None]
            if not links:
                raise NotFound(f"no open page is linked to phone {phone}")
            for link in links:
                link.push(event)
        return links


def _phone(value, name: str) -> str:
    if not isinstance(value, str) or not PHONE_RE.match(value):
        raise BadRequest(f"{name} must be a phone number of 5 to 20 digits")
    return value

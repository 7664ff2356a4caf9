"""Calls on the stand-in: a phone rings an account, the account's open
pages see the call ring, and it rings until one of them rejects it or it
is missed.  A part of :class:`~wwnode.fakewa.world.World` (it is mixed
in), using the world's lock, devices and LIDs the same way ``world.py``
does; the HTTP routes at the end are merged into the server's.

- **From a phone**: ``POST /_sim/calls`` -- ``from`` calls ``to`` (a video
  call, or in a group, if asked).  Every page linked to ``to`` that is open
  gets the offer, as the real page adds a call to its call collection.  A
  page opened later does not (the stand-in does not replay calls).
- **Ringing ends** when a page rejects it, when the caller hangs up
  (``POST /_sim/calls/end``) or after ``ring_timeout`` seconds: then it
  is *missed*.  Every open page of the account learns the end.
- **From a page**: a reject is the stanza whatsapp-web.js's
  ``Call.reject`` casts (``WAWap.wap('call', {id, from, to},
  [wap('reject', {'call-id', 'call-creator', count})])`` through
  ``WADeprecatedSendIq.deprecatedCastStanza``), posted as ``/_wa/stanza``.
  A cast gets no answer on the real service: a reject of a call that is
  not ringing (ended, unknown, another account's) changes nothing and is
  answered as any cast.  A stanza the stand-in does not understand is a
  400, so that a page (or client) that builds a wrong one shows up in tests.
- ``GET /_sim/calls?phone=P`` lists the calls P made or got, with what
  became of each (``ringing``, ``rejected``, ``missed``): the caller's
  view.
"""

from __future__ import annotations

import re
import secrets
import time

from .errors import BadRequest, NotFound
from .lids import lid_wid
from .messaging import check_group
from .worldbase import WorldBase

_PHONE_RE = re.compile(r"^[0-9]{5,20}$")
_CALL_ID_RE = re.compile(r"^[0-9A-Za-z]{1,64}$")
RINGING, REJECTED, MISSED = "ringing", "rejected", "missed"


def new_call_id() -> str:
    # The real page makes its own as 32 upper-case hex digits (randomHex(16)).
    return secrets.token_hex(16).upper()


class CallWorld(WorldBase):
    """Mixed into World; uses its ``_lock``, ``_linked_devices``,
    ``_linked_device``, ``settings`` and ``lids``."""

    def _init_calls(self) -> None:
        self._calls: dict[str, dict] = {}  # call id -> its record
        self._ring_ends: dict[str, float] = {}  # ringing call id -> when it is missed (monotonic)

    # -------------------------------------------------- the control API
    def ring(self, to, caller, now: float, video=False, group=None) -> str:
        """``caller`` calls ``to``; returns the call's id."""
        to = _phone(to, "to")
        caller = _phone(caller, "from")
        if caller == to:
            raise BadRequest("a phone does not call itself")
        if not isinstance(video, bool):
            raise BadRequest("video must be true or false")
        if group is not None:
            check_group(group)
        with self._lock:
            if not self._linked_devices(to):
                raise NotFound(f"no device is linked to phone {to}")
            call = {"id": new_call_id(), "from": caller, "to": to, "video": video, "group": group,
                    "t": int(time.time()), "state": RINGING}
            self._calls[call["id"]] = call
            self._ring_ends[call["id"]] = now + self.settings.ring_timeout
            self.lids.learn(to, caller)  # the caller's number shows with the call
            offer: dict[str, object]  # "lids" is a list
            offer = {"type": "call_offer", "call": {"id": call["id"], "from": f"{caller}@c.us", "video": video,
                                                    "group": group, "t": call["t"]}}
            if self.lids.knows(to, caller):
                offer["lids"] = [self.lids.pair(caller)]
            self._push_call_event(to, offer)
            return call["id"]

    def hang_up(self, call_id, now: float) -> None:
        """The caller gives up before anyone answered: a missed call."""
        call_id = _call_id(call_id)
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                raise NotFound(f"no call {call_id}")
            if call["state"] != RINGING:
                raise BadRequest(f"call {call_id} is not ringing: it was {call['state']}")
            self._end_call(call, MISSED)

    def calls_of(self, phone, now: float) -> list[dict]:
        phone = _phone(phone, "phone")
        with self._lock:
            self._end_due_calls(now)
            return [dict(c) for c in self._calls.values() if phone in (c["from"], c["to"])]

    # ------------------------------------------------------ from the page
    def cast_stanza(self, device_id: str, stanza) -> dict:
        """A stanza a page cast.  Only a call's reject is understood."""
        call_id, creator, to = _reject_of(stanza)
        with self._lock:
            account = self._linked_device(device_id).phone
            call = self._calls.get(call_id)
            if call is None or call["to"] != account:
                return {"ignored": f"no call {call_id} to this account"}
            caller = {f"{call['from']}@c.us", lid_wid(self.lids.of(call["from"]))}
            if creator not in caller or to not in caller:
                raise BadRequest(f"call {call_id} was made by {call['from']}@c.us: the reject must name that caller "
                                 f"as call-creator and to")
            if call["state"] != RINGING:
                return {"ignored": f"call {call_id} is not ringing: it was {call['state']}"}
            self._end_call(call, REJECTED)
            return {}

    # ------------------------------------------------------------- time
    def _end_due_calls(self, now: float) -> None:
        for call_id, end in list(self._ring_ends.items()):
            if now >= end:
                self._end_call(self._calls[call_id], MISSED)

    def _next_ring_end(self) -> float | None:
        return min(self._ring_ends.values(), default=None)

    def _end_call(self, call: dict, state: str) -> None:
        call["state"] = state
        self._ring_ends.pop(call["id"], None)
        self._push_call_event(call["to"], {"type": "call_end", "id": call["id"], "reason": state})

    def _push_call_event(self, phone: str, event: dict) -> None:
        for device in self._linked_devices(phone):
            if device.link is not None and device.link.mode == "paired":
                device.link.push(event)


def _reject_of(stanza) -> tuple[str, str, str]:
    """(call id, call-creator, to) of a ``call`` stanza holding a ``reject``."""
    if not isinstance(stanza, dict) or stanza.get("tag") != "call" or not isinstance(stanza.get("attrs"), dict):
        raise BadRequest("the stand-in understands only call stanzas")
    content = stanza.get("content")
    if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0], dict) \
            or content[0].get("tag") != "reject" or not isinstance(content[0].get("attrs"), dict):
        raise BadRequest("the stand-in understands only a call stanza holding one reject")
    attrs, reject = stanza["attrs"], content[0]["attrs"]
    for name, value in (("to", attrs.get("to")), ("id", attrs.get("id")), ("call-creator", reject.get("call-creator"))):
        if not isinstance(value, str) or not value:
            raise BadRequest(f"the stanza's {name} must be a non-empty string")
    return _call_id(reject.get("call-id")), reject["call-creator"], attrs["to"]


def _call_id(value) -> str:
    if not isinstance(value, str) or not _CALL_ID_RE.match(value):
        raise BadRequest("call id must be 1 to 64 letters and digits")
    return value


def _phone(value, name: str) -> str:
    if not isinstance(value, str) or not _PHONE_RE.match(value):
        raise BadRequest(f"{name} must be a phone number of 5 to 20 digits")
    return value


# ------------------------------------------------------------------ HTTP
def page_stanza(handler, query) -> None:
    body = handler._body()
    device = body.get("device")
    if not isinstance(device, str) or not device:
        raise BadRequest("device must be a non-empty string")
    handler._json(200, {"ok": True, **handler.world.cast_stanza(device, body.get("stanza"))})


def sim_ring(handler, query) -> None:
    b = handler._body()
    call_id = handler.world.ring(b.get("to"), b.get("from"), time.monotonic(), video=b.get("video", False),
                                 group=b.get("group"))
    handler._json(200, {"id": call_id})


def sim_hang_up(handler, query) -> None:
    handler.world.hang_up(handler._body().get("call_id"), time.monotonic())
    handler._json(200, {"ok": True})


def sim_calls(handler, query) -> None:
    phone = (query.get("phone") or [""])[0]
    handler._json(200, {"calls": handler.world.calls_of(phone, time.monotonic())})


POST_ROUTES = {"/_wa/stanza": page_stanza, "/_sim/calls": sim_ring, "/_sim/calls/end": sim_hang_up}
GET_ROUTES = {"/_sim/calls": sim_calls}

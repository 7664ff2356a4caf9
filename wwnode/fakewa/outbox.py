"""What the linked browsers sent, and how far each message got.

A message sent from a page is recorded here when the server takes it (the
page then shows ack 1, one grey tick).  The recipient's phone later
reports it *delivered* (ack 2) and *read* (ack 3): through the control API
(``POST /_sim/receipts``), or by itself after the delays in
:class:`~wwnode.fakewa.world.Settings`.  Acks only go up: a ``delivered``
after a ``read`` changes nothing, as on the real service.

The outbox holds no lock of its own: :class:`~wwnode.fakewa.world.World`
calls it under its lock.  Time is handed in (``now``) so scheduled receipts
are tested without sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import time

from .errors import BadRequest, NotFound

ACK_SERVER = 1
ACK_DEVICE = 2
ACK_READ = 3
RECEIPTS = {"delivered": ACK_DEVICE, "read": ACK_READ}


class Outbox:
    def __init__(self, auto_delivered: float | None = None, auto_read: float | None = None):
        self.auto_delivered = auto_delivered
        self.auto_read = auto_read
        self._by_phone: dict[str, list[dict]] = {}
        self._by_id: dict[str, tuple[str, dict]] = {}
        self._due: list[tuple[float, int, str, int]] = []  # (when, tiebreak, message id, ack)
        self._seq = itertools.count()

    def record(self, phone: str, msg_id: str, to: str, body: str, t: int, now: float,
               extra: dict | None = None, media: dict | None = None) -> dict:
        """The server took a message; a retried request is recorded once.
        ``extra`` fields (``quoted_id``, ``mentions``) join its record."""
        known = self._by_id.get(msg_id)
        if known is not None and known[0] == phone:
            return known[1]
        # ``received_ms``: the server's clock when it took the message (the
        # page's ``t`` is whole seconds), to measure how sends are spaced.
        record = {"id": msg_id, "to": to, "body": body, "t": t, "ack": ACK_SERVER,
                  "received_ms": int(time.time() * 1000), **(extra or {})}
        if media is not None:
            record["media"] = media  # what the page said of the file it uploaded
        self._by_phone.setdefault(phone, []).append(record)
        self._by_id[msg_id] = (phone, record)
        for delay, ack in ((self.auto_delivered, ACK_DEVICE), (self.auto_read, ACK_READ)):
            if delay is not None:
                heapq.heappush(self._due, (now + delay, next(self._seq), msg_id, ack))
        return record

    def sent_by(self, phone: str) -> list[dict]:
        return [dict(m) for m in self._by_phone.get(phone, [])]

    def edit(self, phone: str, msg_id: str, body: str) -> dict:
        """The sender's page changed a message's text; the old ones are kept."""
        record = self._own(phone, msg_id)
        record.setdefault("previous_bodies", []).append(record["body"])
        record["body"] = body
        return dict(record)

    def revoke(self, phone: str, msg_id: str) -> dict:
        """The sender's page deleted a message for everyone."""
        record = self._own(phone, msg_id)
        record["revoked"] = True
        return dict(record)

    def _own(self, phone: str, msg_id: str) -> dict:
        known = self._by_id.get(msg_id)
        if known is None or known[0] != phone:
            raise NotFound(f"this phone's browsers sent no message {msg_id!r}")
        return known[1]

    def all(self) -> list[tuple[str, dict]]:
        """Every message taken: (sender phone, its record), in order per sender."""
        return [(phone, dict(m)) for phone, records in self._by_phone.items() for m in records]

    def receipt(self, msg_id, receipt) -> tuple[str, dict, bool]:
        """The recipient's phone reports a message ``delivered`` or ``read``.
        Returns (sender phone, the message's record, whether its ack went up)."""
        if not isinstance(msg_id, str) or not msg_id:
            raise BadRequest("message_id must be a non-empty string")
        if receipt not in RECEIPTS:
            raise BadRequest("ack must be 'delivered' or 'read'")
        known = self._by_id.get(msg_id)
        if known is None:
            raise NotFound(f"no sent message has id {msg_id!r}")
        return self._raise_ack(msg_id, RECEIPTS[receipt])

    def due(self, now: float) -> list[tuple[str, dict]]:
        """Scheduled receipts whose time has come, applied: a list of
        (sender phone, message record) for those that raised an ack."""
        fired = []
        while self._due and self._due[0][0] <= now:
            _, _, msg_id, ack = heapq.heappop(self._due)
            phone, record, raised = self._raise_ack(msg_id, ack)
            if raised:
                fired.append((phone, record))
        return fired

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None

    def _raise_ack(self, msg_id: str, ack: int) -> tuple[str, dict, bool]:
        phone, record = self._by_id[msg_id]
        if ack <= record["ack"]:
            return phone, dict(record), False
        record["ack"] = ack
        return phone, dict(record), True

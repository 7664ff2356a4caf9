"""A device (one browser profile) and the live link of its open page.

See :mod:`wwnode.fakewa.world` for the vocabulary; the world changes both
under its lock.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Device:
    id: str
    phone: str | None = None
    # Inbound messages pushed to the device but not yet acknowledged by its
    # page; they are pushed again whenever the page reconnects.
    pending: OrderedDict = field(default_factory=OrderedDict)
    link: "Link | None" = None


class LinkedDevice(Protocol):
    """A :class:`Device` known to be linked: its ``phone`` is set.  What
    ``World._linked_device`` returns, for the type checker only (the object
    is the Device itself)."""

    id: str
    pending: OrderedDict
    link: Link | None

    @property
    def phone(self) -> str: ...


class Link:
    """One open page.  Modes: ``qr`` (showing codes), ``idle`` (ran out of
    codes), ``paired``, ``closed`` (told to start over, or superseded)."""

    _ids = itertools.count(1)

    def __init__(self, device: Device, qr_tail: str):
        self.n = next(self._ids)
        self.device = device
        self.qr_tail = qr_tail
        self.events: queue.Queue = queue.Queue()
        self.mode = "closed"
        self.ref: str | None = None
        self.ref_deadline: float | None = None
        self.refs_shown = 0
        # The sync after pairing: (when, "offline" | "synced"), in order.
        self.sync_steps: list[tuple[float, str]] = []
        # Set when the page says it is hung (the control API's freeze): the
        # freeze is pushed over the link like any event, and a page busy
        # with something else takes it a moment later.
        self.frozen = threading.Event()

    def push(self, event: dict) -> None:
        self.events.put(event)

    @property
    def qr(self) -> str | None:
        if self.mode != "qr" or self.ref is None:
            return None
        return f"{self.ref},{self.qr_tail}"

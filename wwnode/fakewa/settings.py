"""The stand-in's settings: timings and variations of the page."""

from __future__ import annotations

import re
from dataclasses import dataclass

MODULE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
# What the real page's Conn.platform says of the primary device.
PLATFORMS = ("android", "iphone", "smba", "smbi", "wp", "kaios")
PUSHNAME_MAX = 25  # characters, as the app allows
# Bounds of the page's weight: beyond them a page would take minutes to
# build or more memory than a test machine has.
WEIGHT_LIMITS = {"weight_heap_mb": 4096, "weight_dom_nodes": 1_000_000, "weight_chats": 100_000,
                 "weight_messages": 5_000_000}
# The weight that matches what the real page is known to hold (docs/standin.md,
# "Page weight"): a whole browser of about 500 MB, as whatsapp-web.js users
# report for one client.
REAL_WEIGHT = {"weight_heap_mb": 320, "weight_dom_nodes": 20_000, "weight_chats": 500, "weight_messages": 20_000}


@dataclass
class Settings:
    """Timings and variations.  The defaults are the real page's (as far
    as it is known); tests shorten them."""

    qr_first: float = 60.0  # seconds the first QR code of a page lives
    qr_next: float = 20.0  # seconds each later one lives
    qr_count: int = 6  # codes shown before the page goes idle
    # A page that stops answering keeps its link "open" until a write to it
    # fails; a keep-alive every few seconds finds that out.
    keepalive: float = 5.0
    # Seconds from CONNECTED to hasSynced, on a fresh pairing and on a
    # restored profile alike (the real page syncs for a few seconds).
    sync_delay: float = 2.0
    # Receipts the recipient's phone sends by itself, in seconds after the
    # server took the message; None: only through the control API.
    auto_delivered: float | None = None
    auto_read: float | None = None
    # Modules the page leaves out, to play a page that WhatsApp changed.
    drop_modules: tuple[str, ...] = ()
    # The page's weight (see page_weight.js and docs/standin.md): megabytes of
    # JavaScript objects, elements in the document, and chats and messages
    # in an IndexedDB, all held for the page's life.  0: none (the default).
    weight_heap_mb: int = 0
    weight_dom_nodes: int = 0
    weight_chats: int = 0
    weight_messages: int = 0
    # Seconds after its sending in which the page lets the sender edit a
    # message, and delete it for everyone; it refuses after.  Nothing read
    # here (whatsapp-web.js asks the page's WAWebMsgActionCapability) tells
    # the real page's figures: these are the ones WhatsApp announced, 15
    # minutes to edit and about 60 hours to delete for everyone.
    edit_window: float = 15 * 60
    revoke_window: float = 60 * 3600
    # Seconds a call rings before it is missed, when nobody rejects it and
    # the caller does not hang up first.  Nothing read here tells the real
    # service's figure; a minute is about what phones ring.
    ring_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not (self.qr_first > 0 and self.qr_next > 0 and self.keepalive > 0):
            raise ValueError("QR lifetimes and the keep-alive must be positive")
        if not (isinstance(self.qr_count, int) and self.qr_count >= 1):
            raise ValueError("qr_count must be at least 1")
        if not 0 <= self.sync_delay <= 600:
            raise ValueError("sync_delay must be from 0 to 600 seconds")
        if not 0 < self.ring_timeout <= 3600:
            raise ValueError("ring_timeout must be more than 0 and at most 3600 seconds")
        for name in ("edit_window", "revoke_window"):
            if not 0 <= getattr(self, name) <= 10 * 365 * 86400:
                raise ValueError(f"{name} must be from 0 seconds to ten years")
        for name in ("auto_delivered", "auto_read"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 3600:
                raise ValueError(f"{name} must be from 0 to 3600 seconds, or None")
        for name, most in WEIGHT_LIMITS.items():
            value = getattr(self, name)
            if not (isinstance(value, int) and 0 <= value <= most):
                raise ValueError(f"{name} must be a whole number from 0 to {most}")
        self.drop_modules = tuple(self.drop_modules)
        bad = [m for m in self.drop_modules if not isinstance(m, str) or not MODULE_NAME_RE.match(m)]
        if bad:
            raise ValueError(f"not module names: {bad!r}")

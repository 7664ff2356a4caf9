"""A local stand-in for WhatsApp Web: the page sessions drive, its server,
and a control API that plays the phone (scan a QR, deliver a message, log
the device out).  See the README's "Testing against the stand-in"."""

from .server import FakeWA
from .world import Settings

__all__ = ["FakeWA", "Settings"]

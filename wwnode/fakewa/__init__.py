"""A local stand-in for WhatsApp Web: the page sessions drive, its server,
and a control API that plays the phone (scan a QR, deliver a message, log
the device out).  See docs/standin.md."""

from .server import FakeWA
from .world import Settings

__all__ = ["FakeWA", "Settings"]

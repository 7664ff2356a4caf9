"""The pipe protocol between a node and one session process.  This docstring
is its one description; the README links here.

Framing: one JSON object per line (UTF-8, ``\\n``-terminated), both ways.
The process writes nothing else to stdout; its own log goes to its log file.

Commands (node -> session, on stdin)
====================================
``{"cmd": "send", "id": C, "chat_id": "5511...@c.us", "text": T}``
    Send text ``T``.  Answered by ``sent`` or ``send_failed`` with the same
    ``id``.  Commands are handled in order, one at a time.
``{"cmd": "ping", "id": C}``
    Health check, answered by ``pong``.  Answered on a path of its own, so a
    long send does not delay it; ``ok`` is false when the page did not
    run a line of JavaScript within the ping timeout.
``{"cmd": "stop"}`` / ``{"cmd": "stop", "logout": true}``
    Close the browser (after unlinking the device, with ``logout``) and
    exit with ``EXIT_STOPPED``.  End of input means the same as ``stop``.

Events (session -> node, on stdout)
===================================
``{"event": "starting", "pid": P}``               the process is up
``{"event": "browser", "pids": [...]}``           chromedriver's pid (Chrome is below it)
``{"event": "loaded", "version": V, "user_agent": UA, "webdriver": B}``
                                                  WhatsApp Web ``V`` loaded (again after
                                                  each navigation) and has everything the
                                                  session uses; ``UA`` and ``B`` are what the
                                                  page sees of the browser
``{"event": "qr", "qr": Q, "attempt": N}``        QR code N is shown (five-part string)
``{"event": "authenticated"}``                    the page synced its session
``{"event": "ready", "me": "5511...@c.us"}``      ready to send and receive
``{"event": "state", "state": S}``                WhatsApp Web's socket state changed
``{"event": "message", "message": M}``            inbound message, whatsapp-web.js field names
``{"event": "sent", "id": C, "message_id": MID}`` WhatsApp Web accepted send ``C``
``{"event": "send_failed", "id": C, "reason": R, "detail": D}``
``{"event": "pong", "id": C, "ok": B, "state": S, "detail": D}``
``{"event": "disconnected", "reason": R}``        the session ended or broke (see reasons)
``{"event": "auth_failure", "reason": R}``        ``credentials_rejected`` or ``qr_attempts_exhausted``
``{"event": "error", "reason": R, "detail": D}``  a command line could not be understood

Disconnection reasons: ``LOGOUT`` (the phone or a ``stop`` with logout
unlinked the device), the socket states ``CONFLICT``, ``UNPAIRED``,
``UNPAIRED_IDLE``, ``UNLAUNCHED``, ``PROXYBLOCK``, ``TOS_BLOCK``,
``SMB_TOS_BLOCK``, ``DEPRECATED_VERSION``, and ``page_crashed``,
``browser_closed``, ``navigated_away``, ``page_unreachable``,
``browser_failed``, ``cannot_start``, and:

- ``boot_timeout``: the page did not load (no ``window.Debug.VERSION``)
  within ``--boot-timeout`` seconds of the start, or of a navigation;
  exit ``EXIT_CRASHED``, worth a restart with backoff;
- ``incompatible_page``: the page loaded but lacks modules or members the
  session uses (``sessionproc/pageapi.py``); ``detail`` names them; exit
  ``EXIT_CANNOT_START``: the same page would fail the same way.

``disconnected`` may carry a ``detail`` (text for people, not for code).

Exit codes
==========
``EXIT_STOPPED`` (0)        stopped on request (``stop`` or end of input)
``EXIT_CRASHED`` (1)        broke; worth restarting (the profile is kept)
``EXIT_ENDED`` (3)          the session ended for a reason it reported
                            (``disconnected`` or ``auth_failure``); restarting
                            would not bring it back without a new QR scan
``EXIT_CANNOT_START`` (78)  bad arguments, no Chromium, unusable profile,
                            a page without what the session uses
                            (``incompatible_page``): restarting is pointless
Death by a signal counts as crashed.
"""

from __future__ import annotations

import re

import orjson

# A session key, as the wire contract defines it; it becomes a folder name.
KEY_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")

# A user agent the browser is told to present (``USER_AGENT``,
# ``--user-agent``): printable ASCII on one line, as an HTTP header must be.
USER_AGENT_RE = re.compile(r"\A[\x20-\x7e]{1,512}\Z")

EXIT_STOPPED = 0
EXIT_CRASHED = 1
EXIT_ENDED = 3
EXIT_CANNOT_START = 78

REASON_BOOT_TIMEOUT = "boot_timeout"
REASON_INCOMPATIBLE_PAGE = "incompatible_page"

# Seconds the page has to load (``BOOT_TIMEOUT``, ``--boot-timeout``).
DEFAULT_BOOT_TIMEOUT = 60.0

COMMANDS = ("send", "ping", "stop")

# A file the session writes in its profile once the device is linked, so a
# later start knows a QR code means the phone rejected the stored link.
LINKED_MARKER = "wwnode-linked"

# Socket states after which the session cannot go on by itself.
ENDING_STATES = frozenset(
    {"CONFLICT", "UNLAUNCHED", "PROXYBLOCK", "TOS_BLOCK", "SMB_TOS_BLOCK", "DEPRECATED_VERSION"}
)
UNPAIRED_STATES = frozenset({"UNPAIRED", "UNPAIRED_IDLE"})


class BadCommand(ValueError):
    """A line from the parent is not a command this process understands."""


def encode(obj: dict) -> bytes:
    return orjson.dumps(obj) + b"\n"


def decode_command(line: bytes) -> dict:
    """Parse and check one command line; raise BadCommand with the reason."""
    try:
        cmd = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise BadCommand(f"not JSON: {e}") from None
    if not isinstance(cmd, dict):
        raise BadCommand("a command must be a JSON object")
    name = cmd.get("cmd")
    if name not in COMMANDS:
        raise BadCommand(f"unknown command {name!r}; expected one of {', '.join(COMMANDS)}")
    if name in ("send", "ping") and not isinstance(cmd.get("id"), str):
        raise BadCommand(f"{name} needs a string id")
    if name == "send":
        if not isinstance(cmd.get("chat_id"), str) or not cmd["chat_id"]:
            raise BadCommand("send needs a string chat_id")
        if not isinstance(cmd.get("text"), str):
            raise BadCommand("send needs a string text")
    if name == "stop" and not isinstance(cmd.get("logout", False), bool):
        raise BadCommand("stop's logout must be true or false")
    return cmd

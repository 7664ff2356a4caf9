"""What a session's threads share: options, queues, flags, the browser's handles.

Each thread's class is handed the one :class:`SessionState` (the
:class:`~sessionproc.session.Session`, which is one) and reads there what
another thread writes.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import urllib3
from selenium import webdriver
from selenium.common.exceptions import WebDriverException

from .devtools import DevTools, DevToolsClosed
from .output import Output
from .protocol import DEFAULT_BOOT_TIMEOUT

BINDING = "__wwnodeEmit"

# What a chromedriver call can fail with when the browser misbehaves.
DRIVER_ERRORS = (WebDriverException, urllib3.exceptions.HTTPError, OSError)


@dataclass
class Options:
    key: str
    profile_dir: Path
    url: str
    chrome: str
    chromedriver: str
    user_agent: str = ""
    qr_max: int = 5
    send_timeout: float = 60.0
    ping_timeout: float = 5.0
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    send_seen: bool = True
    log_bodies: bool = False
    pair_with_phone: str = ""
    pair_interval: float = 180.0
    stop_timeout: float = 20.0
    settings_file: Path | None = None  # its proxy and what it ignores (settingsfile.py)
    profile_template: Path | None = None  # a new profile's first contents (profiletemplate.py)


class SessionState:
    """The fields more than one thread uses.  The queues and the events are
    made once; ``driver``, ``devtools`` and ``ignore`` are replaced whole
    (one assignment), never changed in place."""

    def __init__(self, opts: Options, out: Output):
        self.opts = opts
        self.out = out
        self.inbox: queue.Queue = queue.Queue()
        self.sends: queue.Queue = queue.Queue()
        self.inbound: queue.Queue = queue.Queue()  # page events, for the inbound thread to write
        self.ready = threading.Event()
        self.stopping = threading.Event()
        # The browser's handles: set by the main thread once the browser is
        # up, None again once it is quit; the sender and inbound threads
        # call the page through them.
        self.driver: webdriver.Chrome | None = None
        self.devtools: DevTools | None = None
        # Kinds of chat not reported (``ignore``); replaced whole (one
        # assignment) by a ``settings`` command on the stdin thread, read
        # on the main one.
        self.ignore: frozenset[str] = frozenset()

    def live_devtools(self) -> DevTools:
        """The page's DevTools connection.  The sender and inbound threads
        may outlive their join's timeout, and the main thread sets it to
        None when it quits the browser: DevToolsClosed then, which every
        caller handles, where None would raise AttributeError and end the
        thread (the inbound one with the messages it still had unreported)."""
        devtools = self.devtools
        if devtools is None:
            raise DevToolsClosed("the browser is closed")
        return devtools

    def live_driver(self) -> webdriver.Chrome:
        """The browser's driver, set from its start until the browser is
        quit: a WebDriverException (one of DRIVER_ERRORS, which every caller
        handles) after that, as from a driver whose browser is gone."""
        driver = self.driver
        if driver is None:
            raise WebDriverException("the browser is closed")
        return driver

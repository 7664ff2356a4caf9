"""Starting session processes: the command line each gets from the node's
settings, and the start slots.

Browsers boot a few at a time (``pacing.py``: by default one per free
core, or ``START_CONCURRENCY``), so a burst of creates, or a node restoring
many sessions, does not boot them all at once.  A start beyond the limit
waits its turn, in order of asking; a session frees its slot when it
leaves ``starting`` (its first QR code, ready, or its process gone, the
boot deadline included).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from sessionproc.protocol import SessionArgs
from sessionproc.useragent import VersionUnknown, desktop_user_agent

from . import states as S
from .children import Child, Spawner
from .config import Config
from .health import Health
from .pacing import BootPace
from .paths import Paths

log = logging.getLogger(__name__)


class KeySettings(Protocol):
    """What starting a session reads of its key's settings (``SettingsDesk``)."""
    def start_file(self, key: str) -> Path: ...
    def seen(self, key: str) -> bool: ...


class UnusableProfile(Exception):
    """A session's profile folder is not one (a file in its place) or is not
    ours to write: the session cannot start, and would not at a restart."""


@dataclass(eq=False)
class Starts:
    cfg: Config
    paths: Paths
    spawner: Spawner
    health: Health
    pace: BootPace | None = None  # None: START_CONCURRENCY alone (0: no limit)
    # Whether a key's profile is ready to start on (a restore from its
    # snapshot may be under way: ``portable.py``).
    gate: Callable[[str], bool] = lambda key: True
    # Each key's settings (``settingsdesk.py``): the file its process reads
    # (its proxy, what it ignores) and whether its sends mark chats read.
    # None: none, SEND_SEEN for every key.
    settings: KeySettings | None = None
    # The profile template a new profile is copied from (``templates.py``);
    # None: none.
    template: Callable[[], Path | None] = lambda: None
    _waiting: dict[str, float] = field(default_factory=dict, init=False)  # key -> since, in order of asking
    _booting: set[str] = field(default_factory=set, init=False)  # started, still ``starting``
    # Keys created with ``pair_with_phone``: their processes link by pairing
    # code for that phone, until the key is stopped.
    _pair_with: dict[str, str] = field(default_factory=dict, init=False)

    @property
    def limit(self) -> float:
        if self.pace is not None:
            return self.pace.limit(len(self._booting))
        return self.cfg.start_concurrency or float("inf")

    def args_for(self, key: str) -> SessionArgs:
        """OSError when its settings file cannot be written."""
        cfg = self.cfg
        settings_file, send_seen = None, cfg.send_seen
        if self.settings is not None:
            settings_file, send_seen = self.settings.start_file(key), self.settings.seen(key)
        return SessionArgs(key=key, profile=self.paths.profile(key), log_file=self.paths.session_log(key),
                           url=cfg.wa_url, chrome=cfg.chrome_path, chromedriver=cfg.chromedriver_path,
                           qr_max=cfg.qr_max, send_timeout=cfg.send_timeout, ping_timeout=cfg.ping_timeout,
                           boot_timeout=cfg.boot_timeout, user_agent=self._user_agent(), send_seen=send_seen,
                           log_bodies=cfg.log_message_bodies, pair_with_phone=self._pair_with.get(key, ""),
                           pair_interval=float(cfg.qr_ttl), stop_timeout=cfg.stop_timeout,
                           settings_file=settings_file, profile_template=self.template())

    def pair_with(self, key: str, phone: str) -> None:
        """The key's next starts ask for a pairing code for ``phone``
        instead of showing QR codes ("": QR codes)."""
        if phone:
            self._pair_with[key] = phone
        else:
            self._pair_with.pop(key, None)

    def prepare(self) -> None:
        """Ask Chromium its version as the node starts, not at its first
        create, which would wait for it (docs/decisions.md, "Chromium's
        version asked at the node's start")."""
        self._user_agent()

    def _user_agent(self) -> str:
        """``USER_AGENT``, else the installed Chromium's desktop one, asked
        once for every session (``useragent.py``); empty when Chromium
        cannot say, and the session then says why it cannot start."""
        if self.cfg.user_agent:
            return self.cfg.user_agent
        try:
            return desktop_user_agent(self.cfg.chrome_path)
        except VersionUnknown:
            return ""

    def may_start(self, key: str, now: float) -> bool:
        """True: start it now; False: it waits for a slot (``next_waiting``)."""
        if len(self._booting) < self.limit and self._ready(key):
            return True
        self._waiting.setdefault(key, now)
        return False

    def next_waiting(self) -> str | None:
        """The start to launch now, if a slot is free and one waits."""
        if len(self._booting) >= self.limit:
            return None
        return next((key for key in self._waiting if self._ready(key)), None)

    def _ready(self, key: str) -> bool:
        return self.gate(key) and not self.spawner.waits_for_server()

    def spawn(self, key: str, now: float) -> Child:
        """Start its process now (OSError if it cannot be; UnusableProfile
        if its profile folder cannot be used, which a restart would not
        change)."""
        self._waiting.pop(key, None)
        try:
            args = self.args_for(key)
        except (NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError) as e:
            raise UnusableProfile(f"its profile folder cannot hold its settings: {e.strerror}") from e
        child = self.spawner.spawn(args)
        self._booting.add(key)
        self.health.launched(key, now)
        log.info("session %s: started process %d%s", key, child.pid, " (forked warm)" if child.warm else "")
        return child

    def on_change(self, change: S.Change) -> None:
        """A listener of Sessions: leaving ``starting`` frees the slot; a
        session stopped or dropped no longer waits for one."""
        if change.old == S.STARTING:
            self._booting.discard(change.key)
            if self.pace is not None and change.new in (S.QR, S.READY):
                self.pace.booted(change.key)
        if change.new in (S.STOPPING, S.DROPPED):
            self._waiting.pop(change.key, None)
            if self.pace is not None:
                self.pace.booted(change.key)  # its count of slow boots goes with it
            self._pair_with.pop(change.key, None)

"""Starting session processes: the command line each gets from the node's
settings, and the start slots.

At most ``START_CONCURRENCY`` browsers boot at once (none by default): a
bound for a big node that restores or receives many sessions at once.  A
start beyond it waits its turn, in order of asking; a session frees its
slot when it leaves ``starting`` (its first QR code, ready, or its process
gone, the boot deadline included).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sessionproc.protocol import SessionArgs

from . import states as S
from .children import Child, Spawner
from .config import Config
from .health import Health
from .paths import Paths

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Starts:
    cfg: Config
    paths: Paths
    spawner: Spawner
    health: Health
    _waiting: dict[str, float] = field(default_factory=dict, init=False)  # key -> since, in order of asking
    _booting: set[str] = field(default_factory=set, init=False)  # started, still ``starting``
    # Keys created with ``pair_with_phone``: their processes link by pairing
    # code for that phone, until the key is stopped.
    _pair_with: dict[str, str] = field(default_factory=dict, init=False)

    @property
    def limit(self) -> float:
        return self.cfg.start_concurrency or float("inf")

    def args_for(self, key: str) -> SessionArgs:
        cfg = self.cfg
        return SessionArgs(key=key, profile=self.paths.profile(key), log_file=self.paths.session_log(key),
                           url=cfg.wa_url, chrome=cfg.chrome_path, chromedriver=cfg.chromedriver_path,
                           qr_max=cfg.qr_max, send_timeout=cfg.send_timeout, ping_timeout=cfg.ping_timeout,
                           boot_timeout=cfg.boot_timeout, user_agent=cfg.user_agent, send_seen=cfg.send_seen,
                           log_bodies=cfg.log_message_bodies, pair_with_phone=self._pair_with.get(key, ""),
                           pair_interval=float(cfg.qr_ttl))

    def pair_with(self, key: str, phone: str) -> None:
        """The key's next starts ask for a pairing code for ``phone``
        instead of showing QR codes ("": QR codes)."""
        if phone:
            self._pair_with[key] = phone
        else:
            self._pair_with.pop(key, None)

    def may_start(self, key: str, now: float) -> bool:
        """True: start it now; False: it waits for a slot (``next_waiting``)."""
        if len(self._booting) < self.limit:
            return True
        self._waiting.setdefault(key, now)
        return False

    def next_waiting(self) -> str | None:
        """The start to launch now, if a slot is free and one waits."""
        if len(self._booting) >= self.limit:
            return None
        return next(iter(self._waiting), None)

    def spawn(self, key: str, now: float) -> Child:
        """Start its process now (OSError if it cannot be)."""
        self._waiting.pop(key, None)
        child = self.spawner.spawn(self.args_for(key))
        self._booting.add(key)
        self.health.launched(key, now)
        log.info("session %s: started process %d", key, child.pid)
        return child

    def on_change(self, change: S.Change) -> None:
        """A listener of Sessions: leaving ``starting`` frees the slot; a
        session stopped or dropped no longer waits for one."""
        if change.old == S.STARTING:
            self._booting.discard(change.key)
        if change.new in (S.STOPPING, S.DROPPED):
            self._waiting.pop(change.key, None)
            self._pair_with.pop(change.key, None)

"""The settings desk: each session's settings (``sessionsettings.py``),
where they are kept, and ``update_settings``.

Where a session's settings come from when it starts here:

1. a ``create_instance`` that carries ``settings``: those, whole;
2. else what Redis keeps (``instances:{key}:settings``): the key ran
   elsewhere until just now (a drain, a failover) or ran here before a
   failure;
3. else the file in its profile (``protocol.SETTINGS_FILE``): this node ran
   the key before (a restart of the node, a crash of the session), or the
   profile came from the key's snapshot (a restore on another node);
4. else the defaults.

Where they are kept: in this desk's memory while the key is here (the one
that counts), in the profile's file (written at each start and each
change, so the session process reads its proxy there and the login's
snapshot carries them) and in Redis (the same moments, fenced as every
write of the key's owner; the TTL of the state, renewed with the lease).
A destroy deletes the Redis copy (no key of an instance is left behind);
the profile's copy goes with the profile (a destroy with ``logout``), else
stays with the saved login: a later create without ``settings`` gets them
back with it.

``update_settings`` changes the fields it gives (``null``: back to the
default) for a session that runs here (starting, showing a QR code, ready
or restarting).  A new proxy needs a new browser: a running session is
restarted at once (``restarted: true``, not counted as a crash); the rest
applies live, sends reading them as they go (``send_seen``, ``typing``,
``pacing``), the session told (``ignore``).  The answer is
``settings_updated_instance`` with the settings, the proxy's password
masked.  A ready session's login is saved again, so its snapshot carries
them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Protocol

import orjson

from sessionproc.protocol import SETTINGS_FILE

from . import states as S
from .commands import Command
from .paths import Paths, UnsafePath
from .sessionsettings import DEFAULT, SessionSettings, from_stored

log = logging.getLogger(__name__)

RESTART_REASON = "settings"  # why a session restarts for its new settings (state_instance, metrics)


class Store(Protocol):
    def set_settings(self, key: str, stored: str) -> None: ...
    def settings_of(self, key: str) -> str | None: ...


class Bus(Protocol):
    def emit_then_ack(self, name: str, body: dict, d) -> None: ...
    def fail(self, d, reason: str, detail: str, key: str | None, command_id: str | None) -> None: ...


class Sessions(Protocol):
    def get(self, key: str) -> S.SessionRecord | None: ...
    def recycle(self, rec: S.SessionRecord, now: float, reason: str, back_off: bool = True) -> None: ...


class SettingsDesk:
    def __init__(self, node_send_seen: bool, paths: Paths, store: Store, bus: Bus, sessions: Sessions,
                 unavailable: type[Exception], save_login: Callable[[str, str], None] | None = None):
        self.node_send_seen = node_send_seen  # SEND_SEEN: a session's send_seen when its settings say none
        self.paths = paths
        self.store = store
        self.bus = bus
        self.sessions = sessions
        self.unavailable = unavailable  # what the store raises when Redis cannot answer
        # key -> its settings; None: not known yet, the profile's at its start.
        self._settings: dict[str, SessionSettings | None] = {}
        # Saves a ready session's login (``Portable.save``; none without
        # portable logins).
        self.save_login: Callable[[str, str], None] = save_login or (lambda key, why: None)

    # ============================================================ reading
    def current(self, key: str) -> SessionSettings:
        """The key's settings as they apply now (the defaults for a key not
        known here)."""
        settings = self._settings.get(key)
        if settings is None:
            settings = self._from_profile(key) or DEFAULT
        return settings

    def seen(self, key: str) -> bool:
        """Whether its sends mark the chat read first."""
        return self.current(key).seen(self.node_send_seen)

    def send_fields(self, key: str, text: str, has_media: bool) -> dict:
        """What a send line carries of the settings (``sessionproc.protocol``)."""
        settings = self.current(key)
        fields: dict[str, object] = {"seen": settings.seen(self.node_send_seen)}
        typing_ms = 0 if has_media else settings.typing_ms(text)
        if typing_ms:
            fields["typing_ms"] = typing_ms
        return fields

    def proxy_hosts(self) -> dict[str, str]:
        """Key -> the ``host:port`` of its proxy, for the keys with one."""
        return {key: s.proxy_host() for key, s in self._settings.items() if s is not None and s.proxy is not None}

    # ====================================================== creates, starts
    def before_start(self, cmd: Command) -> None:
        """A create is about to start the key here (``Sessions.create``)."""
        key = cmd.key
        if cmd.settings is not None:
            self._settings[key] = cmd.settings
            return
        kept = self._from_redis(key)
        if kept is not None:
            self._settings[key] = kept
        else:
            self._settings.setdefault(key, None)  # a failed one keeps what it had

    def start_file(self, key: str) -> Path:
        """The key's process starts now: its settings file written (OSError
        if it cannot be), Redis told, the file's path returned."""
        settings = self._settings.get(key)
        if settings is None:
            settings = self._from_profile(key) or DEFAULT
            self._settings[key] = settings
        path = self._write_file(key, settings)
        self.store.set_settings(key, orjson.dumps(settings.stored()).decode())
        return path

    def resync(self) -> None:
        """Redis came back, maybe empty: write every known session's again."""
        for key, settings in self._settings.items():
            if settings is not None:
                self.store.set_settings(key, orjson.dumps(settings.stored()).decode())

    # ============================================================ updating
    def update(self, cmd: Command, d, now: float) -> None:
        """The handler of ``update_settings``."""
        key = cmd.key
        rec = self.sessions.get(key)
        if rec is None or rec.state in (S.STOPPING, S.STOPPED):
            self.bus.fail(d, "unknown_instance", f"no session {key} on this node", key, cmd.command_id)
            return
        if rec.state == S.FAILED:
            self.bus.fail(d, "session_failed", f"session {key} failed; a create_instance with settings starts it "
                                               f"again", key, cmd.command_id)
            return
        old = self.current(key)
        new = old.changed(cmd.settings_change or {})
        self._settings[key] = new
        changed = sorted(name for name, value in new.stored().items() if old.stored()[name] != value)
        try:
            self._write_file(key, new)
        except (OSError, UnsafePath) as e:
            # The change holds here (memory, Redis); the profile's copy is
            # written again at the next start.
            log.error("session %s: could not write its settings file: %s", key, getattr(e, "strerror", None) or e)
        self.store.set_settings(key, orjson.dumps(new.stored()).decode())
        restarted = False
        if new.proxy != old.proxy and rec.child is not None and rec.state in S.RUNNING:
            log.info("session %s: settings changed (%s); restarting it for its new proxy", key, ", ".join(changed))
            self.sessions.recycle(rec, now, RESTART_REASON, back_off=False)
            restarted = True
        else:
            log.info("session %s: settings changed (%s)", key, ", ".join(changed) or "nothing")
            if new.ignore != old.ignore and rec.child is not None:
                rec.child.send({"cmd": "settings", "ignore": list(new.ignore)})
            if rec.state == S.READY:
                self.save_login(key, "settings")
        self.bus.emit_then_ack("settings_updated_instance", {"key": key, "settings": new.public(),
                                                             "restarted": restarted,
                                                             "command_id": cmd.command_id}, d)

    # ================================================== following sessions
    def on_change(self, change: S.Change) -> None:
        if change.new == S.DROPPED or (change.new == S.STOPPED and (change.for_good or change.moving)):
            self._settings.pop(change.key, None)  # the next start reads them again (Redis, the profile)

    # ============================================================= storage
    def _from_redis(self, key: str) -> SessionSettings | None:
        try:
            raw = self.store.settings_of(key)
        except self.unavailable:
            return None  # the profile's, then
        if raw is None:
            return None
        try:
            return from_stored(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError) as e:
            log.error("session %s: its settings in Redis cannot be read (%s); using the profile's", key, e)
            return None

    def _file(self, key: str) -> Path:
        return self.paths.profile(key) / SETTINGS_FILE

    def _from_profile(self, key: str) -> SessionSettings | None:
        try:
            raw = self._file(key).read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, UnsafePath) as e:
            log.error("session %s: cannot read its settings file: %s", key, getattr(e, "strerror", None) or e)
            return None
        try:
            return from_stored(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError) as e:
            log.error("session %s: its settings file cannot be read (%s); using the defaults", key, e)
            return None

    def _write_file(self, key: str, settings: SessionSettings) -> Path:
        """Written whole or not at all (a new file renamed over the old),
        readable by the service's user only: it holds the proxy's
        password."""
        path = self._file(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{SETTINGS_FILE}.{os.getpid()}")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(orjson.dumps(settings.stored()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

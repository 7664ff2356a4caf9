"""Linking by pairing code: a ``create_instance`` with ``pair_with_phone``.

The session process asks the page for a code instead of showing QR codes
(``--pair-with-phone``) and reports each one (``pairing_code``).  Here a
code is kept where clients look for it, ``instances:{key}:pairing_code``,
under the QR code's rule (TTL ``QR_TTL``, removed as soon as the session
leaves the ``qr`` state: linked, stopped, failed), and published as
``pairing_code_instance``.  The session is ``qr`` while a code waits to be
typed, as while a QR code waits to be scanned.
"""

from __future__ import annotations

from typing import Protocol

from . import states as S


class Store(Protocol):
    def set_pairing_code(self, key: str, code: str) -> None: ...
    def clear_pairing_code(self, key: str) -> None: ...


class Bus(Protocol):
    def emit(self, name: str, body: dict) -> None: ...
    def emit_as_owner(self, name: str, body: dict) -> None: ...


class Sessions(Protocol):
    def set_state(self, rec: S.SessionRecord, new: str, now: float, reason: str = "") -> None: ...


class Pairing:
    def __init__(self, store: Store, bus: Bus, sessions: Sessions):
        self.store = store
        self.bus = bus
        self.sessions = sessions
        self._shown: set[str] = set()  # keys whose code may be in Redis

    def handlers(self) -> dict:
        """The session events acted on here (``protocol.EVENTS``)."""
        return {"pairing_code": self._on_code}

    def _on_code(self, rec: S.SessionRecord, e: dict, now: float) -> None:
        if rec.state not in (S.STARTING, S.QR):
            return  # being stopped: the code is stale
        # Redis first (the code, then the state): a client that sees an
        # event finds Redis agreeing.  Then the events, the state first, as
        # for a QR code (``Sessions._on_qr``).
        self._shown.add(rec.key)
        self.store.set_pairing_code(rec.key, e["code"])
        self.sessions.set_state(rec, S.QR, now)
        if rec.state != S.QR:
            return  # a part failed on this change, and the session with it (``Sessions.contain``)
        self.bus.emit_as_owner("pairing_code_instance", {"key": rec.key, "code": e["code"], "attempt": e["attempt"]})

    def on_change(self, change: S.Change) -> None:
        """A listener of Sessions: a code lives only while the session
        waits in ``qr``."""
        if change.new != S.QR and change.key in self._shown:
            self._shown.discard(change.key)
            self.store.clear_pairing_code(change.key)

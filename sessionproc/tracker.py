"""What the page reports, turned into the session's events and fate.

The one place where a session process decides what happened: it is fed
the reports of ``hook.js`` (plus ``crashed``/``closed`` from the browser
connection) and answers with events for the parent.  Once it has decided
the session is over, ``exit_code`` is set and later reports are ignored.
Pure logic, no I/O: unit-tested without a browser.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from .protocol import ENDING_STATES, EXIT_CRASHED, EXIT_ENDED, UNPAIRED_STATES

log = logging.getLogger(__name__)


class Tracker:
    def __init__(self, wa_url: str, qr_max: int, was_linked: bool):
        self._origin = _origin(wa_url)
        self.qr_max = qr_max
        # The profile held a link when we started: a QR now means the phone
        # rejected it (WhatsApp Web itself would just show a QR again).
        self.was_linked = was_linked
        self.authenticated = False
        self.me: str | None = None
        self.qr_attempts = 0
        self.state: str | None = None
        self.exit_code: int | None = None
        self.page_seen = False  # a document of WhatsApp Web's origin loaded

    @property
    def ready(self) -> bool:
        return self.authenticated and self.exit_code is None

    def feed(self, report: dict) -> list[dict]:
        if self.exit_code is not None:
            return []
        kind = report.get("type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            log.warning("unknown page report %r", kind)
            return []
        return handler(report)

    # ------------------------------------------------------------ reports
    def _on_page(self, r: dict) -> list[dict]:
        url = str(r.get("url", ""))
        parts = urlsplit(url)
        if parts.scheme == "chrome-error":
            return self._crash("page_unreachable")
        if _origin(url) != self._origin:
            if not self.page_seen:
                return []  # Chrome's own start pages, before ours loads
            return self._crash("navigated_away")
        self.page_seen = True
        if parse_qs(parts.query).get("post_logout") == ["1"]:
            return self._unlinked("LOGOUT")
        return []

    def _on_loaded(self, r: dict) -> list[dict]:
        log.info("page loaded, WhatsApp Web %s", r.get("version"))
        return []

    def _on_state(self, r: dict) -> list[dict]:
        state = str(r.get("state"))
        if state == self.state:
            return []
        self.state = state
        events = [{"event": "state", "state": state}]
        if state in UNPAIRED_STATES:
            if not self.authenticated and not self.was_linked and state == "UNPAIRED_IDLE":
                return events + self._end_auth("qr_attempts_exhausted")
            return events + self._unlinked(state)
        if state in ENDING_STATES:
            return events + self._end({"event": "disconnected", "reason": state}, EXIT_ENDED)
        return events

    def _on_qr(self, r: dict) -> list[dict]:
        if self.authenticated:
            return []
        if self.was_linked:
            return self._end_auth("credentials_rejected")
        self.qr_attempts += 1
        if self.qr_attempts > self.qr_max:
            return self._end_auth("qr_attempts_exhausted")
        return [{"event": "qr", "qr": r.get("qr"), "attempt": self.qr_attempts}]

    def _on_synced(self, r: dict) -> list[dict]:
        if self.authenticated:
            return []
        self.authenticated = True
        self.me = r.get("me")
        return [{"event": "authenticated"}, {"event": "ready", "me": self.me}]

    def _on_message(self, r: dict) -> list[dict]:
        return [{"event": "message", "message": r.get("message")}]

    def _on_logout(self, r: dict) -> list[dict]:
        return self._unlinked("LOGOUT")

    def _on_error(self, r: dict) -> list[dict]:
        log.error("page reported %s: %s", r.get("reason"), r.get("detail"))
        if r.get("reason") in ("page_not_loaded", "hook_failed"):
            return self._crash(str(r.get("reason")))
        return []

    def _on_crashed(self, r: dict) -> list[dict]:
        return self._crash("page_crashed")

    def _on_closed(self, r: dict) -> list[dict]:
        return self._crash("browser_closed")

    # ------------------------------------------------------------ endings
    def _unlinked(self, reason: str) -> list[dict]:
        """The device is not (or no longer) linked to the phone."""
        if self.authenticated:
            return self._end({"event": "disconnected", "reason": reason}, EXIT_ENDED)
        if self.was_linked:
            return self._end_auth("credentials_rejected")
        return []  # a fresh profile shows a QR: that is the normal start

    def _end_auth(self, reason: str) -> list[dict]:
        return self._end({"event": "auth_failure", "reason": reason}, EXIT_ENDED)

    def _crash(self, reason: str) -> list[dict]:
        return self._end({"event": "disconnected", "reason": reason}, EXIT_CRASHED)

    def _end(self, event: dict, code: int) -> list[dict]:
        self.exit_code = code
        return [event]


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc

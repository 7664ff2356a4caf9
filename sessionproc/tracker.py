"""What the page reports, turned into the session's events and fate.

The one place where a session process decides what happened: it is fed
the reports of ``hook.js`` (plus ``crashed``/``closed`` from the browser
connection) and answers with events for the parent.  Once it has decided
the session is over, ``exit_code`` is set and later reports are ignored.
Pure logic, no I/O: unit-tested without a browser; time is handed in.

Booting has a deadline: from the start, and again from every new document
after a loaded one, the page has ``boot_timeout`` seconds to bring up its
module system and pass the check of what the session uses (the session
feeds that check's outcome as the ``loaded`` report).  A page that does
not is a crash worth a restart (``boot_timeout``); a page that loads but
lacks something ends the session for good (``incompatible_page``).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from . import grouprules
from .protocol import (
    DEFAULT_BOOT_TIMEOUT,
    ENDING_STATES,
    EXIT_CANNOT_START,
    EXIT_CRASHED,
    EXIT_ENDED,
    REASON_BOOT_TIMEOUT,
    REASON_INCOMPATIBLE_PAGE,
    UNPAIRED_STATES,
)

log = logging.getLogger(__name__)


class Tracker:
    def __init__(self, wa_url: str, qr_max: int, was_linked: bool,
                 boot_timeout: float = DEFAULT_BOOT_TIMEOUT, now: float = 0.0, pairing: bool = False):
        self._origin = _origin(wa_url)
        self.boot_timeout = boot_timeout
        # When the page must have loaded by; None while a loaded page runs.
        self.boot_deadline: float | None = now + boot_timeout
        self.qr_max = qr_max
        # The profile held a link when we started: a QR now means the phone
        # rejected it (WhatsApp Web itself would just show a QR again).
        self.was_linked = was_linked
        self.authenticated = False
        self.me: str | None = None
        self.qr_attempts = 0
        # Linking by pairing code: the page's QR codes are not shown; each
        # code counts as an attempt, as a QR code would.
        self.pairing = pairing
        self.state: str | None = None
        self.exit_code: int | None = None
        self.page_seen = False  # a document of WhatsApp Web's origin loaded
        self._now = now  # the time of the report being handled

    @property
    def ready(self) -> bool:
        return self.authenticated and self.exit_code is None

    def feed(self, report: dict, now: float = 0.0) -> list[dict]:
        """The events one report means; ``now`` is the caller's monotonic
        clock (only the boot deadline reads it)."""
        if self.exit_code is not None:
            return []
        kind = report.get("type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            log.warning("unknown page report %r", kind)
            return []
        self._now = now
        return handler(report)

    def tick(self, now: float) -> list[dict]:
        """What the passing of time decided: a page that did not load."""
        if self.exit_code is not None or self.boot_deadline is None or now < self.boot_deadline:
            return []
        detail = f"WhatsApp Web did not load within {self.boot_timeout:g} s (no window.Debug.VERSION)"
        return self._crash(REASON_BOOT_TIMEOUT, detail)

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
        if self.boot_deadline is None:  # a new document: it must load in turn
            self.boot_deadline = self._now + self.boot_timeout
        if parse_qs(parts.query).get("post_logout") == ["1"]:
            return self._unlinked("LOGOUT")
        return []

    def _on_loaded(self, r: dict) -> list[dict]:
        """The module system is up and was checked; ``missing`` lists what
        the session needs at load that the page lacks."""
        if r.get("missing"):
            return self._incompatible(r["missing"])
        self.boot_deadline = None
        log.info("page loaded, WhatsApp Web %s", r.get("version"))
        return [{"event": "loaded", "version": r.get("version"), "user_agent": r.get("user_agent"),
                 "webdriver": r.get("webdriver")}]

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
        if self.pairing:
            return []  # the session asks for a pairing code instead
        self.qr_attempts += 1
        if self.qr_attempts > self.qr_max:
            return self._end_auth("qr_attempts_exhausted")
        return [{"event": "qr", "qr": r.get("qr"), "attempt": self.qr_attempts}]

    def _on_pairing_code(self, r: dict) -> list[dict]:
        if self.authenticated or not self.pairing:
            return []
        self.qr_attempts += 1
        if self.qr_attempts > self.qr_max:
            return self._end_auth("qr_attempts_exhausted")
        return [{"event": "pairing_code", "code": str(r.get("code")), "attempt": self.qr_attempts}]

    def _on_pairing_refused(self, r: dict) -> list[dict]:
        """The page would not give a pairing code (the phone number is not
        one WhatsApp links this way, say): linking cannot go on."""
        log.error("no pairing code: %s", r.get("detail"))
        return self._end_auth("pairing_refused")

    def _on_ack(self, r: dict) -> list[dict]:
        return [{"event": "ack", "message_id": str(r.get("message_id")), "chat_id": r.get("chat_id"),
                 "ack": int(r.get("ack") or 0)}]

    def _on_reaction(self, r: dict) -> list[dict]:
        event = {"event": "reaction", "message_id": str(r.get("message_id")), "reaction": str(r.get("reaction") or ""),
                 "sender": r.get("sender")}
        for name in ("sender_pn", "sender_lid"):
            if isinstance(r.get(name), str):
                event[name] = r[name]
        return [event]

    def _on_edit(self, r: dict) -> list[dict]:
        return [{"event": "message_edit", "message": r.get("message") or {},
                 "previous_body": str(r.get("previous_body") or "")}]

    def _on_revoke(self, r: dict) -> list[dict]:
        return [{"event": "message_revoke", "message_id": str(r.get("message_id")), "chat_id": r.get("chat_id"),
                 "from_me": bool(r.get("from_me"))}]

    def _on_poll_vote(self, r: dict) -> list[dict]:
        selected = r.get("selected")
        event = {"event": "poll_vote", "message_id": str(r.get("message_id")), "voter": r.get("voter"),
                 "selected": selected if isinstance(selected, list) else None,
                 "selected_ids": r.get("selected_ids") if isinstance(r.get("selected_ids"), list) else []}
        for name in ("voter_pn", "voter_lid"):
            if isinstance(r.get(name), str):
                event[name] = r[name]
        return [event]

    def _on_call(self, r: dict) -> list[dict]:
        """Someone calls the account (calls.js); a call without an id of
        its own cannot be named in a reject, so it is only logged."""
        call = r.get("call")
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
            log.warning("a call the page reported without an id: %r", call)
            return []
        out = {"id": call["id"], "from": call.get("from") if isinstance(call.get("from"), str) else None,
               "is_video": bool(call.get("is_video")), "is_group": bool(call.get("is_group")),
               "ts": int(call["ts"]) if isinstance(call.get("ts"), (int, float)) and not isinstance(call["ts"], bool)
               else None}
        out.update({k: call[k] for k in ("from_pn", "from_lid") if isinstance(call.get(k), str)})
        return [{"event": "call", "call": out}]
    def _on_group_update(self, r: dict) -> list[dict]:
        event = grouprules.update_event(r)
        if event is None:
            log.info("group %s: a change %r, not reported", r.get("group_id"), r.get("subtype"))
            return []
        return [event]

    def _on_synced(self, r: dict) -> list[dict]:
        """The page synced; ``missing`` lists what messages and sends need
        that it lacks (checked only now, as whatsapp-web.js does)."""
        if self.authenticated:
            return []
        if r.get("missing"):
            return self._incompatible(r["missing"])
        self.authenticated = True
        self.me = r.get("me")
        ready = {"event": "ready", "me": self.me}
        if isinstance(r.get("me_lid"), str) and r["me_lid"] != self.me:
            ready["me_lid"] = r["me_lid"]  # the account's LID, where the page has one
        return [{"event": "authenticated"}, ready]

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

    def _incompatible(self, missing: list) -> list[dict]:
        detail = "the page lacks " + ", ".join(map(str, missing))
        return self._end({"event": "disconnected", "reason": REASON_INCOMPATIBLE_PAGE, "detail": detail},
                         EXIT_CANNOT_START)

    def _end_auth(self, reason: str) -> list[dict]:
        return self._end({"event": "auth_failure", "reason": reason}, EXIT_ENDED)

    def _crash(self, reason: str, detail: str | None = None) -> list[dict]:
        event = {"event": "disconnected", "reason": reason}
        if detail:
            event["detail"] = detail
        return self._end(event, EXIT_CRASHED)

    def _end(self, event: dict, code: int) -> list[dict]:
        self.exit_code = code
        return [event]


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc

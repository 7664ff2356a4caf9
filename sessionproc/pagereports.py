"""The page's reports on the main thread: checked, fed to the tracker, passed on in order."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from . import pageapi
from .devtools import DevToolsError
from .inbound import needs_the_page
from .pagescripts import CHECK_AND_ATTACH_JS, CHECK_JS
from .protocol import LINKED_MARKER, UNLINKED_REASONS, chat_kind
from .sessionstate import SessionState
from .tracker import Tracker

log = logging.getLogger(__name__)


class PageReports:
    """The page's reports (from the inbox) and the tracker's ticks become
    events: each is written, by the ``inbound`` thread or, when that has
    nothing in hand, here, after its outcome is kept (``ready``, the
    profile's link marker)."""

    def __init__(self, state: SessionState):
        opts = state.opts
        self.state = state  # its ignore, which the stdin thread replaces, and devtools
        self.opts, self.sends, self.inbound, self.ready = opts, state.sends, state.inbound, state.ready
        self.tracker = Tracker(opts.url, opts.qr_max, was_linked=self._marker().exists(),
                               boot_timeout=opts.boot_timeout, now=time.monotonic(),
                               pairing=bool(opts.pair_with_phone))
        self.needs_at_load = pageapi.needs(opts.send_seen, pageapi.AT_LOAD, pairing=bool(opts.pair_with_phone))
        self.needs_when_synced = pageapi.needs(opts.send_seen, pageapi.WHEN_SYNCED)
        self.pairing_asked = False  # a pairing code was asked for on this document
        self.listening = False  # the page's hook reports to us (attached once its load was checked)

    def on_page_report(self, report: dict) -> None:
        if report.get("type") == "message" and self._ignored(report.get("message")):
            return
        if report.get("type") == "message" and not self.opts.log_bodies:
            log.info("page: message %s", (report.get("message") or {}).get("id", {}).get("_serialized"))
        elif report.get("type") != "qr":  # QR strings are credentials-to-be
            log.info("page: %s", report)
        if report.get("type") in ("loaded", "synced"):
            checked = self._check_page(report)
            if checked is None:
                return
            report = checked
        if report.get("type") == "page":
            self.pairing_asked = False  # a new document: its own request
            self.listening = False  # and its own hook, attached once its load is checked
        if self._wants_pairing_code(report):
            self.pairing_asked = True
            self.sends.put({"cmd": "pair"})
        self.emit_all(self.tracker.feed(report, time.monotonic()))

    def _ignored(self, message) -> bool:
        """A message of a kind of chat the settings say not to report
        (``ignore``): dropped here, before its media is fetched."""
        kind = chat_kind(message) if isinstance(message, dict) and self.state.ignore else None
        if kind is None or kind not in self.state.ignore:
            return False
        ident = message.get("id")
        log.info("page: message %s not reported (ignore %s)",
                 ident.get("_serialized") if isinstance(ident, dict) else None, kind)
        return True

    def _wants_pairing_code(self, report: dict) -> bool:
        """With ``--pair-with-phone``, a page that needs linking (it shows
        a QR code) is asked for a pairing code instead, once per document
        (the page then asks for new ones by itself)."""
        return (bool(self.opts.pair_with_phone) and report.get("type") == "qr" and not self.pairing_asked
                and not self.tracker.authenticated and not self.tracker.was_linked
                and self.tracker.exit_code is None)

    def emit_all(self, events: list[dict]) -> None:
        for event in events:
            self._on_outcome(event)
            # In order, behind any media being fetched.  When nothing waits
            # or is being written there, and this event needs no page call,
            # it is written here as it would be there, a thread's wake-up
            # sooner (main thread to written: 0.30-0.36 ms at the median, 0.23 now): this
            # thread is the queue's one producer, and the writer counts an
            # event done only once written, so none can be overtaken.
            if self.inbound.unfinished_tasks == 0 and not needs_the_page(event):
                self.state.out.emit(event)
            else:
                self.inbound.put(event)

    def _check_page(self, report: dict) -> dict | None:
        """The ``loaded`` or ``synced`` report with what the page lacks of
        what that stage needs (pageapi); at load, the page's listeners are
        attached if it lacks nothing.  None when the document went away
        meanwhile (the next one reports in turn)."""
        loaded = report["type"] == "loaded"
        wanted = self.needs_at_load if loaded else self.needs_when_synced
        script = CHECK_AND_ATTACH_JS if loaded else CHECK_JS
        try:
            found = self.state.live_devtools().call_function(script, [pageapi.as_data(wanted)],
                                                          timeout=self.opts.ping_timeout)
        except (DevToolsError, TimeoutError) as e:
            log.warning("could not check the page: %s", e)
            return None
        missing = pageapi.missing(wanted, found)
        if loaded and not missing:
            self.listening = True  # the script attached the hook
        return report | {"missing": missing}

    def _on_outcome(self, event: dict) -> None:
        name = event["event"]
        if name == "ready":
            self._marker().write_text(event.get("me") or "")
            self.ready.set()
        elif name in ("auth_failure", "disconnected") and self.tracker.exit_code is not None:
            self.ready.clear()
            if event.get("reason") in UNLINKED_REASONS:
                # The phone no longer knows this profile: forget it was linked.
                self._marker().unlink(missing_ok=True)
        log.info("event %s %s", name, event.get("reason") or event.get("attempt") or "")

    def _marker(self) -> Path:
        return self.opts.profile_dir / LINKED_MARKER

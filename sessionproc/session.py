"""A session's main thread: it starts the browser and the threads, reads the inbox, ends the page.

Threads and who owns what (each thread's class in a module of its own, what
they share in ``sessionstate.py``):

- the main thread (here) owns the :class:`Tracker` (``pagereports.py``);
  it takes page reports, pings and ``stop`` from one inbox queue, in order;
- the ``sender`` thread (``sender.py``) performs the page's commands
  (sends, actions, number checks, pairing) one at a time through Selenium,
  so a slow send never delays a page event or a ping;
- the ``inbound`` thread (``inbound.py``) writes the page's events out in
  order, a message with media once its file is fetched (an event that
  finds it with nothing in hand the main thread writes itself);
- the ``stdin`` thread (``stdinreader.py``) reads commands; the
  ``devtools`` thread reads what the page pushes (``pagepump.py``); the
  ``signals`` thread turns a stop signal into a stop (``stopping.py``).
  These only put things in queues;
- the ``stop-deadline`` thread, once a stop is asked, ends the process when
  the stop takes too long.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from . import browser, pageapi, settingsfile
from .chromeflags import PROXY_PREFS, proxy_flags
from .pagescripts import CHECK_AND_ATTACH_JS, LOGOUT_JS, PING_EXPR, hook_source
from .devtools import DevTools, DevToolsError, page_websocket_url
from .inbound import InboundWriter
from .output import Output
from .pagepump import PagePump
from .pagereports import PageReports
from .sender import Sender
from .sessionstate import BINDING, DRIVER_ERRORS, Options, SessionState
from .stdinreader import StdinReader
from .stopping import Stopper
from .protocol import EXIT_CANNOT_START, EXIT_CRASHED, EXIT_STOPPED
from .proxyurl import ProxyUrl

if TYPE_CHECKING:
    # Imported where a proxy is set: the relay brings asyncio and ssl,
    # about 2 MB a session process that most sessions would pay for nothing.
    from .proxyrelay import ProxyRelay

log = logging.getLogger(__name__)

# A stop that finds the page's modules not there yet waits this long, at
# most, for them (checking every ATTACH_POLL s), to listen before it closes
# the page: a page restored with messages held for it takes them within a
# sync of its modules appearing (docs/decisions.md, "A stopping session
# waits for the page's modules").
ATTACH_BEFORE_CLOSE = 2.0
ATTACH_POLL = 0.05


class Session(SessionState):
    """The main thread, and the state all the session's threads share."""

    def __init__(self, opts: Options, out: Output, log_file):
        super().__init__(opts, out)
        self.log_file = log_file
        self.reports = PageReports(self)  # the tracker, and whether the page's hook reports to us
        self.tracker = self.reports.tracker
        self.pump = PagePump(self.inbox)
        self.sender = Sender(self)
        self.writer = InboundWriter(self)
        self.logout_on_stop = False
        self.proxy: ProxyUrl | None = None  # the settings' proxy (the browser goes through it)
        self.relay: ProxyRelay | None = None  # the browser's way to it
        self.stopper = Stopper.for_this_process(lambda item: self.inbox.put(("stop", item)), opts.stop_timeout,
                                                EXIT_STOPPED)
        self.reader = StdinReader(self, self.stopper)

    # ------------------------------------------------------------- run
    def run(self) -> int:
        self.out.emit({"event": "starting", "pid": os.getpid()})
        try:
            settings = settingsfile.read(self.opts.settings_file)
        except settingsfile.BadSettingsFile as e:
            log.error("cannot start: %s", e)
            self.out.emit({"event": "disconnected", "reason": "cannot_start", "detail": str(e)})
            return EXIT_CANNOT_START
        self.ignore, self.proxy = frozenset(settings.ignore), settings.proxy
        if self.proxy is not None:
            from .proxyrelay import ProxyError  # only with a proxy: see the import above
            try:
                self._start_relay(self.proxy)
            except ProxyError as e:
                # Not worth a restart: a dead proxy or refused credentials
                # fail the same way at the next start.  The detail names
                # the proxy by host and port only.
                log.error("cannot start: %s", e.detail)
                self.out.emit({"event": "disconnected", "reason": "proxy_error", "detail": e.detail})
                self._close_relay()
                return EXIT_CANNOT_START
        try:
            self._start_browser()
        except browser.CannotStart as e:
            log.error("cannot start: %s", e)
            self.out.emit({"event": "disconnected", "reason": "cannot_start", "detail": str(e)})
            self._close_relay()
            return EXIT_CANNOT_START
        except (RuntimeError, DevToolsError, TimeoutError, *DRIVER_ERRORS) as e:
            log.error("browser start failed: %s", e)
            self.out.emit({"event": "disconnected", "reason": "browser_failed", "detail": str(e)})
            self._quit_browser()
            self._close_relay()
            return EXIT_CRASHED
        threading.Thread(target=self._guarded, args=(self.reader.run,), name="stdin", daemon=True).start()
        sender = threading.Thread(target=self._guarded, args=(self.sender.run,), name="sender", daemon=True)
        sender.start()
        inbound = threading.Thread(target=self._guarded, args=(self.writer.run,), name="inbound", daemon=True)
        inbound.start()
        code = self._main_loop()
        self.stopping.set()  # sends still queued now fail fast
        self.sends.put(None)
        # Each wait below fits in what is left before the stop's deadline,
        # with room kept for quitting the browser.
        sender.join(self.stopper.left(self.opts.send_timeout + 5))  # let a send in flight finish
        if code == EXIT_STOPPED:
            if not self.stopper.orphaned():  # else nobody reads what the page took
                self.writer.wait(self.stopper.left(self.opts.send_timeout))
            self._stop_page()
        # Messages already taken are reported before the process ends (a
        # media file still being fetched gets the rest of its time).
        self.inbound.put(None)
        inbound.join(self.stopper.left(self.opts.send_timeout + 5))
        self._quit_browser()
        self._close_relay()
        return code

    def _start_relay(self, proxy: ProxyUrl) -> None:
        """The proxy's relay, and one tunnel through it to the page's host
        first: a proxy that is down or refuses the credentials is said so
        (ProxyError) before any browser starts."""
        from .proxyrelay import ProxyRelay
        self.relay = ProxyRelay(proxy)
        self.relay.start()
        page = urlsplit(self.opts.url)
        started = time.monotonic()
        host = cast(str, page.hostname)  # an http(s) URL, checked with the options
        self.relay.check(host, page.port or (443 if page.scheme == "https" else 80))
        log.info("proxy %s reached %s in %.2f s", proxy.public(), page.hostname, time.monotonic() - started)

    def _close_relay(self) -> None:
        if self.relay is not None:
            self.relay.close()
            self.relay = None

    def _start_browser(self) -> None:
        flags, prefs = [], {}
        if self.relay is not None:
            flags, prefs = proxy_flags(self.relay.port), PROXY_PREFS
        cfg = browser.BrowserConfig(
            profile_dir=self.opts.profile_dir,
            chrome=self.opts.chrome,
            chromedriver=self.opts.chromedriver,
            user_agent=self.opts.user_agent,
            page_load_timeout=self.opts.boot_timeout,
            extra_flags=flags,
            extra_prefs=prefs,
            profile_template=self.opts.profile_template,
        )
        started = time.monotonic()
        self.driver = driver = browser.launch(cfg, self.log_file)
        driver.set_script_timeout(self.opts.send_timeout)
        self.out.emit({"event": "browser", "pids": browser.browser_pids(driver)})
        ws_url = page_websocket_url(browser.debugger_address(driver))
        self.devtools = devtools = DevTools(ws_url, self.pump.on_event,
                                            lambda: self.inbox.put(("page", {"type": "closed"})))
        # Bindings are reported, and new-document scripts run, only with
        # these domains enabled on our connection.
        for domain in ("Runtime", "Page", "Inspector"):
            devtools.call(f"{domain}.enable")
        devtools.call("Runtime.addBinding", {"name": BINDING})
        devtools.call("Page.addScriptToEvaluateOnNewDocument", {"source": hook_source()})
        log.info("browser and DevTools ready in %.2f s", time.monotonic() - started)
        self._open_page()

    def _open_page(self) -> None:
        """Navigate to WhatsApp Web with what is left of the boot budget."""
        log.info("opening %s", self.opts.url)
        boot_deadline = cast(float, self.tracker.boot_deadline)  # set until the page has loaded
        left = max(1.0, boot_deadline - time.monotonic())
        if not browser.open_url(self.live_driver(), self.opts.url, left):
            log.warning("the page did not finish loading in time")  # the boot deadline decides

    def _main_loop(self) -> int:
        while True:
            deadline = self.tracker.boot_deadline
            try:
                kind, item = self.inbox.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                kind, item = "deadline", {}
            if kind == "deadline":
                self.reports.emit_all(self.tracker.tick(time.monotonic()))
            elif kind == "page":
                self.reports.on_page_report(item)
            elif kind == "ping":
                self._ping(item)
            elif kind == "crashed":
                log.critical("the %s thread ended on an error (above): the session ends as crashed", item["thread"])
                return EXIT_CRASHED
            elif kind == "stop":
                self.logout_on_stop = bool(item.get("logout", False))
                log.info("stopping (%s)%s", item.get("why"), " and logging out" if self.logout_on_stop else "")
                return EXIT_STOPPED
            if self.tracker.exit_code is not None:
                return self.tracker.exit_code

    def _guarded(self, run: Callable[[], None]) -> None:
        """A worker thread's body.  An exception that would end it (a bug,
        or a failure nobody foresaw) is logged with its traceback and ends
        the session as a crash, which the node restarts: a session whose
        sender or inbound thread died would otherwise stay "ready" and
        answer nothing."""
        try:
            run()
        except BaseException:
            log.exception("the %s thread failed", threading.current_thread().name)
            self.inbox.put(("crashed", {"thread": threading.current_thread().name}))

    # ------------------------------------------------------------- ping
    def _ping(self, cmd: dict) -> None:
        pong = {"event": "pong", "id": cmd["id"], "ready": self.ready.is_set()}
        try:
            result = self.live_devtools().call(
                "Runtime.evaluate", {"expression": PING_EXPR, "returnByValue": True}, timeout=self.opts.ping_timeout
            )
        except TimeoutError:
            pong |= {"ok": False, "detail": f"page did not answer in {self.opts.ping_timeout:g} s"}
        except DevToolsError as e:
            pong |= {"ok": False, "detail": f"page unreachable: {e}"}
        else:
            pong |= {"ok": True, "state": result.get("result", {}).get("value")}
        self.out.emit(pong)

    # ------------------------------------------------------------- stop
    def _stop_page(self) -> None:
        """On a requested stop: unlink the device first when asked to;
        otherwise close the page first, then report what it said last."""
        if not self.logout_on_stop:
            self._close_page()
            return
        if self.tracker.authenticated and self.tracker.exit_code is None:
            try:
                driver = self.live_driver()
                driver.set_script_timeout(10)
                driver.execute_async_script(LOGOUT_JS)
            except DRIVER_ERRORS as e:
                log.warning("logout on the page failed: %s", e)
        self._quit_browser()
        # The profile holds the device's credentials: gone with the link.
        shutil.rmtree(self.opts.profile_dir, ignore_errors=True)

    def _close_page(self) -> None:
        """Until the page is gone it keeps taking messages from WhatsApp
        (which then counts them delivered): unload it, so later ones wait on
        the server, and report the messages it took before."""
        self._listen_before_closing()
        try:
            self.live_driver().get("about:blank")
        except DRIVER_ERRORS as e:
            log.warning("could not close the page: %s", e)
        self._devtools_barrier()
        while True:
            try:
                kind, item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "page" and item.get("type") == "message":
                self.reports.on_page_report(item)

    def _devtools_barrier(self) -> None:
        """Until what the page reported before it went is in the inbox: a
        round trip on the DevTools connection, whose reader hands events
        over in the order they came, so every report sent before its answer
        has been queued (a message reported as the page closed otherwise
        came after the inbox was read, and was lost)."""
        if self.devtools is None:
            return
        try:
            self.live_devtools().call("Runtime.evaluate", {"expression": "0"}, timeout=self.opts.ping_timeout)
        except (DevToolsError, TimeoutError) as e:
            log.warning("the page's connection did not answer after closing: %s", e)

    def _listen_before_closing(self) -> None:
        """A stop that came while the page loaded (the session reads its
        input only once the page is open, and attaches the page's hook only
        once it has checked the load) finds a page that may have taken
        messages already, unreported: attach the hook now, which reports
        the messages the page holds, before the page is closed.  A page
        whose modules are not there yet has taken none, but may be about
        to: the check is made again until they are (ATTACH_BEFORE_CLOSE)."""
        if self.reports.listening or self.devtools is None:
            return
        give_up = time.monotonic() + ATTACH_BEFORE_CLOSE
        while True:
            try:
                found = self.live_devtools().call_function(CHECK_AND_ATTACH_JS,
                                                           [pageapi.as_data(self.reports.needs_at_load)],
                                                           timeout=self.opts.ping_timeout)
            except (DevToolsError, TimeoutError) as e:
                log.warning("could not listen to the page before closing it: %s", e)
                return
            if all(any(alternatives) for alternatives in found):
                return  # attached: the hook reported what the page holds
            if time.monotonic() >= give_up:
                log.warning("the page's modules were not there %.0f s after the stop; closing it unheard",
                            ATTACH_BEFORE_CLOSE)
                return
            time.sleep(ATTACH_POLL)

    def _quit_browser(self) -> None:
        if self.devtools is not None:
            self.devtools.close()
            self.devtools = None
        if self.driver is not None:
            driver, self.driver = self.driver, None
            try:
                driver.quit()
            except DRIVER_ERRORS as e:
                log.warning("browser did not quit cleanly: %s", e)

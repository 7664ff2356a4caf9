"""One session process at run time: the browser, the page, the pipes.

Threads and who owns what:

- the main thread owns the :class:`Tracker`; it takes page reports, pings
  and ``stop`` from one inbox queue, in order;
- the ``sender`` thread performs the page's commands (sends, actions,
  number checks, pairing) one at a time through Selenium, so a slow send
  never delays a page event or a ping;
- the ``inbound`` thread writes the page's events out in order, a message
  with media once its file is fetched;
- the ``stdin`` thread reads commands; the ``devtools`` thread reads what
  the page pushes; the ``signals`` thread turns a stop signal into a stop
  (``stopping.py``).  These only put things in queues;
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import urllib3
from selenium import webdriver
from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException

from . import actions, browser, callactions, chatactions, contents, groups, pageapi, presence, readback, settingsfile
from .chromeflags import PROXY_PREFS, proxy_flags
from .proxyrelay import ProxyError, ProxyRelay
from .pagescripts import (CHAT_STATE_FN, CHECK_AND_ATTACH_JS, CHECK_JS, DOWNLOAD_MEDIA_FN, LOGOUT_JS, PING_EXPR,
                          SEND_FN, SEND_MEDIA_FN, hook_source)
from .mediasend import call_for_file, call_with_file
from .mediafiles import MediaFileError, media_dir, new_inbound, take_outbound
from .devtools import DevTools, DevToolsClosed, DevToolsError, page_websocket_url
from .linereader import MAX_LINE, LineReader
from .output import Output
from .stopping import Stopper
from .protocol import (CHAT_ID_RE, DEFAULT_BOOT_TIMEOUT, EXIT_CANNOT_START, EXIT_CRASHED, EXIT_STOPPED,
                       LINKED_MARKER, MAX_TEXT, MESSAGE_ID_RE, PAGE_COMMANDS, SEND_REFUSED_STOPPING,
                       UNLINKED_REASONS, USER_ID_RE, BadCommand, chat_kind, decode_command, id_refusal)
from .proxyurl import ProxyUrl
from .tracker import Tracker

log = logging.getLogger(__name__)

BINDING = "__wwnodeEmit"

# Why a send may be refused before anything went out (the page's own words).
SEND_REFUSALS = frozenset({"unknown_message", "cannot_reply", "bad_contacts"})

# Who carries out each page command besides sends, on the ``sender`` thread.
PERFORMERS = {"action": actions.perform, "check_number": actions.perform, "call": callactions.perform,
              "chat": chatactions.perform, "presence": presence.perform, "query": readback.perform,
              "group": groups.perform}

# What a chromedriver call can fail with when the browser misbehaves.
DRIVER_ERRORS = (WebDriverException, urllib3.exceptions.HTTPError, OSError)
# A stop that finds the page's modules not there yet waits this long, at
# most, for them (checking every ATTACH_POLL s), to listen before it closes
# the page: a page restored with messages held for it takes them within a
# sync of its modules appearing.  The soak test lost six messages to a stop
# that checked an instant too early, then closed the page as it took them.
ATTACH_BEFORE_CLOSE = 2.0
ATTACH_POLL = 0.05


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


class Session:
    def __init__(self, opts: Options, out: Output, log_file):
        self.opts = opts
        self.out = out
        self.log_file = log_file
        self.inbox: queue.Queue = queue.Queue()
        self.sends: queue.Queue = queue.Queue()
        self.inbound: queue.Queue = queue.Queue()  # page events, for the inbound thread to write
        self.tracker = Tracker(opts.url, opts.qr_max, was_linked=self._marker().exists(),
                               boot_timeout=opts.boot_timeout, now=time.monotonic(),
                               pairing=bool(opts.pair_with_phone))
        self.needs_at_load = pageapi.needs(opts.send_seen, pageapi.AT_LOAD, pairing=bool(opts.pair_with_phone))
        self.needs_when_synced = pageapi.needs(opts.send_seen, pageapi.WHEN_SYNCED)
        self.pairing_asked = False  # a pairing code was asked for on this document
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.driver: webdriver.Chrome | None = None
        self.devtools: DevTools | None = None
        self.logout_on_stop = False
        self.listening = False  # the page's hook reports to us (attached once its load was checked)
        # Kinds of chat not reported (``ignore``); replaced whole (one
        # assignment) by a ``settings`` command on the stdin thread, read
        # on the main one.
        self.ignore: frozenset[str] = frozenset()
        self.proxy: ProxyUrl | None = None  # the settings' proxy (the browser goes through it)
        self.relay: ProxyRelay | None = None  # the browser's way to it
        self.stopper = Stopper.for_this_process(lambda item: self.inbox.put(("stop", item)), opts.stop_timeout,
                                                EXIT_STOPPED)

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
        threading.Thread(target=self._read_stdin, name="stdin", daemon=True).start()
        sender = threading.Thread(target=self._send_loop, name="sender", daemon=True)
        sender.start()
        inbound = threading.Thread(target=self._inbound_loop, name="inbound", daemon=True)
        inbound.start()
        code = self._main_loop()
        self.stopping.set()  # sends still queued now fail fast
        self.sends.put(None)
        # Each wait below fits in what is left before the stop's deadline,
        # with room kept for quitting the browser.
        sender.join(self.stopper.left(self.opts.send_timeout + 5))  # let a send in flight finish
        if code == EXIT_STOPPED:
            if not self.stopper.orphaned():  # else nobody reads what the page took
                self._wait_inbound(self.stopper.left(self.opts.send_timeout))
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
        )
        started = time.monotonic()
        self.driver = driver = browser.launch(cfg, self.log_file)
        driver.set_script_timeout(self.opts.send_timeout)
        self.out.emit({"event": "browser", "pids": browser.browser_pids(driver)})
        ws_url = page_websocket_url(browser.debugger_address(driver))
        self.devtools = devtools = DevTools(ws_url, self._on_devtools_event,
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
        if not browser.open_url(self._live_driver(), self.opts.url, left):
            log.warning("the page did not finish loading in time")  # the boot deadline decides

    def _main_loop(self) -> int:
        while True:
            deadline = self.tracker.boot_deadline
            try:
                kind, item = self.inbox.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                kind, item = "deadline", {}
            if kind == "deadline":
                self._emit_all(self.tracker.tick(time.monotonic()))
            elif kind == "page":
                self._on_page_report(item)
            elif kind == "ping":
                self._ping(item)
            elif kind == "stop":
                self.logout_on_stop = bool(item.get("logout", False))
                log.info("stopping (%s)%s", item.get("why"), " and logging out" if self.logout_on_stop else "")
                return EXIT_STOPPED
            if self.tracker.exit_code is not None:
                return self.tracker.exit_code

    # ---------------------------------------------------- page reports
    def _on_devtools_event(self, method: str, params: dict) -> None:
        if method == "Runtime.bindingCalled" and params.get("name") == BINDING:
            try:
                report = _loads(params.get("payload", ""))
            except ValueError:
                log.warning("unreadable report from the page")
                return
            self.inbox.put(("page", report))
        elif method == "Inspector.targetCrashed":
            self.inbox.put(("page", {"type": "crashed"}))

    def _on_page_report(self, report: dict) -> None:
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
        self._emit_all(self.tracker.feed(report, time.monotonic()))

    def _ignored(self, message) -> bool:
        """A message of a kind of chat the settings say not to report
        (``ignore``): dropped here, before its media is fetched."""
        kind = chat_kind(message) if isinstance(message, dict) and self.ignore else None
        if kind is None or kind not in self.ignore:
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

    def _emit_all(self, events: list[dict]) -> None:
        for event in events:
            self._on_outcome(event)
            self.inbound.put(event)  # in order, behind any media being fetched

    def _inbound_loop(self) -> None:
        """The page's events, in the order they came, a message with media
        once its file is fetched: on a thread of its own, so a large file
        holds up no ping or page report, and no event overtakes a message."""
        while True:
            event = self.inbound.get()
            if event is None:
                self.inbound.task_done()
                return
            try:
                if (event.get("message") or {}).get("hasMedia"):
                    event = self._with_media(event)
                self.out.emit(event)
            finally:
                self.inbound.task_done()

    def _wait_inbound(self, timeout: float) -> None:
        """Until the messages taken so far are reported (their media needs
        the page still open)."""
        deadline = time.monotonic() + timeout
        with self.inbound.all_tasks_done:
            while self.inbound.unfinished_tasks and time.monotonic() < deadline:
                self.inbound.all_tasks_done.wait(deadline - time.monotonic())

    def _with_media(self, event: dict) -> dict:
        """A message with media: its file fetched from the page (as
        whatsapp-web.js's downloadMedia) and written for the node.  Done
        here, in order, so messages keep the order they came in."""
        msg = event["message"]
        info = {"mimetype": None, "filename": None, "size": None}
        path = None
        try:
            path = new_inbound(media_dir(self.opts.profile_dir), msg["id"].get("id") or "")
            with open(path, "wb") as sink:
                got = call_for_file(self._live_devtools(), DOWNLOAD_MEDIA_FN, [msg["id"]["_serialized"]], sink,
                                    self.opts.send_timeout)
            if got.get("error"):
                raise MediaFileError(str(got["error"]))
            info = {"mimetype": got.get("mimetype"), "filename": got.get("filename"), "size": got.get("size")}
            return event | {"media": info | {"path": str(path), "size": path.stat().st_size}}
        except (DevToolsError, TimeoutError, MediaFileError, OSError, KeyError, TypeError) as e:
            log.warning("message %s: could not fetch its media: %s", msg.get("id"), e)
            if path is not None:
                path.unlink(missing_ok=True)
            return event | {"media": info | {"error": str(e)[:300] or "media not available"}}

    def _check_page(self, report: dict) -> dict | None:
        """The ``loaded`` or ``synced`` report with what the page lacks of
        what that stage needs (pageapi); at load, the page's listeners are
        attached if it lacks nothing.  None when the document went away
        meanwhile (the next one reports in turn)."""
        loaded = report["type"] == "loaded"
        wanted = self.needs_at_load if loaded else self.needs_when_synced
        script = CHECK_AND_ATTACH_JS if loaded else CHECK_JS
        try:
            found = self._live_devtools().call_function(script, [pageapi.as_data(wanted)],
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

    # ------------------------------------------------------------ stdin
    def _read_stdin(self) -> None:
        stdin = os.fdopen(0, "rb", buffering=0, closefd=False)
        reader = LineReader(stdin)
        while True:
            line = reader.readline()
            if line is None:
                log.info("end of input: stopping")
                self.stopper.ask("end of input")
                return
            if line is reader.TOO_LONG:
                self.out.emit({"event": "error", "reason": "bad_command", "detail": f"line longer than {MAX_LINE} bytes"})
                continue
            if not line.strip():
                continue
            try:
                cmd = decode_command(line)
            except BadCommand as e:
                self.out.emit({"event": "error", "reason": "bad_command", "detail": str(e)})
                continue
            if cmd["cmd"] in PAGE_COMMANDS:
                self.sends.put(cmd)
            elif cmd["cmd"] == "stop":
                self.stopper.ask("stop command", logout=bool(cmd.get("logout", False)))
            elif cmd["cmd"] == "settings":
                self.ignore = frozenset(cmd["ignore"])
                log.info("settings changed: ignoring %s", ", ".join(sorted(self.ignore)) or "nothing")
            else:
                self.inbox.put((cmd["cmd"], cmd))

    # ------------------------------------------------------------- send
    def _send_loop(self) -> None:
        while True:
            cmd = self.sends.get()
            if cmd is None:
                return
            if cmd["cmd"] == "send":
                self.out.emit(self._send(cmd))
            elif cmd["cmd"] == "pair":
                self._ask_pairing_code()
            else:
                self.out.emit(self._act(cmd))

    def _act(self, cmd: dict) -> dict:
        failed = {"event": "action_failed", "id": cmd["id"]}
        if self.stopping.is_set():
            return failed | {"reason": SEND_REFUSED_STOPPING, "detail": "the session is stopping"}
        if not self.ready.is_set():
            return failed | {"reason": "not_ready", "detail": "the session is not authenticated"}
        event = PERFORMERS[cmd["cmd"]](self.driver, cmd, self.opts.send_timeout)
        log.info("%s %s: %s", cmd["cmd"], cmd["id"], event.get("reason") or "done")
        return event

    def _ask_pairing_code(self) -> None:
        """Codes come back through the page binding (``pairing_code``
        reports); a page that refuses is a failure to link."""
        try:
            result = self._live_driver().execute_async_script(actions.PAIR_JS, self.opts.pair_with_phone,
                                                              int(self.opts.pair_interval * 1000), BINDING)
        except DRIVER_ERRORS as e:
            result = {"ok": False, "error": str(e)[:500]}
        if not isinstance(result, dict) or not result.get("ok"):
            detail = result.get("error") if isinstance(result, dict) else repr(result)
            log.error("the page gave no pairing code: %s", detail)
            self.inbox.put(("page", {"type": "pairing_refused", "detail": str(detail)}))

    def _send(self, cmd: dict) -> dict:
        cid, chat_id, text = cmd["id"], cmd["chat_id"], cmd["text"]
        failed = {"event": "send_failed", "id": cid}
        refusal = id_refusal(chat_id, CHAT_ID_RE, "bad_chat_id")
        if refusal is not None:
            return failed | {"reason": refusal, "detail": "chat_id must look like 5511999999999@c.us or 1234...@lid"}
        if len(text) > MAX_TEXT:
            return failed | {"reason": "too_long", "detail": f"text longer than {MAX_TEXT} characters"}
        options: dict[str, Any]  # the page's send options: an id, a list, a content
        options = {"quotedMessageId": cmd.get("quoted_message_id") or None, "mentions": cmd.get("mentions") or []}
        if options["quotedMessageId"] and not MESSAGE_ID_RE.match(options["quotedMessageId"]):
            return failed | {"reason": "bad_message_id", "detail": "quoted_message_id is not a message id"}
        refusals = [r for r in (id_refusal(m, USER_ID_RE, "bad_mentions") for m in options["mentions"]) if r]
        if refusals:
            return failed | {"reason": refusals[0], "detail": "mentions must be ids like 5511...@c.us or 1234...@lid"}
        kinds = contents.kinds_in(cmd)
        if kinds:
            # A location, contact cards or a poll instead of the text.
            try:
                options["content"] = {kinds[0]: contents.check(kinds[0], cmd[kinds[0]])}
            except contents.ContentError as e:
                return failed | {"reason": e.reason, "detail": e.detail}
        if self.stopping.is_set():
            return failed | {"reason": SEND_REFUSED_STOPPING, "detail": "the session is stopping"}
        if not self.ready.is_set():
            return failed | {"reason": "not_ready", "detail": "the session is not authenticated"}
        media = cmd.get("media")
        seen = cmd.get("seen", self.opts.send_seen)
        if cmd.get("typing_ms") and media is None:
            self._show_typing(chat_id, cmd["typing_ms"])
            if self.stopping.is_set():
                return failed | {"reason": SEND_REFUSED_STOPPING, "detail": "the session stopped while it typed"}
        try:
            if media is None:
                devtools = self.devtools  # None once the browser is being quit
                if devtools is None:
                    raise DevToolsClosed("the browser is closed")
                result = devtools.call_function(SEND_FN, [chat_id, text, seen, options],
                                                timeout=self.opts.send_timeout)
            else:
                # The file as a base64 argument (data), as whatsapp-web.js
                # hands a MessageMedia to the page.
                data = take_outbound(media_dir(self.opts.profile_dir), media["path"])
                meta = {"mimetype": media["mimetype"], "filename": media["filename"], "as": media["as"]}
                result = call_with_file(self._live_devtools(), SEND_MEDIA_FN, [chat_id, text, seen, meta],
                                        data, self.opts.send_timeout)
                del data
        except MediaFileError as e:
            return failed | {"reason": "media_unreadable", "detail": str(e)}
        except DevToolsClosed as e:
            return failed | {"reason": "browser_error", "detail": str(e)[:500]}
        except DevToolsError as e:
            return failed | {"reason": "page_error", "detail": str(e)[:500]}
        except TimeoutError:
            return failed | {"reason": "timeout", "detail": f"no answer in {self.opts.send_timeout:g} s"}
        except TimeoutException:
            return failed | {"reason": "timeout", "detail": f"no answer in {self.opts.send_timeout:g} s"}
        except JavascriptException as e:
            return failed | {"reason": "page_error", "detail": e.msg}
        except DRIVER_ERRORS as e:
            return failed | {"reason": "browser_error", "detail": str(e)[:500]}
        if not isinstance(result, dict) or not result.get("ok"):
            detail = result.get("error") if isinstance(result, dict) else repr(result)
            # Ours (unknown_message, cannot_reply, bad_contacts): nothing went out; else
            # WhatsApp Web refused it.
            reason = result.get("reason") if isinstance(result, dict) else None
            return failed | {"reason": reason if reason in SEND_REFUSALS else "rejected", "detail": detail}
        if result.get("seenError"):
            log.warning("send %s: could not mark the chat seen: %s", cid, result["seenError"])
        log.info("sent %s as %s%s", cid, result["id"], f": {text!r}" if self.opts.log_bodies else "")
        return {"event": "sent", "id": cid, "message_id": result["id"]}

    def _show_typing(self, chat_id: str, typing_ms: int) -> None:
        """"typing..." in the chat for ``typing_ms`` (the ``typing``
        setting), as whatsapp-web.js's Chat.sendStateTyping; cut short by a
        stop.  The page failing to show it does not stop the message."""
        try:
            self._live_devtools().call_function(CHAT_STATE_FN, [chat_id, "typing"], timeout=self.opts.ping_timeout)
        except (DevToolsError, TimeoutError) as e:
            log.warning("could not show typing in the chat: %s", e)
            return
        if self.stopping.wait(typing_ms / 1000):
            try:  # not sent after all: the other side stops seeing "typing..."
                self._live_devtools().call_function(CHAT_STATE_FN, [chat_id, "paused"],
                                                    timeout=self.opts.ping_timeout)
            except (DevToolsError, TimeoutError) as e:
                log.warning("could not clear typing in the chat: %s", e)

    # ------------------------------------------------------------- ping
    def _ping(self, cmd: dict) -> None:
        pong = {"event": "pong", "id": cmd["id"], "ready": self.ready.is_set()}
        try:
            result = self._live_devtools().call(
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
                driver = self._live_driver()
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
            self._live_driver().get("about:blank")
        except DRIVER_ERRORS as e:
            log.warning("could not close the page: %s", e)
        self._devtools_barrier()
        while True:
            try:
                kind, item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "page" and item.get("type") == "message":
                self._on_page_report(item)

    def _devtools_barrier(self) -> None:
        """Until what the page reported before it went is in the inbox: a
        round trip on the DevTools connection, whose reader hands events
        over in the order they came, so every report sent before its answer
        has been queued (a message reported as the page closed otherwise
        came after the inbox was read, and was lost)."""
        if self.devtools is None:
            return
        try:
            self._live_devtools().call("Runtime.evaluate", {"expression": "0"}, timeout=self.opts.ping_timeout)
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
        if self.listening or self.devtools is None:
            return
        give_up = time.monotonic() + ATTACH_BEFORE_CLOSE
        while True:
            try:
                found = self._live_devtools().call_function(CHECK_AND_ATTACH_JS,
                                                            [pageapi.as_data(self.needs_at_load)],
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

    def _live_devtools(self) -> DevTools:
        """The page's DevTools connection.  The sender and inbound threads
        may outlive their join's timeout, and _quit_browser sets it to None
        from the main thread: DevToolsClosed then, which every caller
        handles, where None would raise AttributeError and end the thread
        (the inbound one with the messages it still had unreported)."""
        devtools = self.devtools
        if devtools is None:
            raise DevToolsClosed("the browser is closed")
        return devtools

    def _live_driver(self) -> webdriver.Chrome:
        """The browser's driver, set from its start until _quit_browser:
        a WebDriverException (one of DRIVER_ERRORS, which every caller
        handles) after that, as from a driver whose browser is gone."""
        driver = self.driver
        if driver is None:
            raise WebDriverException("the browser is closed")
        return driver

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


def _loads(payload: str) -> dict:
    obj = orjson.loads(payload)
    if not isinstance(obj, dict):
        raise ValueError("report is not an object")
    return obj

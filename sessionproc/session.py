"""One session process at run time: the browser, the page, the pipes.

Threads and who owns what:

- the main thread owns the :class:`Tracker`; it takes page reports, pings
  and ``stop`` from one inbox queue, in order;
- the ``sender`` thread performs ``send`` commands one at a time through
  Selenium, so a slow send never delays a page event or a ping;
- the ``stdin`` thread reads commands; the ``devtools`` thread reads what
  the page pushes.  Both only put things in queues.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import orjson
import urllib3
from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException

from . import browser
from .devtools import DevTools, DevToolsError, page_websocket_url
from .output import Output
from .protocol import EXIT_CANNOT_START, EXIT_CRASHED, EXIT_STOPPED, LINKED_MARKER, BadCommand, decode_command
from .tracker import Tracker

log = logging.getLogger(__name__)

BINDING = "__wwnodeEmit"
MAX_LINE = 1024 * 1024
MAX_TEXT = 65536  # WhatsApp's limit for one text message
CHAT_ID_RE = re.compile(r"^[0-9]{5,20}@c\.us$|^[0-9]{5,20}(-[0-9]{5,20})?@g\.us$")

# Sends one text; the chat id and the text arrive as arguments (data), never
# as source.  Resolves once WhatsApp Web accepted the message.
SEND_JS = """
const [chatId, text, done] = arguments;
(async () => {
  const req = window.require;
  const wid = req('WAWebWidFactory').createWid(chatId);
  const Chat = req('WAWebCollections').Chat;
  let chat = Chat.get(wid);
  if (!chat) {
    const found = await req('WAWebFindChatAction').findOrCreateLatestChat(wid);
    chat = found && found.chat;
  }
  if (!chat) throw new Error('chat not found: ' + chatId);
  const Me = req('WAWebUserPrefsMeUser');
  const me = Me.getMaybeMePnUser() || Me.getMaybeMeLidUser();
  const MsgKey = req('WAWebMsgKey');
  const id = new MsgKey({from: me, to: chat.id, id: await MsgKey.newId(),
                         participant: chat.id.isGroup && chat.id.isGroup() ? me : undefined, selfDir: 'out'});
  const msg = {id, ack: 0, body: text, from: me, to: chat.id, local: true, self: 'out',
               t: Math.floor(Date.now() / 1000), isNewMsg: true, type: 'chat'};
  const [added, result] = req('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, msg);
  await added;
  const outcome = await result;
  const status = outcome && outcome.messageSendResult;
  if (status && status !== 'OK') throw new Error('WhatsApp Web refused the message: ' + status);
  return id._serialized;
})().then((id) => done({ok: true, id}), (e) => done({ok: false, error: String((e && e.message) || e)}));
"""

LOGOUT_JS = """
const done = arguments[0];
Promise.resolve(window.require('WAWebSocketModel').Socket.logout())
  .then(() => done(true), (e) => done(String(e)));
"""

PING_EXPR = (
    "(window.Debug && window.Debug.VERSION && typeof window.require === 'function')"
    " ? window.require('WAWebSocketModel').Socket.state : 'LOADING'"
)

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
    log_bodies: bool = False


class Session:
    def __init__(self, opts: Options, out: Output, log_file):
        self.opts = opts
        self.out = out
        self.log_file = log_file
        self.inbox: queue.Queue = queue.Queue()
        self.sends: queue.Queue = queue.Queue()
        self.tracker = Tracker(opts.url, opts.qr_max, was_linked=self._marker().exists())
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.driver = None
        self.devtools: DevTools | None = None
        self.logout_on_stop = False

    # ------------------------------------------------------------- run
    def run(self) -> int:
        self.out.emit({"event": "starting", "pid": os.getpid()})
        try:
            self._start_browser()
        except browser.CannotStart as e:
            log.error("cannot start: %s", e)
            self.out.emit({"event": "disconnected", "reason": "cannot_start", "detail": str(e)})
            return EXIT_CANNOT_START
        except (RuntimeError, DevToolsError, TimeoutError, *DRIVER_ERRORS) as e:
            log.error("browser start failed: %s", e)
            self.out.emit({"event": "disconnected", "reason": "browser_failed", "detail": str(e)})
            self._quit_browser()
            return EXIT_CRASHED
        threading.Thread(target=self._read_stdin, name="stdin", daemon=True).start()
        sender = threading.Thread(target=self._send_loop, name="sender", daemon=True)
        sender.start()
        code = self._main_loop()
        self.stopping.set()  # sends still queued now fail fast
        self.sends.put(None)
        sender.join(self.opts.send_timeout + 5)  # let a send in flight finish
        if code == EXIT_STOPPED:
            self._stop_page()
        self._quit_browser()
        return code

    def _start_browser(self) -> None:
        cfg = browser.BrowserConfig(
            profile_dir=self.opts.profile_dir,
            chrome=self.opts.chrome,
            chromedriver=self.opts.chromedriver,
            user_agent=self.opts.user_agent,
        )
        self.driver = browser.launch(cfg, self.log_file)
        self.driver.set_script_timeout(self.opts.send_timeout)
        self.out.emit({"event": "browser", "pids": browser.browser_pids(self.driver)})
        ws_url = page_websocket_url(browser.debugger_address(self.driver))
        self.devtools = DevTools(ws_url, self._on_devtools_event, lambda: self.inbox.put(("page", {"type": "closed"})))
        # Bindings are reported, and new-document scripts run, only with
        # these domains enabled on our connection.
        for domain in ("Runtime", "Page", "Inspector"):
            self.devtools.call(f"{domain}.enable")
        self.devtools.call("Runtime.addBinding", {"name": BINDING})
        hook = resources.files(__package__).joinpath("hook.js").read_text()
        self.devtools.call("Page.addScriptToEvaluateOnNewDocument", {"source": hook})
        log.info("opening %s", self.opts.url)
        self.driver.get(self.opts.url)

    def _main_loop(self) -> int:
        while True:
            kind, item = self.inbox.get()
            if kind == "page":
                self._on_page_report(item)
                if self.tracker.exit_code is not None:
                    return self.tracker.exit_code
            elif kind == "ping":
                self._ping(item)
            elif kind == "stop":
                self.logout_on_stop = bool(item.get("logout", False))
                log.info("stopping%s", " and logging out" if self.logout_on_stop else "")
                return EXIT_STOPPED

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
        if report.get("type") == "message" and not self.opts.log_bodies:
            log.info("page: message %s", (report.get("message") or {}).get("id", {}).get("_serialized"))
        elif report.get("type") != "qr":  # QR strings are credentials-to-be
            log.info("page: %s", report)
        for event in self.tracker.feed(report):
            self._on_outcome(event)
            self.out.emit(event)

    def _on_outcome(self, event: dict) -> None:
        name = event["event"]
        if name == "ready":
            self._marker().write_text(event.get("me") or "")
            self.ready.set()
        elif name in ("auth_failure", "disconnected") and self.tracker.exit_code is not None:
            self.ready.clear()
            if event.get("reason") in ("credentials_rejected", "LOGOUT", "UNPAIRED", "UNPAIRED_IDLE"):
                # The phone no longer knows this profile: forget it was linked.
                self._marker().unlink(missing_ok=True)
        log.info("event %s %s", name, event.get("reason") or event.get("attempt") or "")

    def _marker(self) -> Path:
        return self.opts.profile_dir / LINKED_MARKER

    # ------------------------------------------------------------ stdin
    def _read_stdin(self) -> None:
        stdin = os.fdopen(0, "rb", buffering=0, closefd=False)
        reader = _LineReader(stdin)
        while True:
            line = reader.readline()
            if line is None:
                log.info("end of input: stopping")
                self.inbox.put(("stop", {}))
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
            if cmd["cmd"] == "send":
                self.sends.put(cmd)
            else:
                self.inbox.put((cmd["cmd"], cmd))

    # ------------------------------------------------------------- send
    def _send_loop(self) -> None:
        while True:
            cmd = self.sends.get()
            if cmd is None:
                return
            self.out.emit(self._send(cmd))

    def _send(self, cmd: dict) -> dict:
        cid, chat_id, text = cmd["id"], cmd["chat_id"], cmd["text"]
        failed = {"event": "send_failed", "id": cid}
        if not CHAT_ID_RE.match(chat_id):
            return failed | {"reason": "bad_chat_id", "detail": "chat_id must look like 5511999999999@c.us"}
        if len(text) > MAX_TEXT:
            return failed | {"reason": "too_long", "detail": f"text longer than {MAX_TEXT} characters"}
        if self.stopping.is_set():
            return failed | {"reason": "stopping", "detail": "the session is stopping"}
        if not self.ready.is_set():
            return failed | {"reason": "not_ready", "detail": "the session is not authenticated"}
        try:
            result = self.driver.execute_async_script(SEND_JS, chat_id, text)
        except TimeoutException:
            return failed | {"reason": "timeout", "detail": f"no answer in {self.opts.send_timeout:g} s"}
        except JavascriptException as e:
            return failed | {"reason": "page_error", "detail": e.msg}
        except DRIVER_ERRORS as e:
            return failed | {"reason": "browser_error", "detail": str(e)[:500]}
        if not isinstance(result, dict) or not result.get("ok"):
            detail = result.get("error") if isinstance(result, dict) else repr(result)
            return failed | {"reason": "rejected", "detail": detail}
        log.info("sent %s as %s%s", cid, result["id"], f": {text!r}" if self.opts.log_bodies else "")
        return {"event": "sent", "id": cid, "message_id": result["id"]}

    # ------------------------------------------------------------- ping
    def _ping(self, cmd: dict) -> None:
        pong = {"event": "pong", "id": cmd["id"], "ready": self.ready.is_set()}
        try:
            result = self.devtools.call(
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
                self.driver.set_script_timeout(10)
                self.driver.execute_async_script(LOGOUT_JS)
            except DRIVER_ERRORS as e:
                log.warning("logout on the page failed: %s", e)
        self._quit_browser()
        # The profile holds the device's credentials: gone with the link.
        shutil.rmtree(self.opts.profile_dir, ignore_errors=True)

    def _close_page(self) -> None:
        """Until the page is gone it keeps taking messages from WhatsApp
        (which then counts them delivered): unload it, so later ones wait on
        the server, and report the messages it took before."""
        try:
            self.driver.get("about:blank")
        except DRIVER_ERRORS as e:
            log.warning("could not close the page: %s", e)
        while True:
            try:
                kind, item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "page" and item.get("type") == "message":
                self._on_page_report(item)

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


class _LineReader:
    """Lines from a raw pipe, with a bound on a line's length."""

    TOO_LONG = object()

    def __init__(self, raw):
        self._raw = raw
        self._buf = b""
        self._skipping = False  # inside a line that was too long

    def readline(self):
        """A line (without its newline), TOO_LONG, or None at end of input."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                if self._skipping:
                    self._skipping = False
                    continue
                return line
            if len(self._buf) > MAX_LINE and not self._skipping:
                self._buf, self._skipping = b"", True
                return self.TOO_LONG
            if self._skipping:
                self._buf = b""
            chunk = self._raw.read(65536)
            if not chunk:
                line, self._buf = self._buf, b""
                return line if line and not self._skipping else None
            self._buf += chunk


def _loads(payload: str) -> dict:
    obj = orjson.loads(payload)
    if not isinstance(obj, dict):
        raise ValueError("report is not an object")
    return obj

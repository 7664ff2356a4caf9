"""A session process asked to stop, around a fake page (no browser): what
the page took before the session listened to it is reported before the
page is closed."""

from __future__ import annotations

import os
import threading

import orjson

from sessionproc.output import Output
from sessionproc.protocol import EXIT_CRASHED
from sessionproc.pagescripts import CHECK_AND_ATTACH_JS
from sessionproc.session import Session
from sessionproc.sessionstate import BINDING, Options

MESSAGE = {"id": {"fromMe": False, "remote": "5511999999999@c.us", "id": "M1",
                  "_serialized": "false_5511999999999@c.us_M1"}, "body": "hi", "type": "chat"}


class Page:
    """The page's DevTools and its driver at once.  ``took``: messages its
    WhatsApp took from the server, which its hook reports once attached;
    ``in_flight``: reports the page sent as it closed, still on their way
    (they reach the session ahead of the answer to its next call)."""

    def __init__(self, session: Session, took: list[dict], in_flight: list[dict] = (), loading: int = 0):
        self.session, self.took, self.in_flight, self.calls = session, took, list(in_flight), []
        self.loading = loading  # checks that find its modules not there yet

    def _report(self, messages) -> None:
        for message in messages:
            self.session.pump.on_event("Runtime.bindingCalled", {
                "name": BINDING, "payload": orjson.dumps({"type": "message", "message": message}).decode()})

    def call_function(self, declaration: str, args: list, timeout: float = 10.0):
        self.calls.append("attach" if declaration == CHECK_AND_ATTACH_JS else declaration)
        if self.loading:
            self.loading -= 1
            return [[False] for _ in args[0]]  # nothing attached: its modules are not there
        self._report(self.took)  # through the binding, ahead of the call's answer
        return [[True] for _ in args[0]]

    def call(self, method: str, params: dict | None = None, timeout: float = 10.0) -> dict:
        self.calls.append(method)
        self._report(self.in_flight)
        self.in_flight = []
        return {}

    def get(self, url: str) -> None:
        self.calls.append(url)
        self.took = []  # gone: it takes nothing more


OUTPUTS: dict[int, int] = {}  # id of a session -> the read end of its output


def session(tmp_path) -> Session:
    r, w = os.pipe()
    os.set_blocking(r, False)
    opts = Options(key="k", profile_dir=tmp_path, url="http://127.0.0.1:1/", chrome="chromium",
                   chromedriver="chromedriver", ping_timeout=1.0)
    s = Session(opts, Output(w), log_file=None)
    OUTPUTS[id(s)] = r
    return s


def reported(s: Session) -> list[dict]:
    """What the session wrote (its main thread writes an event itself when
    the inbound thread, not running here, has nothing in hand), then what
    waits for the inbound thread."""
    written = b""
    while True:
        try:
            chunk = os.read(OUTPUTS[id(s)], 65536)
        except BlockingIOError:
            break
        written += chunk
    out = [orjson.loads(line) for line in written.splitlines()]
    while not s.inbound.empty():
        out.append(s.inbound.get_nowait())
    return out


def test_a_page_stopped_before_the_session_listened_reports_what_it_took_then_closes(tmp_path):
    # The stop came while the page loaded (a node going down as its
    # sessions boot): the page had already taken a message, which WhatsApp
    # then counts delivered and does not offer again.
    s = session(tmp_path)
    page = Page(s, [MESSAGE])
    s.devtools = s.driver = page
    s._close_page()
    assert page.calls == ["attach", "about:blank", "Runtime.evaluate"]
    assert [e["message"]["id"]["id"] for e in reported(s) if e["event"] == "message"] == ["M1"]


def test_a_page_stopped_before_its_modules_came_is_listened_to_once_they_come(tmp_path):
    # Its modules came just after the stop's first check, and with them the
    # messages held for it (docs/decisions.md, "A stopping session waits for
    # the page's modules").
    s = session(tmp_path)
    page = Page(s, [MESSAGE], loading=2)
    s.devtools = s.driver = page
    s._close_page()
    assert page.calls == ["attach", "attach", "attach", "about:blank", "Runtime.evaluate"]
    assert [e["message"]["id"]["id"] for e in reported(s) if e["event"] == "message"] == ["M1"]


def test_a_message_reported_as_the_page_closes_is_not_left_behind(tmp_path):
    s = session(tmp_path)
    page = Page(s, [], in_flight=[MESSAGE])
    s.devtools = s.driver = page
    s.reports.listening = True
    s._close_page()
    assert [e["message"]["id"]["id"] for e in reported(s) if e["event"] == "message"] == ["M1"]


def test_a_page_the_session_listens_to_is_only_closed(tmp_path):
    s = session(tmp_path)
    page = Page(s, [])
    s.devtools = s.driver = page
    s.reports._check_page({"type": "loaded"})  # attached at load, as always
    page.calls.clear()
    s._close_page()
    assert page.calls == ["about:blank", "Runtime.evaluate"]


def test_an_action_after_the_browser_quit_is_a_browser_error_not_the_sender_s_end(tmp_path):
    """The sender may still hold a command as the main thread quits the
    browser (its driver is then None): the command fails as from a
    browser that is gone, and the sender goes on."""
    s = session(tmp_path)
    s.ready.set()
    assert s.driver is None
    answer = s.sender._act({"cmd": "action", "id": "a1", "action": "read", "chat_id": "5511999999999@c.us"})
    assert answer["event"] == "action_failed" and answer["reason"] == "browser_error"


def test_a_worker_thread_that_dies_ends_the_session_as_crashed(tmp_path):
    """A sender or inbound thread ended by an error nobody foresaw would
    leave the session "ready" and answering nothing: it ends the session as
    a crash instead (the node restarts it), its traceback logged."""
    s = session(tmp_path)

    def broken() -> None:
        raise LookupError("a bug in the sender")

    worker = threading.Thread(target=s._guarded, args=(broken,), name="sender")
    worker.start()
    worker.join(10)
    assert s._main_loop() == EXIT_CRASHED

"""A second connection to the page, over Chrome's DevTools websocket.

Selenium drives the page (navigation, most actions); this connection
carries what the page pushes to us, and the calls on the hot path (a text
send, media in pieces), which spare chromedriver's HTTP hop.  A page binding (``Runtime.addBinding``) gives the
page a function that, when called, raises ``Runtime.bindingCalled`` here at
once: inbound messages and state changes arrive with no polling, and an idle
session costs next to nothing.  It also answers the health check, so a page
that stopped running JavaScript is noticed even while Selenium is busy.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import urllib.request
from concurrent.futures import Future
from typing import Callable

import orjson
import websocket

log = logging.getLogger(__name__)

# Object groups: the page's global object, kept for the calls on it until
# its document goes (which takes its objects along); and what a call threw.
GLOBAL_GROUP = "wwnode-global"
CALL_GROUP = "wwnode-call"

# How V8's inspector refuses a call on an object of a document since
# replaced: refused before anything runs, so the call may be made again.
GONE_OBJECT_ERRORS = ("Could not find object with given id", "Cannot find context with specified id")


class DevToolsError(Exception):
    pass


class DevToolsClosed(DevToolsError):
    """The websocket closed: the browser or the page went away."""


def _is_gone_object(e: DevToolsError) -> bool:
    return not isinstance(e, DevToolsClosed) and any(text in str(e) for text in GONE_OBJECT_ERRORS)


def page_websocket_url(debugger_address: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(f"http://{debugger_address}/json/list", timeout=timeout) as resp:
        targets = json.load(resp)
    for target in targets:
        if target.get("type") == "page" and target.get("webSocketDebuggerUrl"):
            return target["webSocketDebuggerUrl"]
    raise DevToolsError(f"no page target at {debugger_address}")


class DevTools:
    """Commands with futures, events to one callback on a reader thread.

    ``on_event(method, params)`` runs on the reader thread; ``on_close()``
    runs once when the connection ends for any reason.
    """

    def __init__(self, ws_url: str, on_event: Callable[[str, dict], None], on_close: Callable[[], None]):
        # websocket-client checks a text frame's UTF-8 in pure Python, byte
        # by byte, before it decodes it (in C, which checks it all the
        # same): 0.3 ms of every page event and 0.45 of every round trip
        # (docs/decisions.md, "DevTools frames decoded once").
        self._ws = websocket.create_connection(ws_url, suppress_origin=True, enable_multithread=True,
                                               skip_utf8_validation=True)
        self._on_event = on_event
        self._on_close = on_close
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._global: str | None = None  # the page's global object (call_function)
        self._reader = threading.Thread(target=self._read, name="devtools", daemon=True)
        self._reader.start()

    def call(self, method: str, params: dict | None = None, timeout: float = 10.0) -> dict:
        """Send a command and wait for its result (DevToolsError on failure)."""
        future: Future = Future()
        msg_id = self._post(method, params or {}, future)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            with self._lock:
                self._pending.pop(msg_id, None)
            raise

    def call_function(self, declaration: str, args: list, timeout: float = 10.0):
        """``declaration`` (a function's source) called with ``args`` as
        data, ``this`` being the page's global object; its value (awaited).
        DevToolsError if it throws or the document went away meanwhile;
        TimeoutError when the whole takes longer than ``timeout``.

        One round trip: the page's global object is asked once per document
        and kept (``_global``), where asking it at each call, and releasing
        it after, made three.  A call on a kept global of a document since
        replaced is refused before anything runs, so it is asked again and
        the call made once more: the function still runs at most once."""
        deadline = time.monotonic() + timeout
        this = self._global_object(timeout)
        try:
            done = self._call_on(this, declaration, args, deadline)
        except DevToolsError as e:
            if not _is_gone_object(e):
                raise
            with self._lock:
                if self._global == this:
                    self._global = None
            done = self._call_on(self._global_object(max(0.0, deadline - time.monotonic())), declaration, args,
                                 deadline)
        if "exceptionDetails" in done:
            # What it threw is an object of the page held for us: let it go,
            # without waiting (a send the page refused is answered now).
            self._send("Runtime.releaseObjectGroup", {"objectGroup": CALL_GROUP})
            details = done["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details.get("text", "exception"))
        return done.get("result", {}).get("value")

    def _global_object(self, timeout: float) -> str:
        with self._lock:
            kept = self._global
        if kept is not None:
            return kept
        found = self.call("Runtime.evaluate", {"expression": "globalThis", "objectGroup": GLOBAL_GROUP}, timeout)
        object_id = found["result"]["objectId"]
        with self._lock:
            self._global = object_id
        return object_id

    def _call_on(self, object_id: str, declaration: str, args: list, deadline: float) -> dict:
        return self.call(
            "Runtime.callFunctionOn",
            {
                "functionDeclaration": declaration,
                "objectId": object_id,
                "objectGroup": CALL_GROUP,
                "arguments": [{"value": a} for a in args],
                "returnByValue": True,
                "awaitPromise": True,
            },
            max(0.0, deadline - time.monotonic()),
        )

    def _send(self, method: str, params: dict) -> None:
        """A command whose answer nobody waits for."""
        try:
            self._post(method, params, None)
        except DevToolsClosed as e:
            log.info("could not send %s: %s", method, e)

    def _post(self, method: str, params: dict, future: Future | None) -> int:
        """Write a command; its answer goes to ``future`` (None: dropped).
        DevToolsClosed when the connection is gone."""
        with self._lock:
            if self._closed:
                raise DevToolsClosed("connection closed")
            msg_id = next(self._ids)
            if future is not None:
                self._pending[msg_id] = future
        try:
            self._ws.send(orjson.dumps({"id": msg_id, "method": method, "params": params}).decode())
        except (OSError, websocket.WebSocketException) as e:
            with self._lock:
                self._pending.pop(msg_id, None)
            raise DevToolsClosed(str(e)) from e
        return msg_id

    def close(self) -> None:
        with self._lock:
            self._closed = True
        try:
            self._ws.close(timeout=1)
        except (OSError, websocket.WebSocketException):
            pass

    def _read(self) -> None:
        try:
            while True:
                try:
                    raw = self._ws.recv()
                    if not raw:
                        break
                    msg = orjson.loads(raw)
                except ValueError as e:  # not UTF-8, or not JSON: the other end is not speaking DevTools
                    log.error("devtools connection ended on a frame it could not read: %s", e)
                    break
                if "id" in msg:
                    with self._lock:
                        future = self._pending.pop(msg["id"], None)
                    if future is None:
                        continue  # its caller gave up waiting
                    if "error" in msg:
                        future.set_exception(DevToolsError(msg["error"].get("message", str(msg["error"]))))
                    else:
                        future.set_result(msg.get("result", {}))
                else:
                    self._on_event(msg.get("method", ""), msg.get("params", {}))
        except (OSError, websocket.WebSocketException) as e:
            log.info("devtools connection ended: %s", e)
        finally:
            with self._lock:
                self._closed = True
                pending, self._pending = self._pending, {}
            for future in pending.values():
                future.set_exception(DevToolsClosed("connection closed"))
            self._on_close()

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

RELEASE_TIMEOUT = 5.0  # s a call's objects may take to be released


class DevToolsError(Exception):
    pass


class DevToolsClosed(DevToolsError):
    """The websocket closed: the browser or the page went away."""


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
        self._ws = websocket.create_connection(ws_url, suppress_origin=True, enable_multithread=True)
        self._on_event = on_event
        self._on_close = on_close
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="devtools", daemon=True)
        self._reader.start()

    def call(self, method: str, params: dict | None = None, timeout: float = 10.0) -> dict:
        """Send a command and wait for its result (DevToolsError on failure)."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise DevToolsClosed("connection closed")
            msg_id = next(self._ids)
            self._pending[msg_id] = future
        try:
            self._ws.send(orjson.dumps({"id": msg_id, "method": method, "params": params or {}}).decode())
        except (OSError, websocket.WebSocketException) as e:
            with self._lock:
                self._pending.pop(msg_id, None)
            raise DevToolsClosed(str(e)) from e
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
        TimeoutError when the whole takes longer than ``timeout``."""
        group = "wwnode-call"
        deadline = time.monotonic() + timeout
        this = self.call("Runtime.evaluate", {"expression": "globalThis", "objectGroup": group}, timeout)
        try:
            done = self.call(
                "Runtime.callFunctionOn",
                {
                    "functionDeclaration": declaration,
                    "objectId": this["result"]["objectId"],
                    "arguments": [{"value": a} for a in args],
                    "returnByValue": True,
                    "awaitPromise": True,
                },
                max(0.0, deadline - time.monotonic()),
            )
        finally:
            # The answer stands whatever its release does: a send the page
            # made must not be reported failed (and sent again) for this.
            # A page gone away took its objects with it.
            try:
                self.call("Runtime.releaseObjectGroup", {"objectGroup": group}, RELEASE_TIMEOUT)
            except (DevToolsError, TimeoutError) as e:
                log.info("could not release the call's objects: %s", e)
        if "exceptionDetails" in done:
            details = done["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details.get("text", "exception"))
        return done.get("result", {}).get("value")

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
                raw = self._ws.recv()
                if not raw:
                    break
                msg = orjson.loads(raw)
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

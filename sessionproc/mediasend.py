"""Handing a file to the page for a send, over the session's DevTools
connection, in pieces.

The file goes as base64 arguments of ``Runtime.callFunctionOn`` (data,
never script source), one MiB at a time, into a staging object that lives
only as a remote object of this call (no global of the page); the send
script then gets that object as its argument.  Pieces keep the page's
thread free between them, so a health check is answered while a 15 MB
video crosses; one argument of 20 MB held it for seconds.
"""

from __future__ import annotations

import base64
import time

from .devtools import DevTools, DevToolsError

CHUNK = 1024 * 1024

_NEW_STAGE = "function () { return {parts: []}; }"
_ADD_PART = """function (b64) {
  let bytes;
  if (typeof Uint8Array.fromBase64 === 'function') {
    bytes = Uint8Array.fromBase64(b64);
  } else {
    const binary = atob(b64);
    bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  }
  this.parts.push(bytes);
}"""


def call_with_file(devtools: DevTools, declaration: str, args: list, data: bytes, timeout: float):
    """``declaration`` called with ``args`` plus, last, an object whose
    ``parts`` hold ``data``; its value (awaited).  TimeoutError when the
    whole takes longer than ``timeout``; DevToolsError when it throws."""
    deadline = time.monotonic() + timeout
    group = "wwnode-media"

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    def call(declaration: str, object_id: str, arguments: list, by_value: bool) -> dict:
        done = devtools.call("Runtime.callFunctionOn", {
            "functionDeclaration": declaration, "objectId": object_id, "arguments": arguments,
            "objectGroup": group, "returnByValue": by_value, "awaitPromise": True,
        }, left())
        if "exceptionDetails" in done:
            details = done["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details.get("text", "exception"))
        return done.get("result", {})

    this = devtools.call("Runtime.evaluate", {"expression": "globalThis", "objectGroup": group}, left())
    try:
        global_id = this["result"]["objectId"]
        stage = call(_NEW_STAGE, global_id, [], False)["objectId"]
        for offset in range(0, len(data), CHUNK):
            piece = base64.b64encode(data[offset:offset + CHUNK]).decode()
            call(_ADD_PART, stage, [{"value": piece}], False)
        return call(declaration, global_id, [{"value": a} for a in args] + [{"objectId": stage}], True).get("value")
    finally:
        try:
            devtools.call("Runtime.releaseObjectGroup", {"objectGroup": group}, 5)
        except (DevToolsError, TimeoutError):
            pass  # the page went away: so did its objects

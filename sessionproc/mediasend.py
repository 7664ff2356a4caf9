"""Files between the session and the page, over the session's DevTools
connection, in pieces.

A file for a send goes as base64 arguments of ``Runtime.callFunctionOn``
(data, never script source), one MiB at a time, into a staging object that
lives only as a remote object of the call (no global of the page); the
send script gets that object as its last argument.  A received file comes
back the same way: the download script's answer stays in the page as a
remote object, read one MiB at a time.  Pieces keep the page's thread
free between them, so a health check is answered while a 15 MB video
crosses; one 20 MB value held the page for seconds.
"""

from __future__ import annotations

import base64
import time
from typing import BinaryIO

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
# The answer of a download without its bytes, and their count.
_META = """function () {
  const out = {};
  for (const [k, v] of Object.entries(this)) if (k !== 'bytes') out[k] = v;
  out.length = this.bytes ? this.bytes.length : 0;
  return out;
}"""
_READ_PART = """function (offset, n) {
  const piece = this.bytes.subarray(offset, offset + n);
  if (typeof piece.toBase64 === 'function') return piece.toBase64();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',')[1] || '');
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(new Blob([piece]));
  });
}"""


class _Calls:
    """Calls on one page within one deadline, their objects in one group
    (released at the end)."""

    GROUP = "wwnode-media"

    def __init__(self, devtools: DevTools, timeout: float):
        self.devtools = devtools
        self.deadline = time.monotonic() + timeout

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    def global_id(self) -> str:
        return self.devtools.call("Runtime.evaluate", {"expression": "globalThis", "objectGroup": self.GROUP},
                                  self.left())["result"]["objectId"]

    def call(self, declaration: str, object_id: str, arguments: list, by_value: bool) -> dict:
        done = self.devtools.call("Runtime.callFunctionOn", {
            "functionDeclaration": declaration, "objectId": object_id, "arguments": arguments,
            "objectGroup": self.GROUP, "returnByValue": by_value, "awaitPromise": True,
        }, self.left())
        if "exceptionDetails" in done:
            details = done["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details.get("text", "exception"))
        return done.get("result", {})

    def release(self) -> None:
        try:
            self.devtools.call("Runtime.releaseObjectGroup", {"objectGroup": self.GROUP}, 5)
        except (DevToolsError, TimeoutError):
            pass  # the page went away: so did its objects


def call_with_file(devtools: DevTools, declaration: str, args: list, data: bytes, timeout: float):
    """``declaration`` called with ``args`` plus, last, an object whose
    ``parts`` hold ``data``; its value (awaited).  TimeoutError when the
    whole takes longer than ``timeout``; DevToolsError when it throws."""
    calls = _Calls(devtools, timeout)
    try:
        global_id = calls.global_id()
        stage = calls.call(_NEW_STAGE, global_id, [], False)["objectId"]
        for offset in range(0, len(data), CHUNK):
            piece = base64.b64encode(data[offset:offset + CHUNK]).decode()
            calls.call(_ADD_PART, stage, [{"value": piece}], False)
        return calls.call(declaration, global_id, [{"value": a} for a in args] + [{"objectId": stage}],
                          True).get("value")
    finally:
        calls.release()


def call_for_file(devtools: DevTools, declaration: str, args: list, sink: BinaryIO, timeout: float) -> dict:
    """``declaration`` called with ``args``; it answers an object whose
    ``bytes`` (a Uint8Array) are written to ``sink`` and whose other
    fields are returned (with ``length``, the bytes' count)."""
    calls = _Calls(devtools, timeout)
    try:
        answer = calls.call(declaration, calls.global_id(), [{"value": a} for a in args], False)
        if answer.get("type") != "object" or "objectId" not in answer:
            raise DevToolsError(f"the page answered {answer.get('type')}, not an object")
        meta = calls.call(_META, answer["objectId"], [], True).get("value") or {}
        for offset in range(0, int(meta.get("length") or 0), CHUNK):
            piece = calls.call(_READ_PART, answer["objectId"], [{"value": offset}, {"value": CHUNK}], True)
            sink.write(base64.b64decode(piece.get("value") or ""))
        return meta
    finally:
        calls.release()

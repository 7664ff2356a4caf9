"""The DevTools connection against a websocket peer of the test's own: what
it does with frames a browser would never send.  No browser needed."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading

import pytest

from sessionproc.devtools import DevTools, DevToolsClosed
from support import wait_for

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class OnePeer:
    """Accepts one websocket, answers its handshake, then sends ``frame``
    (a text frame's payload, as bytes) once it has read the first command."""

    def __init__(self, frame: bytes):
        self.frame = frame
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/devtools/page/x"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            conn.recv(4096)  # the command
            assert len(self.frame) < 126
            conn.sendall(bytes([0x81, len(self.frame)]) + self.frame)
            conn.recv(4096)  # until the client closes

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("frame", [b'{"id": 1, "result": "\xff\xfe"}', b"not json"],
                         ids=["not UTF-8", "not JSON"])
def test_a_frame_that_cannot_be_read_ends_the_connection_and_fails_what_waits(frame, monkeypatch, caplog):
    # UTF-8 is checked once, when the frame is decoded (devtools.py), not
    # byte by byte before: a frame that fails it ends the connection as a
    # closed one does, rather than the reader thread with a traceback.
    uncaught = []
    monkeypatch.setattr(threading, "excepthook", uncaught.append)
    peer = OnePeer(frame)
    closed = threading.Event()
    events = []
    tools = DevTools(peer.url, lambda method, params: events.append(method), closed.set)
    try:
        with pytest.raises(DevToolsClosed):
            tools.call("Runtime.evaluate", {"expression": "1"}, timeout=5)
        wait_for(closed.is_set, timeout=5, what="the connection's end to be reported")
        with pytest.raises(DevToolsClosed):
            tools.call("Runtime.evaluate", {"expression": "1"}, timeout=5)
        assert events == []
        assert uncaught == []
        assert "devtools connection ended on a frame it could not read" in caplog.text
    finally:
        tools.close()
        peer.close()

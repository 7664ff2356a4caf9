"""Media files for tests: bytes that start as the real formats do (what
the node and the stand-in look at), followed by random bytes, and a small
HTTP server that serves them (and misbehaves on request)."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote


def jpeg(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(size - 11)


def mp4(size: int) -> bytes:
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + os.urandom(size - 16)


def ogg(size: int) -> bytes:
    return b"OggS\x00\x02" + os.urandom(size - 6)


def pdf(size: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


def webp(size: int) -> bytes:
    return b"RIFF" + (size - 8).to_bytes(4, "little") + b"WEBPVP8 " + os.urandom(size - 16)


class FileServer:
    """``url(name)`` serves ``files[name]``; ``/slow`` never answers (until
    the server stops), ``/missing`` is a 404, ``/huge`` announces more bytes
    than any limit; ``/trickle-head`` sends its headers, ``/trickle-body``
    its body (no length), one byte every ``TRICKLE`` seconds, 30 bytes at
    most (so a fetch that does not give up ends all the same)."""

    TRICKLE = 0.2

    def __init__(self):
        self.files: dict[str, tuple[bytes, str]] = {}
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                name = unquote(self.path.lstrip("/").split("?")[0])
                if name == "slow":
                    server.release.wait(30)  # a server that never answers in time
                    return
                if name in ("trickle-head", "trickle-body"):
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n"
                    slow = b"X-Slow: " + b"a" * 22 if name == "trickle-head" else b"\r\n" + jpeg(28)
                    if name == "trickle-body":
                        head, slow = head + slow[:2], slow[2:]
                    self.wfile.write(head)
                    for i in range(len(slow)):
                        if server.release.wait(FileServer.TRICKLE):
                            break
                        try:
                            self.wfile.write(slow[i:i + 1])
                            self.wfile.flush()
                        except OSError:
                            break  # the client gave up
                    self.close_connection = True
                    return
                if name == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "video/mp4")
                    self.send_header("Content-Length", str(10**12))
                    self.end_headers()
                    return
                if name == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/photo.jpg")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                found = server.files.get(name)
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, ctype = found
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{quote(name)}"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

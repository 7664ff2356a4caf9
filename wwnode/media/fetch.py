"""A media's URL fetched into a file, guarded against server-side request forgery.

Public addresses only, checked before each connect, redirects included,
within one deadline and a size cap.

``MEDIA_ALLOW_PRIVATE_URLS`` lets it reach private, loopback and link-local
addresses (a test, a network of one's own).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import os
import re
import socket
import ssl
import time
from pathlib import Path, PurePosixPath
from typing import Callable, cast
from urllib.parse import unquote, urljoin, urlsplit

from .request import MAX_FILENAME, MediaLimits, MediaRefused

MAX_REDIRECTS = 3


def address_allowed(ip: str) -> bool:
    """A public address: not private, loopback, link-local, multicast,
    reserved or unspecified (IPv4 in IPv6 looked at as IPv4)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


class _Refused(Exception):
    pass


def _connect(host: str, port: int, left: Callable[[], float], allow_private: bool) -> socket.socket:
    """A connection to ``host``, to an address checked *before* connecting
    (a name resolved twice could change in between); each address tried
    within what is ``left()`` of the fetch's time."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OSError(f"cannot resolve {host}: {e.strerror}") from None
    last: OSError | None = None
    for family, type_, proto, _, sockaddr in infos:
        address = cast(str, sockaddr[0])  # an IPv4 or IPv6 address: a string
        if not allow_private and not address_allowed(address):
            raise _Refused(f"{host} is {sockaddr[0]}, a private or local address")
        timeout = left()
        s = socket.socket(family, type_, proto)
        s.settimeout(timeout)
        try:
            s.connect(sockaddr)
            return s
        except OSError as e:
            s.close()
            last = e
    raise last or OSError(f"no address for {host}")


def fetch_url(url: str, dest: Path, limits: MediaLimits, now: Callable[[], float] = time.monotonic
              ) -> tuple[str | None, str | None]:
    """GET ``url`` into ``dest``: at most ``limits.max_size`` bytes within
    ``limits.fetch_timeout`` seconds, redirects followed (checked the same
    way).  Returns the answer's content type and a file name from its
    headers or path.  The deadline bounds the whole fetch, every connect,
    handshake, header and body of every redirect (``_Timed``), but for the
    name lookups: those are the system resolver's, bounded by its own
    timeouts."""
    deadline = now() + limits.fetch_timeout

    def left() -> float:
        remaining = deadline - now()
        if remaining <= 0:
            raise MediaRefused("media_unreachable", f"{_safe(url)} took longer than {limits.fetch_timeout:g} s")
        return remaining

    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MediaRefused("bad_media", "a redirect led to a URL that is not http(s)")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            sock = _connect(parts.hostname, port, left, limits.allow_private_urls)
        except _Refused as e:
            raise MediaRefused("media_url_refused", str(e)) from None
        except OSError as e:
            raise MediaRefused("media_unreachable", f"{_safe(url)}: {e}") from None
        if parts.scheme == "https":
            ctx = ssl.create_default_context()
            try:
                # The handshake as a whole runs under the socket's timeout
                # (CPython counts it down across the handshake's waits).
                sock.settimeout(left())
                sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
            except (OSError, ssl.SSLError) as e:
                sock.close()
                raise MediaRefused("media_unreachable", f"{_safe(url)}: TLS: {e}") from None
            except MediaRefused:
                sock.close()
                raise
        conn = http.client.HTTPConnection(parts.hostname, port)
        conn.sock = _Timed(sock, left)
        resp = None
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("GET", path, headers={"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "wwnode",
                                               "Accept-Encoding": "identity"})
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                url = urljoin(url, resp.getheader("Location"))
                continue
            if resp.status != 200:
                raise MediaRefused("media_unreachable", f"{_safe(url)} answered HTTP {resp.status}")
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > limits.max_size:
                raise MediaRefused("media_too_large", f"{_safe(url)} is {length} bytes; MEDIA_MAX_SIZE is "
                                                      f"{limits.max_size}")
            write_new(dest, lambda f: _copy_capped(resp, f, limits.max_size))
            ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower() or None
            if ctype in ("application/octet-stream", "binary/octet-stream"):
                ctype = None
            return ctype, _name_from(resp.getheader("Content-Disposition"), parts.path)
        except (OSError, http.client.HTTPException) as e:
            raise MediaRefused("media_unreachable", f"{_safe(url)}: {e or type(e).__name__}") from None
        finally:
            if resp is not None:
                resp.close()  # the connection's socket goes with the last file made of it
            conn.close()
    raise MediaRefused("media_unreachable", f"more than {MAX_REDIRECTS} redirects")


class _Timed:
    """A connected socket whose every wait is cut to what is ``left()`` of
    the fetch's time, for ``http.client``.  It reads the headers and the
    body through a buffered file that calls ``recv_into`` until it has what
    it asked for (a line, 256 KiB), each call under the socket's timeout
    afresh: a server that sends a byte every few seconds never lets one run
    out, and a fetch took hours.  Here each call gets only the time left, so
    the fetch ends at its deadline whatever the server does."""

    def __init__(self, sock: socket.socket, left: Callable[[], float]):
        self._sock = sock
        self._left = left
        # As a socket does: closed once it is closed and so is every file
        # made of it (http.client closes the connection, then reads on
        # through the answer's file when the server closes after it).
        self._files = 0
        self._closed = False

    def _timed(self, call, *args):
        self._sock.settimeout(self._left())  # MediaRefused once none is left
        try:
            return call(*args)
        except TimeoutError:
            self._left()  # said as the fetch's deadline, which it was
            raise

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        return self._timed(self._sock.recv_into, buffer, nbytes, flags)

    def send(self, data, flags: int = 0) -> int:
        return self._timed(self._sock.send, data, flags)

    def sendall(self, data, flags: int = 0) -> None:
        return self._timed(self._sock.sendall, data, flags)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        # What socket.makefile("rb") gives, reading through this object.
        if mode != "rb":
            raise ValueError(f"only 'rb', not {mode!r}")
        self._files += 1
        # Not a socket, but has what SocketIO uses of one for reading (recv_into, _decref_socketios).
        return io.BufferedReader(socket.SocketIO(cast(socket.socket, self), "rb"))

    def _decref_socketios(self) -> None:  # a file made above closes
        self._files -= 1
        if self._closed and self._files <= 0:
            self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._closed = True
        if self._files <= 0:
            self._sock.close()


def _copy_capped(resp, f, cap: int) -> None:
    total = 0
    while True:
        chunk = resp.read(256 * 1024)
        if not chunk:
            return
        total += len(chunk)
        if total > cap:
            raise MediaRefused("media_too_large", f"the answer is larger than MEDIA_MAX_SIZE ({cap})")
        f.write(chunk)


def _name_from(disposition: str | None, path: str) -> str | None:
    if disposition:
        m = re.search(r"filename\*=UTF-8''([^;]+)", disposition, re.I) or re.search(r'filename="?([^";]+)', disposition)
        if m:
            name = unquote(m.group(1)).strip()
            if name and "/" not in name and "\\" not in name and len(name) <= MAX_FILENAME:
                return name
    name = unquote(PurePosixPath(path).name)
    return name if name and len(name) <= MAX_FILENAME and not any(ord(c) < 32 for c in name) else None


def _safe(url: str) -> str:
    """The URL as a detail may show it: no user, password or query (a
    signed URL's token)."""
    p = urlsplit(url)
    host = p.hostname or ""
    return f"{p.scheme}://{host}{f':{p.port}' if p.port else ''}{p.path}"


def write_new(dest: Path, fill) -> None:
    """``dest`` made afresh (0600, what was there emptied) and filled by ``fill(f)``."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        fill(f)

"""A session's way through its proxy: a small relay on a loopback port of
its own, which Chromium uses as a SOCKS5 proxy without credentials, and
which opens each of Chromium's connections as a tunnel through the
session's real proxy, credentials and all.

Why a relay, not Chromium's own proxy support answering its challenge
(DevTools ``Fetch.authRequired``): tried on Chromium 156 against Debian's
tinyproxy and microsocks,

- Chromium has no SOCKS5 authentication at all: behind a SOCKS5 proxy that
  asks for a user and password every load fails
  (``ERR_SOCKS_CONNECTION_FAILED``), and no DevTools event is raised;
- a ``--proxy-server`` URL with credentials in it is not refused but taken
  as no proxy: the page loaded *directly*, from the machine's own address;
- ``Fetch.authRequired`` does answer an HTTP proxy's challenge, but only
  with request interception on (every request of the page paused until
  this process lets it go on, over the DevTools connection), and only for
  the targets that connection is attached to: not the browser's own
  requests, not a service worker's.

Through the relay every connection of the browser, whichever target made
it, goes to one place that holds the credentials and speaks the proxy's
protocol itself: HTTP and HTTPS proxies through ``CONNECT`` (with
``Proxy-Authorization: Basic``), SOCKS5 proxies with RFC 1929's user and
password.  Chromium sends host names, not addresses, to a SOCKS5 proxy,
and the relay passes them on as names: nothing is resolved on this machine.
And the relay knows, before the page is opened, whether the proxy can be
reached and takes the credentials (:meth:`ProxyRelay.check`), so the
session can say which (``proxy_error``) instead of timing out.

The relay answers only this machine's processes of the same user (a
connection from another user's process is closed at once): it is an open
door to the proxy with the session's credentials.

Runs an asyncio loop on a thread of its own; nothing it logs holds the
password (:meth:`ProxyUrl.public`).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import os
import ssl
import struct
import threading
from concurrent.futures import Future

from .proxyurl import ProxyUrl

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0  # seconds to reach the proxy and have it open a tunnel
MAX_HEAD = 16 * 1024  # an HTTP proxy's answer to CONNECT, headers included
CHUNK = 64 * 1024

# SOCKS5 (RFC 1928) replies, by code.
SOCKS_REPLIES = {1: "general failure", 2: "not allowed by its rules", 3: "network unreachable",
                 4: "host unreachable", 5: "connection refused", 6: "TTL expired",
                 7: "command not supported", 8: "address type not supported"}


class ProxyError(Exception):
    """The proxy could not give a tunnel.  ``kind``: ``unreachable`` (the
    proxy itself cannot be reached), ``credentials`` (it refused the user
    and password, or wants some and has none), ``refused`` (it would not
    connect to the destination)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# ------------------------------------------------------------ the upstream
async def open_tunnel(proxy: ProxyUrl, host: str, port: int, tls: ssl.SSLContext | None = None,
                      timeout: float = CONNECT_TIMEOUT) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``host:port`` through ``proxy``; ProxyError if none."""
    where = proxy.host_port()
    try:
        context = None
        if proxy.scheme == "https":
            context = tls or ssl.create_default_context()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(proxy.host, proxy.port, ssl=context,
                                    server_hostname=proxy.host if context else None), timeout)
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
        raise ProxyError("unreachable", f"proxy {where} cannot be reached: {_why(e)}") from None
    try:
        if proxy.scheme == "socks5":
            await asyncio.wait_for(_socks5_handshake(proxy, reader, writer, host, port), timeout)
        else:
            await asyncio.wait_for(_http_connect(proxy, reader, writer, host, port), timeout)
    except ProxyError:
        writer.close()
        raise
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as e:
        writer.close()
        raise ProxyError("unreachable", f"proxy {where} broke off: {_why(e)}") from None
    return reader, writer


def _why(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(e, asyncio.IncompleteReadError):
        return "it closed the connection"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _http_connect(proxy: ProxyUrl, reader, writer, host: str, port: int) -> None:
    target = _authority(host, port)
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if proxy.has_credentials:
        token = base64.b64encode(f"{proxy.user}:{proxy.password}".encode()).decode()
        head += f"Proxy-Authorization: Basic {token}\r\n"
    writer.write((head + "\r\n").encode())
    await writer.drain()
    try:
        answer = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise ProxyError("refused", f"proxy {proxy.host_port()} answered CONNECT with an over-long head") from None
    if len(answer) > MAX_HEAD:
        raise ProxyError("refused", f"proxy {proxy.host_port()} answered CONNECT with an over-long head")
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if 200 <= status < 300:
        return
    if status in (401, 407):  # tinyproxy answers 401 where the RFC says 407
        what = "refused the credentials" if proxy.has_credentials else "wants credentials"
        raise ProxyError("credentials", f"proxy {proxy.host_port()} {what} (HTTP {status})")
    raise ProxyError("refused", f"proxy {proxy.host_port()} would not connect to {target}: {status_line[:200]}")


async def _socks5_handshake(proxy: ProxyUrl, reader, writer, host: str, port: int) -> None:
    where = proxy.host_port()
    methods = b"\x00\x02" if proxy.has_credentials else b"\x00"
    writer.write(b"\x05" + bytes([len(methods)]) + methods)
    await writer.drain()
    version, method = await reader.readexactly(2)
    if version != 5:
        raise ProxyError("refused", f"proxy {where} does not speak SOCKS5")
    if method == 0xFF:
        what = "takes none of our ways to log in" if proxy.has_credentials else "wants credentials"
        raise ProxyError("credentials", f"proxy {where} {what}")
    if method == 0x02:
        user, password = proxy.user.encode(), proxy.password.encode()
        writer.write(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        await writer.drain()
        _, status = await reader.readexactly(2)
        if status != 0:
            raise ProxyError("credentials", f"proxy {where} refused the credentials")
    elif method != 0x00:
        raise ProxyError("refused", f"proxy {where} chose a way to log in we did not offer ({method})")
    writer.write(b"\x05\x01\x00" + _socks_address(host) + struct.pack("!H", port))
    await writer.drain()
    _, reply, _, atyp = await reader.readexactly(4)
    # The address the proxy bound, then its port: read and dropped.
    size = {1: 4, 4: 16}.get(atyp)
    if size is None:
        size = (await reader.readexactly(1))[0]
    await reader.readexactly(size + 2)
    if reply != 0:
        raise ProxyError("refused", f"proxy {where} would not connect to {_authority(host, port)}: "
                                    f"{SOCKS_REPLIES.get(reply, f'reply {reply}')}")


def _socks_address(host: str) -> bytes:
    """An address as SOCKS5 names it; a host name is passed on as a name
    (the proxy resolves it, not this machine)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        return b"\x03" + bytes([len(name)]) + name
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed


# ---------------------------------------------------------- the browser side
async def _read_socks_request(reader, writer) -> tuple[str, int] | None:
    """Chromium's SOCKS5 request (no authentication), or None after
    refusing one we do not serve."""
    version, count = await reader.readexactly(2)
    methods = await reader.readexactly(count)
    if version != 5 or 0 not in methods:
        writer.write(b"\x05\xff")
        return None
    writer.write(b"\x05\x00")
    version, command, _, atyp = await reader.readexactly(4)
    if atyp == 1:
        host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
    elif atyp == 4:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    elif atyp == 3:
        host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("idna")
    else:
        writer.write(_socks_reply(8))
        return None
    (port,) = struct.unpack("!H", await reader.readexactly(2))
    if command != 1:  # only CONNECT: no BIND, no UDP (nothing goes around the proxy)
        writer.write(_socks_reply(7))
        return None
    return host, port


def _socks_reply(code: int) -> bytes:
    return b"\x05" + bytes([code]) + b"\x00\x01\x00\x00\x00\x00\x00\x00"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (OSError, RuntimeError):
            writer.close()


def _peer_uid(peer: tuple, local_port: int) -> int | None:
    """The user owning the other end of a loopback connection to our
    ``local_port``, from the kernel's socket table (None if not found)."""
    host, port = peer[0], peer[1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    table = "/proc/net/tcp" if ip.version == 4 else "/proc/net/tcp6"
    if ip.version == 4:
        want_local = f"{int.from_bytes(ip.packed, 'little'):08X}:{port:04X}"
    else:
        words = [ip.packed[i:i + 4] for i in range(0, 16, 4)]
        want_local = "".join(f"{int.from_bytes(w, 'little'):08X}" for w in words) + f":{port:04X}"
    try:
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want_local and fields[2].endswith(f":{local_port:04X}"):
                    return int(fields[7])
    except OSError:
        return None
    return None


class ProxyRelay:
    """The relay for one proxy: :meth:`start`, then Chromium's
    ``--proxy-server=socks5://127.0.0.1:{port}``."""

    def __init__(self, proxy: ProxyUrl, tls: ssl.SSLContext | None = None):
        self.proxy = proxy
        self.tls = tls  # for an https proxy; None: the system's trusted certificates
        self.port = 0
        self.tunnels = 0  # opened so far
        self.failures: list[ProxyError] = []  # the latest few tunnels the proxy refused
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy-relay", daemon=True)

    def start(self) -> int:
        """Listen on a loopback port; the port."""
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", 0), None)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("proxy relay on 127.0.0.1:%d for %s", self.port, self.proxy.public())
        return self.port

    def check(self, host: str, port: int, tries: int = 3, pause: float = 1.0) -> None:
        """Open (and close) one tunnel to ``host:port``: ProxyError if the
        proxy cannot be reached or refuses, after ``tries`` for a proxy
        that cannot be reached (a blip is not a dead proxy) and at once
        for refused credentials (trying them again would only lock the
        account at some proxies)."""
        for attempt in range(1, tries + 1):
            try:
                _, writer = self._call(open_tunnel(self.proxy, host, port, self.tls), CONNECT_TIMEOUT + 5)
            except ProxyError as e:
                if e.kind != "unreachable" or attempt == tries:
                    raise
                log.warning("%s (try %d of %d)", e.detail, attempt, tries)
                threading.Event().wait(pause)
                continue
            writer.close()
            return

    def close(self) -> None:
        """Stop listening and end every tunnel (the browser is gone)."""
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            try:
                self._call(shut(), 5)
            except TimeoutError:
                log.warning("proxy relay: tunnels still open after 5 s; leaving them")
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _call(self, coro, timeout: float | None):
        future: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        upstream = None
        try:
            uid = _peer_uid(peer, self.port)
            if uid is not None and uid != os.getuid():
                log.warning("proxy relay: a connection from another user's process (uid %d); closed", uid)
                return
            request = await asyncio.wait_for(_read_socks_request(reader, writer), CONNECT_TIMEOUT)
            if request is None:
                return
            host, port = request
            try:
                up_reader, upstream = await open_tunnel(self.proxy, host, port, self.tls)
            except ProxyError as e:
                self.failures = (self.failures + [e])[-10:]
                log.warning("proxy relay: %s", e.detail)
                writer.write(_socks_reply(5 if e.kind == "refused" else 1))
                return
            self.tunnels += 1
            writer.write(_socks_reply(0))
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, UnicodeError):
            pass  # the browser went away mid-request: nothing to tell
        finally:
            writer.close()
            if upstream is not None:
                upstream.close()


def browser_proxy(relay_port: int) -> str:
    """What Chromium is told its proxy is."""
    return f"socks5://127.0.0.1:{relay_port}"


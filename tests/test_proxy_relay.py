"""The session's proxy relay (``sessionproc/proxyrelay.py``) against real
proxies (``tests/proxies.py``: tinyproxy for HTTP, behind a TLS front for
HTTPS, microsocks for SOCKS5), each connecting out from its own loopback
address: a tunnel reaches a server on 127.0.0.1 from the proxy's address;
a proxy that is down, or refuses the credentials, is said so, which."""

from __future__ import annotations

import http.server
import socket
import struct
import threading

import pytest

from proxies import MicroSocks, TinyProxy, TlsFront
from sessionproc.proxyrelay import ProxyError, ProxyRelay
from sessionproc.proxyurl import parse_proxy
from support import closed_port


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the address it came from."""

    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def proxies(tmp_path_factory):
    http_proxy = TinyProxy(tmp_path_factory.mktemp("tinyproxy"), "alice", "pw-http-1", "127.0.0.2")
    socks = MicroSocks("bob", "pw-socks-2", "127.0.0.3")
    front = TlsFront(http_proxy.port)
    yield http_proxy, socks, front
    front.stop()
    socks.stop()
    http_proxy.stop()


def fetch_through(relay_port: int, origin_port: int, host: str = "127.0.0.1") -> str:
    """GET / of the origin, as Chromium asks the relay (SOCKS5, no auth)."""
    with socket.create_connection(("127.0.0.1", relay_port), timeout=10) as s:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        if host == "127.0.0.1":
            address = b"\x01" + socket.inet_aton(host)
        else:
            address = b"\x03" + bytes([len(host)]) + host.encode()
        s.sendall(b"\x05\x01\x00" + address + struct.pack("!H", origin_port))
        reply = s.recv(10)
        if reply[1] != 0:
            return f"refused {reply[1]}"
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode()


@pytest.mark.parametrize("which", ["http", "https", "socks5"])
def test_a_tunnel_goes_through_the_proxy_and_only_through_it(proxies, origin, which):
    http_proxy, socks, front = proxies
    url, tls, out = {"http": (http_proxy.url(), None, "127.0.0.2"),
                     "https": (http_proxy.url(scheme="https", port=front.port), front.client_context(), "127.0.0.2"),
                     "socks5": (socks.url(), None, "127.0.0.3")}[which]
    relay = ProxyRelay(parse_proxy(url), tls=tls)
    port = relay.start()
    try:
        relay.check("127.0.0.1", origin)
        assert fetch_through(port, origin) == out
        # A host name is passed on as a name: the proxy resolves it.
        assert fetch_through(port, origin, host="localhost") == out
        assert relay.tunnels == 2
    finally:
        relay.close()
    if which != "socks5":
        assert f"127.0.0.1:{origin}" in http_proxy.log()  # tinyproxy's log shows each CONNECT


@pytest.mark.parametrize("which", ["http", "socks5"])
def test_refused_credentials_are_said_so_at_once(proxies, origin, which):
    http_proxy, socks, _ = proxies
    url = http_proxy.url(password="wrong-pw") if which == "http" else socks.url(password="wrong-pw")
    relay = ProxyRelay(parse_proxy(url))
    relay.start()
    try:
        with pytest.raises(ProxyError) as e:
            relay.check("127.0.0.1", origin, tries=3, pause=30)  # not retried: no 30 s pause
        assert e.value.kind == "credentials" and "refused the credentials" in e.value.detail
        assert "wrong-pw" not in e.value.detail and "127.0.0.1:" in e.value.detail
        # And a tunnel the browser asks for is refused, not opened around it.
        assert fetch_through(relay.port, origin).startswith("refused")
    finally:
        relay.close()
    no_credentials = ProxyRelay(parse_proxy(f"socks5://127.0.0.1:{socks.port}"))
    no_credentials.start()
    try:
        with pytest.raises(ProxyError) as e:
            no_credentials.check("127.0.0.1", origin)
        assert e.value.kind == "credentials" and "wants credentials" in e.value.detail
    finally:
        no_credentials.close()


def test_a_proxy_that_is_down_is_said_so_after_a_few_tries(origin):
    gone = closed_port()
    try:
        relay = ProxyRelay(parse_proxy(f"http://u:pw-gone-3@127.0.0.1:{gone.getsockname()[1]}"))
        relay.start()
        try:
            with pytest.raises(ProxyError) as e:
                relay.check("127.0.0.1", origin, tries=2, pause=0.01)
            assert e.value.kind == "unreachable" and "cannot be reached" in e.value.detail
            assert "pw-gone-3" not in e.value.detail
        finally:
            relay.close()
    finally:
        gone.close()


def test_the_relay_serves_only_connects(proxies, origin):
    http_proxy, _, _ = proxies
    relay = ProxyRelay(parse_proxy(http_proxy.url()))
    port = relay.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x05\x01\x00")
            assert s.recv(2) == b"\x05\x00"
            s.sendall(b"\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x35")  # UDP ASSOCIATE: would go around the proxy
            assert s.recv(10)[1] == 7  # command not supported
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x05\x01\x02")  # only user/password offered: not ours to take
            assert s.recv(2) == b"\x05\xff"
    finally:
        relay.close()

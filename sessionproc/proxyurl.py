"""A session's proxy, as its settings name it: ``http://``, ``https://`` or
``socks5://``, with an optional ``user:password@``.

Read in one place for the node (which checks a client's settings) and the
session process (which connects through it), so both agree on what a URL
means.  The password is a credential: :meth:`ProxyUrl.public` and
:meth:`ProxyUrl.host_port` are the forms fit for logs, events, the
heartbeat and metrics; only :meth:`ProxyUrl.url` carries it, for the
settings kept in Redis, the profile and its snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, unquote, urlsplit

SCHEMES = ("http", "https", "socks5")
DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080}
MAX_URL = 2048
# RFC 1929 (SOCKS5's user and password) takes at most 255 bytes of each.
MAX_CREDENTIAL = 255
# A host name or an IPv4 address; an IPv6 address is written in brackets.
HOST_RE = re.compile(r"\A(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                     r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
MASK = "***"


class BadProxy(ValueError):
    """Not a proxy URL a session can use; the text says why (never the
    password)."""


@dataclass(frozen=True)
class ProxyUrl:
    scheme: str
    host: str  # an IPv6 address without its brackets
    port: int
    user: str = ""  # percent-decoded
    password: str = ""  # percent-decoded

    @property
    def has_credentials(self) -> bool:
        return bool(self.user)

    def _netloc_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def host_port(self) -> str:
        """``host:port``: what status, the dashboard and metrics show."""
        return f"{self._netloc_host()}:{self.port}"

    def public(self) -> str:
        """The URL with its password masked, fit for logs and events."""
        who = f"{quote(self.user, safe='')}:{MASK}@" if self.user else ""
        return f"{self.scheme}://{who}{self.host_port()}"

    def url(self) -> str:
        """The whole URL, credentials included (kept, never shown)."""
        who = ""
        if self.user:
            who = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "") + "@"
        return f"{self.scheme}://{who}{self.host_port()}"


def parse_proxy(url: str) -> ProxyUrl:
    """BadProxy with a reason that quotes nothing of the URL's password."""
    if not isinstance(url, str):
        raise BadProxy("proxy must be a string (or null for none)")
    if len(url) > MAX_URL:
        raise BadProxy(f"proxy is longer than {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7f for ch in url):
        raise BadProxy("proxy must not hold spaces or control characters")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise BadProxy(f"proxy must be a {', '.join(s + '://' for s in SCHEMES)} URL")
    scheme = scheme.lower()
    # Where the host part ends is where a / ? or # first comes; an @ after
    # it means a password with one of those unencoded: nobody can tell
    # where it ends.
    netloc, tail = cast(re.Match, re.match(r"([^/?#]*)(.*)\Z", rest, re.DOTALL)).groups()  # matches any text
    if "@" in tail:
        raise BadProxy("cannot tell where the proxy's password ends; percent-encode / ? # @ in the user and "
                       "password (%2F %3F %23 %40)")
    if tail not in ("", "/"):
        raise BadProxy("proxy must be scheme://[user:password@]host[:port], with no path, query or fragment")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and "@" in userinfo:
        raise BadProxy("percent-encode @ in the proxy's user and password (%40)")
    try:
        parts = urlsplit(f"{scheme}://{hostport}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise BadProxy("proxy's port must be a number from 1 to 65535") from None
    if not host:
        raise BadProxy("proxy must name a host")
    if ":" in host:
        if not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
            raise BadProxy("proxy's host is not a valid IPv6 address")
    elif not HOST_RE.match(host):
        raise BadProxy("proxy's host must be a host name or an IP address")
    if port is None:
        if hostport.endswith(":"):
            raise BadProxy("proxy's port must be a number from 1 to 65535")
        port = DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise BadProxy("proxy's port must be a number from 1 to 65535")
    user = password = ""
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user, password = unquote(raw_user), unquote(raw_password)
        if not user:
            raise BadProxy("proxy's credentials need a user name")
        if len(user.encode()) > MAX_CREDENTIAL or len(password.encode()) > MAX_CREDENTIAL:
            raise BadProxy(f"proxy's user and password are at most {MAX_CREDENTIAL} bytes each")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in user + password):
            raise BadProxy("proxy's user and password must not hold control characters")
    return ProxyUrl(scheme, host.lower(), port, user, password)

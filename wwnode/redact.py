"""Keeping the passwords of the node's settings out of what it says and
what it hands on: its log, its events, ``wwnode status``, and the
environment of its session processes (and so of their browsers).

Passwords reach the node inside URLs, in every form redis-py and pika
accept: the user information (``amqp://user:pass@host``, a password alone
in ``redis://:pass@host``), percent-encoded or not, and, for Redis, query
parameters (``redis://host/0?password=...``; pika's ``ssl_options`` may
carry a key's password).  A ``/``, ``?`` or ``#`` left unencoded in a
password ends the host part early, so what follows (the rest of the
password, then ``@host``) looks like a path, a query or a fragment, and no
parser finds the password: such a URL means something else than its
writer meant, and :func:`ambiguous_url` says so (the settings refuse it).

A setting may hold several URLs, comma-separated (``RABBIT_MQ_URL`` lists
the members of a RabbitMQ cluster): each is read, checked and masked on its
own (:func:`split_urls`).  A comma inside one of them is percent-encoded
(``%2C``), as any URL reserved character in a password.

Three layers, so that one forgotten call does not leak:

- :func:`redact_url` gives the form of a URL fit for a log line;
- :class:`RedactingFormatter` masks, in every log line and traceback, the
  passwords of the node's own URLs (:func:`url_secrets`);
- :func:`session_environment` is the environment a session process gets:
  none of the node's settings (a session takes its own from its command
  line) and no variable whose name or value carries a secret.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

MASK = "***"
# Query parameters whose value is, or may hold, a secret.
SECRET_PARAM = re.compile(r"pass|secret|token|credential|ssl_options", re.IGNORECASE)
# Environment variables named as holders of a secret.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|API_?KEY", re.IGNORECASE)
# A value holding a URL with a password: ``scheme://user:pass@`` or ``?password=``.
SECRET_VALUE = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/?#]*:[^\s]*@|[?&][^=&\s]*pass[^=&\s]*=", re.IGNORECASE)
MIN_SECRET = 4  # shorter "passwords" are no secret, and masking them would garble every line


# A comma that starts the next URL of a list: followed by ``scheme://``.
URL_SEPARATOR = re.compile(r",\s*(?=[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list (one URL: a list of one)."""
    return [url.strip() for url in URL_SEPARATOR.split(value.strip())]


def _query(url: str) -> list[tuple[str, str]]:
    """The query's (name, value) pairs as written (not decoded)."""
    query = urlsplit(url).query
    return [(name, value) for name, _, value in (item.partition("=") for item in query.split("&"))] if query else []


def _secret_param(name: str) -> bool:
    return bool(SECRET_PARAM.search(unquote(name)))


def ambiguous_url(url: str) -> bool:
    """True when, in any URL of the list,  an ``@`` comes after the host part (outside the value of a
    password parameter), or the port is not a number: a password with an
    unencoded ``/ ? #`` (or a stray ``@``).  Nobody can tell where its
    password ends."""
    if len(split_urls(url)) > 1:
        return any(ambiguous_url(one) for one in split_urls(url))
    parts = urlsplit(url)
    try:
        _ = parts.port  # read only for its ValueError
    except ValueError:
        return True
    pairs = _query(url)
    rest = [parts.path, parts.fragment] + [n for n, _ in pairs] + [v for n, v in pairs if not _secret_param(n)]
    return any("@" in piece for piece in rest)


def redact_url(url: str) -> str:
    """The URL with its passwords replaced, fit for logs and events.  An
    ambiguous URL (see :func:`ambiguous_url`) shows its scheme only; in a
    list, each URL is masked on its own."""
    if len(split_urls(url)) > 1:
        return ",".join(redact_url(one) for one in split_urls(url))
    parts = urlsplit(url)
    if ambiguous_url(url):
        return f"{parts.scheme}://{MASK}"
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    out = f"{parts.scheme}://{user}:{MASK}@{host}" if colon else f"{parts.scheme}://{parts.netloc}"
    out += parts.path
    if parts.query:
        out += "?" + "&".join(f"{n}={MASK}" if _secret_param(n) else (f"{n}={v}" if v else n) for n, v in _query(url))
    if parts.fragment:
        out += f"#{parts.fragment}"
    return out


def url_secrets(url: str) -> set[str]:
    """The passwords a URL carries, as written and percent-decoded; for an
    ambiguous URL, everything between the scheme and its last ``@``, and
    each piece of it, since a parser's error may quote any of them.  A list
    gives the passwords of all its URLs."""
    if len(split_urls(url)) > 1:
        return set().union(*(url_secrets(one) for one in split_urls(url)))
    found: set[str] = set()
    if "://" not in url:
        return found
    if ambiguous_url(url):
        blob = url.split("://", 1)[1].rpartition("@")[0]
        _, _, password = blob.partition(":")
        found.update([password, *re.split(r"[/?#@]", password)])
    else:
        userinfo, _, _ = urlsplit(url).netloc.rpartition("@")
        if ":" in userinfo:
            found.add(userinfo.partition(":")[2])
        found.update(value for name, value in _query(url) if _secret_param(name))
    found |= {unquote(s) for s in found}
    return {s for s in found if len(s) >= MIN_SECRET}


class RedactingFormatter(logging.Formatter):
    """A formatter that masks these secrets wherever they appear in a
    formatted line, the traceback included (an exception's text may quote
    a URL the node never logged itself)."""

    def __init__(self, fmt: str, secrets: Iterable[str]):
        super().__init__(fmt)
        # Longest first: a secret that contains another is masked whole.
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def session_environment(environ: Mapping[str, str], settings: Iterable[str]) -> dict[str, str]:
    """The environment a session process (and its browser) runs with:
    ``environ`` without the node's ``settings`` (the session gets what it
    needs on its command line) and without any variable that carries a
    secret by its name or holds a URL with a password."""
    dropped = set(settings)
    return {name: value for name, value in environ.items()
            if name not in dropped and not SECRET_NAME.search(name) and not SECRET_VALUE.search(value)}

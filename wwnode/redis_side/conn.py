"""Which Redis to talk to: ``REDIS_URL``'s server, or the master Redis Sentinel names.

Which Redis to talk to: the one ``REDIS_URL`` names, or, with
``REDIS_SENTINELS``, the master that Redis Sentinel names now.

With Sentinel, redis-py's own support finds the master: each new
connection asks the sentinels, and a connection to a server that is no
longer the master (it died, or came back as a replica and answers
``READONLY``) fails, so the next one goes to the master promoted meanwhile.
``REDIS_URL`` then still gives the database, the user and password of the
master (its host and port are not used); the sentinels themselves are
reached without a password.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import parse_url
from redis.sentinel import Sentinel

# What a call that Redis did not answer raises.
REDIS_ERRORS = (redis.RedisError, OSError)


def parse_sentinels(text: str) -> list[tuple[str, int]]:
    """``host:port,host:port,...`` as (host, port) pairs; ValueError names
    the entry that is not one."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def connect(url: str, sentinels: str = "", master_name: str = "", **options) -> redis.Redis:
    """A client of the URL's server, or of the master the sentinels name
    (``options``: redis-py's connection settings, timeouts and such)."""
    if not sentinels:
        return redis.Redis.from_url(url, **options)
    settings = parse_url(url)
    server = {name: settings[name] for name in ("db", "username", "password") if settings.get(name) is not None}
    if url.startswith("rediss://"):
        server["ssl"] = True
    timeouts: dict[str, Any] = {name: options[name] for name in ("socket_timeout", "socket_connect_timeout") if name in options}
    watch = Sentinel(parse_sentinels(sentinels), sentinel_kwargs=timeouts, **timeouts)
    return watch.master_for(master_name, **server, **options)

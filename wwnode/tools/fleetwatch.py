"""The fleet as the dashboard reads it: Redis every second, the events between, handed to the page's side.

A thread of blocking clients, the command line's own (``client.py``); what
it finds goes to ``push(kind, data)``, which the dashboard hands over to
its asyncio loop.
"""

from __future__ import annotations

import threading
import time
from typing import cast

import orjson
import pika.exceptions
import redis

from ..config import Config
from ..redis_side.keys import PAIRING_CODE, QR, SETTINGS, instance_key
from ..sessionsettings import from_stored
from .client import Broker, Unreachable, open_redis
from .eventlines import describe
from .qrterm import make as make_qr
from .status import collect

READ_EVERY = 1.0  # seconds between two readings of the fleet in Redis
RETRY = 2.0  # seconds before connecting again after a server went away
HEARTBEAT_FIELDS = ("sessions", "accepting", "cpu", "mem", "max_sessions", "router", "host", "ts", "disk_ok",
                    "metrics_addr", "redis_up", "outbox", "crashes")


def qr_png_uri(qr: str) -> str:
    # Shown at its own size: whole pixels a module, which a camera reads
    # best (scaled by the browser, modules come out of uneven widths).
    return make_qr(qr).png_data_uri(scale=5, border=4)


def fleet_view(r: redis.Redis) -> dict:
    """What the page shows of the fleet: each node's load and admission,
    each session's state, node, since, own number, and its QR image while
    it shows one."""
    data = collect(r)
    nodes = {name: {f: hb.get(f) for f in HEARTBEAT_FIELDS if f in hb} for name, hb in data["nodes"].items()}
    sessions = {}
    for key, st in data["sessions"].items():
        view = {"state": st.get("state", "?"), "node": st.get("node", ""), "since": int(st.get("since") or 0),
                "me": st.get("me") or "", "proxy": st.get("proxy", "")}
        if view["state"] == "qr":
            qr = cast("str | None", r.get(instance_key(key, QR)))  # the client decodes
            if qr:
                view["qr"] = qr
                view["qr_png"] = qr_png_uri(qr)
        sessions[key] = view
    return {"nodes": nodes, "sessions": sessions}


def with_line(event: dict) -> dict:
    """The event, and the line ``wwnode events`` prints for it (``_line``):
    the page shows that, so both read the same."""
    return {**event, "_line": describe(event)}


def session_detail(r: redis.Redis, key: str) -> dict:
    """What a session's page shows beyond the fleet's row: its settings
    (the proxy's password masked) and the pairing code it shows now."""
    detail: dict = {"key": key, "settings": None, "pairing_code": r.get(instance_key(key, PAIRING_CODE))}
    stored = r.get(instance_key(key, SETTINGS))
    if stored:
        try:
            detail["settings"] = from_stored(orjson.loads(stored)).public()
        except ValueError:
            detail["settings_error"] = "the stored settings cannot be read"
    return detail


class FleetWatch(threading.Thread):
    """Reads the fleet from Redis and follows the events; hands each to
    ``push(kind, data)``: ``fleet`` (when it changed), ``event``, and
    ``problem`` (a server cannot be reached; ``None`` once both answer)."""

    def __init__(self, cfg: Config, push):
        super().__init__(name="fleet-watch", daemon=True)
        self.cfg = cfg
        self.push = push
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self._watch()
            except (Unreachable, pika.exceptions.AMQPError, redis.exceptions.RedisError, OSError) as e:
                self.push("problem", {"text": str(e) if isinstance(e, Unreachable) else f"{type(e).__name__}: {e}"})
                self.stopped.wait(RETRY)

    def _watch(self) -> None:
        r = open_redis(self.cfg.redis_url)
        broker = Broker(self.cfg.rabbit_mq_url)
        try:
            broker.follow(("#",))
            self.push("problem", None)
            last, next_read = None, 0.0
            while not self.stopped.is_set():
                now = time.monotonic()
                if now >= next_read:
                    next_read = now + READ_EVERY
                    fleet = fleet_view(r)
                    if fleet != last:
                        last = fleet
                        self.push("fleet", fleet)
                broker.conn.process_data_events(time_limit=max(0.05, next_read - time.monotonic()))
                while broker.events:
                    self.push("event", with_line(broker.events.popleft()))
        finally:
            r.close()
            try:
                broker.close()
            except pika.exceptions.AMQPError:
                pass  # already gone

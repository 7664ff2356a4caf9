"""What the node's loop tells its metrics endpoint, and nothing it waits on.

The loop and the endpoint's thread share no lock.  The loop keeps plain
numbers (``counters.py``: counts and histogram buckets it adds to as things
happen) and, at the end of a turn (:class:`Readings`, a chore), two things
for the thread to read:

- ``vitals``: when the turn ran and whether Redis and RabbitMQ answered,
  one tuple replaced whole every turn (an attribute store: the thread sees
  the old tuple or the new one, never half of each);
- ``snapshot``: every reading at once (sessions by state, admission, the
  outbox, the tally's copies, ...), built only when the thread asked for
  one since the last (a number it raises; the loop answers with the
  number it saw, then writes a byte to a pipe the thread waits on: a
  write that never blocks, since a full pipe already says "answered").
  No scrape, no snapshot: a node nobody scrapes builds none.  A scrape every second costs the loop one snapshot a second,
  tens of microseconds (``tests/bench/bench_node.py`` measures it).

:func:`families` turns a snapshot into Prometheus metric families; it runs
on the thread (``metrics_http.py``).  Time is handed in: tests build a
node of fakes and read these without a server.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sized

from .counters import Tally

if TYPE_CHECKING:
    from .admission import Admission
    from .counters import Counters
    from .ownership import Leases
    from .sessions import Sessions

# A session killed by the node, by the counter that counts it (``Counters``).
KILL_REASONS = {"boot_timeout": "boot_timeouts", "health_check": "health_kills", "bad_output": "bad_events",
                "illegal_transition": "illegal_transitions"}


class Connected(Protocol):
    """The store, the consumer: whether each is up."""
    @property
    def up(self) -> bool: ...


class Publisher(Connected, Protocol):
    """The publisher: up, and the outbox it holds (with a ``spool`` if it has one)."""
    @property
    def outbox(self) -> Sized: ...


@dataclass(eq=False)
class Readings:
    """The chore that publishes the loop's readings to the metrics thread
    (see the module docstring).  ``tick`` runs once per turn."""

    tally: Tally
    sessions: Sessions
    admission: Admission
    counters: Counters
    leases: Leases
    store: Connected
    consumer: Connected
    publisher: Publisher
    # Whether the node takes creates, as the heartbeat says it
    # (``CreateGate.accepting``: admission, and neither stopping nor
    # draining).
    accepting: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic
    # Key -> its proxy's host:port, for the sessions here that have one
    # (``SettingsDesk.proxy_hosts``: never the credentials).
    proxies: Callable[[], dict[str, str]] = dict
    vitals: tuple[float, bool, bool] | None = field(default=None, init=False)  # (turned at, redis up, rabbit up)
    snapshot: dict | None = field(default=None, init=False)
    answered: int = field(default=0, init=False)  # the last request the snapshot answers
    asked: int = field(default=0, init=False)  # raised by the thread only
    answer_fd: int | None = field(default=None, init=False)  # a pipe's non-blocking write end, the thread's
    _last_tick: float | None = field(default=None, init=False)

    def tick(self, now: float) -> None:
        if self._last_tick is not None:
            self.tally.turn.observe(now - self._last_tick)
        self._last_tick = now
        self.vitals = (now, self.store.up, self.consumer.up and self.publisher.up)
        asked = self.asked
        if asked != self.answered:
            self.snapshot = self.take(now)
            self.answered = asked
            if self.answer_fd is not None:
                try:
                    os.write(self.answer_fd, b".")
                except BlockingIOError:
                    pass  # full: the thread has its wake-up already

    def take(self, now: float) -> dict:
        """Every reading at this moment, as plain values (copies: the loop
        goes on changing its own)."""
        t = self.tally
        outbox = self.publisher.outbox
        spool = getattr(outbox, "spool", None)
        renewed = self.leases.valid_until - self.leases.lease_ttl if self.leases.valid_until else None
        return {
            "at": now,
            "sessions": self.sessions.count_by_state(),
            "pids": {rec.key: child.pid for rec, child in self.sessions.children()},
            "accepting": self.accepting(),
            "admission_reason": self.admission.reason,
            "cpu": self.admission.cpu,
            "mem": self.admission.mem,
            "max_sessions": self.admission.max_sessions,
            "outbox": len(outbox),
            "spool": spool.waiting if spool is not None else 0,
            "leases": len(self.leases.tokens()),
            "renewal_age": None if renewed is None else max(0.0, now - renewed),
            "redis_up": self.store.up,
            "rabbit_up": self.consumer.up and self.publisher.up,
            "counters": self.counters.snapshot(),
            "commands": dict(t.commands),
            "failed": dict(t.failed),
            "events": dict(t.events),
            "restarts": dict(t.restarts),
            "failures": dict(t.failures),
            "send": t.send.copy(),
            "publish": t.publish.copy(),
            "turn": t.turn.copy(),
            "proxies": self.proxies(),
        }


def families(snap: dict, turn_age: float | None, memory: dict[str, int]) -> Iterator:
    """The Prometheus metric families of a snapshot, plus what the thread
    measured itself: the age of the loop's last turn and each session's
    browser tree memory (bytes, by key)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    def gauge(name, doc, value, labels=None, labelled=None):
        g = GaugeMetricFamily(name, doc, labels=labels)
        if labelled is not None:
            for values, v in labelled:
                g.add_metric(values, v)
        else:
            g.add_metric([], value)
        return g

    def counter(name, doc, labels, items):
        c = CounterMetricFamily(name, doc, labels=labels)
        for values, v in items:
            c.add_metric(values, v)
        return c

    def histogram(name, doc, data):
        bounds, counts, total, _ = data
        h = HistogramMetricFamily(name, doc)
        cumulative, running = [], 0
        for bound, n in zip((*map(str, bounds), "+Inf"), counts):
            running += n
            cumulative.append((bound, running))
        h.add_metric([], cumulative, total)
        return h

    if turn_age is not None:
        yield gauge("wwnode_loop_last_turn_age_seconds", "Seconds since the node's loop last turned.", turn_age)
    yield gauge("wwnode_session_memory_bytes", "RSS of each session's process tree (session, chromedriver, "
                "Chromium), summed; shared pages count in each process.", None, ["key"],
                [([k], v) for k, v in sorted(memory.items())])
    if not snap:
        return
    counts = snap["counters"]
    yield gauge("wwnode_sessions", "Sessions on this node by state.", None, ["state"],
                [([s], n) for s, n in snap["sessions"].items()])
    yield counter("wwnode_commands", "Commands by queue and how each step ended: done, failed, forwarded "
                  "(to the key's owner), requeued (to be delivered again).", ["queue", "outcome"],
                  [(list(k), v) for k, v in sorted(snap["commands"].items())])
    yield counter("wwnode_commands_failed", "Commands failed for good, by queue and reason.", ["queue", "reason"],
                  [(list(k), v) for k, v in sorted(snap["failed"].items())])
    yield counter("wwnode_events_published", "Events handed to the publisher, by name.", ["event"],
                  [([k], v) for k, v in sorted(snap["events"].items())])
    yield histogram("wwnode_send_seconds", "send_message: from reaching this node to WhatsApp Web accepting "
                    "the message.", snap["send"])
    yield histogram("wwnode_event_publish_seconds", "An event: from being published to the broker's confirm "
                    "(time waiting for RabbitMQ included).", snap["publish"])
    yield histogram("wwnode_loop_turn_seconds", "Time between two turns of the node's loop (a quarter "
                    "second when idle; more when a turn's work takes long).", snap["turn"])
    yield counter("wwnode_session_crashes", "Session processes that ended without being asked to.", [],
                  [([], counts.get("crashes", 0))])
    yield counter("wwnode_session_kills", "Session processes the node killed, by reason.", ["reason"],
                  [([r], counts.get(name, 0)) for r, name in KILL_REASONS.items()])
    yield counter("wwnode_session_restarts", "Sessions restarting, by reason: crash (after its back-off), "
                  "memory_limit.", ["reason"], [([r], n) for r, n in sorted(snap["restarts"].items())])
    yield counter("wwnode_session_failures", "Sessions failed for good, by reason.", ["reason"],
                  [([r], n) for r, n in sorted(snap["failures"].items())])
    yield gauge("wwnode_session_proxy_info", "1 for each session here behind a proxy, labelled with the proxy's "
                "host:port (its credentials are never shown).", None, ["key", "proxy"],
                [([k, p], 1) for k, p in sorted(snap.get("proxies", {}).items())])
    yield gauge("wwnode_admission_accepting", "1 while the node takes new sessions.", int(snap["accepting"]))
    yield gauge("wwnode_load_cpu_percent", "CPU use admission decides on (smoothed; the cgroup's where it "
                "sets a limit).", snap["cpu"])
    yield gauge("wwnode_load_mem_percent", "Memory use admission decides on (smoothed).", snap["mem"])
    yield gauge("wwnode_max_sessions", "MAX_SESSIONS (0: no cap).", snap["max_sessions"])
    yield gauge("wwnode_outbox_messages", "Messages waiting for RabbitMQ (events, routed commands, dead "
                "letters).", snap["outbox"])
    yield gauge("wwnode_spool_events", "Events waiting for RabbitMQ with their copy on disk.", snap["spool"])
    yield gauge("wwnode_leases", "Keys whose lease this node holds.", snap["leases"])
    if snap["renewal_age"] is not None:
        yield gauge("wwnode_lease_renewal_age_seconds", "Seconds since the leases and heartbeat were last "
                    "renewed in Redis (renewed every min(HEARTBEAT_INTERVAL, LEASE_TTL/3)).", snap["renewal_age"])
    yield counter("wwnode_leases_lost", "Keys whose lease this node lost.", [], [([], counts.get("leases_lost", 0))])
    yield gauge("wwnode_redis_up", "1 while the node's last Redis call was answered.", int(snap["redis_up"]))
    yield gauge("wwnode_rabbitmq_up", "1 while both the node's RabbitMQ connections are open.",
                int(snap["rabbit_up"]))

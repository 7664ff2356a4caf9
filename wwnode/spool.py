"""Events not yet confirmed by RabbitMQ, kept on disk.

While RabbitMQ is unreachable, events wait in the publisher's outbox; the
spool keeps a copy in ``DATA_DIR/spool/events.log`` so that a node
restarted meanwhile still publishes them, in order, when RabbitMQ is back.

The file is a journal of lines: ``E <seq> <json>`` when an event is queued,
``C <seq>`` when the broker confirmed it (confirms come in order).  It is
emptied whenever nothing waits.  Lines are written (not fsynced) at once, so
the spool survives the node's death, not the machine's.

Past ``limit`` waiting events the oldest are dropped, with an error in the
log: a bound on disk and memory for a long outage.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: Path, limit: int = 100_000):
        self.path = path
        self.limit = limit
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._seq = 0
        self._waiting = 0
        self._file = None

    def recover(self) -> list[tuple[str, bytes]]:
        """What an earlier run queued and the broker never confirmed, in
        order.  The journal is emptied: the caller queues these again.
        Only once, before anything is added (the publisher's ``Outbox``
        does it): a second call would queue every event twice."""
        if self._seq:
            raise RuntimeError("the spool was recovered already; its events are queued (see Outbox)")
        events: dict[int, tuple[str, bytes]] = {}
        confirmed = 0
        if self.path.exists():
            with open(self.path, "rb") as f:
                for line in f:
                    kind, _, rest = line.rstrip(b"\n").partition(b" ")
                    try:
                        if kind == b"E":
                            seq, _, doc = rest.partition(b" ")
                            item = orjson.loads(doc)
                            events[int(seq)] = (item["k"], item["b"].encode())
                        elif kind == b"C":
                            confirmed = max(confirmed, int(rest))
                    except (ValueError, KeyError, orjson.JSONDecodeError):
                        log.warning("skipping a damaged line in %s", self.path)  # cut short by a crash
        waiting = [events[s] for s in sorted(events) if s > confirmed]
        if len(waiting) > self.limit:
            log.error("spool held %d events, over its limit of %d; the oldest %d are dropped",
                      len(waiting), self.limit, len(waiting) - self.limit)
            waiting = waiting[-self.limit:]
        self._truncate()
        if waiting:
            log.warning("publishing %d events an earlier run could not", len(waiting))
        return waiting

    def add(self, routing_key: str, body: bytes) -> int:
        self._seq += 1
        self._waiting += 1
        self._write(b"E %d " % self._seq + orjson.dumps({"k": routing_key, "b": body.decode()}) + b"\n")
        return self._seq

    def confirmed(self, seq: int) -> None:
        self._waiting -= 1
        if self._waiting <= 0:
            self._waiting = 0
            self._truncate()  # nothing waits: start the journal afresh
        else:
            self._write(b"C %d\n" % seq)

    @property
    def over_limit(self) -> bool:
        return self._waiting > self.limit

    def dropped(self, seq: int) -> None:
        """An event given up (over the limit): counts as confirmed."""
        self.confirmed(seq)

    def _write(self, data: bytes) -> None:
        if self._file is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(fd, "ab", buffering=0)
        self._file.write(data)

    def _truncate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
        os.close(fd)

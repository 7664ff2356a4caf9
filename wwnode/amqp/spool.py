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

A write that fails (a full or read-only disk) never stops an event: it is
reported to ``Storage`` and the event goes on to the broker without its
copy on disk (``Storage.not_journaled``).  The journal is then incomplete;
once the disk takes writes again the outbox writes it afresh from what
waits (``rewrite``).  A line a failed write left half written is ended
before the next one, so recovery skips only that line.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import orjson

if TYPE_CHECKING:
    from ..storage import Storage

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: Path, limit: int = 100_000, storage: Storage | None = None):
        self.path = path
        self.limit = limit
        self.storage = storage  # told of every write that fails
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            self._failed(e)
        self._seq = 0
        self._waiting = 0
        self._file: BinaryIO | None = None
        self._torn = False  # the last write failed, maybe half way through a line
        self.complete = True  # every waiting event has its line (no write failed since the last rewrite)

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
                    if line == b"\n":
                        continue  # ends a line a failed write cut short
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
        if not self._write(self._line(self._seq, routing_key, body)):
            self.complete = False
            if self.storage is not None:
                self.storage.not_journaled += 1
        return self._seq

    @staticmethod
    def _line(seq: int, routing_key: str, body: bytes) -> bytes:
        return b"E %d " % seq + orjson.dumps({"k": routing_key, "b": body.decode()}) + b"\n"

    def confirmed(self, seq: int) -> None:
        self._waiting -= 1
        if self._waiting <= 0:
            self._waiting = 0
            self._truncate()  # nothing waits: start the journal afresh
        else:
            self._write(b"C %d\n" % seq)

    @property
    def waiting(self) -> int:
        """Events queued and not confirmed yet."""
        return self._waiting

    @property
    def over_limit(self) -> bool:
        return self._waiting > self.limit

    def dropped(self, seq: int) -> None:
        """An event given up (over the limit): counts as confirmed."""
        self.confirmed(seq)

    def rewrite(self, waiting: list[tuple[int, str, bytes]]) -> None:
        """Write the journal afresh from the events waiting now, ``(seq,
        routing key, body)`` in order: after writes failed, it lacks some.
        Written beside it and renamed over it, so a failure midway leaves
        the old journal as it was."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                for seq, routing_key, body in waiting:
                    f.write(self._line(seq, routing_key, body))
            os.replace(tmp, self.path)
        except OSError as e:
            self._failed(e)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # what made the write fail (read-only) keeps it from being there
            return
        self._close()
        self._torn = False
        self.complete = True
        if waiting:
            log.warning("the event spool holds again the %d events that wait for RabbitMQ", len(waiting))

    def _write(self, data: bytes) -> bool:
        try:
            if self._file is None:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self._file = os.fdopen(fd, "ab", buffering=0)
            if self._torn:
                data = b"\n" + data
            if self._file.write(data) != len(data):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as e:
            self._torn = True
            self._failed(e)
            return False
        self._torn = False
        return True

    def _truncate(self) -> None:
        self._close()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as e:
            self._failed(e)
            return
        self._torn = False
        self.complete = True  # nothing waits: nothing is missing

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # unbuffered: nothing is lost with it
            self._file = None

    def _failed(self, error: OSError) -> None:
        if self.storage is not None:
            self.storage.failed(f"the event spool {self.path}", error)
        else:
            log.error("cannot write the event spool %s: %s", self.path, error)

"""Whether this node takes a new session now, and its create consumer kept
in step with that.

Two calls, kept apart on purpose:

- :meth:`CreateGate.may_create`, a question with no side effect, asked by
  ``Dispatch`` before each create, on the sessions there are at that very
  moment (``MAX_SESSIONS`` and admission, ``admission.py``): a burst handed
  over at once cannot pass the cap, each create counting the sessions the
  ones before it started.  Not while the node stops or drains;
- :meth:`CreateGate.update_create_consumer`, the one place the create
  consumer changes, called by the node once a turn, after its commands,
  the sessions that ended and its timed rules (the load read, a parked
  create carried out): admission decided on the figures of now (the load read first when
  ``LOAD_INTERVAL`` is over), then the create consumer cancelled (full,
  stopping, draining), consumed again, or subscribed anew under the
  priority and prefetch placement gives (``placement.py``).

The placement guarantee rests on the order of the two: the session a create
started counts before the create's ack frees its place in the prefetch.
The consumer sends the acks of creates (and puts creates back) only at this
update (``amqp/consumer.py``), after the new priority or the cancel, so the
broker places the next create on what the node runs now, and a create put
back for want of room is not handed to this node again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

from .admission import Admission, Reading

log = logging.getLogger(__name__)


class Load(Protocol):
    def read(self) -> Reading: ...


class CreateConsumer(Protocol):
    def set_accepting_creates(self, accepting: bool, priority: int | None = None,
                              prefetch: int | None = None) -> None: ...


class Counted(Protocol):
    def count(self) -> int: ...  # sessions that hold a place on this node


class Draining(Protocol):
    draining: bool  # ``wwnode drain``: no creates while it moves its sessions out


@dataclass(eq=False)
class CreateGate:
    admission: Admission
    load: Load
    sessions: Counted
    consumer: CreateConsumer
    load_interval: float  # seconds between two load readings (``LOAD_INTERVAL``)
    # The create consumer's priority and prefetch from (sessions, cpu, mem): placement.py.
    placement: Callable[[int, float, float], tuple[int, int]] | None = None
    drain: Draining | None = None
    closed: bool = field(default=False, init=False)  # the node stops: no creates any more
    _next_load: float = field(default=0.0, init=False)
    _load_unread: bool = field(default=False, init=False)  # said once while the load cannot be read

    @property
    def open(self) -> bool:
        """Neither stopping nor draining."""
        return not self.closed and not (self.drain is not None and self.drain.draining)

    @property
    def accepting(self) -> bool:
        """Whether the node takes creates, as last decided (the heartbeat's
        ``accepting``)."""
        return self.admission.accepting and self.open

    def may_create(self) -> bool:
        """Whether a new session may start here at this very moment; changes
        nothing (see the module docstring)."""
        return self.open and self.admission.would_accept(self.sessions.count())

    def close(self) -> None:
        """The node stops: no more creates (its consumers are closed too)."""
        self.closed = True

    def update_create_consumer(self, now: float) -> None:
        """The one update of the create consumer (see the module docstring);
        the load is read first when it is due."""
        if now >= self._next_load:
            self.sample_load(now)
        else:
            self._decide(None)

    def sample_load(self, now: float) -> None:
        """Read the load now, due or not (the node does at its start, before
        it consumes: a full node takes no create at all), then update."""
        self._next_load = now + self.load_interval
        try:
            reading = self.load.read()
        except OSError as e:
            # A reading the system would not give (no descriptor left:
            # EMFILE on /proc/stat) says nothing about the load: the node
            # keeps its last figures and goes on, the cap still checked.
            if not self._load_unread:
                log.warning("cannot read the load (%s); keeping the last figures until it can", e)
            self._load_unread = True
            self._decide(None)
            return
        if self._load_unread:
            log.info("the load can be read again")
            self._load_unread = False
        self._decide(reading)

    def _decide(self, reading: Reading | None) -> None:
        was = self.admission.accepting
        n = self.sessions.count()
        accepting = self.admission.update(reading, n) if reading else self.admission.decide(n)
        if accepting != was:
            log.warning("admission: %s", "taking new sessions again" if accepting
                        else f"no new sessions: {self.admission.reason}")
        priority = prefetch = None
        if self.placement is not None:
            priority, prefetch = self.placement(n, self.admission.cpu, self.admission.mem)
        self.consumer.set_accepting_creates(accepting and self.open, priority, prefetch)

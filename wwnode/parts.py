"""What the node's parts offer, declared once: the roles the wiring and the
loop call them in.

A part takes a role by having its methods (no base class to inherit): the
send desk is an :class:`EventHandlers`, a :class:`Listener` and a
:class:`Chore` at once.  Declared here, a role can be looked up where it is
used (``wiring.py`` lists who plays each), checked by a type checker, and
checked in a test (the protocols are ``runtime_checkable``).

- :class:`Listener`: hears every change of a session's state
  (``Sessions.set_state``), in the order ``wiring.LISTENERS`` gives;
- :class:`EventHandlers`: acts on events sessions write, one part per event
  (``sessionevents.event_table``);
- :class:`Chore`: timed upkeep, run once per turn of the loop;
- :class:`Background`: work on threads of its own, which a stop waits for;
- :class:`Gauges`: figures of its own for the node's heartbeat.
"""

from __future__ import annotations

from typing import Callable, Mapping, Protocol, runtime_checkable

from . import states as S

Handler = Callable[[S.SessionRecord, dict, float], None]  # (record, event, now): acts on one session event


@runtime_checkable
class Listener(Protocol):
    def on_change(self, change: S.Change) -> None: ...


@runtime_checkable
class EventHandlers(Protocol):
    def handlers(self) -> Mapping[str, Handler]:
        """Session event name -> what acts on it (``protocol.EVENTS``)."""
        ...


@runtime_checkable
class Chore(Protocol):
    def tick(self, now: float) -> None: ...


@runtime_checkable
class Background(Protocol):
    def busy(self) -> bool:
        """Work is under way that a stop should wait for."""
        ...

    def close(self) -> None:
        """The node has stopped: what has not begun is dropped."""
        ...


@runtime_checkable
class Gauges(Protocol):
    def gauges(self) -> dict:
        """Figures for the heartbeat (``nodes:{node}``), by name."""
        ...

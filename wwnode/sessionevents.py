"""Which part acts on each event a session writes: one table, built once
from the parts' own (each part's ``handlers()``).

Built with a check, as ``Dispatch`` checks its command table: an event two
parts claim is refused when the node is built, not settled silently by
whichever came last (the other would be a handler no event reaches), and
so is a name the protocol has no event for (``protocol.EVENTS``), which no
session could ever write.  Events no part claims (``starting``,
``browser``, ``state``) are only logged by the node.
"""

from __future__ import annotations

from sessionproc.protocol import EVENTS

from .guard import name_of
from .parts import EventHandlers, Handler


def event_table(*parts: EventHandlers) -> dict[str, Handler]:
    """Session event name -> its one handler, from each part's
    ``handlers()``; ValueError on a name claimed twice or unknown to the
    protocol."""
    table: dict[str, Handler] = {}
    for part in parts:
        for name, handler in part.handlers().items():
            if name not in EVENTS:
                raise ValueError(f"{name_of(handler)} handles {name!r}, which is no session event")
            if name in table:
                raise ValueError(f"session event {name!r} has two handlers: {name_of(table[name])} and "
                                 f"{name_of(handler)}")
            table[name] = handler
    return table

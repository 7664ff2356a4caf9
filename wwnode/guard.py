"""A bug in one of the node's parts costs the session it was about, not the
node and every session on it.

The node runs its parts' code on a session's behalf in two places: the
handler of each event a session writes (``Node._session_output``, through
the table of ``sessionevents.py``) and the listeners of every state change
(``Sessions.set_state``).  An exception there is a bug in that part.  Left
to rise, it would end the loop, and the node's last resort (``Node.run``)
would kill every session on the machine for one session's fault.  So every
such call goes through :meth:`Guard.call`: the exception is logged with its
traceback (the session, the event or the change, the part), counted
(``internal_errors``), and answered ``False``; the caller then ends that
one session (``Sessions.contain``): ``failed`` with reason
:data:`INTERNAL_ERROR`, its process killed, its key let go, as any session
failed for good.  The caller, not the guard, ends it: ``set_state`` first
lets the other listeners see the change that happened, so Redis and the
events never say ``failed`` before the change that came first.

Only these calls are guarded.  A bug anywhere else in the loop is not one
session's, and still ends the node (exit code 1).
"""

from __future__ import annotations

import logging
from typing import Callable

from .counters import Counters

log = logging.getLogger(__name__)

# Why a session ended by the guard failed (``state_instance`` ``failed`` and
# ``disconnected_instance``): a bug in the node, not in the session.
INTERNAL_ERROR = "internal_error"


class Guard:
    def __init__(self, counters: Counters):
        self.counters = counters

    def call(self, key: str, what: str, part: Callable[..., object], *args) -> bool:
        """``part(*args)``, run for session ``key`` (``what``: the event or
        the change it is given); False if it raised."""
        try:
            part(*args)
        except Exception:
            # The one catch-all of the loop, on purpose: what a part's bug
            # raises cannot be named in advance.  Nothing is hidden: the
            # traceback is logged, the count kept, and the caller ends the
            # session (see the module docstring).
            log.exception("session %s: %s raised in %s (a bug); ending this session (%s)",
                          key, what, name_of(part), INTERNAL_ERROR)
            self.counters.bump("internal_errors")
            return False
        return True


def name_of(part: Callable[..., object]) -> str:
    """The part and its method (``SendDesk._on_sent``), as the log names it."""
    return getattr(part, "__qualname__", None) or repr(part)

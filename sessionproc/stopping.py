"""How a session process is asked to stop, and the deadline that makes every
stop end.

A stop comes four ways: the ``stop`` command, end of input, SIGTERM or
SIGINT (an operator, or ``PR_SET_PDEATHSIG`` when the node dies), and often
two at once: a node killed with SIGKILL closes our input and signals us in
the same instant.

Python runs a signal handler in the main thread between two bytecodes,
wherever that thread is, and the main thread spends its life in
``queue.Queue.get``.  A handler that put the stop into the inbox there could
run while ``get`` held the queue's lock, and then waited for that lock for
ever: the lock is not reentrant and its holder was the handler's own thread
(a session and its Chromium outlived their node that way, still linked to
the account).  So the handlers do nothing at all: the interpreter's own C
handler writes the signal's number to a pipe (``signal.set_wakeup_fd``) and
a thread of ours reads it and asks for the stop like any other thread.

Whatever the stop then waits for (a send in flight, media still being
fetched, a page that hangs, a boot that has not finished), it has a
deadline: past it the process leaves at once, and the reaper
(``browser.Reaper``) kills the browser and chromedriver with it.  A session
whose node is gone has nobody to report to, so its deadline is short.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Callable, cast

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# A session whose node is gone: what it could still report is read by
# nobody, so it only closes the page (later messages then wait on the
# server) and quits the browser.
ORPHAN_DEADLINE = 10.0

# Kept back from the deadline for quitting the browser: the waits before it
# (a send in flight, inbound media) get what is left.
QUIT_RESERVE = 4.0


def _do_nothing(signum, frame) -> None:
    """The Python-level handler: the wakeup pipe carries the signal."""


class Stopper:
    """Takes stop requests from any thread (never from a signal handler) and
    holds the deadline by which the process ends.

    ``put`` hands a stop to the main loop; ``leave`` ends the process (the
    real one calls ``os._exit``); ``parent_alive`` tells whether the node
    that started us is still there.  Seams, so tests need no process."""

    def __init__(self, put: Callable[[dict], None], timeout: float, parent_alive: Callable[[], bool],
                 leave: Callable[[], None], clock: Callable[[], float] = time.monotonic):
        self._put = put
        self._timeout = timeout
        self._parent_alive = parent_alive
        self._leave = leave
        self._clock = clock
        self._cond = threading.Condition()
        self.deadline: float | None = None
        self.why = ""

    @classmethod
    def for_this_process(cls, put: Callable[[dict], None], timeout: float, exit_code: int) -> "Stopper":
        parent = os.getppid()

        def leave() -> None:
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(exit_code)

        return cls(put, timeout, lambda: os.getppid() == parent, leave)

    # ------------------------------------------------------------ asking
    def ask(self, why: str, logout: bool = False) -> None:
        """A stop, for the main loop, and its deadline armed (a later
        request may only bring the deadline closer: the node's death after
        its stop command, say)."""
        orphan = not self._parent_alive()
        limit = min(self._timeout, ORPHAN_DEADLINE) if orphan else self._timeout
        with self._cond:
            first = self.deadline is None
            deadline = self._clock() + limit
            if self.deadline is None or deadline < self.deadline:  # the first, or a closer one
                self.deadline = deadline
                self._cond.notify_all()
            if first:
                self.why = why
                threading.Thread(target=self._watch, name="stop-deadline", daemon=True).start()
        log.info("stop asked (%s)%s; ending within %.0f s", why, ", the node is gone" if orphan else "", limit)
        self._put({"logout": logout, "why": why})

    @property
    def asked(self) -> bool:
        return self.deadline is not None

    def orphaned(self) -> bool:
        return not self._parent_alive()

    def left(self, wanted: float) -> float:
        """``wanted`` seconds, or less so that quitting the browser still
        fits before the deadline."""
        if self.deadline is None:
            return wanted
        return max(0.0, min(wanted, self.deadline - QUIT_RESERVE - self._clock()))

    # ----------------------------------------------------------- signals
    def install_signals(self, signals=STOP_SIGNALS) -> None:
        """From here on these signals stop the session (main thread only,
        as ``signal.signal`` requires)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # the C handler must never block
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in signals:
            signal.signal(signum, _do_nothing)
        threading.Thread(target=self._read_signals, args=(read_fd, frozenset(signals)), name="signals",
                         daemon=True).start()

    def _read_signals(self, read_fd: int, signals: frozenset) -> None:
        while True:
            data = os.read(read_fd, 64)
            if not data:
                return
            for signum in data:
                if signum in signals:
                    self.ask(f"signal {signal.Signals(signum).name}")

    # ----------------------------------------------------------- deadline
    def _watch(self) -> None:
        with self._cond:
            # Started with the deadline set, which is never unset.
            while (left := cast(float, self.deadline) - self._clock()) > 0:
                self._cond.wait(left)
        log.error("the stop (%s) did not end in time: leaving now, the browser killed with us", self.why)
        self._leave()

"""The signals that stop a node, and who records them before the node can.

``wwnode run`` takes a while to become a node (imports, settings, the parts
built and connected) before ``Node.run`` installs its handlers.  A stop
asked meanwhile (a supervisor's restart, an operator's SIGTERM right after a
start) would otherwise be Python's default: death by the signal, exit code
-15 instead of 0.  ``record_early`` is installed first thing; the node takes
its list over and acts on what it holds at its first turn.
"""

from __future__ import annotations

import os
import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def record_early() -> list[int]:
    """Record stop signals in the list returned until the node installs its
    own handlers.  A second one before then ends the process as the signal
    would (a start that hangs can still be stopped)."""
    asked: list[int] = []

    def on_signal(signum, frame):
        if asked:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        asked.append(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    return asked

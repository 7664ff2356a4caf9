"""A session's states on a node.  Only ``Supervisor.set_state`` changes
them, and every change is published as a ``state_instance`` event.

    starting ──> qr ──> ready
        │  └────────────┘ │            (restored sessions skip qr)
        └──> restarting <─┘  crash: wait out the backoff, then starting
                 └──> failed          too many crashes, or cannot start
    any ──> stopping ──> stopped      destroy, node shutdown, or the session ended
"""

STARTING = "starting"
QR = "qr"
READY = "ready"
RESTARTING = "restarting"
FAILED = "failed"
STOPPING = "stopping"
STOPPED = "stopped"

# A process is (or should be) running in these.
RUNNING = frozenset({STARTING, QR, READY})
# The session holds the key and accepts commands in these.
ALIVE = frozenset({STARTING, QR, READY, RESTARTING})

TRANSITIONS = {
    STARTING: {QR, READY, RESTARTING, FAILED, STOPPING},
    QR: {READY, RESTARTING, FAILED, STOPPING},
    READY: {RESTARTING, FAILED, STOPPING},
    RESTARTING: {STARTING, FAILED, STOPPING},
    FAILED: {STARTING, STOPPING},
    STOPPING: {STOPPED},
    STOPPED: set(),
}

"""The event pipe to the parent: whole lines, from any thread, never mixed
with anything else the process (or a library in it) might print."""

from __future__ import annotations

import logging
import os
import threading
import time

from .protocol import encode

log = logging.getLogger(__name__)


class Output:
    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()
        self.broken = threading.Event()  # the parent stopped reading

    @classmethod
    def take_stdout(cls) -> "Output":
        """Keep the real stdout for events; point fd 1 at /dev/null so a
        stray print cannot corrupt the protocol."""
        fd = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        return cls(fd)

    def emit(self, event: dict) -> None:
        data = encode(event | {"t": int(time.time() * 1000)})
        with self._lock:
            if self.broken.is_set():
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except BrokenPipeError:
                log.warning("parent stopped reading events")
                self.broken.set()

"""What cuts the node loop's wait short, from any thread: a pipe the loop
polls beside the broker's sockets and the sessions' pipes.

Made before the parts that use it (a worker thread with a result: a media
file fetched, an inbound file stored, a login restored), so they are handed
it when they are built and the loop is handed the same one; a signal writes
to it too (``signal.set_wakeup_fd``), so a stop is seen at once.
"""

from __future__ import annotations

import os


class Waker:
    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)  # a full pipe must never block a worker, nor a signal

    def wake(self) -> None:
        """Cut the loop's wait short (any thread)."""
        try:
            os.write(self.write_fd, b"\0")
        except OSError:  # BlockingIOError among them: the pipe is full, the loop wakes anyway
            pass

    def clear(self) -> None:
        """The loop's poll found the pipe readable: empty it for the next wait."""
        os.read(self.read_fd, 512)

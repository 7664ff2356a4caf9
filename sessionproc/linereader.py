"""Command lines from the parent, read from a raw pipe with a bound on a
line's length (a runaway writer must not fill our memory)."""

from __future__ import annotations

from .protocol import MAX_COMMAND_LINE as MAX_LINE


class LineReader:
    """Lines from a raw pipe, with a bound on a line's length."""

    TOO_LONG = object()

    def __init__(self, raw):
        self._raw = raw
        self._buf = b""
        self._skipping = False  # inside a line that was too long

    def readline(self):
        """A line (without its newline), TOO_LONG, or None at end of input."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                if self._skipping:
                    self._skipping = False
                    continue
                return line
            if len(self._buf) > MAX_LINE and not self._skipping:
                self._buf, self._skipping = b"", True
                return self.TOO_LONG
            if self._skipping:
                self._buf = b""
            chunk = self._raw.read(65536)
            if not chunk:
                line, self._buf = self._buf, b""
                return line if line and not self._skipping else None
            self._buf += chunk

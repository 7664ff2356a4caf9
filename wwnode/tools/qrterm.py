"""A session's QR code drawn in the terminal, or written as a PNG image.

A session's QR code as a person can scan it: drawn in the terminal, or
written as a PNG image.  ``segno`` makes the code (error correction level
L, the smallest, as WhatsApp Web's own page draws it).

In the terminal each character holds two rows of modules (the half
blocks ``▀``, ``▄``, ``█``), so a code fits a normal window; light modules
are drawn, dark ones left blank, which suits the usual dark terminal.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import TextIO

import segno


def make(qr: str) -> segno.QRCode:
    return segno.make(qr, error="l", micro=False, boost_error=False)


def render(qr: str) -> str:
    """The code as lines of text, quiet zone included."""
    out = io.StringIO()
    make(qr).terminal(out=out, compact=True)
    return out.getvalue()


def write_png(qr: str, path: Path) -> None:
    """The code as a PNG image (8 pixels a module), written whole or not at
    all: a viewer that reloads the file never sees half an image."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    make(qr).save(str(tmp), kind="png", scale=8)
    tmp.replace(path)


class QrScreen:
    """Prints lines and QR codes; on a terminal a new code replaces the one
    shown before (and what was printed under it), so a rotating code stays
    in one place.  Elsewhere (a pipe, a file) everything is appended."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout
        self.redraw = self.out.isatty()
        self._lines_since_qr: int | None = None  # None: no code shown yet

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)
        if self._lines_since_qr is not None:
            self._lines_since_qr += line.count("\n") + 1

    def show_qr(self, qr: str, caption: str) -> None:
        if self.redraw and self._lines_since_qr is not None:
            # Up to the first line of the previous code, then clear below.
            self.out.write(f"\x1b[{self._lines_since_qr}F\x1b[J")
        self._lines_since_qr = 0
        self.say(render(qr).rstrip("\n"))
        self.say(caption)

    def forget_qr(self) -> None:
        """The code is done with (scanned, or the session ended): what
        follows is kept on screen."""
        self._lines_since_qr = None

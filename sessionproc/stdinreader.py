"""The ``stdin`` thread: each command line from the node, to the thread that carries it out."""

from __future__ import annotations

import logging
import os

from .linereader import MAX_LINE, LineReader
from .protocol import PAGE_COMMANDS, BadCommand, decode_command
from .sessionstate import SessionState
from .stopping import Stopper

log = logging.getLogger(__name__)


class StdinReader:
    """Page commands go to the ``sender`` thread, ``stop`` to the
    stopper, ``settings`` take effect here; the rest (``ping``) to the
    main thread's inbox."""

    def __init__(self, state: SessionState, stopper: Stopper):
        self.state = state  # its ignore, which a settings command replaces
        self.out, self.inbox, self.sends, self.stopper = state.out, state.inbox, state.sends, stopper

    def run(self) -> None:
        stdin = os.fdopen(0, "rb", buffering=0, closefd=False)
        reader = LineReader(stdin)
        while True:
            line = reader.readline()
            if line is None:
                log.info("end of input: stopping")
                self.stopper.ask("end of input")
                return
            if line is reader.TOO_LONG:
                self.out.emit({"event": "error", "reason": "bad_command", "detail": f"line longer than {MAX_LINE} bytes"})
                continue
            if not line.strip():
                continue
            try:
                cmd = decode_command(line)
            except BadCommand as e:
                self.out.emit({"event": "error", "reason": "bad_command", "detail": str(e)})
                continue
            if cmd["cmd"] in PAGE_COMMANDS:
                self.sends.put(cmd)
            elif cmd["cmd"] == "stop":
                self.stopper.ask("stop command", logout=bool(cmd.get("logout", False)))
            elif cmd["cmd"] == "settings":
                self.state.ignore = frozenset(cmd["ignore"])
                log.info("settings changed: ignoring %s", ", ".join(sorted(self.state.ignore)) or "nothing")
            else:
                self.inbox.put((cmd["cmd"], cmd))

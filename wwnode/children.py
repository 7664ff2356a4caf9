"""Session processes as the node sees them: the OS seam.

A :class:`Child` is one ``python -m sessionproc`` with non-blocking pipes:
commands are queued and written when the pipe takes them, events are read
as they come, split into lines and checked against the protocol
(``decode_event``).  Nothing here ever blocks the node's loop.
:class:`Spawner` is what the session rules call to start one; their tests
replace it.

A line that is not an event of the protocol (not JSON, an unknown event, a
missing field, over-long) is logged and recorded in ``bad_output``; the
child's later output is ignored, and the node ends the session (a crash):
a session that says nonsense is not trusted to say anything more.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Protocol, cast

import orjson

from sessionproc.protocol import MAX_EVENT_LINE, BadEvent, SessionArgs, decode_event

from .config import setting_names
from .redact import session_environment
from .warmstarts import WarmStarts

log = logging.getLogger(__name__)


class Process(Protocol):
    """What a ``Child`` uses of its process: a ``subprocess.Popen`` (a cold
    start) or a ``warmstarts.Forked`` (a warm one)."""

    pid: int

    @property
    def stdin(self) -> IO[bytes] | None: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...


class Child:
    """One running session process, spoken to over its pipes."""

    def __init__(self, popen: Process, warm: bool = False):
        if popen.stdout is None or popen.stdin is None:
            raise ValueError("a session process is spoken to over pipes: stdin and stdout must be PIPE")
        self.popen = popen
        self.pid = popen.pid
        self.warm = warm  # forked by the fork server (warmstarts.py), not a new Python
        self.stdout_fd = popen.stdout.fileno()
        self._stdin_fd: int | None = popen.stdin.fileno()
        os.set_blocking(self.stdout_fd, False)
        os.set_blocking(self._stdin_fd, False)
        self._out = bytearray()  # commands not yet taken by the pipe
        self._in = bytearray()  # partial event line
        self.eof = False
        self.bad_output: str | None = None  # why its output is not trusted any more
        self.killed = False
        # Events read so far, by name: what its page reported shows the
        # page alive to the health check (``health.py``) as a pong does.
        self.heard: Counter[str] = Counter()

    # ----------------------------------------------------------- commands
    def send(self, command: dict) -> None:
        if self._stdin_fd is None:
            return
        self._out += orjson.dumps(command) + b"\n"
        self.flush()

    @property
    def wants_write(self) -> bool:
        return bool(self._out) and self._stdin_fd is not None

    @property
    def stdin_fd(self) -> int | None:
        return self._stdin_fd

    def flush(self) -> None:
        while self._out and self._stdin_fd is not None:
            try:
                n = os.write(self._stdin_fd, self._out)
            except BlockingIOError:
                return  # the pipe is full; the loop calls again when writable
            except BrokenPipeError:
                self._out.clear()
                self.close_stdin()
                return
            del self._out[:n]

    def close_stdin(self) -> None:
        if self._stdin_fd is not None and self.popen.stdin is not None:  # a pipe (__init__ checks)
            self.popen.stdin.close()
            self._stdin_fd = None

    # ------------------------------------------------------------- events
    def read_events(self) -> list[dict]:
        """Whatever whole lines the pipe holds now, decoded and checked; the
        events before a bad line, none after it (see ``bad_output``)."""
        while True:
            try:
                chunk = os.read(self.stdout_fd, 65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno != errno.EBADF:
                    raise
                chunk = b""
            if not chunk:
                self.eof = True
                break
            if self.bad_output is None:
                self._in += chunk
        *lines, rest = self._in.split(b"\n")
        self._in = bytearray(rest)
        if len(self._in) > MAX_EVENT_LINE:
            self._reject(f"a line longer than {MAX_EVENT_LINE} bytes")
            return []
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                events.append(decode_event(line))
            except BadEvent as e:
                self._reject(f"{e}: {bytes(line[:200])!r}")
                break
        self.heard.update(event["event"] for event in events)
        return events

    def _reject(self, why: str) -> None:
        log.error("session process %d wrote a bad line (%s); its output is not trusted any more", self.pid, why)
        self.bad_output = why
        self._in.clear()

    # ----------------------------------------------------------- lifetime
    def poll(self) -> int | None:
        return self.popen.poll()

    def kill(self) -> None:
        """SIGKILL the session's whole process group (Chrome included)."""
        self.killed = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        self.close_stdin()
        if self.popen.stdout and not self.popen.stdout.closed:
            self.popen.stdout.close()


class Spawner:
    """Starts session processes: forked by the fork server when one is
    ready (``warmstarts.py``), else each a new Python (a cold start).
    Either way each gets the node's environment scrubbed
    (``redact.session_environment``): no broker or Redis URL, no setting
    that carries a secret, so neither the session nor its Chrome (which
    runs ``--no-sandbox`` as root) holds the node's passwords.

    A chore and background work of the node: its tick keeps the fork
    server running, and the node's stop ends it."""

    def __init__(self, module: str = "sessionproc", environ: Mapping[str, str] | None = None,
                 sessions_dir: Path | None = None):
        self.module = module  # the program a session runs (``SESSION_MODULE``)
        self.env = session_environment(os.environ if environ is None else environ, setting_names())
        # None: every start is cold (WARM_STARTS=false).
        self.warm = WarmStarts(module, sessions_dir, self.env) if sessions_dir is not None else None

    def tick(self, now: float) -> None:
        if self.warm is not None:
            self.warm.tick(now)

    def busy(self) -> bool:
        return False

    def waits_for_server(self) -> bool:
        """Starts wait: the node's first fork server is on its way
        (``warmstarts.FIRST_SERVER_WAIT``)."""
        return self.warm is not None and self.warm.awaited()

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()

    def spawn(self, args: SessionArgs) -> Child:
        log_file = cast(Path, args.log_file)  # the node's sessions each have one (starts.py)
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Until the session opens its log itself, what it says (a bad
        # argument, a traceback at import) goes to the same file.
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if self.warm is not None:
                forked = self.warm.spawn(args.argv(self.module)[3:], fd)  # past ``python -m module``
                if forked is not None:
                    return Child(forked, warm=True)
            popen: Process = subprocess.Popen(
                args.argv(self.module),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fd,
                start_new_session=True,  # its own group: killpg reaches its Chrome
                close_fds=True,
                env=self.env,
            )
        finally:
            os.close(fd)
        return Child(popen)

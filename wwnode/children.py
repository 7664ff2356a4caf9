"""Session processes as the node sees them: the OS seam.

A :class:`Child` is one ``python -m sessionproc`` with non-blocking pipes:
commands are queued and written when the pipe takes them, events are read
as they come and split into lines.  Nothing here ever blocks the node's
loop.  :class:`Spawner` is what the supervisor calls to start one; tests of
the supervisor's rules replace it.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

MAX_EVENT_LINE = 4 * 1024 * 1024  # an inbound message is far smaller


def session_module() -> str:
    """The module run as a session: ``sessionproc``, unless the hidden
    setting ``SESSION_MODULE`` names another that speaks its protocol (the
    tests' browser-free fake session)."""
    return os.environ.get("SESSION_MODULE") or "sessionproc"


@dataclass(frozen=True)
class SessionArgs:
    key: str
    profile: Path
    log_file: Path
    url: str
    chrome: str
    chromedriver: str
    qr_max: int
    send_timeout: float
    ping_timeout: float
    log_bodies: bool
    module: str = field(default_factory=session_module)

    def argv(self) -> list[str]:
        args = [
            sys.executable, "-m", self.module,
            "--key", self.key,
            "--profile", str(self.profile),
            "--log-file", str(self.log_file),
            "--url", self.url,
            "--chrome", self.chrome,
            "--chromedriver", self.chromedriver,
            "--qr-max", str(self.qr_max),
            "--send-timeout", str(self.send_timeout),
            "--ping-timeout", str(self.ping_timeout),
        ]
        if self.log_bodies:
            args.append("--log-bodies")
        return args


class Child:
    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.pid = popen.pid
        self.stdout_fd = popen.stdout.fileno()
        self._stdin_fd: int | None = popen.stdin.fileno()
        os.set_blocking(self.stdout_fd, False)
        os.set_blocking(self._stdin_fd, False)
        self._out = bytearray()  # commands not yet taken by the pipe
        self._in = bytearray()  # partial event line
        self.eof = False

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
        if self._stdin_fd is not None:
            self.popen.stdin.close()
            self._stdin_fd = None

    # ------------------------------------------------------------- events
    def read_events(self) -> list[dict]:
        """Whatever whole lines the pipe holds now, decoded."""
        events = []
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
            self._in += chunk
        *lines, rest = self._in.split(b"\n")
        self._in = bytearray(rest)
        if len(self._in) > MAX_EVENT_LINE:
            log.error("session %d wrote an over-long line; dropped", self.pid)
            self._in.clear()
        for line in lines:
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.error("session %d wrote a line that is not JSON: %r", self.pid, bytes(line[:200]))
                continue
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                events.append(event)
        return events

    # ----------------------------------------------------------- lifetime
    def poll(self) -> int | None:
        return self.popen.poll()

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the session's whole process group (Chrome included)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        self.close_stdin()
        if self.popen.stdout and not self.popen.stdout.closed:
            self.popen.stdout.close()


class Spawner:
    def spawn(self, args: SessionArgs) -> Child:
        args.log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Until the session opens its log itself, what it says (a bad
        # argument, a traceback at import) goes to the same file.
        fd = os.open(args.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            popen = subprocess.Popen(
                args.argv(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fd,
                start_new_session=True,  # its own group: killpg reaches its Chrome
                close_fds=True,
            )
        finally:
            os.close(fd)
        return Child(popen)

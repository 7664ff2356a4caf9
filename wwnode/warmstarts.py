"""Warm starts, the node's side: one fork server (``sessionproc/forkserver.py``,
whose docstring tells a start step by step) forks each new session
instead of a new Python starting and importing Selenium again.

A forked session is the node's own child (adopted: the node is a
subreaper), spoken to over the same pipes as a cold-started one; only
``Forked`` stands where ``subprocess.Popen`` stood.  Whatever goes wrong
with the server (not ready yet, dead, silent, an error) costs one thing:
that start is a cold one (``children.Spawner``), and the server is
started again after a backoff (a chore, handed the time).
"""

from __future__ import annotations

import array
import ctypes
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

PR_GET_CHILD_SUBREAPER = 37
ANSWER_TIMEOUT = 2.0  # seconds a fork may take the server; a fork is milliseconds
# Blanks at the end of the server's command line: a forked session writes
# its own over it (``python -m sessionproc --key K --profile P``: two keys
# of up to 64 characters more than the server's own), never past it.
TITLE_ROOM = 256
BACKOFF_INITIAL, BACKOFF_MAX = 1.0, 60.0
# The node's first server is waited for this long at most: a start asked
# while it imports (the restores at the node's start, the creates of its
# first second) waits for it, where a cold one would import the same
# modules itself, on a CPU the server's imports are using.  A server
# slower than this is not waited for again.
FIRST_SERVER_WAIT = 5.0


def is_subreaper() -> bool:
    """Whether this process adopts its orphaned descendants (``procs.py``
    makes the node one): a forked session must become the node's."""
    flag = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag)) == 0 and flag.value == 1


class Forked:
    """A session the server forked and the node adopted, with what
    ``children.Child`` uses of a ``Popen``: its pid, its pipes, ``poll``."""

    def __init__(self, pid: int, stdin_fd: int, stdout_fd: int):
        self.pid = pid
        self.stdin = open(stdin_fd, "wb", buffering=0)
        self.stdout = open(stdout_fd, "rb", buffering=0)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                # Not ours to wait for: never while the node is a subreaper
                # (checked before each warm start).  Counted as a crash.
                log.error("session process %d is not the node's child: its exit status is unknown", self.pid)
                self.returncode = 1
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


class WarmStarts:
    """The fork server, as the node runs it: started by ``tick``, asked
    by ``spawn``, stopped by ``close``."""

    def __init__(self, module: str, sessions_dir: Path, env: Mapping[str, str], python: str = sys.executable):
        self.module = module
        self.sessions_dir = sessions_dir
        self.env = dict(env)
        self.python = python
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._ready = False
        self._failed = False  # since the last tick: back off before the next server
        self._delay = BACKOFF_INITIAL
        self._retry_at = 0.0
        self._awaited = True  # starts wait for the first server (``awaited``)
        self._wait_until: float | None = None  # set once it is started

    # ------------------------------------------------------------ chore
    def awaited(self) -> bool:
        """The node's first server is on its way, and not yet late: a start
        waits for it rather than go cold (``FIRST_SERVER_WAIT``)."""
        return self._awaited

    def tick(self, now: float) -> None:
        if self._awaited and self._wait_until is not None and now >= self._wait_until:  # ready clears it
            log.warning("the fork server is not ready after %g s; sessions start cold until it is",
                        FIRST_SERVER_WAIT)
            self._awaited = False
        if self._failed:
            self._failed = False
            self._retry_at = now + self._delay
            self._delay = min(self._delay * 2, BACKOFF_MAX)
        if self._proc is not None and self._proc.poll() is not None:
            self._lose(f"the fork server exited with {self._proc.returncode}")
            return
        if self._proc is None and now >= self._retry_at:
            self._start()
            if self._wait_until is None:
                self._wait_until = now + FIRST_SERVER_WAIT
        elif self._proc is not None and not self._ready:
            self._see_ready()

    def busy(self) -> bool:
        return False

    def close(self) -> None:
        """The node stops: the server ends with its socket (its sessions
        are the node's, unaffected)."""
        self._stop()

    # ------------------------------------------------------------ starts
    def spawn(self, argv: list[str], log_fd: int) -> Forked | None:
        """Fork a session with these arguments (those after ``python -m
        module``) and its log as stderr; None: start it cold."""
        if not self._ready or self._sock is None:
            return None
        if not is_subreaper():
            log.warning("warm starts need the node to be a subreaper; starting sessions cold")
            self._lose("the node is not a subreaper")
            return None
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        try:
            self._sock.sendmsg([orjson.dumps({"argv": argv})],
                               [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                 array.array("i", (stdin_r, stdout_w, log_fd)).tobytes())])
            answer = orjson.loads(self._sock.recv(4096) or b"{}")
        except (OSError, orjson.JSONDecodeError) as e:
            for fd in (stdin_w, stdout_r):
                os.close(fd)
            self._lose(f"the fork server did not answer: {e}")
            return None
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
        if not isinstance(answer, dict) or not isinstance(answer.get("pid"), int):
            for fd in (stdin_w, stdout_r):
                os.close(fd)
            log.warning("the fork server could not start a session (%s); starting it cold",
                        answer.get("error", answer) if isinstance(answer, dict) else answer)
            return None
        self._delay = BACKOFF_INITIAL
        return Forked(answer["pid"], stdin_w, stdout_r)

    # --------------------------------------------------------- the server
    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [self.python, "-m", "sessionproc.forkserver", "--module", self.module,
                 "--sessions-dir", str(self.sessions_dir), "--room", " " * TITLE_ROOM],
                stdin=theirs.fileno(), stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                env=self.env)
        except OSError as e:
            ours.close()
            log.warning("could not start the fork server (%s); sessions start cold meanwhile", e.strerror)
            self._failed = True
            self._awaited = False
            return
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        log.info("fork server started (process %d)", self._proc.pid)

    def _see_ready(self) -> None:
        assert self._sock is not None  # started
        try:
            said = self._sock.recv(4096)
        except BlockingIOError:
            return  # still importing
        except OSError as e:
            self._lose(f"the fork server's socket failed: {e}")
            return
        if orjson.loads(said or b"{}").get("ready") is not True:
            self._lose(f"the fork server said {said[:200]!r} instead of ready")
            return
        self._sock.settimeout(ANSWER_TIMEOUT)
        self._ready = True
        self._awaited = False
        log.info("fork server ready: sessions start warm")

    def _lose(self, why: str) -> None:
        log.warning("%s; sessions start cold until it is started again", why)
        self._awaited = False
        self._stop()
        self._failed = True

    def _stop(self) -> None:
        self._ready = False
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                try:
                    self._proc.kill()
                except ProcessLookupError:
                    pass
                try:
                    self._proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    log.error("the fork server %d did not die of SIGKILL within a second", self._proc.pid)
            self._proc = None


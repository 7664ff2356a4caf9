"""The OS around the node's session processes: what ``Child`` and
``Spawner`` (one process each) do not cover.

- the node is a *subreaper*: Chrome's helpers orphaned by a session are
  adopted by the node and reaped here, not left as zombies where PID 1 does
  not reap;
- processes of sessions the node dropped (lease lost) are killed at once
  and reaped once they are gone;
- at start, browsers and sessions an earlier node left on our profiles are
  killed.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Protocol

import psutil

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36


class Process(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def close(self) -> None: ...


class Processes:
    def __init__(self):
        self._graveyard: list[Process] = []

    def become_subreaper(self) -> None:
        """Adopt the orphans of our sessions (Chrome's helpers) so they are
        reaped here."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        except OSError as e:
            log.debug("no subreaper: %s", e)

    def bury(self, process: Process) -> None:
        """A killed process nobody waits for any more: reap it when gone."""
        self._graveyard.append(process)

    def reap(self, session_pids: set[int]) -> None:
        """Collect buried processes and adopted orphans that ended.  Our
        sessions' own exit statuses are left for their Popen objects: we
        only peek (WNOWAIT) at them."""
        for process in list(self._graveyard):
            if process.poll() is not None:
                process.close()
                self._graveyard.remove(process)
        pids = session_pids | {p.pid for p in self._graveyard}
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in pids:
                return
            try:
                os.waitpid(info.si_pid, os.WNOHANG)
            except ChildProcessError:
                return

    def kill_orphans(self, sessions_dir: str) -> int:
        """Kill browsers and session processes left on our profiles by an
        earlier node that died without its children (they should die with
        it; this is the belt to those braces).  Chrome's command line holds
        its profile path (``--user-data-dir``), a session's its ``--profile``."""
        marker = str(sessions_dir) + os.sep
        killed = 0
        for proc in psutil.process_iter(["cmdline", "pid"]):
            if proc.info["pid"] == os.getpid():
                continue
            cmdline = proc.info["cmdline"] or []
            if any(marker in arg for arg in cmdline):
                try:
                    proc.kill()
                    killed += 1
                except psutil.Error:
                    pass
        if killed:
            log.warning("killed %d processes left over on this node's profiles", killed)
        return killed

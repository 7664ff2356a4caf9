"""The OS around the node's session processes: what ``Child`` and
``Spawner`` (one process each) do not cover.

- the node is a *subreaper*: Chrome's helpers orphaned by a session are
  adopted by the node and reaped here, not left as zombies where PID 1 does
  not reap;
- processes of sessions the node dropped (lease lost) are killed at once
  and reaped once they are gone;
- at start, browsers, sessions and a fork server an earlier node left on
  our folders are killed: only processes of our uid whose command line is
  a session process's or Chromium's on one of our profiles, or a fork
  server's of our sessions folder, never anything that merely mentions
  the folder.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
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

    def kill_orphans(self, sessions_dir, session_module: str = "sessionproc") -> int:
        """Kill browsers and session processes left on our profiles by an
        earlier node that died without its children (they should die with
        it; this is the belt to those braces).  Only what is provably ours
        (:func:`left_on`): an operator's ``tail -f`` in a session's folder,
        or another user's process, is left alone."""
        profiles = {str(entry / "profile") for entry in Path(sessions_dir).iterdir() if entry.is_dir()} \
            if Path(sessions_dir).is_dir() else set()
        killed = 0
        for proc in psutil.process_iter(["cmdline", "pid", "uids"]):
            if proc.info["pid"] == os.getpid() or proc.info["uids"] is None:
                continue
            if proc.info["uids"].real == os.getuid() and left_on(command_line(proc.info["cmdline"] or []),
                                                                 profiles, session_module, str(sessions_dir)):
                try:
                    proc.kill()
                    killed += 1
                except psutil.Error:
                    pass
        if killed:
            log.warning("killed %d processes left over on this node's profiles", killed)
        return killed


def command_line(cmdline: list[str]) -> list[str]:
    """A process's arguments as psutil reads them, with a title a process
    wrote over its own (a warm-started session's, ``setproctitle``: one
    string, blanks between its words, then empty ones) split back."""
    words = [arg for arg in cmdline if arg]
    if len(words) == 1 and " " in words[0]:
        return words[0].split()
    return cmdline


def left_on(cmdline: list[str], profiles: set[str], session_module: str, sessions_dir: str | None = None) -> bool:
    """Whether a command line is one of our session processes (``python -m
    <session module> ... --profile <our profile>``, which a warm-started
    one shows too), our fork server (``python -m sessionproc.forkserver
    ... --sessions-dir <our sessions folder>``) or a Chromium on one of
    our profiles (exactly ``--user-data-dir=<our profile>``)."""
    if not cmdline:
        return False
    for i, arg in enumerate(cmdline[:-1]):
        if arg == "-m" and cmdline[i + 1] == session_module:
            return any(a == "--profile" and b in profiles for a, b in zip(cmdline, cmdline[1:]))
        if arg == "-m" and cmdline[i + 1] == "sessionproc.forkserver":
            return sessions_dir is not None and any(a == "--sessions-dir" and b == sessions_dir
                                                    for a, b in zip(cmdline, cmdline[1:]))
    if "chrom" in os.path.basename(cmdline[0]):
        return any(arg.startswith("--user-data-dir=") and arg[len("--user-data-dir="):] in profiles
                   for arg in cmdline)
    return False

"""Logs that stay within ``LOG_MAX_BYTES``, ``LOG_BACKUPS`` old copies each.

Two kinds, rotated two ways:

- ``node.log`` has one writer, the node's ``logging``: a
  :class:`PrivateRotatingFileHandler` renames it to ``node.log.1`` (and so
  on) when a line would pass the limit, and opens a fresh one;
- a session's log (``logs/sessions/{key}.log``) has several writers that
  hold it open: the session process (its ``logging``, and fd 2 for
  tracebacks), chromedriver and Chrome, which inherit it as their stdout
  and stderr and cannot be told to reopen anything.  Renaming it would
  leave them writing into the renamed file forever.  So the node rotates
  these in place, as logrotate's ``copytruncate`` does: it copies the file
  to ``{key}.log.1`` and truncates it to nothing.  Every writer opened it
  with ``O_APPEND`` (the node's ``Spawner``, the session, and through them
  chromedriver and Chrome), so each goes on writing at the new end.
  :class:`SessionLogs` looks every ``HEARTBEAT_INTERVAL`` seconds: a session
  log can pass the limit by what it writes in that time, and a line
  written in the instant between the copy and the truncation is lost.
  The check is one ``stat`` per session; a rotation copies the file in the
  kernel (``sendfile``), a few milliseconds for 10 MB.

Every file is 0600: logs hold phone numbers.  ``LOG_MAX_BYTES=0`` turns
rotation off.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """``RotatingFileHandler`` whose files are made 0600 (the stock one
    makes them with the process's umask), and which says once, not with a
    traceback per line, that the disk takes no writes."""

    _failing = False  # its last write failed: lines are lost until one works
    _erred = False

    def emit(self, record: logging.LogRecord) -> None:
        self._erred = False
        super().emit(record)  # a failure goes to handleError
        if self._failing and not self._erred:
            self._failing = False
            sys.stderr.write(f"{self.baseFilename} is written again\n")

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        self._erred = True
        if not self._failing:
            self._failing = True
            sys.stderr.write(f"cannot write {self.baseFilename} ({error.strerror}): its lines are lost until it "
                             "can be written again\n")

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)  # one an older run made with the umask, too
        return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding, errors=self.errors)


def backup_name(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotate_in_place(path: Path, backups: int) -> None:
    """Copy ``path`` to ``path.1`` (``path.1`` to ``path.2``..., the
    oldest dropped), then truncate ``path``: its writers keep their file
    and go on at its new end.  OSError if the copy cannot be made (then
    ``path`` is left whole)."""
    for n in range(backups, 1, -1):
        older = backup_name(path, n - 1)
        if older.exists():
            os.replace(older, backup_name(path, n))
    if backups < 1:
        os.truncate(path, 0)
        return
    tmp = path.with_name(path.name + ".rotating")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # private before it holds a line
        shutil.copyfile(path, tmp)  # to the end as it is now, in the kernel
        os.replace(tmp, backup_name(path, 1))
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only disk: it was never made
        raise
    os.truncate(path, 0)


class SessionLogs:
    """Rotates the session logs of a folder in place (see the module)."""

    def __init__(self, folder: Path, max_bytes: int, backups: int, check_every: float,
                 on_error: Callable[[str, OSError], None]):
        self.folder = folder
        self.max_bytes = max_bytes
        self.backups = backups
        self.check_every = check_every
        self.on_error = on_error  # a rotation that failed (Storage.failed)
        self._next_check = 0.0

    def tick(self, now: float) -> None:
        if not self.max_bytes or now < self._next_check:
            return
        self._next_check = now + self.check_every
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return  # no session has logged yet
        for entry in entries:
            if not entry.name.endswith(".log") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_size < self.max_bytes:
                    continue
                rotate_in_place(Path(entry.path), self.backups)
            except OSError as e:
                self.on_error(f"a rotation of {entry.name}", e)

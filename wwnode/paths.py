"""Where a node keeps things under ``DATA_DIR``.

    DATA_DIR/
      logs/node.log                      the node's own log
      logs/sessions/{key}.log            one log per session
      sessions/{key}/profile/            the session's Chromium profile
      sessions/{key}/wanted              present while the key should run here

Keys become folder names, so every path is built from a validated key and
checked to stay inside ``DATA_DIR`` with no symbolic link on the way.
Everything is created private to the service's user (0700 / 0600).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

from sessionproc.protocol import KEY_RE

log = logging.getLogger(__name__)


class UnsafePath(Exception):
    pass


class Paths:
    def __init__(self, data_dir: Path):
        self.root = data_dir.resolve()

    def ensure(self) -> None:
        for folder in (self.root, self.sessions, self.logs, self.session_logs):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                os.chmod(folder, 0o700)
            except OSError as e:  # a read-only disk: the node runs on (storage.py)
                log.error("cannot make %s private: %s", folder, e.strerror)

    @property
    def sessions(self) -> Path:
        return self.root / "sessions"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def session_logs(self) -> Path:
        return self.logs / "sessions"

    def node_log(self) -> Path:
        return self.logs / "node.log"

    def session_dir(self, key: str) -> Path:
        if not KEY_RE.match(key):
            raise UnsafePath(f"not a valid key: {key!r}")
        path = self.sessions / key
        self._no_links(path)
        return path

    def profile(self, key: str) -> Path:
        path = self.session_dir(key) / "profile"
        self._no_links(path)
        return path

    def wanted_marker(self, key: str) -> Path:
        return self.session_dir(key) / "wanted"

    def session_log(self, key: str) -> Path:
        if not KEY_RE.match(key):
            raise UnsafePath(f"not a valid key: {key!r}")
        path = self.session_logs / f"{key}.log"
        self._no_links(path)
        return path

    def _no_links(self, path: Path) -> None:
        """Refuse a path that is, or passes through, a symbolic link below
        the data folder: a link planted there could point anywhere."""
        relative = path.relative_to(self.root)
        current = self.root
        for part in relative.parts:
            current = current / part
            if current.is_symlink():
                raise UnsafePath(f"{current} is a symbolic link")

    # ------------------------------------------------------------- changes
    def mark_wanted(self, key: str) -> None:
        """OSError when the disk takes no writes: the marker holds a line,
        so a full disk fails here, not later in the session's profile."""
        folder = self.session_dir(key)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_new(self.wanted_marker(key), key.encode() + b"\n")

    def unmark_wanted(self, key: str) -> None:
        try:
            self.wanted_marker(key).unlink(missing_ok=True)
        except OSError as e:  # read-only: the session comes back at the next start
            log.error("could not unmark session %s: %s", key, e.strerror)

    def probe(self) -> None:
        """Write a small file in DATA_DIR and remove it; OSError if the disk
        takes no writes (full, read-only).  See ``storage.py``."""
        path = self.root / ".write-probe"
        try:
            _write_new(path, b"\0" * 4096)
        finally:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # read-only: it was never made

    def delete_session(self, key: str) -> None:
        shutil.rmtree(self.session_dir(key), ignore_errors=True)

    def wanted_keys(self) -> list[str]:
        """Keys that were running here when the node last stopped."""
        if not self.sessions.is_dir():
            return []
        keys = []
        for entry in sorted(self.sessions.iterdir()):
            if KEY_RE.match(entry.name) and not entry.is_symlink() and (entry / "wanted").is_file():
                keys.append(entry.name)
        return keys


def _write_new(path: Path, data: bytes) -> None:
    """Write a small file whole, or leave none (OSError): an empty marker
    would still say ``wanted``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, "No space left on device (short write)")
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)

"""The profile template of the node's Chromium, the node's side
(``sessionproc/profiletemplate.py`` says what it is and saves): the
folder each start names to its session, and its making, once, in the
background, when the node finds it missing.

The node asks Chromium its version as it starts anyway (``starts.py``);
the template's folder is named after it, so an upgraded Chromium gets a
template of its own at the node's next start, and until it is made, new
profiles start empty, as without one.  The maker is a process of its own
(``python -m sessionproc.profiletemplate``): Selenium stays out of the
node, and its browser out of the node's loop.  Whether it worked is read
from the folder, not from its exit status, which the node's reaper may
have taken (``procs.py``); why it did not is in its log file.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from sessionproc.profiletemplate import folder_for
from sessionproc.useragent import VersionUnknown, chrome_version

log = logging.getLogger(__name__)


class ProfileTemplates:
    """Chore and background part: makes the template if missing, at the
    node's first turn; ``folder`` for the starts.  Made only with
    ``PROFILE_TEMPLATES`` on (``wiring.profile_templates``)."""

    def __init__(self, root: Path, chrome: str, chromedriver: str, log_file: Path,
                 python: str = sys.executable,
                 popen: Callable[..., subprocess.Popen] = subprocess.Popen,
                 version_of: Callable[[str], str] = chrome_version):
        self.root = root
        self.chrome, self.chromedriver, self.log_file = chrome, chromedriver, log_file
        self.python, self._popen, self._version_of = python, popen, version_of
        self._maker: subprocess.Popen | None = None
        self._started_at = 0.0
        self._settled = False  # nothing more to do

    def folder(self) -> Path | None:
        """The template a new profile is copied from (it may not exist
        yet: the session then starts on an empty one); None when Chromium
        cannot say its version (the start then fails, and says why)."""
        try:
            return folder_for(self.root, self._version_of(self.chrome))
        except (VersionUnknown, ValueError):
            return None

    def tick(self, now: float) -> None:
        if self._settled:
            return
        if self._maker is None:
            self._make(now)
        elif self._maker.poll() is not None:
            self._settled = True
            self._maker = None
            folder = self.folder()
            if folder is not None and folder.is_dir():
                log.info("profile template %s made in %.1f s", folder, now - self._started_at)
            else:
                log.warning("the profile template was not made (see %s); new profiles start empty",
                            self.log_file)

    def _make(self, now: float) -> None:
        folder = self.folder()
        if folder is None or folder.is_dir():
            self._settled = True
            return
        try:
            with open(os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
                self._maker = self._popen(
                    [self.python, "-m", "sessionproc.profiletemplate", "--dir", str(self.root),
                     "--version", folder.name, "--chrome", self.chrome, "--chromedriver", self.chromedriver],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True)
        except OSError as e:
            log.warning("could not start making the profile template (%s); new profiles start empty",
                        e.strerror or e)
            self._settled = True
            return
        self._started_at = now
        log.info("making the profile template of Chromium %s (process %d)", folder.name, self._maker.pid)

    def busy(self) -> bool:
        return False  # a stop does not wait for it: the next start makes it again

    def close(self) -> None:
        if self._maker is not None and self._maker.poll() is None:
            self._maker.terminate()  # it ends its browser (its reaper)
            try:
                self._maker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._maker.kill()
                self._maker.wait()
        self._maker = None

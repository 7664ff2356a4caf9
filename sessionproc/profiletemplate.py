"""A new session's profile starts as a copy of a pristine one.

Chromium's first start on an empty profile folder creates it: a dozen
SQLite databases and their schemas, LevelDB stores, the first-run
sentinel, the preferences.  That is a sixth of a boot's CPU (0.70 against
0.59 CPU-seconds for the session's whole browser tree, to the stand-in's
QR code; docs/decisions.md, "A new profile copied from a template").  So a
node keeps, per Chromium version, one profile that Chromium created and
closed and nothing else ever opened (``PROFILE_TEMPLATE_DIR``/<version>),
and a session whose profile folder is new starts on a copy of it.

Only a profile nobody has used is copied: the template never opened a
page, never linked, holds no cookie and no storage of any site, and no
secret (what it holds is what Chromium writes into every fresh profile of
its version).  A profile that exists (a restarted
session's, a login restored from a snapshot) is never touched.

``python -m sessionproc.profiletemplate --dir DIR --version V`` makes one;
the node starts it in the background when the template of its Chromium
is missing (``wwnode/templates.py``).  Several makers at once (two nodes on
one folder) each build in a folder of their own and the first rename
wins; a copy is renamed into place whole, so a crash, or a full disk,
leaves either no profile folder (the session starts on an empty one, as
without a template) or a complete copy.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .wirecommands import SETTINGS_FILE

log = logging.getLogger(__name__)

# What the browser leaves that a copy must not carry: its lock and its
# DevTools port (of a browser long gone), its log files (they name the
# folder it was made in), the tab it had open.
LEFT_OUT = {"SingletonLock", "SingletonSocket", "SingletonCookie", "DevToolsActivePort", "LOG", "LOG.old",
            "Sessions", "Crash Reports", "Crashpad"}
# What the node writes into a profile folder before its session starts.
NODE_FILES = {SETTINGS_FILE}
# A maker's folder this old was left by a maker that died (one takes
# seconds); younger, it may be another node's, at work on a shared folder.
LEFT_MAKING_AGE = 3600.0
VERSION_RE = re.compile(r"^\d+(\.\d+){0,3}$")


def folder_for(root: Path, version: str) -> Path:
    """The template of this Chromium version (``156.0.8078.129``): a
    profile of an older version would be migrated at every start, and
    saves nothing."""
    if not VERSION_RE.match(version):
        raise ValueError(f"not a Chromium version: {version!r}")
    return root / version


def copy_into(template: Path, profile_dir: Path) -> bool:
    """Make a new profile folder a copy of ``template``; False (nothing
    changed) when the folder is not new, there is no template, or the copy
    fails (a full disk: the session then starts on an empty folder).

    New: nothing in it but the node's own files (the session's settings,
    written before its start).  The copy is made beside it and each of its
    entries moved in whole, so an entry is either all there or not at all:
    a crash between two leaves a profile with some of Chromium's entries,
    which Chromium completes as it does an empty one."""
    if not template.is_dir() or not _is_new(profile_dir):
        return False
    profile_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _remove_left(profile_dir.parent, ".profile-copy-", 0.0)  # a copy a crash left: one session per key
    staging = Path(tempfile.mkdtemp(prefix=".profile-copy-", dir=profile_dir.parent))
    try:
        copy = staging / "profile"
        shutil.copytree(template, copy, symlinks=True)
        for entry in sorted(copy.iterdir()):
            os.rename(entry, profile_dir / entry.name)
    except OSError as e:
        log.warning("profile not copied from its template (%s): %s; starting on an empty one",
                    template, e.strerror or e)
        return False
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def make(root: Path, version: str, chrome: str, chromedriver: str) -> Path:
    """Start Chromium once on an empty folder as a session would, close
    it, and keep the folder as the template of ``version``.  Returns it;
    raises what a session's start would when it could not be made, and
    leaves nothing."""
    from . import browser  # Selenium: only the maker pays for its import

    final = folder_for(root, version)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _remove_left(root, ".making-", LEFT_MAKING_AGE)
    if final.is_dir():
        return final
    building = Path(tempfile.mkdtemp(prefix=".making-", dir=root))
    try:
        profile = building / "profile"
        cfg = browser.BrowserConfig(profile_dir=profile, chrome=chrome, chromedriver=chromedriver)
        try:
            browser.launch(cfg).quit()  # up once its first tab (about:blank) is
        finally:
            browser.wait_until_gone(profile)  # a browser that did not quit is killed
        _leave_out(profile)
        try:
            os.rename(profile, final)
        except OSError:
            if not final.is_dir():  # else another maker was first: theirs is as good
                raise
        return final
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _leave_out(profile: Path) -> None:
    for path in sorted(profile.rglob("*"), reverse=True):  # children before their folders
        if path.name in LEFT_OUT:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _remove_left(folder: Path, prefix: str, older_than: float) -> None:
    """Folders ``prefix*`` that a crash left in ``folder``, at least
    ``older_than`` seconds old."""
    now = time.time()
    for entry in folder.glob(prefix + "*"):
        try:
            if now - entry.stat().st_mtime >= older_than:
                shutil.rmtree(entry)
        except OSError:
            continue  # gone meanwhile, or not ours to remove: the copy is made beside it


def _is_new(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return all(entry.name in NODE_FILES for entry in entries)
    except FileNotFoundError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sessionproc.profiletemplate",
                                     description="Make the profile template of a Chromium version.")
    parser.add_argument("--dir", required=True, type=Path, help="the templates folder (PROFILE_TEMPLATE_DIR)")
    parser.add_argument("--version", required=True, help="the Chromium version it is for (chromium --version)")
    parser.add_argument("--chrome", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args(argv)
    try:
        folder_for(args.dir, args.version)
    except ValueError as e:
        parser.error(str(e))
    from selenium.common.exceptions import WebDriverException

    from .__main__ import die_with_parent
    from .browser import CannotStart, Reaper

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s profile template: %(message)s")
    die_with_parent()  # the node's stop, or its death, ends the making
    reaper = Reaper()  # and the browser with it
    try:
        make(args.dir, args.version, args.chrome, args.chromedriver)
    except (OSError, RuntimeError, CannotStart, WebDriverException) as e:
        log.warning("not made, new sessions start on empty profiles: %s", e)
        return 1
    finally:
        reaper.disarm()  # the browser is gone either way (make)
    return 0


if __name__ == "__main__":
    sys.exit(main())

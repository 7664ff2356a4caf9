"""The user agent a session's browser presents: what desktop Chromium on
Linux says, with the installed major version (headless Chromium would say
``HeadlessChrome``, which WhatsApp Web refuses; see browser.py).

Asking Chromium its version is a process of its own; the node asks once
and hands the answer to every session it starts (``--user-agent``), so a
burst of starts does not ask it again for each.  Nothing here imports
Selenium: the node uses it too.
"""

from __future__ import annotations

import functools
import re
import subprocess

DESKTOP_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.0.0 Safari/537.36"
)


class VersionUnknown(Exception):
    """Chromium could not be asked its version, or gave none."""


@functools.lru_cache(maxsize=8)
def chrome_version(chrome: str) -> str:
    """The full version of the Chromium at ``chrome`` (``--version``):
    ``156.0.8078.129``."""
    try:
        done = subprocess.run([chrome, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VersionUnknown(f"cannot ask {chrome} its version: {e}") from e
    found = re.search(r"\b(\d+\.\d+\.\d+\.\d+)\b", done.stdout)
    if done.returncode != 0 or not found:
        raise VersionUnknown(f"{chrome} --version said {done.stdout.strip()[:200]!r}, not a version")
    return found.group(1)


def chrome_major_version(chrome: str) -> int:
    """The major version of the Chromium at ``chrome``."""
    return int(chrome_version(chrome).split(".")[0])


def desktop_user_agent(chrome: str) -> str:
    return DESKTOP_USER_AGENT.format(major=chrome_major_version(chrome))

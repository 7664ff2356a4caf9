"""Starting and ending one session's Chromium, through Selenium and chromedriver.

Three things here keep a fleet of browsers healthy:

- ``clear_stale_locks``: a Chrome killed without warning leaves
  ``Singleton*`` files in its profile, and a new Chrome refuses the profile
  while they point at a live-looking process.
- ``Reaper``: chromedriver and Chrome are our descendants but do not die
  with us.  A tiny ``sh`` in its own process group waits on a pipe only we
  hold; when we exit in any way (even ``kill -9``) the pipe closes and it
  kills our whole process group, Chrome included.
- ``launch``: nothing is downloaded at run time; the binaries are named.

It also makes the browser look like the desktop browser it is: headless
Chromium says ``HeadlessChrome`` in its user agent, and chromedriver's
``--enable-automation`` sets ``navigator.webdriver``.  WhatsApp Web serves
an unsupported browser a page without its application, and whatsapp-web.js
hides both for that reason.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import psutil
# Chrome and its options named here, at import: ``selenium.webdriver``
# imports them at their first use, which in a session forked warm
# (forkserver.py) was each session's own 0.13-0.21 s of CPU and its own
# copy of the modules, where the fork server's is shared.
from selenium.webdriver import Chrome, ChromeOptions
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.remote_connection import RemoteConnection

from . import profiletemplate, useragent
from .chromeflags import BASE_FLAGS, EXCLUDED_SWITCHES, START_PREFS, STEALTH_FLAGS

log = logging.getLogger(__name__)

DEFAULT_CHROME = "/usr/bin/chromium"
# Debian's ``/usr/bin/chromium`` is a shell script that greps
# /proc/cpuinfo, sources /etc/chromium.d (flags for a desktop user:
# extensions, GPU rasterization, API keys; nothing a session uses or lacks)
# and runs this binary.  Run directly, a boot is quicker: its half-dozen
# short processes each wait for a CPU on a busy machine (docs/decisions.md,
# "Chromium run without Debian's launcher").  Another ``CHROME_PATH`` is
# run as given.
DEBIAN_LAUNCHER = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"

SINGLETON_FILES = ("SingletonLock", "SingletonSocket", "SingletonCookie")


class ProfileInUse(RuntimeError):
    """Another Chrome still has the profile: try again later."""


class CannotStart(Exception):
    """The browser cannot start and retrying will not help (bad paths,
    unusable profile folder)."""


@dataclass
class BrowserConfig:
    profile_dir: Path
    chrome: str = DEFAULT_CHROME
    chromedriver: str = DEFAULT_CHROMEDRIVER
    # Empty: the desktop user agent of the installed Chromium.
    user_agent: str = ""
    extra_flags: list[str] = field(default_factory=list)
    extra_prefs: dict = field(default_factory=dict)  # beside START_PREFS (a proxied session's: chromeflags.PROXY_PREFS)
    # A new profile folder starts as a copy of this one (profiletemplate.py).
    profile_template: Path | None = None
    page_load_timeout: float = 60.0
    # Client-side timeout of each chromedriver call: a hung page must not
    # hang the session process with it.
    command_timeout: float = 30.0


def clear_stale_locks(profile_dir: Path) -> list[str]:
    """Remove a dead Chrome's ``Singleton*`` files; return what was removed.

    ``SingletonLock`` is a symlink to ``<host>-<pid>``.  It is stale unless
    that pid lives on this host.  A live one means another Chrome has the
    profile, which the caller must not fight over.
    """
    lock = profile_dir / "SingletonLock"
    try:
        target = os.readlink(lock)
    except FileNotFoundError:
        target = None
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: exists but not a link
            raise
        target = ""
    if target:
        host, _, pid = target.rpartition("-")
        if host == socket.gethostname() and pid.isdigit() and _alive(int(pid)):
            # Most likely the Chrome of an earlier run of this session, still
            # dying: worth a retry, not a permanent failure.
            raise ProfileInUse(f"profile {profile_dir} is in use by a running Chrome (pid {pid})")
    removed = []
    for name in SINGLETON_FILES:
        path = profile_dir / name
        if path.is_symlink() or path.exists():
            path.unlink()
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    """Running, and not a zombie nobody reaped yet (a dead Chrome whose
    parent died with it stays one where PID 1 does not reap)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Reaper:
    """Kills this process group when this process ends, however it ends."""

    SCRIPT = 'read line; [ "$line" = done ] || kill -s KILL -- -"$1"'

    def __init__(self) -> None:
        if os.getpgrp() != os.getpid():
            # Our own group, so killing it spares whoever started us.
            os.setpgid(0, 0)
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", self.SCRIPT, "reaper", str(os.getpgrp())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outside the group it may have to kill
        )

    def disarm(self) -> None:
        """Clean exit: the browser is gone, let the reaper go without killing."""
        stdin = cast(IO[bytes], self._proc.stdin)  # a pipe (__init__)
        try:
            stdin.write(b"done\n")
            stdin.close()
        except BrokenPipeError:
            pass
        self._proc.wait(timeout=5)


def chrome_major_version(chrome: str) -> int:
    """The major version of the Chromium at ``chrome`` (``--version``,
    asked once per binary)."""
    try:
        return useragent.chrome_major_version(chrome)
    except useragent.VersionUnknown as e:
        raise CannotStart(str(e)) from e


def user_agent(cfg: BrowserConfig) -> str:
    """The one given (the node asks Chromium once for all its sessions),
    else the installed Chromium's desktop user agent."""
    return cfg.user_agent or useragent.DESKTOP_USER_AGENT.format(major=chrome_major_version(cfg.chrome))


def browser_binary(chrome: str) -> str:
    """The program to run for ``chrome``: Debian's launcher script is
    skipped for the binary it would run (see ``DEBIAN_LAUNCHER``)."""
    launcher, binary = DEBIAN_LAUNCHER
    if chrome == launcher and _is_script(launcher) and os.access(binary, os.X_OK):
        return binary
    return chrome


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def chrome_options(cfg: BrowserConfig) -> ChromeOptions:
    opts = ChromeOptions()
    opts.binary_location = browser_binary(cfg.chrome)
    for flag in (*BASE_FLAGS, *STEALTH_FLAGS):
        opts.add_argument(flag)
    opts.add_argument(f"--user-agent={user_agent(cfg)}")
    opts.add_experimental_option("excludeSwitches", EXCLUDED_SWITCHES)
    opts.add_experimental_option("prefs", {**START_PREFS, **cfg.extra_prefs})
    if os.geteuid() == 0:
        # Chrome's sandbox cannot run as root; see docs/security.md on running
        # the node as an unprivileged user instead.
        opts.add_argument("--no-sandbox")
    opts.add_argument(f"--user-data-dir={cfg.profile_dir}")
    for flag in cfg.extra_flags:
        opts.add_argument(flag)
    opts.page_load_strategy = "normal"
    return opts


class TimedService(Service):
    """chromedriver, with the time it took to answer (boot figures in the
    session's log)."""

    took = 0.0

    def start(self) -> None:
        started = time.monotonic()
        super().start()
        self.took = time.monotonic() - started


def check_binaries(cfg: BrowserConfig) -> None:
    for what, path in (("Chromium", cfg.chrome), ("chromedriver", cfg.chromedriver)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise CannotStart(f"{what} not found or not executable at {path}")


def prepare_profile(profile_dir: Path) -> None:
    try:
        profile_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = profile_dir / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CannotStart(f"profile folder {profile_dir} is not usable: {e.strerror}") from e
    clear_stale_locks(profile_dir)


def launch(cfg: BrowserConfig, log_file: IO | int | None = subprocess.DEVNULL) -> Chrome:
    """Start chromedriver and Chromium on the profile; return the driver."""
    check_binaries(cfg)
    if cfg.profile_template is not None and profiletemplate.copy_into(cfg.profile_template, cfg.profile_dir):
        log.info("new profile copied from the template %s", cfg.profile_template.name)
    prepare_profile(cfg.profile_dir)
    service = TimedService(executable_path=cfg.chromedriver, log_output=log_file)
    started = time.monotonic()
    try:
        driver = Chrome(service=service, options=chrome_options(cfg))
    except WebDriverException as e:
        # Chrome exiting at once is worth a retry (memory, a dying old
        # Chrome); wrong binaries were caught above.
        raise RuntimeError(f"Chromium did not start: {e.msg}") from e
    took = time.monotonic() - started
    log.info("browser up in %.2f s: chromedriver %.2f s, Chromium %.2f s", took, service.took,
             took - service.took)
    cast(RemoteConnection, driver.command_executor).client_config.timeout = cfg.command_timeout  # not a URL: ours
    driver.set_page_load_timeout(cfg.page_load_timeout)
    return driver


def open_url(driver: Chrome, url: str, budget: float) -> bool:
    """Navigate, waiting at most ``budget`` seconds for the page to load;
    False if it did not (chromedriver then stops the load).  Our HTTP client
    gives up on chromedriver after ``command_timeout``: for this one call it
    waits the whole budget instead."""
    client = cast(RemoteConnection, driver.command_executor).client_config  # launch made it, not a URL
    usual_client, usual_load = client.timeout, driver.timeouts.page_load
    client.timeout = max(usual_client, budget + 10)
    driver.set_page_load_timeout(budget)
    try:
        driver.get(url)
        return True
    except TimeoutException:
        return False
    finally:
        client.timeout = usual_client
        driver.set_page_load_timeout(usual_load)


def debugger_address(driver: Chrome) -> str:
    return driver.capabilities["goog:chromeOptions"]["debuggerAddress"]


def browser_pids(driver: Chrome) -> list[int]:
    """chromedriver's pid (its children are Chrome's tree)."""
    proc = driver.service.process
    return [proc.pid] if proc else []


def processes_using(profile_dir: Path) -> list[psutil.Process]:
    """Chrome processes started on this profile, children or not."""
    flag = f"--user-data-dir={profile_dir}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if flag in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def wait_until_gone(profile_dir: Path, timeout: float = 10.0) -> None:
    """Wait until no Chrome runs on the profile (``quit`` and a failed start
    return while some still write to it), so it can be removed; stragglers
    after ``timeout`` are killed."""
    _, alive = psutil.wait_procs(processes_using(profile_dir), timeout=timeout)
    for proc in alive:
        log.warning("Chrome process %d outlived its browser; killing it", proc.pid)
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)

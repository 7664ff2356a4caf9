"""The session process's command line, which the node builds and the process parses back."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from .wireids import KEY_RE, PHONE_RE, USER_AGENT_RE

# Seconds the page has to load (``BOOT_TIMEOUT``, ``--boot-timeout``).
DEFAULT_BOOT_TIMEOUT = 60.0


class BadArguments(ValueError):
    """The command line is not one this process can start with."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # the caller exits EXIT_CANNOT_START, not 2
        raise BadArguments(message)


@dataclass(frozen=True)
class SessionArgs:
    """What a session process is started with.  ``chrome`` and
    ``chromedriver`` None: the process's own defaults."""

    key: str
    profile: Path
    url: str
    log_file: Path | None = None
    chrome: str | None = None
    chromedriver: str | None = None
    qr_max: int = 5
    send_timeout: float = 60.0
    ping_timeout: float = 5.0
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    user_agent: str = ""  # empty: desktop Chromium of the installed version
    send_seen: bool = True
    log_bodies: bool = False
    pair_with_phone: str = ""  # link by a pairing code for this phone instead of QR codes
    pair_interval: float = 180.0  # seconds between pairing codes, as whatsapp-web.js asks for them
    stop_timeout: float = 20.0  # seconds a stop may take before the process leaves (sessionproc/stopping.py)
    # The session's settings (SETTINGS_FILE, written by the node): its
    # proxy and what it ignores.  A file, not arguments: the proxy's
    # password would show in every process list.  None: none.
    settings_file: Path | None = None
    # The profile template of the installed Chromium (PROFILE_TEMPLATE_DIR/
    # <version>): a new profile starts as a copy of it, when it exists.
    profile_template: Path | None = None

    def argv(self, module: str = "sessionproc") -> list[str]:
        """The command that runs it.  ``module`` is the program: the real
        session, or a stand-in in tests (the node's ``SESSION_MODULE``)."""
        args = [sys.executable, "-m", module, "--key", self.key, "--profile", str(self.profile), "--url", self.url]
        for flag, value in (("--log-file", self.log_file), ("--chrome", self.chrome),
                            ("--chromedriver", self.chromedriver)):
            if value is not None:
                args += [flag, str(value)]
        args += ["--qr-max", str(self.qr_max), "--send-timeout", str(self.send_timeout),
                 "--ping-timeout", str(self.ping_timeout), "--boot-timeout", str(self.boot_timeout),
                 "--stop-timeout", str(self.stop_timeout)]
        if self.user_agent:
            args += ["--user-agent", self.user_agent]
        if not self.send_seen:
            args.append("--no-send-seen")
        if self.log_bodies:
            args.append("--log-bodies")
        if self.pair_with_phone:
            args += ["--pair-with-phone", self.pair_with_phone, "--pair-interval", str(self.pair_interval)]
        if self.settings_file is not None:
            args += ["--settings-file", str(self.settings_file)]
        if self.profile_template is not None:
            args += ["--profile-template", str(self.profile_template)]
        return args

    @classmethod
    def parse(cls, argv: list[str] | None) -> "SessionArgs":
        """The process's side of :meth:`argv`; BadArguments on a bad one."""
        p = _Parser(prog="python -m sessionproc",
                    description="Run one WhatsApp Web session, spoken to over stdin/stdout.")
        p.add_argument("--key", required=True, help="the session's key (1-64 of A-Z a-z 0-9 _ -)")
        p.add_argument("--profile", required=True, type=Path, help="Chromium profile folder of this session")
        p.add_argument("--url", required=True, help="page to open (WhatsApp Web or the stand-in)")
        p.add_argument("--chrome", help="Chromium binary (default: the system's)")
        p.add_argument("--chromedriver", help="chromedriver binary (default: the system's)")
        p.add_argument("--user-agent", default="",
                       help="user agent the browser presents (default: desktop Chromium of the installed version)")
        p.add_argument("--log-file", type=Path, help="this session's log file (default: stderr)")
        p.add_argument("--qr-max", type=int, default=5, help="QR codes shown before auth_failure (default %(default)s)")
        p.add_argument("--send-timeout", type=float, default=60.0, help="seconds a send may take (default %(default)s)")
        p.add_argument("--ping-timeout", type=float, default=5.0,
                       help="seconds the page has to answer a ping (default %(default)s)")
        p.add_argument("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT,
                       help="seconds the page has to load, from the start or a navigation (default %(default)s)")
        p.add_argument("--stop-timeout", type=float, default=20.0,
                       help="seconds a stop may take; then the process leaves and its browser is killed "
                            "(default %(default)s; shorter when the node that started it is gone)")
        p.add_argument("--no-send-seen", dest="send_seen", action="store_false",
                       help="do not mark a chat seen before sending to it (default: mark it, as whatsapp-web.js does)")
        p.add_argument("--log-bodies", action="store_true", help="write message texts to the log")
        p.add_argument("--pair-with-phone", default="",
                       help="link with a pairing code for this phone number (digits) instead of QR codes")
        p.add_argument("--pair-interval", type=float, default=180.0,
                       help="seconds between new pairing codes while none was typed (default %(default)s)")
        p.add_argument("--settings-file", type=Path,
                       help="the session's settings, JSON (its proxy, what it ignores); default: none")
        p.add_argument("--profile-template", type=Path,
                       help="a new profile starts as a copy of this folder, when it exists (default: none)")
        a = p.parse_args(argv)
        if not KEY_RE.match(a.key):
            p.error("--key must be 1 to 64 characters of A-Z a-z 0-9 _ -")
        if not a.url.startswith(("http://", "https://")):
            p.error("--url must be an http(s) URL")
        if a.user_agent and not USER_AGENT_RE.match(a.user_agent):
            p.error("--user-agent must be 1 to 512 printable ASCII characters")
        if a.pair_with_phone and not PHONE_RE.match(a.pair_with_phone):
            p.error("--pair-with-phone must be 5 to 20 digits")
        if a.qr_max < 1 or a.pair_interval <= 0 or min(a.send_timeout, a.ping_timeout, a.boot_timeout,
                                                        a.stop_timeout) <= 0:
            p.error("--qr-max, --pair-interval, --send-timeout, --ping-timeout, --boot-timeout and --stop-timeout "
                    "must be positive")
        return cls(key=a.key, profile=a.profile, url=a.url, log_file=a.log_file, chrome=a.chrome,
                   chromedriver=a.chromedriver, qr_max=a.qr_max, send_timeout=a.send_timeout,
                   ping_timeout=a.ping_timeout, boot_timeout=a.boot_timeout, user_agent=a.user_agent,
                   send_seen=a.send_seen, log_bodies=a.log_bodies, pair_with_phone=a.pair_with_phone,
                   pair_interval=a.pair_interval, stop_timeout=a.stop_timeout, settings_file=a.settings_file,
                   profile_template=a.profile_template)

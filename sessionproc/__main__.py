"""``python -m sessionproc``: run one WhatsApp Web session (see protocol.py)."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

from . import browser
from .output import Output
from .protocol import DEFAULT_BOOT_TIMEOUT, EXIT_CANNOT_START, KEY_RE, USER_AGENT_RE
from .session import Options, Session

PR_SET_PDEATHSIG = 1


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit with our "cannot start" code, not 2
        raise _ArgumentError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(prog="python -m sessionproc", description="Run one WhatsApp Web session, spoken to over stdin/stdout.")
    p.add_argument("--key", required=True, help="the session's key (1-64 of A-Z a-z 0-9 _ -)")
    p.add_argument("--profile", required=True, type=Path, help="Chromium profile folder of this session")
    p.add_argument("--url", required=True, help="page to open (WhatsApp Web or the stand-in)")
    p.add_argument("--chrome", default=browser.DEFAULT_CHROME, help="Chromium binary (default %(default)s)")
    p.add_argument("--chromedriver", default=browser.DEFAULT_CHROMEDRIVER, help="chromedriver binary (default %(default)s)")
    p.add_argument("--user-agent", default="",
                   help="user agent the browser presents (default: desktop Chromium of the installed version)")
    p.add_argument("--log-file", type=Path, help="this session's log file (default: stderr)")
    p.add_argument("--qr-max", type=int, default=5, help="QR codes shown before auth_failure (default %(default)s)")
    p.add_argument("--send-timeout", type=float, default=60.0, help="seconds a send may take (default %(default)s)")
    p.add_argument("--ping-timeout", type=float, default=5.0, help="seconds the page has to answer a ping (default %(default)s)")
    p.add_argument("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT,
                   help="seconds the page has to load, from the start or a navigation (default %(default)s)")
    p.add_argument("--no-send-seen", dest="send_seen", action="store_false",
                   help="do not mark a chat seen before sending to it (default: mark it, as whatsapp-web.js does)")
    p.add_argument("--log-bodies", action="store_true", help="write message texts to the log")
    args = p.parse_args(argv)
    if not KEY_RE.match(args.key):
        p.error("--key must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    if not args.url.startswith(("http://", "https://")):
        p.error("--url must be an http(s) URL")
    if args.user_agent and not USER_AGENT_RE.match(args.user_agent):
        p.error("--user-agent must be 1 to 512 printable ASCII characters")
    if args.qr_max < 1 or min(args.send_timeout, args.ping_timeout, args.boot_timeout) <= 0:
        p.error("--qr-max, --send-timeout, --ping-timeout and --boot-timeout must be positive")
    return args


def die_with_parent() -> None:
    """Get SIGTERM when the parent dies (the node's SIGKILL included)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except _ArgumentError as e:
        print(f"sessionproc: {e}", file=sys.stderr)
        return EXIT_CANNOT_START

    out = Output.take_stdout()
    log_file = None
    if args.log_file:
        try:
            args.log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            log_file = open(args.log_file, "ab", buffering=0)
            os.chmod(args.log_file, 0o600)
        except OSError as e:
            print(f"sessionproc: cannot open log file {args.log_file}: {e.strerror}", file=sys.stderr)
            return EXIT_CANNOT_START
        os.dup2(log_file.fileno(), 2)  # tracebacks and Chrome's noise land in the log too
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{args.key}] %(name)s: %(message)s",
    )
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("selenium").setLevel(logging.WARNING)

    die_with_parent()
    reaper = browser.Reaper()  # from here on, our browser dies with us

    opts = Options(
        key=args.key,
        profile_dir=args.profile.resolve(),
        url=args.url,
        chrome=args.chrome,
        chromedriver=args.chromedriver,
        user_agent=args.user_agent,
        qr_max=args.qr_max,
        send_timeout=args.send_timeout,
        ping_timeout=args.ping_timeout,
        boot_timeout=args.boot_timeout,
        send_seen=args.send_seen,
        log_bodies=args.log_bodies,
    )
    session = Session(opts, out, log_file if log_file is not None else sys.stderr)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: session.inbox.put(("stop", {})))
    code = session.run()
    logging.getLogger(__name__).info("exiting with code %d", code)
    reaper.disarm()
    return code


if __name__ == "__main__":
    sys.exit(main())

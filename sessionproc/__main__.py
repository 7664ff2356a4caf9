"""``python -m sessionproc``: run one WhatsApp Web session (see protocol.py)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time

from . import browser
from .output import Output
from .protocol import EXIT_CANNOT_START, BadArguments, SessionArgs
from .session import Session
from .sessionstate import Options

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Get SIGTERM when the parent dies (the node's SIGKILL included)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def _age() -> float:
    """Seconds since this process was started, to the kernel's tick (its
    start in ticks since boot, field 22 of ``/proc/self/stat``, against
    the boot-time clock; psutil's ``create_time`` adds the boot time,
    which is kept to the whole second)."""
    with open("/proc/self/stat") as f:
        after_name = f.read().rpartition(")")[2].split()
    return time.clock_gettime(time.CLOCK_BOOTTIME) - int(after_name[19]) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    try:
        args = SessionArgs.parse(argv)
    except BadArguments as e:
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

    log = logging.getLogger(__name__)
    log.info("process up in %.2f s (Python and imports)", _age())
    die_with_parent()
    reaper = browser.Reaper()  # from here on, our browser dies with us

    opts = Options(
        key=args.key,
        profile_dir=args.profile.resolve(),
        url=args.url,
        chrome=args.chrome or browser.DEFAULT_CHROME,
        chromedriver=args.chromedriver or browser.DEFAULT_CHROMEDRIVER,
        user_agent=args.user_agent,
        qr_max=args.qr_max,
        send_timeout=args.send_timeout,
        ping_timeout=args.ping_timeout,
        boot_timeout=args.boot_timeout,
        send_seen=args.send_seen,
        log_bodies=args.log_bodies,
        pair_with_phone=args.pair_with_phone,
        pair_interval=args.pair_interval,
        stop_timeout=args.stop_timeout,
        settings_file=args.settings_file,
        profile_template=args.profile_template,
    )
    session = Session(opts, out, log_file if log_file is not None else sys.stderr)
    session.stopper.install_signals()
    code = session.run()
    log.info("exiting with code %d", code)
    reaper.disarm()
    return code


if __name__ == "__main__":
    sys.exit(main())

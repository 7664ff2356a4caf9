"""``wwnode``: run a node, or look at the fleet."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from urllib.parse import urlsplit

from . import __version__
from .config import ConfigError, load


EXIT_BAD_SETTING = 2


def _setup_logging(cfg, log_file) -> None:
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s [{cfg.node_id}] %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(cfg.log_level.upper())
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(fmt)
    root.addHandler(stderr)
    handler = logging.handlers.WatchedFileHandler(log_file)
    handler.setFormatter(fmt)
    root.addHandler(handler)
    log_file.chmod(0o600)
    # pika logs every failed connection attempt at length; the node says
    # what happened in one line of its own.
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def cmd_run(args) -> int:
    """Exit codes: see ``wwnode.node`` (0 stopped on request, 1 an
    unexpected error, logged to node.log, 2 a bad setting, 3 a live node of
    the same NODE_ID runs elsewhere)."""
    from .node import EXIT_ERROR
    from .twins import EXIT_TWIN, TwinRunning
    from .wiring import build
    from .paths import Paths

    cfg = load()
    paths = Paths(cfg.data_dir)
    paths.ensure()
    _setup_logging(cfg, paths.node_log())
    try:
        node = build(cfg, paths)
    except TwinRunning as e:
        logging.getLogger("wwnode.twins").critical("%s", e)
        print(f"wwnode: {e}", file=sys.stderr)
        return EXIT_TWIN
    except Exception:
        logging.getLogger("wwnode.node").critical("node %s could not start", cfg.node_id, exc_info=True)
        return EXIT_ERROR
    return node.run()


def cmd_status(args) -> int:
    from .status import fleet_status

    cfg = load()
    print(fleet_status(cfg, as_json=args.json))
    return 0


def cmd_doctor(args) -> int:
    import orjson

    from .doctor import examine, render

    cfg = load()
    url = args.url or cfg.wa_url
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError("--url must be an http(s) URL")
    report = examine(cfg, url)
    print(orjson.dumps(report.as_dict()).decode() if args.json else render(report))
    return report.code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wwnode", description="WhatsApp Web sessions behind RabbitMQ and Redis.")
    p.add_argument("--version", action="version", version=f"wwnode {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run a node (settings from the environment and .env)").set_defaults(func=cmd_run)
    st = sub.add_parser("status", help="print the fleet's nodes and sessions from Redis")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)
    dr = sub.add_parser("doctor", help="open the page as a session would and check it has all the session uses",
                        description="Exit 0: all there; 1: something missing; 2: bad setting; "
                                    "3: the page did not load within BOOT_TIMEOUT; 4: the browser did not start.")
    dr.add_argument("--url", help="page to check (default: WA_URL)")
    dr.add_argument("--json", action="store_true", help="machine-readable output")
    dr.set_defaults(func=cmd_doctor)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"wwnode: bad setting: {e}", file=sys.stderr)
        return EXIT_BAD_SETTING


if __name__ == "__main__":
    sys.exit(main())

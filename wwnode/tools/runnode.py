"""``wwnode run``: the node started from the command line, with its log, and its exit code."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from ..config import load
from ..logfiles import PrivateRotatingFileHandler
from .outcomes import EXIT_BAD_SETTING


def _setup_logging(cfg, log_file) -> None:
    from ..redact import RedactingFormatter, url_secrets

    # Masks the passwords of its URLs in every line, tracebacks included
    # (an S3 endpoint may carry one too, and boto3 quotes it in its errors).
    fmt = RedactingFormatter(f"%(asctime)s %(levelname)s [{cfg.node_id}] %(name)s: %(message)s",
                             url_secrets(cfg.rabbit_mq_url) | url_secrets(cfg.redis_url)
                             | url_secrets(cfg.blob_store_endpoint)
                             | ({cfg.snapshot_secret} if cfg.snapshot_secret else set()))
    root = logging.getLogger()
    root.setLevel(cfg.log_level.upper())
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(fmt)
    root.addHandler(stderr)
    # Rotated by size (LOG_MAX_BYTES, LOG_BACKUPS; see logfiles.py); with
    # LOG_MAX_BYTES=0, reopened when moved, for an outside logrotate.  A disk
    # that takes no writes costs the file, not the node: stderr still has it.
    handler: logging.Handler
    try:
        if cfg.log_max_bytes:
            handler = PrivateRotatingFileHandler(log_file, maxBytes=cfg.log_max_bytes, backupCount=cfg.log_backups)
        else:
            handler = logging.handlers.WatchedFileHandler(log_file)
            log_file.chmod(0o600)
    except OSError as e:
        logging.getLogger("wwnode").error("cannot write %s (%s): logging to stderr only", log_file, e.strerror)
    else:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    # pika logs every failed connection attempt at length; the node says
    # what happened in one line of its own.
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def cmd_run(args) -> int:
    """Exit codes: see ``wwnode.node`` (0 stopped on request, 1 an
    unexpected error, logged to node.log, 2 a bad setting, 3 a live node of
    the same NODE_ID runs elsewhere)."""
    from ..stopsignals import record_early

    asked = record_early()  # first: a stop asked while the node is built is an orderly one
    from ..node import EXIT_ERROR
    from ..twins import EXIT_TWIN, TwinRunning
    from ..wiring import build
    from ..paths import Paths

    cfg = load()
    paths = Paths(cfg.data_dir)
    try:
        paths.ensure()
    except OSError as e:  # a setting that names a place the node cannot use: said in one line
        print(f"wwnode: DATA_DIR {cfg.data_dir}: cannot make its folders: {e.strerror}", file=sys.stderr)
        return EXIT_BAD_SETTING
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
    return node.run(asked)

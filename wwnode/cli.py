"""``wwnode``: run a node, or look at the fleet."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path
from urllib.parse import urlsplit

from . import __version__
from .config import ConfigError, load
from .logfiles import PrivateRotatingFileHandler


EXIT_BAD_SETTING = 2


def _setup_logging(cfg, log_file) -> None:
    from .redact import RedactingFormatter, url_secrets

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
    from .stopsignals import record_early

    asked = record_early()  # first: a stop asked while the node is built is an orderly one
    from .node import EXIT_ERROR
    from .twins import EXIT_TWIN, TwinRunning
    from .wiring import build
    from .paths import Paths

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


def cmd_status(args) -> int:
    from .status import show

    return show(load(), args.json, args.watch)


def cmd_capacity(args) -> int:
    from .capacity import report
    return _client_command(lambda: report(load(), args.json))


def _client_command(run) -> int:
    """Run a client command: its outcome printed (errors on stderr), its
    exit code returned; what the client could not do is said in one line."""
    import pika.exceptions
    import redis

    from .client import Rejected, Unreachable
    from .clientcmds import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE

    try:
        outcome = run()
    except Rejected as e:
        print(f"wwnode: refused, nothing was published: {e.detail} ({e.reason})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Unreachable as e:
        print(f"wwnode: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except pika.exceptions.AMQPError as e:  # the connection lost, or a channel closed by the broker
        print(f"wwnode: RabbitMQ: {e!r}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except redis.exceptions.RedisError as e:
        print(f"wwnode: Redis: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if outcome.text:
        print(outcome.text if outcome.code == EXIT_OK else f"wwnode: {outcome.text}",
              file=sys.stdout if outcome.code == EXIT_OK else sys.stderr)
    return outcome.code


def cmd_create(args) -> int:
    from . import clientcmds
    from .qrterm import QrScreen
    return _client_command(lambda: clientcmds.create(load(), args.key, args.wait, args.png, args.timeout, QrScreen()))


def cmd_send(args) -> int:
    from . import clientcmds
    return _client_command(lambda: clientcmds.send(load(), args.key, args.chat_id, args.text, args.id, args.timeout))


def cmd_command(args) -> int:
    from . import clientcmds
    return _client_command(lambda: clientcmds.command(load(), args.queue, clientcmds.parse_body(args.body),
                                                      args.timeout))


def cmd_destroy(args) -> int:
    from . import clientcmds
    return _client_command(lambda: clientcmds.destroy(load(), args.key, args.logout, args.timeout))


def cmd_qr(args) -> int:
    from . import clientcmds
    from .qrterm import QrScreen
    return _client_command(lambda: clientcmds.show_qr(load(), args.key, args.png, QrScreen()))


def cmd_blob_get(args) -> int:
    from . import clientcmds
    return _client_command(lambda: clientcmds.blob_get(load(), args.blob_id, args.output))


def cmd_blob_put(args) -> int:
    from . import clientcmds
    return _client_command(lambda: clientcmds.blob_put(load(), args.key, args.file))


def cmd_drain(args) -> int:
    from . import clientcmds
    return _client_command(lambda: clientcmds.drain(load(), args.node_id, args.timeout, force=args.force))


def cmd_undrain(args) -> int:
    from . import clientcmds
    return _client_command(lambda: clientcmds.undrain(load(), args.node_id))


def cmd_events(args) -> int:
    from . import clientcmds
    from .qrterm import QrScreen
    code = _client_command(lambda: clientcmds.events(load(), args.key, args.names, args.json, args.count,
                                                     QrScreen()))
    return 0 if code == clientcmds.EXIT_INTERRUPTED else code  # Ctrl-C is how one stops following


def cmd_demo(args) -> int:
    from .client import Unreachable
    from .clientcmds import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_UNREACHABLE
    from .demo import Demo, DemoFailed

    demo = Demo(load(), args.vhost, args.timeout)
    try:
        seconds = demo.run()
    except Unreachable as e:
        print(f"wwnode demo: {e}\nThe demo needs RabbitMQ and Redis running (deploy/run-node.sh starts them "
              "on this machine; RABBIT_MQ_URL and REDIS_URL name others).", file=sys.stderr)
        return EXIT_UNREACHABLE
    except DemoFailed as e:
        print(f"wwnode demo: failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("wwnode demo: interrupted; cleaned up", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"demo done in {seconds:.1f} s")
    return 0


def cmd_dashboard(args) -> int:
    from .dashboard import RefusedToStart, serve

    try:
        serve(load(), args.host, args.port)
    except RefusedToStart as e:
        print(f"wwnode dashboard: refused to start: {e}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except OSError as e:
        print(f"wwnode dashboard: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_SETTING
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError("must be a port number (1 to 65535)")
    return value


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


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


EXIT_CODES = ("Exit codes: 0 done; 1 the command failed (command_failed, or nothing to show); 2 refused "
              "before anything was published (bad key, chat id, text) or a bad setting; 3 RabbitMQ or Redis "
              "cannot be reached; 4 no outcome within --timeout; 5 authentication failed (create); "
              "6 the session disconnected, failed or stopped (create); 130 interrupted.")


def _client_parsers(sub) -> None:
    """The client commands: they speak the public contract, as any client."""
    c = sub.add_parser("create", help="create a session and show its QR code as it rotates", description=(
        "Publishes create_instance and shows each QR code in the terminal until the phone scanned one "
        "(then exits 0), or, with --wait, until the session is ready. " + EXIT_CODES))
    c.add_argument("key")
    c.add_argument("--wait", action="store_true", help="return when the session is ready (or failed)")
    c.add_argument("--png", type=Path, metavar="FILE", help="also write the current QR code to FILE as PNG")
    c.add_argument("--timeout", type=_positive, metavar="SECONDS", help="give up after SECONDS (exit 4)")
    c.set_defaults(func=cmd_create)
    s = sub.add_parser("send", help="send a text message and wait for its outcome", description=(
        "Publishes send_message with an id (--id, or a new one) and waits for message_sent_instance or "
        "command_failed with that id. " + EXIT_CODES))
    s.add_argument("key")
    s.add_argument("chat_id", help="5511999999999@c.us, a hidden id ...@lid, or a group's ...@g.us")
    s.add_argument("text")
    s.add_argument("--id", help="the command id (a send with an id goes out at most once)")
    s.add_argument("--timeout", type=_positive, default=120.0, metavar="SECONDS",
                   help="wait at most SECONDS for the outcome (default %(default)s)")
    s.set_defaults(func=cmd_send)
    cm = sub.add_parser("command", help="publish any other command and print the event that answers it",
                        description=(
        "Publishes BODY (a JSON object; an id is added unless it has one) to QUEUE and waits for the event "
        "that answers it (query_result_instance for a query, group_action_done_instance for a group_action, "
        "...), printed as JSON, or command_failed. For example: wwnode command query "
        "'{\"key\": \"shop-1\", \"what\": \"chats\"}'. " + EXIT_CODES))
    cm.add_argument("queue", help="message_action, check_number, update_settings, call_action, chat_action, "
                                  "set_presence, query, group_action or send_message")
    cm.add_argument("body", help="the command's body, a JSON object with its key")
    cm.add_argument("--timeout", type=_positive, default=120.0, metavar="SECONDS",
                    help="wait at most SECONDS for the answer (default %(default)s)")
    cm.set_defaults(func=cmd_command)
    d = sub.add_parser("destroy", help="stop a session", description=(
        "Publishes destroy_instance and waits until the session stopped. " + EXIT_CODES))
    d.add_argument("key")
    d.add_argument("--logout", action="store_true", help="also unlink the device and delete the profile")
    d.add_argument("--timeout", type=_positive, default=60.0, metavar="SECONDS",
                   help="wait at most SECONDS (default %(default)s)")
    d.set_defaults(func=cmd_destroy)
    q = sub.add_parser("qr", help="show the QR code a session shows now (from Redis)", description=EXIT_CODES)
    q.add_argument("key")
    q.add_argument("--png", type=Path, metavar="FILE", help="also write it to FILE as PNG")
    q.set_defaults(func=cmd_qr)
    e = sub.add_parser("events", help="follow the events, one line each (or JSON lines)", description=(
        "Follows the wa.events exchange through a private queue (gone when this command ends). "
        "NAME: the events to follow, by name (routing key); all by default."))
    e.add_argument("names", nargs="*", metavar="NAME")
    e.add_argument("--key", help="only the events of this key")
    e.add_argument("--json", action="store_true", help="one JSON object a line, as published")
    e.add_argument("--count", type=_count, metavar="N", help="stop after N events")
    e.set_defaults(func=cmd_events)
    b = sub.add_parser("blob", help="the blob store (BLOB_STORE_URL)")
    bsub = b.add_subparsers(dest="blob_command", required=True)
    bg = bsub.add_parser("get", help="fetch a blob by its id", description=(
        "Fetches the blob from the store BLOB_STORE_URL names (file:// or s3://) to FILE, or to standard output. "
        "Exit 0 done, 1 no such blob (or the copy failed midway), 2 a bad id, output FILE (a folder, in no "
        "folder) or setting, 3 the store cannot be reached."))
    bg.add_argument("blob_id", metavar="ID")
    bg.add_argument("-o", "--output", type=Path, metavar="FILE", help="write it to FILE (default: standard output)")
    bg.set_defaults(func=cmd_blob_get)
    bp = bsub.add_parser("put", help="put a file in the store for a key to send; prints its id", description=(
        "Puts FILE in the store BLOB_STORE_URL names as one of KEY's media, under a new id nobody can guess "
        "(media/KEY/up-<random>), and prints the id: a send_message of KEY takes it as media.blob; no other "
        "key's send does. Exit 0 done, 2 a bad key, file or setting, 3 the store cannot be reached."))
    bp.add_argument("key", metavar="KEY")
    bp.add_argument("file", type=Path, metavar="FILE")
    bp.set_defaults(func=cmd_blob_put)
    dn = sub.add_parser("drain", help="move a node's sessions to other nodes, and stop it taking new ones",
                        description="Sets nodes:NODE_ID:drain; the node stops taking creates and moves its ready "
                                    "sessions one at a time (clean stop, login saved, started elsewhere without a QR "
                                    "code). Shows the progress until none is left. " + EXIT_CODES)
    dn.add_argument("node_id", metavar="NODE_ID")
    dn.add_argument("--timeout", type=_positive, metavar="SECONDS", help="stop watching after SECONDS (exit 4)")
    dn.add_argument("--force", action="store_true",
                    help="drain even when its sessions cannot move: its logins are in a store no other node "
                         "reads, or no other node takes new sessions (refused otherwise, exit 1)")
    dn.set_defaults(func=cmd_drain)
    un = sub.add_parser("undrain", help="let a drained node take new sessions again")
    un.add_argument("node_id", metavar="NODE_ID")
    un.set_defaults(func=cmd_undrain)
    cap = sub.add_parser("capacity", help="creates waiting, nodes accepting, sessions that still fit",
                         description="The signal an autoscaler needs; see the README's \"Command line\".")
    cap.add_argument("--json", action="store_true", help="machine-readable output")
    cap.set_defaults(func=cmd_capacity)
    dm = sub.add_parser("demo", help="offline demo: a stand-in, a node, a session, a message each way",
                        description="Needs RabbitMQ and Redis running (RABBIT_MQ_URL, REDIS_URL). Exit 0 done, "
                                    "1 a step failed, 3 RabbitMQ or Redis cannot be reached, 130 interrupted.")
    dm.add_argument("--vhost", default="wwnode-demo",
                    help="RabbitMQ virtual host of the demo's own (default %(default)s; made when missing)")
    dm.add_argument("--timeout", type=_positive, default=60.0, metavar="SECONDS",
                    help="longest wait for any one step (default %(default)s)")
    dm.set_defaults(func=cmd_demo)
    db = sub.add_parser("dashboard", help="the fleet in a web page: nodes, sessions, QR codes, events, buttons",
                        description="Serves a live page (server-sent events) at http://HOST:PORT/. Bound to "
                                    "anything but a loopback address it needs DASHBOARD_TOKEN (at least 16 "
                                    "characters) and refuses to start without it (exit 2).")
    db.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    db.add_argument("--port", type=_port, default=8464, help="port (default %(default)s)")
    db.set_defaults(func=cmd_dashboard)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wwnode", description="WhatsApp Web sessions behind RabbitMQ and Redis.")
    p.add_argument("--version", action="version", version=f"wwnode {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run a node (settings from the environment and .env)").set_defaults(func=cmd_run)
    st = sub.add_parser("status", help="print the fleet's nodes and sessions from Redis, and the creates waiting",
                        description="Exit 0; 3 when Redis or RabbitMQ cannot be reached (said on stderr).")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--watch", nargs="?", type=_positive, const=2.0, metavar="SECONDS",
                    help="refresh every SECONDS (default 2) until Ctrl-C")
    st.set_defaults(func=cmd_status)
    _client_parsers(sub)
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

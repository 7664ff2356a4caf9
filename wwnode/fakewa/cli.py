"""``fakewa``: run the WhatsApp Web stand-in as its own process."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from .assets import page_modules
from .server import FakeWA
from .tls import TLSUnavailable
from .settings import REAL_WEIGHT
from .world import Settings


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    p = argparse.ArgumentParser(prog="fakewa", description="Local stand-in for WhatsApp Web, with a control API under /_sim/.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (default %(default)s)")
    p.add_argument("--qr-first", type=float, default=defaults.qr_first, help="seconds the first QR code lives (default %(default)s)")
    p.add_argument("--qr-next", type=float, default=defaults.qr_next, help="seconds each later QR code lives (default %(default)s)")
    p.add_argument("--qr-count", type=int, default=defaults.qr_count, help="QR codes a page shows before it goes idle (default %(default)s)")
    p.add_argument("--sync-delay", type=float, default=defaults.sync_delay,
                   help="seconds from CONNECTED to hasSynced, as the real page syncs first (default %(default)s)")
    p.add_argument("--auto-delivered", type=float, metavar="S",
                   help="the recipient's phone reports each sent message delivered S seconds after the server took it")
    p.add_argument("--auto-read", type=float, metavar="S", help="... and read S seconds after the server took it")
    p.add_argument("--drop-module", action="append", default=[], metavar="NAME",
                   help="leave this module out of the page, to play a page WhatsApp changed (repeatable)")
    p.add_argument("--weight", choices=("off", "real"), default="off",
                   help="give the page the weight of the real one (docs/standin.md, Page weight); the --weight-* options "
                        "below override its parts (default %(default)s)")
    p.add_argument("--weight-heap-mb", type=int, metavar="MB", help="megabytes of JavaScript objects the page holds")
    p.add_argument("--weight-dom-nodes", type=int, metavar="N", help="elements the page's document holds")
    p.add_argument("--weight-chats", type=int, metavar="N", help="chats the page keeps in an IndexedDB")
    p.add_argument("--weight-messages", type=int, metavar="N", help="messages the page keeps in that IndexedDB")
    p.add_argument("--edit-window", type=float, default=defaults.edit_window, metavar="S",
                   help="seconds after sending in which the page lets a message be edited (default %(default)s)")
    p.add_argument("--revoke-window", type=float, default=defaults.revoke_window, metavar="S",
                   help="... and deleted for everyone (default %(default)s)")
    p.add_argument("--ring-timeout", type=float, default=defaults.ring_timeout, metavar="S",
                   help="seconds a call rings before it is missed (default %(default)s)")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS with a self-signed certificate for web.whatsapp.com, localhost and 127.0.0.1")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    unknown = sorted(set(args.drop_module) - set(page_modules()))
    if unknown:
        p.error(f"the page has no module {', '.join(unknown)}; it has {', '.join(sorted(page_modules()))}")
    weight = dict(REAL_WEIGHT) if args.weight == "real" else {}
    for name in REAL_WEIGHT:
        if getattr(args, name) is not None:
            weight[name] = getattr(args, name)
    try:
        settings = Settings(qr_first=args.qr_first, qr_next=args.qr_next, qr_count=args.qr_count,
                            sync_delay=args.sync_delay, auto_delivered=args.auto_delivered, auto_read=args.auto_read,
                            drop_modules=tuple(args.drop_module), edit_window=args.edit_window,
                            revoke_window=args.revoke_window, ring_timeout=args.ring_timeout, **weight)
    except ValueError as e:
        p.error(str(e))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")

    try:
        wa = FakeWA(args.host, args.port, settings, tls=args.tls)
    except OSError as e:
        print(f"fakewa: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    except TLSUnavailable as e:
        print(f"fakewa: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"fakewa: serving {wa.url} (control API under {wa.url}_sim/)", flush=True)
    if args.tls:
        print(f'fakewa: a browser reaches it as https://web.whatsapp.com/ with --host-resolver-rules="MAP '
              f'web.whatsapp.com {args.host}:{wa.port}" --ignore-certificate-errors', flush=True)
    try:
        wa.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``fakewa``: run the WhatsApp Web stand-in as its own process."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from .server import FakeWA
from .world import Settings


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    p = argparse.ArgumentParser(prog="fakewa", description="Local stand-in for WhatsApp Web, with a control API under /_sim/.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (default %(default)s)")
    p.add_argument("--qr-first", type=float, default=defaults.qr_first, help="seconds the first QR code lives (default %(default)s)")
    p.add_argument("--qr-next", type=float, default=defaults.qr_next, help="seconds each later QR code lives (default %(default)s)")
    p.add_argument("--qr-count", type=int, default=defaults.qr_count, help="QR codes a page shows before it goes idle (default %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    if args.qr_first <= 0 or args.qr_next <= 0 or args.qr_count < 1:
        p.error("QR lifetimes must be positive and --qr-count at least 1")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")

    settings = Settings(qr_first=args.qr_first, qr_next=args.qr_next, qr_count=args.qr_count)
    try:
        wa = FakeWA(args.host, args.port, settings)
    except OSError as e:
        print(f"fakewa: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"fakewa: serving {wa.url} (control API under {wa.url}_sim/)", flush=True)
    try:
        wa.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

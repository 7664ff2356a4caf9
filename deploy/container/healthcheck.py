"""The image's HEALTHCHECK: GET the node's /healthz on METRICS_ADDR, exit 0
on 200 and 1 on anything else (a 503, no answer within 5 s, the pages
turned off).  A node bound to every address (0.0.0.0, the image's default)
is asked on 127.0.0.1: inside its own container that is the node."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def healthz_url(metrics_addr: str) -> str:
    host, sep, port = metrics_addr.rpartition(":")
    if not sep or not port.isdigit() or port == "0":
        raise ValueError(f"METRICS_ADDR={metrics_addr!r} has no fixed port to check")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    try:
        url = healthz_url(os.environ.get("METRICS_ADDR", "127.0.0.1:9464"))
    except ValueError as e:
        print(f"healthcheck: {e}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return 0 if answer.status == 200 else 1
    except urllib.error.HTTPError as e:  # 503: the body says which part is down
        print(f"healthcheck: {e.code} {e.read(500).decode(errors='replace')}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"healthcheck: {url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

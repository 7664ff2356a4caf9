"""``python -m flagged_session``: the session process with Chromium's flags
changed, for bench_flags.py.  ``BENCH_FLAGS_DROP`` and ``BENCH_FLAGS_ADD``
(JSON lists) take flags out of and add flags to ``browser.BASE_FLAGS``,
``BENCH_SWITCHES_KEEP`` (a JSON list) takes switches out of
``browser.EXCLUDED_SWITCHES`` (chromedriver then passes them), before
``sessionproc`` runs as usual.  The names patched are those
``browser.py`` starts Chromium with (imported there from ``chromeflags.py``)."""

from __future__ import annotations

import os
import sys

import orjson

from sessionproc import __main__ as entry
from sessionproc import browser

drop = orjson.loads(os.environ.get("BENCH_FLAGS_DROP", "[]"))
add = orjson.loads(os.environ.get("BENCH_FLAGS_ADD", "[]"))
keep = orjson.loads(os.environ.get("BENCH_SWITCHES_KEEP", "[]"))
browser.BASE_FLAGS = tuple(f for f in browser.BASE_FLAGS if f not in drop) + tuple(add)
browser.EXCLUDED_SWITCHES = [s for s in browser.EXCLUDED_SWITCHES if s not in keep]

if __name__ == "__main__":
    sys.exit(entry.main())

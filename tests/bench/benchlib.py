"""What both benchmarks share: percentiles, the table they print, the
shape of their main(), and clocks that stamp the stand-in's side of a
message."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

# The benchmarks use the tests' helpers (support.py, one folder up).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MB = 1024 * 1024


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks, so p99 of 200 samples is
    not simply the second-largest one."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * p / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, measure: str, value: float, unit: str, limit: float | None = None, fmt: str = "{:.2f}") -> None:
        figure = f"{fmt.format(value)} {unit}"
        if limit is None:
            self.rows.append((measure, figure, "-", ""))
        else:
            self.rows.append((measure, figure, f"<= {limit:g} {unit}", "yes" if value <= limit else "NO"))

    def print(self, title: str) -> None:
        head = ("measure", "figure", "target", "met?")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(4)]
        line = "-+-".join("-" * w for w in widths)
        print(f"\n{title}")
        print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
        print(line)
        for r in self.rows:
            print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


def run_bench(title: str, body: Callable[[Table], None], cleanup: Callable[[], None],
              explain: Callable[[], None] = lambda: None) -> int:
    """What both benchmarks' main() do around their measures: ``body``
    fills a table; a failure is reported (``explain`` adds what helps, a
    log's tail) rather than raised; ``cleanup`` runs whatever happened; the
    figures measured are printed, even after a failure.  Exit code 1 only
    when the run itself broke, never for a target missed."""
    started = time.monotonic()
    table = Table()
    failed = False
    try:
        body(table)
    except Exception as e:  # any failure of the run: report it, clean up, print what was measured
        failed = True
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        explain()
    finally:
        cleanup()
    if table.rows:
        table.print(f"{title} ({time.monotonic() - started:.0f} s run, {os.cpu_count()} CPUs, "
                    f"{psutil.virtual_memory().total / MB / 1024:.0f} GB RAM)")
    return 1 if failed else 0


def run_main(main: Callable[[], int]) -> None:
    """Run a benchmark's main() as a script.  SIGTERM exits through
    ``finally:`` blocks, so a stopped benchmark still cleans up."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())


def kind(p: psutil.Process) -> str:
    """browser, renderer, gpu-process, zygote, utility:<service>, or the
    program's name (python, chromedriver, sh)."""
    try:
        args = p.cmdline()
    except psutil.Error:
        return "gone"
    if not args or "chrom" not in args[0] or "chromedriver" in args[0]:
        return "chromedriver" if args and "chromedriver" in args[0] else "session"
    kind_arg = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
    if kind_arg == "utility":
        sub = next((a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), "?")
        return "utility:" + sub.rsplit(".", 1)[-1]
    return kind_arg


def pss_by_kind(procs: list[psutil.Process]) -> dict[str, float]:
    """MB of PSS of some processes (one session's tree), by kind of process."""
    out: dict[str, float] = {}
    for p in procs:
        try:
            pss = p.memory_full_info().pss / MB
        except psutil.Error:
            continue
        out[kind(p)] = out.get(kind(p), 0.0) + pss
    return out


def tree_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) so far of each process of a session's
    tree, with its kind."""
    root = psutil.Process(pid)
    out: dict[int, tuple[str, float]] = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        out[p.pid] = (kind(p), t.user + t.system)
    return out


def cpu_by_kind(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each kind of process took between two readings (processes
    of both only)."""
    out: dict[str, float] = {}
    for pid, (k, t) in after.items():
        if pid in before:
            out[k] = out.get(k, 0.0) + t - before[pid][1]
    return out


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------- the process
class SentClock:
    """Stamps the moment the stand-in records a message a page sent, by
    wrapping ``World.record_sent`` on this instance.  Keyed by the message
    id the page chose; the ``sent`` event names the same id, so a send
    is matched to its record without asking the control API."""

    def __init__(self, world) -> None:
        self._record = world.record_sent
        self._at: dict[str, float] = {}
        self._cond = threading.Condition()
        world.record_sent = self._wrapped

    def _wrapped(self, device_id, msg_id, to, body, t, now, *args, **kwargs):
        record = self._record(device_id, msg_id, to, body, t, now, *args, **kwargs)
        now = time.monotonic()
        with self._cond:
            self._at.setdefault(msg_id, now)  # a retried request keeps its first time
            self._cond.notify_all()
        return record

    def at(self, msg_id: str, timeout: float = 10.0) -> float:
        with self._cond:
            if not self._cond.wait_for(lambda: msg_id in self._at, timeout):
                raise RuntimeError(f"the stand-in never recorded message {msg_id}")
            return self._at[msg_id]


class DeliverClock:
    """Stamps the moment the stand-in has queued an inbound message for the
    page, inside the control request, before its HTTP answer is written."""

    def __init__(self, world) -> None:
        self._deliver = world.deliver
        self.at: dict[str, float] = {}
        world.deliver = self._wrapped

    def _wrapped(self, to, sender, body, *args, **kwargs):
        msg_id = self._deliver(to, sender, body, *args, **kwargs)
        self.at[msg_id] = time.monotonic()
        return msg_id


# ---------------------------------------------------------- measurements

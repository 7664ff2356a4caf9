#!/usr/bin/env python3
"""wwnode beside whatsapp-web.js, in one run, on the same stand-in: N
sessions each, both columns and their ratio.

Not a pytest test (the name keeps pytest from collecting it): it prints a
table and exits 0 whether or not the targets are met; it exits 1 only when
the run itself breaks.

    python tests/bench/bench_vs_wwebjs.py                    # 10 sessions each, the bare page
    python tests/bench/bench_vs_wwebjs.py --sessions 3 --settle 20 --idle-seconds 20 --messages 50
    python tests/bench/bench_vs_wwebjs.py --weight real      # the page as heavy as the real one

whatsapp-web.js is the version tests/wwebjs/package.json pins, unmodified
(installed by deploy/setup-debian.sh with WITH_TESTS=1), run as its users
run a fleet: one Node process with N clients (``tests/wwebjs/fleet.js``),
each with its own puppeteer Chromium on https://web.whatsapp.com/, mapped
to the stand-in's TLS front.  wwnode is a real node (``python -m wwnode.tools.cli
run``) with its session processes, driven through RabbitMQ as a client
drives it, on the node benchmark's virtual host and Redis database
(``WWNODE_BENCH_VHOST``, ``WWNODE_BENCH_REDIS_DB``, or ``--vhost`` and
``--redis-db``).  The two run one after the other (``--first`` says which),
never at once: each would count the other's load, and PSS shares a page
among every process that maps it.

For each, in the same steps:

- N creates at once (one ``create`` command to the fleet; N
  ``create_instance`` published), the time until each client has its first
  QR code (the fleet's ``qr`` event; ``qr_instance`` consumed), slowest and
  median; each code scanned as it comes, and the time until all are ready;
- a settle (``--settle``, a minute: Chromium's start-up tail), then an idle
  window: the CPU of the whole tree (the Node process or the node, every
  session process, driver and Chromium under it) per session, and its PSS
  per session (the whole tree's PSS over N);
- sends one at a time over the N sessions: the command written to the
  fleet's stdin, or ``send_message`` published, to the moment the stand-in
  records the message (its ``World.record_sent``, in this process);
- inbound one at a time: the moment the stand-in queued a message for the
  page to the moment the client has the event (the fleet's ``message``
  line read; ``message_instance`` consumed);
- SIGTERM to the Node process or the node with every session live: the
  processes of its tree still running 15 s after it exited (then killed).

All clocks are ``time.monotonic()`` in this process; the stand-in runs in a
thread of it.  The fleet's stdin and stdout are its clients' hop, as
RabbitMQ is wwnode's.  The load average is printed with each phase: on a
shared machine it moves these figures most.  The node's CPU admission is
given a quiet reading, as in bench_density.py; memory admission stays real.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pika.exceptions
import psutil
import redis as redislib

from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control
from wwnode.fakewa.settings import REAL_WEIGHT

import bench_node
from benchlib import MB, DeliverClock, SentClock, percentile, progress, run_main
from bench_density import quiet_cgroup
from bench_node import COMMAND_QUEUES, LEGACY_QUEUES, Commands, Events, Node, destroy_all, ensure_vhost, use_services

WWEBJS_DIR = Path(__file__).resolve().parent.parent / "wwebjs"
FRIEND = "5511888000001"
SCAN_POLL = 0.01  # s between looks for new QR codes while linking (their times are stamped on arrival)
ORPHAN_GRACE = 15.0  # s after the SIGTERM'd parent exited for its tree to go
STOP_TIMEOUT = 180.0  # s a SIGTERM'd node or Node process may take to exit

# Issue 27's targets, for wwnode's column, 10 sessions on the bare page.
TARGETS = {"qr_slowest": 3.0, "send_p50": 6.0, "send_p99": 15.0, "inbound_p50": 3.0, "inbound_p99": 8.0,
           "pss": 100.0, "idle_cpu": 0.05, "orphans": 0}


# ------------------------------------------------------------ process trees
def tree(root_pid: int) -> list[psutil.Process]:
    """A process and all its descendants (an empty list once it is gone)."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            continue
    return out


def pss_mb(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            total += p.memory_full_info().pss / MB
        except psutil.Error:
            continue
    return total


def still_running(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.Error:
            continue
    return alive


def kill_all(procs: list[psutil.Process], why: str) -> None:
    for p in still_running(procs):
        progress(f"process {p.pid} {why}; killing it")
        try:
            p.kill()
        except psutil.Error:
            pass


def load() -> float:
    return os.getloadavg()[0]


# ------------------------------------------------------------------- sides
class Fleet:
    """``tests/wwebjs/fleet.js``: N whatsapp-web.js clients in one Node
    process, spoken to in JSON lines; its events stamped on arrival by a
    thread of their own."""

    def __init__(self, port: int, work: Path, chrome: str):
        node = shutil.which("node") or shutil.which("nodejs")
        if node is None or not (WWEBJS_DIR / "node_modules" / "whatsapp-web.js").is_dir():
            raise RuntimeError("whatsapp-web.js is not installed: run deploy/setup-debian.sh (WITH_TESTS=1)")
        work.mkdir(parents=True, exist_ok=True)
        self.log_file = work / "fleet.stderr"
        config = {"port": port, "dataPath": str(work / "auth"), "chrome": chrome}
        with open(self.log_file, "ab") as stderr:
            # A session of its own: a Ctrl-C in the benchmark's terminal
            # reaches the benchmark alone, whose cleanup destroys the clients.
            self.proc = subprocess.Popen([node, str(WWEBJS_DIR / "fleet.js"), orjson.dumps(config).decode()],
                                         cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                         start_new_session=True)
        self._cond = threading.Condition()
        self._events: list[tuple[float, dict]] = []
        self._ended = False
        self._write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True, name="fleet-events").start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            t = time.monotonic()
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = {"event": "unreadable", "line": line[:200].decode(errors="replace")}
            with self._cond:
                self._events.append((t, event))
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def command(self, cmd: dict) -> None:
        with self._write_lock:
            self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
            self.proc.stdin.flush()

    def all(self, name: str) -> list[tuple[float, dict]]:
        with self._cond:
            return [(t, e) for t, e in self._events if e.get("event") == name]

    def wait(self, names: tuple[str, ...], timeout: float, match=lambda e: True) -> tuple[float, dict]:
        """(arrival, event) of the first event named one of ``names`` that
        ``match`` accepts, come already or within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, e in self._events:
                    if e.get("event") in names and match(e):
                        return t, e
                if self._ended:
                    raise RuntimeError(f"the fleet ended (code {self.proc.wait()}) before {'/'.join(names)}; "
                                       f"its stderr: {self.stderr_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no {'/'.join(names)} from the fleet within {timeout:g} s")
                self._cond.wait(left)

    def stderr_tail(self, chars: int = 1500) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""


@dataclass
class Side:
    """What the measuring steps need of a client, whichever it is."""
    name: str
    keys: list[str]
    phones: dict[str, str]
    root_pid: int = 0
    figures: dict[str, float] = field(default_factory=dict)
    loads: dict[str, str] = field(default_factory=dict)


class WwebjsSide(Side):
    def __init__(self, keys: list[str], phones: dict[str, str], port: int, work: Path, chrome: str):
        super().__init__("whatsapp-web.js", keys, phones)
        self.fleet = Fleet(port, work, chrome)
        self.root_pid = self.fleet.proc.pid
        self._refs = 0

    def start(self) -> None:
        self.fleet.wait(("up",), timeout=60)

    def create_all(self) -> None:
        self.fleet.command({"cmd": "create", "ids": self.keys})

    def first_qrs(self) -> dict[str, tuple[float, str]]:
        out: dict[str, tuple[float, str]] = {}
        for t, e in self.fleet.all("qr"):
            out.setdefault(e["client"], (t, e["qr"]))
        return out

    def authenticated(self) -> int:
        return len({e["client"] for _, e in self.fleet.all("authenticated")})

    def ready(self) -> dict[str, float]:
        failed = self.fleet.all("init_error")
        if failed:
            raise RuntimeError(f"whatsapp-web.js client {failed[0][1].get('client')} failed to start: "
                               f"{failed[0][1].get('error', '')[:500]}")
        return {e["client"]: t for t, e in self.fleet.all("ready")}

    def send(self, key: str, chat_id: str, text: str) -> str:
        self._refs += 1
        ref = f"s{self._refs}"
        self.fleet.command({"cmd": "send", "client": key, "ref": ref, "chat_id": chat_id, "text": text})
        _, e = self.fleet.wait(("sent", "send_failed"), 30, lambda e: e.get("ref") == ref)
        if e["event"] == "send_failed":
            raise RuntimeError(f"whatsapp-web.js send failed: {e.get('error', '')[:500]}")
        return e["id"]

    def inbound_at(self, key: str, body: str) -> float:
        t, _ = self.fleet.wait(("message",), 30, lambda e: e.get("client") == key and e.get("body") == body)
        return t

    def alive(self) -> bool:
        return self.fleet.proc.poll() is None

    def stop_in_order(self) -> None:
        """Destroy every client (each closes its browser), as a user's
        shutdown does; the cleanup after a broken run."""
        if not self.alive():
            return
        try:
            self.fleet.command({"cmd": "destroy"})
            self.fleet.proc.wait(60)
        except (BrokenPipeError, subprocess.TimeoutExpired) as e:
            progress(f"the fleet did not stop in order ({e!r}); killing it")
            self.fleet.proc.kill()
            self.fleet.proc.wait()


class WwnodeSide(Side):
    def __init__(self, keys: list[str], phones: dict[str, str], wa_url: str, work: Path, settings: dict):
        super().__init__("wwnode", keys, phones)
        self.work, self.wa_url, self.settings = work, wa_url, settings
        self.cmds: Commands | None = None
        self.events: Events | None = None
        self.node: Node | None = None
        self._sends = 0

    def start(self) -> None:
        self.cmds = Commands()
        self.cmds.ch.queue_declare("create_instance", durable=True)
        # Before emptying anything: another run may be using these.
        if self.cmds.consumers("create_instance"):
            raise RuntimeError(f"another node consumes create_instance on vhost {bench_node.VHOST}; stop it "
                               "first (or give --vhost and --redis-db of your own)")
        self.cmds.purge(COMMAND_QUEUES + LEGACY_QUEUES)
        self.events = Events()
        self.events.start_and_wait()
        # INFO: the node tells when its fork server is ready (below).
        self.node = Node(self.work, self.wa_url, heartbeat_interval=5, qr_ttl=600, log_level="INFO",
                         load_cgroup_root=str(quiet_cgroup(self.work / "cgroup")), **self.settings)
        self.root_pid = self.node.proc.pid
        deadline = time.monotonic() + 60
        # Up as the fleet is at its "up", its modules loaded: consuming, and
        # its fork server ready (it imports for half a second after the
        # node consumes; a create meanwhile waits for it).
        while not (all(self.cmds.consumers(q) for q in COMMAND_QUEUES) and self._warm()):
            if not self.node.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not start consuming its command queues: {self.node.tail()}")
            time.sleep(0.05)

    def _warm(self) -> bool:
        if str(self.settings.get("warm_starts", os.environ.get("WARM_STARTS", "true"))).lower() == "false":
            return True
        return "fork server ready" in self.node.tail(200)

    def create_all(self) -> None:
        for k in self.keys:
            self.cmds.publish("create_instance", {"key": k})

    def first_qrs(self) -> dict[str, tuple[float, str]]:
        out: dict[str, tuple[float, str]] = {}
        for t, e in self.events.all("qr_instance"):
            if e.get("key") in self.phones:
                out.setdefault(e["key"], (t, e["qr"]))
        return out

    def authenticated(self) -> int:
        return len({e.get("key") for _, e in self.events.all("authenticated_instance") if e.get("key") in self.phones})

    def ready(self) -> dict[str, float]:
        if not self.node.alive():
            raise RuntimeError(f"the node exited: {self.node.tail()}")
        return {e["key"]: t for t, e in self.events.all("ready_instance") if e.get("key") in self.phones}

    def send(self, key: str, chat_id: str, text: str) -> str:
        self._sends += 1
        cid = f"vs-send-{self._sends}"
        self.cmds.publish("send_message", {"key": key, "chat_id": chat_id, "message": text, "id": cid})
        _, event = self.events.wait("message_sent_instance", 30, lambda e: e.get("command_id") == cid)
        return event["message_id"]

    def inbound_at(self, key: str, body: str) -> float:
        t, _ = self.events.wait("message_instance", 30,
                                lambda e: e.get("key") == key and (e.get("message") or {}).get("body") == body)
        return t

    def alive(self) -> bool:
        return self.node is not None and self.node.alive()

    def keep_alive(self) -> None:
        self.cmds.keep_alive()

    def stop_in_order(self) -> None:
        if self.alive():
            try:
                destroy_all(self.cmds, self.events, self.keys, timeout=120)
            except (pika.exceptions.AMQPError, OSError) as e:
                progress(f"could not destroy the sessions through RabbitMQ ({e!r}); the node's stop ends them")
            self.node.terminate(timeout=STOP_TIMEOUT)

    def close(self) -> None:
        if self.events is not None:
            self.events.stop()
        if self.cmds is None:
            return
        try:
            self.cmds.purge(COMMAND_QUEUES + LEGACY_QUEUES)
            self.cmds.close()
        except (pika.exceptions.AMQPError, OSError) as e:
            progress(f"could not empty the queues at the end: {e!r}")


# -------------------------------------------------------------- the steps
def link(side: Side, control: Control, timeout: float) -> None:
    """N creates at once; each QR code scanned as it comes; until all N
    are ready."""
    side.loads["creates"] = f"{load():.1f}"
    t0 = time.monotonic()
    side.create_all()
    scanned: set[str] = set()
    deadline = t0 + timeout
    while True:
        for key, (_, qr) in side.first_qrs().items():
            if key not in scanned:
                control.scan(qr, side.phones[key])
                scanned.add(key)
        ready = side.ready()
        if len(ready) == len(side.keys):
            break
        if time.monotonic() > deadline:
            missing = [k for k in side.keys if k not in ready]
            raise RuntimeError(f"{side.name}: {len(missing)} of {len(side.keys)} not ready within {timeout:g} s "
                               f"({len(scanned)} scanned, {side.authenticated()} authenticated): "
                               f"{', '.join(missing[:10])}")
        time.sleep(SCAN_POLL)
    qr_times = [t - t0 for t, _ in side.first_qrs().values()]
    side.figures["qr_slowest"] = max(qr_times)
    side.figures["qr_median"] = statistics.median(qr_times)
    side.figures["all_ready"] = max(ready.values()) - t0


def idle(side: Side, settle: float, seconds: float) -> None:
    """The settle, then the idle window: the whole tree's CPU and PSS."""
    n = len(side.keys)
    time.sleep(settle)  # the settle is itself the measure's condition: time for the start-up tail to pass
    side.loads["idle"] = f"{load():.1f}"
    procs = tree(side.root_pid)
    before, t0 = cpu_seconds(procs), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        if isinstance(side, WwnodeSide):
            side.keep_alive()  # the publishing connection answers the broker's heartbeats
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    after, wall = cpu_seconds(procs), time.monotonic() - t0
    used = sum(after[pid] - before[pid] for pid in after if pid in before)
    side.figures["idle_cpu"] = used / wall * 100 / n
    side.figures["pss"] = pss_mb(tree(side.root_pid)) / n
    side.figures["processes"] = len(tree(side.root_pid))
    side.loads["idle"] += f"-{load():.1f}"


def traffic(side: Side, control: Control, sent_clock: SentClock, deliver_clock: DeliverClock,
            messages: int, warmup: int) -> None:
    """Sends, then inbound messages, one at a time over the N sessions."""
    side.loads["messages"] = f"{load():.1f}"
    sends, inbound = [], []
    for i in range(warmup + messages):
        key = side.keys[i % len(side.keys)]
        t0 = time.monotonic()
        message_id = side.send(key, f"{FRIEND}@c.us", f"vs send {i}")
        # "true_<chat>_<id>", the id being the one the page chose and the stand-in recorded
        recorded = sent_clock.at(message_id.rsplit("_", 1)[1])
        if i >= warmup:
            sends.append((recorded - t0) * 1000)
    for i in range(warmup + messages):
        key = side.keys[i % len(side.keys)]
        body = f"vs inbound {i}"
        msg_id = control.deliver(side.phones[key], FRIEND, body)
        arrived = side.inbound_at(key, body)
        if i >= warmup:
            inbound.append((arrived - deliver_clock.at[msg_id]) * 1000)
    side.figures.update(send_p50=percentile(sends, 50), send_p99=percentile(sends, 99),
                        inbound_p50=percentile(inbound, 50), inbound_p99=percentile(inbound, 99))
    side.loads["messages"] += f"-{load():.1f}"


def sigterm(side: Side) -> None:
    """SIGTERM to the parent with every session live: the seconds until it
    exits, and its tree's processes still running ``ORPHAN_GRACE`` s after
    that (orphans, then killed).  A parent whose tree is all gone but which
    itself stays ``ORPHAN_GRACE`` s more has not exited (puppeteer's own
    SIGTERM handler closes the browsers and keeps the Node process, whose
    stdin still holds its loop): it is killed, and counted apart."""
    procs = tree(side.root_pid)
    root, descendants = procs[0], procs[1:]
    t0 = time.monotonic()
    root.send_signal(signal.SIGTERM)
    tree_gone_at = None
    while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
        now = time.monotonic()
        if still_running(descendants):
            tree_gone_at = None
        elif tree_gone_at is None:
            tree_gone_at = now
        if now - t0 > STOP_TIMEOUT or (tree_gone_at is not None and now - tree_gone_at > ORPHAN_GRACE):
            progress(f"{side.name} had not exited {now - t0:.0f} s after SIGTERM; killing it")
            side.figures["stayed"] = 1
            root.kill()
            break
        time.sleep(0.1)
    else:
        side.figures["stop_seconds"] = time.monotonic() - t0
    root.wait(30)
    deadline = time.monotonic() + ORPHAN_GRACE
    while still_running(descendants) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = still_running(descendants)
    side.figures["orphans"] = len(left)
    kill_all(left, f"outlived {side.name}'s SIGTERM")


def run_side(side: Side, control: Control, sent_clock: SentClock, deliver_clock: DeliverClock,
             args: argparse.Namespace) -> None:
    progress(f"{side.name}: {len(side.keys)} creates at once; scanning each QR code as it comes")
    link(side, control, args.ready_timeout)
    progress(f"{side.name}: all ready after {side.figures['all_ready']:.1f} s; settling {args.settle:g} s, "
             f"then {args.idle_seconds:g} s idle")
    idle(side, args.settle, args.idle_seconds)
    progress(f"{side.name}: {args.messages} sends, then {args.messages} inbound")
    traffic(side, control, sent_clock, deliver_clock, args.messages, args.warmup)
    progress(f"{side.name}: SIGTERM with every session live")
    sigterm(side)


# --------------------------------------------------------------- the table
ROWS = (  # (figure, what it is, unit, format)
    ("qr_slowest", "N creates at once -> QR, slowest", "s", "{:.2f}"),
    ("qr_median", "N creates at once -> QR, median", "s", "{:.2f}"),
    ("all_ready", "N creates at once -> all ready (each scanned as it came)", "s", "{:.2f}"),
    ("pss", "PSS per session, whole tree / N, idle", "MB", "{:.1f}"),
    ("idle_cpu", "idle CPU per session, whole tree", "% of a core", "{:.3f}"),
    ("send_p50", "send -> stand-in recorded, p50", "ms", "{:.2f}"),
    ("send_p99", "send -> stand-in recorded, p99", "ms", "{:.2f}"),
    ("inbound_p50", "inbound, stand-in queued -> client has it, p50", "ms", "{:.2f}"),
    ("inbound_p99", "inbound, stand-in queued -> client has it, p99", "ms", "{:.2f}"),
    ("stop_seconds", "SIGTERM -> the parent exited", "s", "{:.2f}"),
    ("orphans", "processes of its tree left after SIGTERM", "", "{:.0f}"),
    ("processes", "processes in the tree, idle", "", "{:.0f}"),
)


def show(value: float | None, fmt: str, unit: str) -> str:
    return "-" if value is None else f"{fmt.format(value)} {unit}".strip()


def print_table(title: str, js: Side, wn: Side, targets: bool) -> None:
    head = ("measure", js.name, wn.name, "wwnode/js", "as good?", "target", "met?")
    rows = []
    for key, what, unit, fmt in ROWS:
        a, b = js.figures.get(key), wn.figures.get(key)
        stayed = (js.figures.get("stayed"), wn.figures.get("stayed")) if key == "stop_seconds" else (None, None)
        if a is None and b is None and not any(stayed):
            continue
        if any(stayed):
            # A parent that never exited has no figure to compare: say so.
            rows.append((what, *("did not exit" if s else show(v, fmt, unit) for s, v in zip(stayed, (a, b))),
                         "-", "yes" if stayed[0] and not stayed[1] else "-", "-", ""))
            continue
        show_a, show_b = show(a, fmt, unit), show(b, fmt, unit)
        ratio = f"{b / a:.2f}" if a and b is not None else "-"
        as_good = "-" if a is None or b is None or key == "processes" else ("yes" if b <= a else "NO")
        limit = TARGETS.get(key) if targets else None
        target = "-" if limit is None else f"<= {limit:g} {unit}".strip()
        met = "" if limit is None or b is None else ("yes" if b <= limit else "NO")
        rows.append((what, show_a, show_b, ratio, as_good, target, met))
    for phase in ("creates", "idle", "messages"):
        rows.append((f"load average at the {phase}", js.loads.get(phase, "-"), wn.loads.get(phase, "-"),
                     "", "", "", ""))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{title}")
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


# ------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="wwnode beside whatsapp-web.js on the same stand-in, N sessions each; "
                                             "prints both columns and their ratio.")
    ap.add_argument("--sessions", type=int, default=10, help="sessions each (default %(default)s)")
    ap.add_argument("--weight", choices=("off", "real"), default="off",
                    help="the stand-in page's weight (docs/standin.md, Page weight) (default %(default)s)")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="seconds after the last ready before the idle window (default %(default)s)")
    ap.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default %(default)s)")
    ap.add_argument("--messages", type=int, default=200, help="sends, and inbound messages, measured "
                                                              "(default %(default)s)")
    ap.add_argument("--warmup", type=int, default=5, help="sends and inbound messages not counted "
                                                          "(default %(default)s)")
    ap.add_argument("--first", choices=("wwebjs", "wwnode"), default="wwebjs",
                    help="which runs first (default %(default)s)")
    ap.add_argument("--only", choices=("wwebjs", "wwnode"), default=None,
                    help="run one of the two (A/B runs of one side: its other column stays empty)")
    ap.add_argument("--start-concurrency", type=int, default=None,
                    help="the node's START_CONCURRENCY (default: the node's own)")
    ap.add_argument("--ready-timeout", type=float, default=300.0,
                    help="seconds N creates may take to be all ready before the run fails (default %(default)s)")
    ap.add_argument("--chrome", default="/usr/bin/chromium", help="whatsapp-web.js's browser (default %(default)s)")
    ap.add_argument("--vhost", default=bench_node.VHOST, help="RabbitMQ virtual host (default %(default)s)")
    ap.add_argument("--redis-db", type=int, default=bench_node.REDIS_DB,
                    help="Redis database, emptied (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (profiles, the node's output)")
    args = ap.parse_args(argv)
    if args.sessions < 1 or args.messages < 1 or args.idle_seconds <= 0 or args.settle < 0 or args.warmup < 0:
        ap.error("--sessions and --messages must be at least 1, --idle-seconds positive, "
                 "--settle and --warmup not negative")
    use_services(args.vhost, args.redis_db)

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-vs-wwebjs-")).resolve()
    progress(f"vhost {bench_node.VHOST}, Redis db {bench_node.REDIS_DB}; load {load():.1f}, "
             f"{psutil.virtual_memory().available / MB / 1024:.1f} GB available")
    ensure_vhost()
    r = redislib.Redis.from_url(bench_node.REDIS_URL, decode_responses=True)
    weight = REAL_WEIGHT if args.weight == "real" else {}
    # One world, two fronts: HTTP for the node's sessions, HTTPS as
    # web.whatsapp.com for whatsapp-web.js.  QR codes live long enough for
    # paced starts to be scanned.
    plain = FakeWA(settings=Settings(qr_first=600, **weight)).start()
    tls = FakeWA(tls=True, world=plain.world).start()
    control = Control(plain.url)
    sent_clock, deliver_clock = SentClock(plain.world), DeliverClock(plain.world)
    n = args.sessions
    js_keys = [f"js{i}" for i in range(n)]
    wn_keys = [f"vs-{i}" for i in range(n)]
    js = Side("whatsapp-web.js", js_keys, {})
    wn = Side("wwnode", wn_keys, {})
    live: list[Side] = []
    failed = interrupted = False

    def make(which: str) -> Side:
        if which == "wwebjs":
            phones = {k: f"55217{i:08d}" for i, k in enumerate(js_keys)}
            return WwebjsSide(js_keys, phones, tls.port, work / "wwebjs", args.chrome)
        r.flushdb()
        phones = {k: f"55218{i:08d}" for i, k in enumerate(wn_keys)}
        settings = {} if args.start_concurrency is None else {"start_concurrency": args.start_concurrency}
        return WwnodeSide(wn_keys, phones, plain.url, work, settings)

    try:
        order = (args.first, "wwnode" if args.first == "wwebjs" else "wwebjs")
        for which in (args.only,) if args.only else order:
            side = make(which)
            live.append(side)  # before it starts: a start that breaks is cleaned up too
            side.start()
            if which == "wwebjs":
                js = side
            else:
                wn = side
            run_side(side, control, sent_clock, deliver_clock, args)
    except Exception as e:  # any failure of the run: report it, clean up, print what was measured
        failed = True
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted; cleaning up")
    finally:
        # A second Ctrl-C must not cut the cleanup short: that would leave browsers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cleanup(live, work, r, plain, tls, args.keep)
        # What was measured is printed however the run ended (Ctrl-C, SIGTERM included).
        print_table(f"wwnode beside whatsapp-web.js, {n} sessions each, weight {args.weight} "
                    f"({time.monotonic() - started:.0f} s run, {os.cpu_count()} CPUs, "
                    f"{psutil.virtual_memory().total / MB / 1024:.0f} GB RAM)", js, wn,
                    targets=args.weight == "off")
    return 130 if interrupted else 1 if failed else 0


def cleanup(live: list[Side], work: Path, r: redislib.Redis, plain: FakeWA, tls: FakeWA, keep: bool) -> None:
    """Whatever happened: every session and browser of the run ended."""
    for side in live:
        leftover = tree(side.root_pid)[1:] if side.root_pid else []
        if side.alive():
            progress(f"stopping {side.name} in order")
            side.stop_in_order()
        deadline = time.monotonic() + ORPHAN_GRACE
        while still_running(leftover) and time.monotonic() < deadline:
            time.sleep(0.1)
        kill_all(leftover, f"outlived {side.name}'s stop")
        if isinstance(side, WwnodeSide):
            side.close()
    bench_node.wait_none_under(work)
    r.flushdb()
    r.close()
    tls.stop()
    plain.stop()
    if keep:
        progress(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)

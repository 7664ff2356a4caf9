#!/usr/bin/env python3
"""Figures for a node (``python -m wwnode.tools.cli run``) against the stand-in,
the local RabbitMQ and Redis, through the public contract only: commands
published to the old queues, QR codes read from Redis, events consumed from
``wa.events``, the phone played through the stand-in's control API.

Not a pytest test (the name keeps pytest from collecting it): it prints a
table and exits 0 whether or not the targets are met; it exits 1 only when
the run itself breaks.

    python tests/bench/bench_node.py                     # defaults: a few minutes
    python tests/bench/bench_node.py --messages 50 --idle-seconds 10

It uses a RabbitMQ virtual host of its own (``wwnode-bench``, or
``WWNODE_BENCH_VHOST``; created with ``rabbitmqctl``, so run it as a user
allowed to) and Redis database 13 (or ``WWNODE_BENCH_REDIS_DB``), which it
empties at the start (``--vhost`` and ``--redis-db`` choose others, for two
runs side by side; a run refuses to start, before it empties anything,
while a node consumes creates on its virtual host).  Nothing else on those
services is touched.

What is measured (all clocks are ``time.monotonic()`` in this process; the
stand-in runs in a thread of this process, so its clock is the same one):

- ``create_instance`` published to the QR code showing up in Redis, for one
  session alone and for ten published at once;
- ``send_message`` published to the moment the stand-in recorded the
  message, and to the moment ``message_sent_instance`` is consumed;
- ``Control.deliver`` to the moment ``message_instance`` is consumed,
  counted from the call's return and from before the call; plus, from the
  stand-in's side, the moment it queued the message for the page;
- the node process's own CPU and RSS (its session processes and browsers
  excluded) with idle authenticated sessions;
- bursts: 1, 10 and 30 creates published at once to one node, and 10 to
  two nodes, each on nodes without sessions: the slowest QR code in Redis,
  the restarts it took (crashes and slow boots), and where the time went
  (waiting for a start slot, the session process and its browser coming
  up, of which Python with its imports and chromedriver with Chromium, the
  page loading, the first QR code), from the node's session processes and
  their logs.  The machine's load average is printed beside
  them: on a shared machine it moves these figures most.  The burst nodes
  read idle load figures (a folder laid out as a cgroup with the machine's
  CPUs, ``LOAD_CGROUP_ROOT``) unless ``--machine-readings``: on a machine
  others keep busy, admission would otherwise refuse the burst, and the
  pacing would boot one at a time whatever this node does.
- the same CPU while ``/metrics`` is scraped every second, against none, in
  the same run: windows without and with scrapes take turns (none, scraped,
  none, scraped), so a machine that gets busier meanwhile weighs on both;
  and how long a scrape takes.
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
from datetime import datetime
from pathlib import Path

import orjson
import pika
import pika.exceptions
import psutil
import redis as redislib

from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

from benchlib import MB, DeliverClock, SentClock, Table, percentile, progress, run_bench, run_main
from support import make_profile_template  # noqa: E402  (benchlib puts the tests folder on the path)

# Overridable, so two checkouts can run it on one machine at once.
VHOST = os.environ.get("WWNODE_BENCH_VHOST", "wwnode-bench")
RABBIT_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
REDIS_DB = int(os.environ.get("WWNODE_BENCH_REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def use_services(vhost: str, redis_db: int) -> None:
    """Another virtual host and Redis database (``--vhost``, ``--redis-db``),
    so two benchmarks on one machine do not empty each other's."""
    global VHOST, RABBIT_URL, REDIS_DB, REDIS_URL
    VHOST, REDIS_DB = vhost, redis_db
    RABBIT_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
NODE_ID = "bench-node"
COMMAND_QUEUES = ("create_instance", "destroy_instance", "send_message")
# The node binds the old service's event queues to wa.events; nobody reads
# them here, so they are emptied too, or every run would leave its events.
LEGACY_QUEUES = ("authenticated_instance", "disconnected_instance", "auth_failure_instance", "message_instance")
QR_POLL = 0.005  # seconds between Redis reads while waiting for a QR code
BATCH = 10  # creates published at once; also the sessions the message figures use

TARGET_INBOUND_P50 = 10.0  # ms
TARGET_INBOUND_P99 = 50.0  # ms
TARGET_SEND_P50 = 25.0  # ms
TARGET_SEND_P99 = 100.0  # ms
TARGET_BATCH_QR = 10_000.0  # ms, the slowest of the ten creates
TARGET_RSS = 80.0  # MB
TARGET_CPU = 2.0  # percent of one core
TARGET_HOP = 5.0  # ms the extra hop to another node may add at p50
# Bursts (issue 12): creates at once -> the slowest QR code in Redis, ms.
BURSTS = ((1, 1, None), (10, 1, 8_000.0), (30, 1, 30_000.0), (10, 2, 5_000.0))  # (creates, nodes, target)


# ------------------------------------------------------------------ figures
def amqp_params() -> pika.URLParameters:
    params = pika.URLParameters(RABBIT_URL)
    # The publishing connection sits unpumped through long waits (the idle
    # window); without heartbeats the broker does not drop it meanwhile.
    params.heartbeat = 0
    return params


def ensure_vhost() -> None:
    """Create the vhost and guest's rights on it unless guest can already
    connect: rabbitmqctl takes seconds to start, a connection milliseconds."""
    try:
        pika.BlockingConnection(amqp_params()).close()
        return
    except pika.exceptions.AMQPConnectionError:
        pass
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "add_vhost", VHOST], capture_output=True, timeout=120)  # fails harmlessly if it exists
    done = subprocess.run([ctl, "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
                          capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl set_permissions failed: {done.stderr.decode(errors='replace').strip()}")


class Events(threading.Thread):
    """Consumes every event from ``wa.events`` on a connection and thread of
    its own, stamping each on arrival, so the main thread's waits and HTTP
    calls do not delay the stamp."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="events")
        self._cond = threading.Condition()
        self._by_name: dict[str, list[tuple[float, dict]]] = {}
        self._up = threading.Event()
        self._stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = pika.BlockingConnection(amqp_params())
            ch = conn.channel()
            ch.exchange_declare("wa.events", exchange_type="topic", durable=True)
            q = ch.queue_declare("", exclusive=True).method.queue
            ch.queue_bind(q, "wa.events", "#")
            ch.basic_consume(q, self._on_event, auto_ack=True)
            self._up.set()
            while not self._stopping.is_set():
                conn.process_data_events(time_limit=0.05)
            conn.close()
        except BaseException as e:  # reported to the waiting thread
            self.error = e
            self._up.set()
            with self._cond:
                self._cond.notify_all()

    def _on_event(self, ch, method, props, body) -> None:
        t = time.monotonic()
        event = orjson.loads(body)
        with self._cond:
            self._by_name.setdefault(event.get("event"), []).append((t, event))
            self._cond.notify_all()

    def start_and_wait(self) -> None:
        self.start()
        self._up.wait(30)
        if self.error or not self._up.is_set():
            raise RuntimeError(f"cannot consume events: {self.error}")

    def stop(self) -> None:
        self._stopping.set()
        self.join(5)

    def wait(self, name: str, timeout: float, match=None) -> tuple[float, dict]:
        """(arrival time, event) of the first ``name`` event for which
        ``match(event)`` holds, whether it came already or comes within
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout

        def find():
            for t, e in self._by_name.get(name, []):
                if match is None or match(e):
                    return t, e
            return None

        with self._cond:
            while True:
                found = find()
                if found:
                    return found
                if self.error:
                    raise RuntimeError(f"event consumer broke: {self.error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no {name} event within {timeout} s")
                self._cond.wait(left)

    def all(self, name: str) -> list[tuple[float, dict]]:
        """(arrival time, event) of every ``name`` event so far."""
        with self._cond:
            return list(self._by_name.get(name, []))

    def find(self, name: str, match=None) -> list[dict]:
        with self._cond:
            return [e for _, e in self._by_name.get(name, []) if match is None or match(e)]


class Commands:
    """The client side of the command queues: publish to the default
    exchange with the queue's name as routing key, as the old clients do."""

    def __init__(self) -> None:
        self._open()

    def _open(self) -> None:
        self.conn = pika.BlockingConnection(amqp_params())
        self.ch = self.conn.channel()

    def publish(self, queue: str, body: dict) -> None:
        if not self.conn.is_open:
            self._open()
        self.ch.basic_publish("", queue, orjson.dumps(body))

    def keep_alive(self) -> None:
        """Answer the broker's heartbeats while the bench only watches (the
        idle windows last minutes: longer than the broker waits)."""
        self.conn.process_data_events(time_limit=0)

    def purge(self, queues) -> None:
        for q in queues:
            self.ch.queue_declare(q, durable=True)
            self.ch.queue_purge(q)

    def consumers(self, queue: str) -> int:
        return self.ch.queue_declare(queue, passive=True).method.consumer_count

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


# ----------------------------------------------------- stand-in clocks
class Node:
    def __init__(self, work: Path, wa_url: str, node_id: str = NODE_ID, **settings: str):
        self.node_id = node_id
        self.data_dir = work / node_id / "data"
        self.out_path = work / f"{node_id}.out"
        env = {**os.environ, "RABBIT_MQ_URL": RABBIT_URL, "REDIS_URL": REDIS_URL, "WA_URL": wa_url,
               "NODE_ID": node_id, "DATA_DIR": str(self.data_dir), "LOG_LEVEL": "WARNING",
               "METRICS_ADDR": "127.0.0.1:0",  # a free port, named in the heartbeat
               **{k.upper(): str(v) for k, v in settings.items()}}
        if env.get("PROFILE_TEMPLATES", "true") != "false" and not env.get("PROFILE_TEMPLATE_DIR"):
            # Made before the node starts: the figures are those of a node
            # that has its template, not of its first minute, when the
            # making runs beside the sessions (wwnode/templates.py).
            if make_profile_template(self.data_dir / "profile-templates", env.get("CHROME_PATH", "/usr/bin/chromium")):
                raise RuntimeError("the node's profile template could not be made")
        with open(self.out_path, "ab") as out:
            # cwd is the work folder so that no .env elsewhere changes the settings.
            # A session of its own: a Ctrl-C in the benchmark's terminal
            # reaches the benchmark alone, whose cleanup then stops the node
            # in order (destroys, then SIGTERM) rather than racing it.
            self.proc = subprocess.Popen([sys.executable, "-m", "wwnode.tools.cli", "run"], env=env, cwd=work,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def session_count(self) -> int:
        try:
            return sum("sessionproc" in " ".join(c.cmdline()) for c in psutil.Process(self.proc.pid).children())
        except psutil.Error:
            return 0

    def terminate(self, timeout: float = 60.0) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                progress(f"the node did not stop within {timeout} s of SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        if not self.out_path.exists():
            return ""
        return "\n".join(self.out_path.read_text(errors="replace").splitlines()[-lines:])


def processes_under(folder: Path) -> list[psutil.Process]:
    marker = str(folder)
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in a for a in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            continue
    return found


def wait_none_under(folder: Path, timeout: float = 20.0) -> None:
    """The node takes sessions and browsers along when it stops; if that
    fails, the benchmark must still not leave browsers behind, so it kills
    what runs on its own folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for p in processes_under(folder):
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return
        time.sleep(0.2)
    for p in processes_under(folder):
        progress(f"process {p.pid} on {folder} outlived the node; killing it")
        try:
            p.kill()
        except psutil.Error:
            pass


# ------------------------------------------------------------ measurements
def wait_qrs(r: redislib.Redis, sent_at: dict[str, float], timeout: float) -> dict[str, tuple[float, str]]:
    """Poll Redis until every key has its QR code; key -> (ms after its
    create was published, QR)."""
    keys = list(sent_at)
    got: dict[str, tuple[float, str]] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(keys):
        missing = [k for k in keys if k not in got]
        values = r.mget([f"instances:{k}:qr_code" for k in missing])
        now = time.monotonic()
        for k, v in zip(missing, values):
            if v is not None:
                got[k] = ((now - sent_at[k]) * 1000, v)
        if len(got) == len(keys):
            break
        if now > deadline:
            raise RuntimeError(f"no QR in Redis within {timeout} s for {', '.join(k for k in keys if k not in got)}")
        time.sleep(QR_POLL)
    return got


def create_and_link(cmds: Commands, events: Events, r, control: Control, keys: list[str],
                    phones: dict[str, str], timeout: float) -> dict[str, float]:
    """Publish creates for ``keys`` at once, wait for their QR codes in
    Redis, scan them and wait until all are ready; returns key -> ms to QR."""
    sent_at = {}
    for k in keys:
        sent_at[k] = time.monotonic()
        cmds.publish("create_instance", {"key": k})
    qrs = wait_qrs(r, sent_at, timeout)
    for k in keys:
        control.scan(qrs[k][1], phones[k])
    for k in keys:
        events.wait("ready_instance", timeout, lambda e, k=k: e.get("key") == k)
    return {k: qrs[k][0] for k in keys}


def measure_sends(cmds: Commands, events: Events, clock: SentClock, keys: list[str], friend: str,
                  n: int, warmup: int) -> dict[str, list[float]]:
    to_record, to_event = [], []
    chat = f"{friend}@c.us"
    for i in range(warmup + n):
        key = keys[i % len(keys)]
        cid = f"bench-send-{i}"
        t0 = time.monotonic()
        cmds.publish("send_message", {"key": key, "chat_id": chat, "message": f"bench send {i}", "id": cid})
        t_event, event = events.wait("message_sent_instance", 30, lambda e: e.get("command_id") == cid)
        # message_id is "true_<chat>_<id>", the id being the one the page chose.
        t_rec = clock.at(event["message_id"].rsplit("_", 1)[1])
        if i < warmup:
            continue
        to_record.append((t_rec - t0) * 1000)
        to_event.append((t_event - t0) * 1000)
    return {"record": to_record, "event": to_event}


def measure_inbound(events: Events, control: Control, deliveries: DeliverClock, keys: list[str],
                    phones: dict[str, str], friend: str, n: int, warmup: int) -> dict[str, list[float]]:
    after_return, full, after_queue = [], [], []
    for i in range(warmup + n):
        key = keys[i % len(keys)]
        body = f"bench inbound {i}"
        t0 = time.monotonic()
        msg_id = control.deliver(phones[key], friend, body)
        t_ret = time.monotonic()
        t1, _ = events.wait("message_instance", 30,
                            lambda e: e.get("key") == key and (e.get("message") or {}).get("body") == body)
        if i < warmup:
            continue
        after_return.append((t1 - t_ret) * 1000)
        full.append((t1 - t0) * 1000)
        after_queue.append((t1 - deliveries.at[msg_id]) * 1000)
    return {"after_return": after_return, "full": full, "after_queue": after_queue}


def measure_idle(node: Node, seconds: float) -> dict:
    """The node process alone: ``cpu_times`` user + system exclude its
    children, so sessions and browsers do not count."""
    p = psutil.Process(node.proc.pid)
    c0 = p.cpu_times()
    t0 = time.monotonic()
    rss = [p.memory_info().rss]
    end = t0 + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(1.0, left))
        rss.append(p.memory_info().rss)
    wall = time.monotonic() - t0
    c1 = p.cpu_times()
    return {
        "wall": wall,
        "cpu": ((c1.user - c0.user) + (c1.system - c0.system)) / wall * 100,
        "rss_end": rss[-1] / MB,
        "rss_max": max(rss) / MB,
    }


def measure_scrapes(node: Node, metrics_url: str, seconds: float, keep_alive) -> dict:
    """The node's CPU (its own process: the loop and the serving threads)
    over windows without scrapes and with a scrape of ``/metrics`` every
    second, taking turns; and each scrape's time."""
    import urllib.request

    stop = threading.Event()
    took: list[float] = []

    def scrape() -> None:
        while not stop.wait(max(0.0, 1.0 - (took[-1] / 1000 if took else 0.0))):
            t0 = time.monotonic()
            with urllib.request.urlopen(metrics_url, timeout=10) as reply:
                reply.read()
            took.append((time.monotonic() - t0) * 1000)

    windows = {"none": [], "scraped": []}
    for kind in ("none", "scraped", "none", "scraped"):
        keep_alive()
        scraper = None
        if kind == "scraped":
            stop.clear()
            scraper = threading.Thread(target=scrape, daemon=True)
            scraper.start()
        windows[kind].append(measure_idle(node, seconds / 2))
        if scraper is not None:
            stop.set()
            scraper.join(15)
    cpu = {kind: sum(w["cpu"] * w["wall"] for w in ws) / sum(w["wall"] for w in ws) for kind, ws in windows.items()}
    return {"cpu_none": cpu["none"], "cpu_scraped": cpu["scraped"], "scrapes": took,
            "wall": sum(w["wall"] for ws in windows.values() for w in ws)}


def destroy_all(cmds: Commands, events: Events, keys: list[str], timeout: float = 60.0) -> None:
    stopped_before = {e.get("key") for e in events.find("state_instance", lambda e: e.get("state") == "stopped")}
    waiting = [k for k in keys if k not in stopped_before]
    for k in waiting:
        cmds.publish("destroy_instance", {"key": k})
    for k in waiting:
        try:
            events.wait("state_instance", timeout, lambda e, k=k: e.get("key") == k and e.get("state") == "stopped")
        except RuntimeError as e:
            progress(f"destroy {k}: {e}")


# ------------------------------------------------------------------ bursts
def _log_time(line: str) -> float | None:
    """The wall-clock time a session log line was written (its asctime)."""
    try:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return None


def _started_at(proc: psutil.Process) -> float:
    """When the process started, wall clock, to the kernel's tick: its
    start in ticks since boot (``/proc/PID/stat``) against the boot-time
    clock.  psutil's ``create_time`` adds the boot time, which Linux gives
    to the whole second only: the wait and boot phases were off by up to a
    second (a wait of -0.2 s for one create).  The tick is 10 ms and the
    start is counted down to it, so a create taken at once can still show a
    wait of a few milliseconds below zero."""
    with open(f"/proc/{proc.pid}/stat") as f:
        after_name = f.read().rpartition(")")[2].split()
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(after_name[19]) / os.sysconf("SC_CLK_TCK")
    return time.time() - age


def _phases(nodes: list[Node], keys: list[str], published: float, qr_wall: dict[str, float]) -> dict[str, list]:
    """Per key, seconds spent: waiting for its process (the queue, the node,
    a start slot), its process and browser coming up (to the page being
    opened; of which Python with its imports, and chromedriver with
    Chromium, as the session's log says), the page loading, the first QR code, and the QR code reaching
    Redis.  From the session processes' start times and their logs."""
    started: dict[str, float] = {}
    for node in nodes:
        try:
            children = psutil.Process(node.proc.pid).children()
        except psutil.Error:
            continue
        for child in children:
            try:
                argv = child.cmdline()
                if "--key" in argv:
                    started[argv[argv.index("--key") + 1]] = _started_at(child)
            except (psutil.Error, OSError):
                continue
    phases: dict[str, list] = {"wait": [], "process_and_browser": [], "of_which_python_and_imports": [],
                               "of_which_chromedriver_and_chromium": [], "page_load": [], "first_qr": [],
                               "to_redis": []}
    for key in keys:
        log_file = next((n.data_dir / "logs" / "sessions" / f"{key}.log" for n in nodes
                         if (n.data_dir / "logs" / "sessions" / f"{key}.log").exists()), None)
        if key not in started or log_file is None:
            continue
        opened = loaded = qr = None
        own: dict[str, float] = {}  # the session's own figures (sessionproc/__main__.py, browser.py)
        for line in log_file.read_text(errors="replace").splitlines():
            for phase, marker in (("of_which_python_and_imports", "process up in "),
                                  ("of_which_chromedriver_and_chromium", "browser up in ")):
                if opened is None and marker in line:
                    own[phase] = float(line.split(marker, 1)[1].split(" ", 1)[0])
            if opened is None and "sessionproc.session: opening " in line:
                opened = _log_time(line)
            elif loaded is None and "page loaded" in line:
                loaded = _log_time(line)
            elif qr is None and "event qr" in line:
                qr = _log_time(line)
        if None in (opened, loaded, qr):
            continue
        phases["wait"].append(started[key] - published)
        phases["process_and_browser"].append(opened - started[key])
        phases["page_load"].append(loaded - opened)
        phases["first_qr"].append(qr - loaded)
        phases["to_redis"].append(qr_wall[key] - qr)
        for phase, value in own.items():
            phases[phase].append(value)
    return phases


def _wait_consuming(cmds: Commands, nodes: list[Node], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while cmds.consumers("create_instance") < len(nodes):
        if not all(n.alive() for n in nodes) or time.monotonic() > deadline:
            raise RuntimeError("the burst nodes did not start consuming creates")
        time.sleep(0.05)


def idle_readings(folder: Path) -> Path:
    """A folder laid out as a cgroup v2 one: the machine's CPUs, none of
    them used; a terabyte of memory, a megabyte used."""
    folder.mkdir(parents=True, exist_ok=True)
    cpus = len(os.sched_getaffinity(0))
    for name, text in (("cpu.max", f"{cpus * 100000} 100000"), ("cpu.stat", "usage_usec 0"),
                       ("memory.max", str(10**12)), ("memory.current", str(10**6)),
                       ("memory.stat", "inactive_file 0")):
        (folder / name).write_text(text + "\n")
    return folder


def measure_burst(work: Path, wa_url: str, cmds: Commands, events: Events, r, n: int, node_count: int,
                  run: int, machine_readings: bool) -> dict:
    """``n`` creates published at once to ``node_count`` fresh nodes (default
    settings: boots paced from the cores and load); the slowest QR code in
    Redis, the restarts, and the phases."""
    settings = {} if machine_readings else {"load_cgroup_root": str(idle_readings(work / "idle-cgroup"))}
    nodes = [Node(work, wa_url, f"bench-burst{run}-{i}", **settings) for i in range(node_count)]
    keys = [f"burst{run}-{i}" for i in range(n)]
    try:
        _wait_consuming(cmds, nodes)
        load_before = os.getloadavg()[0]
        published = time.time()
        sent_at = {}
        for k in keys:
            sent_at[k] = time.monotonic()
            cmds.publish("create_instance", {"key": k})
        qrs = wait_qrs(r, sent_at, timeout=300)
        qr_wall = {k: published + (sent_at[k] - sent_at[keys[0]]) + ms / 1000 for k, (ms, _) in qrs.items()}
        restarts = events.find("state_instance", lambda e: e.get("key") in sent_at and e.get("state") == "restarting")
        for k in keys:  # each QR code is in Redis before its qr_instance goes out: wait for the events
            events.wait("qr_instance", 30, lambda e, k=k: e.get("key") == k)
        placed: dict[str, int] = {}
        for e in events.find("qr_instance", lambda e: e.get("key") in sent_at):
            placed[e["node"]] = placed.get(e["node"], 0) + 1
        result = {
            "max_ms": max(ms for ms, _ in qrs.values()),
            "median_ms": statistics.median(ms for ms, _ in qrs.values()),
            "crashes": sum(1 for e in restarts if e.get("reason") != "slow_boot"),
            "slow_boots": sum(1 for e in restarts if e.get("reason") == "slow_boot"),
            "phases": _phases(nodes, keys, published, qr_wall),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "placed": placed,
        }
        destroy_all(cmds, events, keys)
        return result
    finally:
        for node in nodes:
            node.terminate()


def add_bursts(table: Table, work: Path, wa_url: str, cmds: Commands, events: Events, r,
               machine_readings: bool = False) -> None:
    for run, (n, node_count, target) in enumerate(BURSTS):
        where = "one node" if node_count == 1 else f"{node_count} nodes"
        progress(f"burst: {n} create_instance at once on {where}")
        b = measure_burst(work, wa_url, cmds, events, r, n, node_count, run, machine_readings)
        label = f"burst {n} on {where}"
        table.add(f"{label}: slowest QR in Redis (load avg {b['load_before']:.1f} -> {b['load_after']:.1f})",
                  b["max_ms"], "ms", target, fmt="{:.0f}")
        table.add(f"{label}: median QR in Redis", b["median_ms"], "ms", fmt="{:.0f}")
        table.add(f"{label}: crashes (restarts not counting slow boots)", b["crashes"], "", 0, fmt="{:.0f}")
        table.add(f"{label}: slow boots started again", b["slow_boots"], "", fmt="{:.0f}")
        if node_count > 1:
            split = "/".join(str(v) for _, v in sorted(b["placed"].items()))
            table.add(f"{label}: sessions per node {split}, the most", max(b["placed"].values()), "",
                      n // node_count + 1, fmt="{:.0f}")
        for phase, values in b["phases"].items():
            if values:
                table.add(f"{label}: {phase.replace('_', ' ')}, median (max)", statistics.median(values) * 1000,
                          f"ms ({max(values) * 1000:.0f})", fmt="{:.0f}")


# ------------------------------------------------------------------ main
def measure_hop(work: Path, wa_url: str, cmds: Commands, events: Events, r, control: Control,
                clock: SentClock, n: int, warmup: int) -> dict[str, list[float]]:
    """Two nodes: ``hop-local`` on the router, ``hop-remote`` on the other
    node, sends alternating between them in the same run.  The router (the
    first node, capped at one session so the second create goes elsewhere)
    carries out the local ones itself and hands the others over: one hop."""
    first = Node(work, wa_url, "bench-hop-a", max_sessions=1)
    second = None
    try:
        deadline = time.monotonic() + 60
        while not all(cmds.consumers(q) for q in COMMAND_QUEUES):
            if not first.alive() or time.monotonic() > deadline:
                raise RuntimeError("the first node did not start consuming")
            time.sleep(0.05)
        phones = {"hop-local": "5511777000001", "hop-remote": "5511777000002"}
        create_and_link(cmds, events, r, control, ["hop-local"], phones, 60)
        second = Node(work, wa_url, "bench-hop-b")
        while cmds.consumers("create_instance") != 1 or "bench-hop-b" not in (r.hget("nodes:bench-hop-b", "node") or ""):
            if not second.alive() or time.monotonic() > deadline + 60:
                raise RuntimeError("the second node did not come up alone on create_instance")
            time.sleep(0.05)
        create_and_link(cmds, events, r, control, ["hop-remote"], phones, 60)
        if r.get("instances:hop-remote:owner").rsplit(":", 1)[0] != "bench-hop-b":
            raise RuntimeError("hop-remote did not land on the second node")
        out: dict[str, list[float]] = {"hop-local": [], "hop-remote": []}
        for i in range(2 * (warmup + n)):
            key = "hop-local" if i % 2 == 0 else "hop-remote"
            cid = f"bench-hop-{i}"
            t0 = time.monotonic()
            cmds.publish("send_message", {"key": key, "chat_id": "5511888000009@c.us", "message": f"hop {i}",
                                          "id": cid})
            _, event = events.wait("message_sent_instance", 30, lambda e: e.get("command_id") == cid)
            t_rec = clock.at(event["message_id"].rsplit("_", 1)[1])
            if i >= 2 * warmup:
                out[key].append((t_rec - t0) * 1000)
        destroy_all(cmds, events, ["hop-local", "hop-remote"])
        return out
    finally:
        for node in (second, first):
            if node is not None:
                node.terminate()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark a node (python -m wwnode.tools.cli run) against the stand-in, RabbitMQ (vhost "
                    f"{VHOST} by default) and Redis (db {REDIS_DB}); prints a table of figures beside their targets.")
    ap.add_argument("--messages", type=int, default=200,
                    help=f"sends and inbound messages measured, spread over {BATCH} sessions (default %(default)s)")
    ap.add_argument("--idle-seconds", type=float, default=30.0, help="idle window in seconds (default %(default)s)")
    ap.add_argument("--sessions-idle", type=int, default=20,
                    help="authenticated sessions during the idle window (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=5,
                    help="sends and inbound messages done before measuring, not counted (default %(default)s)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds the node is left alone before the idle window (default %(default)s)")
    ap.add_argument("--hop-messages", type=int, default=100,
                    help="sends to each of two nodes' keys for the extra-hop figure; 0 skips it (default %(default)s)")
    ap.add_argument("--bursts", choices=("yes", "no", "only"), default="yes",
                    help="the burst figures (1, 10, 30 creates at once on one node, 10 on two): also, not, or "
                         "alone (default %(default)s)")
    ap.add_argument("--machine-readings", action="store_true",
                    help="burst nodes read the machine's own load (by default idle figures: see above)")
    ap.add_argument("--vhost", default=VHOST, help="RabbitMQ virtual host (default %(default)s)")
    ap.add_argument("--redis-db", type=int, default=REDIS_DB, help="Redis database, emptied (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (node data, node output)")
    args = ap.parse_args(argv)
    use_services(args.vhost, args.redis_db)
    if args.messages < 1 or args.sessions_idle < 1 or args.idle_seconds <= 0 or args.warmup < 0 or args.settle < 0:
        ap.error("--messages and --sessions-idle must be at least 1, --idle-seconds positive, "
                 "--warmup and --settle not negative")

    work = Path(tempfile.mkdtemp(prefix="bench-node-")).resolve()
    progress(f"preparing vhost {VHOST} and Redis db {REDIS_DB}")
    ensure_vhost()
    cmds = Commands()
    cmds.ch.queue_declare("create_instance", durable=True)
    # Before emptying anything: another run may be using these.
    if cmds.consumers("create_instance"):
        cmds.close()
        print(f"another node consumes create_instance on vhost {VHOST}; stop it first (or give --vhost and "
              "--redis-db of your own)", file=sys.stderr)
        return 1
    r = redislib.Redis.from_url(REDIS_URL, decode_responses=True)
    r.flushdb()
    cmds.purge(COMMAND_QUEUES + LEGACY_QUEUES)
    events = Events()
    events.start_and_wait()

    wa = FakeWA(settings=Settings()).start()
    control = Control(wa.url)
    sent_clock = SentClock(wa.world)
    deliver_clock = DeliverClock(wa.world)
    node: Node | None = None
    created: list[str] = []
    total = max(args.sessions_idle, 1 + BATCH)
    keys = [f"bench-{i}" for i in range(total)]
    phones = {k: f"55119{i:08d}" for i, k in enumerate(keys)}
    friend = "5511888000001"

    def body(table: Table) -> None:
        nonlocal node, created
        if args.bursts == "only":
            add_bursts(table, work, wa.url, cmds, events, r, args.machine_readings)
            return
        node = Node(work, wa.url)
        deadline = time.monotonic() + 60
        while not all(cmds.consumers(q) for q in COMMAND_QUEUES):
            if not node.alive() or time.monotonic() > deadline:
                raise RuntimeError("the node did not start consuming its command queues")
            time.sleep(0.05)

        progress("one create_instance -> QR in Redis")
        created.append(keys[0])
        single = create_and_link(cmds, events, r, control, keys[:1], phones, 60)[keys[0]]

        batch_keys = keys[1:1 + BATCH]
        progress(f"{BATCH} create_instance at once -> QR in Redis")
        created += batch_keys
        batch = create_and_link(cmds, events, r, control, batch_keys, phones, 120)

        progress(f"send_message: {args.messages}, one at a time over {BATCH} sessions")
        sends = measure_sends(cmds, events, sent_clock, batch_keys, friend, args.messages, args.warmup)
        progress(f"inbound: {args.messages}, one at a time over {BATCH} sessions")
        inbound = measure_inbound(events, control, deliver_clock, batch_keys, phones, friend, args.messages,
                                  args.warmup)

        if args.sessions_idle > len(created):
            more = keys[len(created):args.sessions_idle]
            progress(f"creating {len(more)} more sessions for {args.sessions_idle} idle ones")
            created += more
            create_and_link(cmds, events, r, control, more, phones, 180)
        elif args.sessions_idle < len(created):
            extra = created[args.sessions_idle:]
            progress(f"destroying {len(extra)} sessions to leave {args.sessions_idle} idle ones")
            destroy_all(cmds, events, extra)
        idle_sessions = node.session_count()
        progress(f"idle: {idle_sessions} sessions; settling {args.settle:g} s, then a {args.idle_seconds:g} s window")
        time.sleep(args.settle)
        idle = measure_idle(node, args.idle_seconds)
        addr = r.hget(f"nodes:{NODE_ID}", "metrics_addr")
        progress(f"node CPU with a /metrics scrape every second against none, {args.idle_seconds:g} s each")
        cmds.keep_alive()
        scraping = measure_scrapes(node, f"http://{addr}/metrics", args.idle_seconds, cmds.keep_alive) if addr else None
        cmds.keep_alive()

        table.add("create_instance -> QR in Redis, 1 session", single, "ms", fmt="{:.0f}")
        table.add(f"{BATCH} creates at once -> QR in Redis, min", min(batch.values()), "ms", fmt="{:.0f}")
        table.add(f"{BATCH} creates at once -> QR in Redis, median", statistics.median(batch.values()), "ms",
                  fmt="{:.0f}")
        table.add(f"{BATCH} creates at once -> QR in Redis, max", max(batch.values()), "ms", TARGET_BATCH_QR,
                  fmt="{:.0f}")
        n = len(sends["record"])
        running = 1 + BATCH
        table.add(f"send_message -> stand-in recorded, p50 (n={n}, {BATCH} of {running} sessions)",
                  percentile(sends["record"], 50), "ms", TARGET_SEND_P50)
        table.add("send_message -> stand-in recorded, p99", percentile(sends["record"], 99), "ms", TARGET_SEND_P99)
        table.add("send_message -> message_sent_instance consumed, p50", percentile(sends["event"], 50), "ms")
        table.add("send_message -> message_sent_instance consumed, p99", percentile(sends["event"], 99), "ms")
        n = len(inbound["full"])
        table.add(f"inbound, deliver call returned -> message_instance, p50 (n={n})",
                  percentile(inbound["after_return"], 50), "ms", TARGET_INBOUND_P50)
        table.add("inbound, deliver call returned -> message_instance, p99",
                  percentile(inbound["after_return"], 99), "ms", TARGET_INBOUND_P99)
        table.add("inbound, before deliver call -> message_instance, p50", percentile(inbound["full"], 50), "ms",
                  TARGET_INBOUND_P50)
        table.add("inbound, before deliver call -> message_instance, p99", percentile(inbound["full"], 99), "ms",
                  TARGET_INBOUND_P99)
        table.add("inbound, stand-in queued it -> message_instance, p50", percentile(inbound["after_queue"], 50), "ms")
        table.add("inbound, stand-in queued it -> message_instance, p99", percentile(inbound["after_queue"], 99), "ms")
        table.add(f"node CPU, {idle_sessions} idle sessions, {idle['wall']:.0f} s window", idle["cpu"],
                  "% of a core", TARGET_CPU, fmt="{:.3f}")
        table.add(f"node RSS, {idle_sessions} idle sessions, max over the window", idle["rss_max"], "MB",
                  TARGET_RSS, fmt="{:.1f}")
        table.add("node RSS at the end of the window", idle["rss_end"], "MB", fmt="{:.1f}")
        if scraping is not None:
            table.add(f"node CPU, {idle_sessions} idle sessions, no scrape (windows taking turns)",
                      scraping["cpu_none"], "% of a core", fmt="{:.3f}")
            table.add(f"node CPU, {idle_sessions} idle sessions, /metrics scraped every second",
                      scraping["cpu_scraped"], "% of a core", fmt="{:.3f}")
            table.add("node CPU, scraped minus none", scraping["cpu_scraped"] - scraping["cpu_none"],
                      "% of a core", fmt="{:.3f}")
            n = len(scraping["scrapes"])
            table.add(f"/metrics scrape time, p50 (n={n})", percentile(scraping["scrapes"], 50), "ms")
            table.add("/metrics scrape time, p99", percentile(scraping["scrapes"], 99), "ms")

        if args.hop_messages > 0:
            progress("stopping the node; two nodes for the routing hop")
            destroy_all(cmds, events, created)
            created = []
            node.terminate()
            progress(f"send latency, local key vs a key on the other node, {args.hop_messages} each")
            hop = measure_hop(work, wa.url, cmds, events, r, control, sent_clock, args.hop_messages, args.warmup)
            local50, remote50 = percentile(hop["hop-local"], 50), percentile(hop["hop-remote"], 50)
            table.add("send to a key on the router's node -> recorded, p50", local50, "ms")
            table.add("send to a key on the router's node -> recorded, p99", percentile(hop["hop-local"], 99), "ms")
            table.add("send to a key on another node -> recorded, p50", remote50, "ms")
            table.add("send to a key on another node -> recorded, p99", percentile(hop["hop-remote"], 99), "ms")
            table.add("extra hop, p50 difference", remote50 - local50, "ms", TARGET_HOP)
        if args.bursts == "yes":
            if node.alive():
                destroy_all(cmds, events, created)
                created = []
                node.terminate()
            add_bursts(table, work, wa.url, cmds, events, r, args.machine_readings)

    def explain() -> None:
        if node is not None:
            print("--- end of the node's output ---", file=sys.stderr)
            print(node.tail(), file=sys.stderr)

    def cleanup() -> None:
        if node is not None:
            if node.alive() and created:
                progress(f"destroying {len(created)} sessions")
                destroy_all(cmds, events, created)
            progress("stopping the node (SIGTERM)")
            node.terminate()
        wait_none_under(work)
        events.stop()
        try:
            cmds.purge(COMMAND_QUEUES + LEGACY_QUEUES)
        except (pika.exceptions.AMQPError, OSError) as e:
            progress(f"could not empty the queues at the end: {e}")
        cmds.close()
        r.flushdb()
        r.close()
        wa.stop()
        if args.keep:
            progress(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    return run_bench("node benchmark", body, cleanup, explain)


if __name__ == "__main__":
    run_main(main)

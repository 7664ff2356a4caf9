"""Helpers shared by the tests: waiting on conditions, a session process
driven over its pipes, process-tree checks, nodes and a client of theirs,
the fake session process's controls, fault injectors, and fakes of the
node's edges (broker, Redis, session processes) for its unit tests."""

from __future__ import annotations

import collections
import dataclasses
import errno
import itertools
import os
import queue
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import quote

import orjson
import pika
import pika.exceptions
import psutil
import redis as redislib

TESTS_DIR = Path(__file__).resolve().parent

# Overridable, so two checkouts can run their suites on one machine at once
# without purging each other's queues; and each parallel worker of a run
# (pytest-xdist's gw0, gw1, ...) has a virtual host and a Redis database of
# its own below those: gw0 the given ones with "-gw0", gw1 the database
# below, and so on.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_VHOST = os.environ.get("WWNODE_TEST_VHOST", "wwnode-test") + (f"-{_WORKER}" if _WORKER else "")
TEST_REDIS_DB = int(os.environ.get("WWNODE_TEST_REDIS_DB", "15")) - (int(_WORKER.removeprefix("gw")) if _WORKER else 0)
assert TEST_REDIS_DB >= 0, "more parallel workers than Redis databases below WWNODE_TEST_REDIS_DB"
RABBITMQCTL = shutil.which("rabbitmqctl", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))


def rabbitmqctl(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    assert RABBITMQCTL, "rabbitmqctl is not installed"
    return subprocess.run([RABBITMQCTL, *args], capture_output=True, timeout=timeout, check=check)


def with_tests_dir(pythonpath: str | None) -> str:
    """A PYTHONPATH that also finds this folder's modules (fakesession)."""
    return os.pathsep.join(p for p in (pythonpath, str(TESTS_DIR)) if p)


from wwnode.admission import Reading
from wwnode.amqp.topology import Delivery
from wwnode.commands import Command
from wwnode.config import Config
from wwnode.ownership import Leases
from wwnode.paths import Paths
from wwnode.procs import command_line
from wwnode.storage import Storage
from wwnode.redis_side.store import Unavailable
from wwnode.wiring import assemble

_phones = itertools.count(int(time.time()) % 10_000_000 * 100)


def new_phone() -> str:
    """A phone number no other test in this run uses."""
    return f"55{next(_phones):011d}"


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# The ports handed to servers a test starts itself (a RabbitMQ, a Redis, a
# proxy): found free, closed, and listened on a moment later by the server.
# The kernel's own pick (bind to port 0) comes from its ephemeral range,
# where in that moment any outgoing connection of a parallel test may take
# it: a run's own RabbitMQ once failed to listen 190 times in a row on a
# management port a connection held.  So they come from below that range,
# each parallel worker from a block of its own, from a place in it that
# differs from run to run, and are checked free before they are handed out.
_PORTS_FROM = 10000
_PORT_BLOCKS = 8
_port_block = (_ephemeral_floor() - _PORTS_FROM) // _PORT_BLOCKS
_port_base = _PORTS_FROM + _port_block * (int(_WORKER.removeprefix("gw") or 0) % _PORT_BLOCKS if _WORKER else 0)
_next_port = itertools.count(os.getpid() % _port_block)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on or holds, outside the kernel's range of
    ports for outgoing connections (see above)."""
    ports: list[int] = []
    for _ in range(_port_block):
        port = _port_base + next(_next_port) % _port_block
        if port not in ports and _bindable(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise AssertionError(f"no {count} free ports among {_port_base}..{_port_base + _port_block - 1}")


def free_port() -> int:
    return free_ports(1)[0]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Return condition()'s first truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def chrome_processes_under(folder: Path) -> list[psutil.Process]:
    """Chromium processes whose profile is this folder or inside it (a
    session's profile, or a node's whole data folder)."""
    folder = str(Path(folder).resolve())
    marker = "--user-data-dir="
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        for arg in proc.info["cmdline"] or []:
            if arg.startswith(marker):
                profile = arg[len(marker):]
                if profile == folder or profile.startswith(folder + os.sep):
                    found.append(proc)
                    break
    return found


def processes_using(folder: Path) -> list[psutil.Process]:
    """Processes with an argument inside this folder (a node's sessions and
    their browsers, real or fake), this one excepted."""
    marker = str(Path(folder).resolve()) + os.sep
    found = []
    for proc in psutil.process_iter(["cmdline", "pid"]):
        if proc.info["pid"] != os.getpid() and any(marker in arg for arg in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


RUN_MARK = "WWNODE_TEST_RUN"

# What a run must not leave behind: session processes (real or fake),
# chromedriver and Chromium (their names as the kernel gives them, 15
# characters at most).
_SESSION_MODULES = ("sessionproc", "fakesession")
_BROWSER_NAMES = ("chromedriver", "chromium", "chrome", "headless_shell")


def _is_left_of_run(proc: psutil.Process, mark: str) -> bool:
    name = proc.info.get("name") or ""
    cmdline = proc.info.get("cmdline") or []
    kind = (name.startswith(_BROWSER_NAMES)
            or any(cmdline[i] == "-m" and cmdline[i + 1] in _SESSION_MODULES for i in range(len(cmdline) - 1)))
    if not kind or proc.info.get("status") == psutil.STATUS_ZOMBIE:
        return False
    try:
        return proc.environ().get(RUN_MARK) == mark
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def leftover_processes(mark: str, wait: float = 0.0) -> list[psutil.Process]:
    """Session processes and browsers started by the run marked ``mark``
    (in their environment) that still run, given ``wait`` seconds to end."""
    deadline = time.monotonic() + wait
    while True:
        left = [p for p in psutil.process_iter(["name", "cmdline", "status"]) if _is_left_of_run(p, mark)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)  # polling the process table: nothing to wait on


def pid_gone(pid: int) -> bool:
    """The process ended (or is a zombie), even if it ends between two
    looks at it: ``pid_exists`` then ``status`` is a race."""
    try:
        return all_gone([psutil.Process(pid)])
    except psutil.NoSuchProcess:
        return True


def all_gone(procs: list[psutil.Process]) -> bool:
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


class SessionProcess:
    """A session process as its parent sees it: lines in, lines out.  The
    real ``sessionproc`` by default, or another module that speaks its
    protocol (``fakesession``, found on this folder).  Each event's read
    time is kept, for the benchmarks."""

    def __init__(self, key: str, profile: Path, url: str, log_file: Path, *extra: str,
                 module: str = "sessionproc", env: dict | None = None):
        self.key = key
        self.profile = profile
        self.log_file = log_file
        self.t_launch = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--key", key, "--profile", str(profile),
             "--url", url, "--log-file", str(log_file), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": with_tests_dir(os.environ.get("PYTHONPATH")), **(env or {})},
        )
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.last_at = 0.0  # when the event expect() returned last was read
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put((time.monotonic(), orjson.loads(line)))
        self.events.put((time.monotonic(), None))

    def send(self, obj: dict | bytes) -> None:
        data = obj if isinstance(obj, bytes) else orjson.dumps(obj) + b"\n"
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def expect(self, name: str | tuple[str, ...], timeout: float = 20.0, match=None, **fields) -> dict:
        """The next event called ``name`` (or any of several names) with
        these field values, and for which ``match(event)`` holds; events
        before it are kept in ``seen``."""
        names = name if isinstance(name, tuple) else (name,)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                last = orjson.dumps(self.seen[-1]).decode()[:2000] if self.seen else "nothing"
                # What went wrong on the way, in full: the names alone do not say.
                wrong = [e for e in self.seen if any(w in str(e.get("event", "")) for w in ("error", "fail"))]
                raise AssertionError(f"no {name} event {fields or ''} within {timeout} s; seen {self.names()}, "
                                     f"the last: {last}; the errors: {orjson.dumps(wrong[:10]).decode()[:4000]}")
            try:
                t, event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                self.events.put((t, None))
                raise AssertionError(f"process ended (code {self.proc.wait()}) before {name}; seen {self.seen}")
            self.seen.append(event)
            if (event.get("event") in names and all(event.get(k) == v for k, v in fields.items())
                    and (match is None or match(event))):
                self.last_at = t
                return event

    def names(self) -> list[str]:
        return [e.get("event") for e in self.seen]

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "stop"})
            except BrokenPipeError:
                pass
        return self.wait()

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait()


# ------------------------------------------------------------------ nodes

RABBIT_HOST = "127.0.0.1:5672"


class Client:
    """A client of the service as the old service's clients are: it
    publishes to the command queues and reads events; it also binds a queue
    of its own to every event for the tests to wait on."""

    def __init__(self, url: str):
        self.url = url
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.ch.exchange_declare("wa.events", exchange_type="topic", durable=True)
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.queue, "wa.events", "#")
        self.events: list[dict] = []
        self._taken: set[int] = set()
        self.ch.basic_consume(self.queue, self._on_event, auto_ack=True)

    def _on_event(self, ch, method, props, body):
        self.events.append(orjson.loads(body))

    def publish(self, queue: str, body) -> None:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        self.ch.basic_publish("", queue, data)

    def pump(self, seconds: float = 0.0) -> None:
        self.conn.process_data_events(time_limit=seconds)

    def expect(self, name: str, timeout: float = 30.0, **fields) -> dict:
        """The first event called ``name`` with these fields that no earlier
        expect() returned, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if i in self._taken:
                    continue
                if e.get("event") == name and all(e.get(k) == v for k, v in fields.items()):
                    self._taken.add(i)
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                got = [(e.get("event"), e.get("key"), e.get("state") or e.get("reason")) for e in self.events[-15:]]
                raise AssertionError(f"no {name} {fields} within {timeout} s; last events: {got}")
            self.pump(min(left, 0.1))

    def find(self, name: str, **fields) -> list[dict]:
        self.pump()
        return [e for e in self.events if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())]

    def legacy(self, queue: str) -> list[dict]:
        """Drain one of the old service's event queues."""
        out = []
        while True:
            method, props, body = self.ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(orjson.loads(body))

    def depth(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) of a queue; (0, 0) while no node has
        declared it yet."""
        ch = self.conn.channel()  # a missing queue closes the channel it is asked on
        try:
            ok = ch.queue_declare(queue, passive=True).method
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != 404:
                raise
            return 0, 0
        ch.close()
        return ok.message_count, ok.consumer_count

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


def purge_queues(conn: pika.BlockingConnection, queues) -> None:
    """Empty these queues; one that does not exist is skipped."""
    for queue_name in queues:
        ch = conn.channel()  # a missing queue closes its channel
        try:
            ch.queue_purge(queue_name)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != 404:
                raise
        finally:
            if ch.is_open:
                ch.close()


class NodeProcess:
    """``wwnode run`` in a process of its own, with settings for tests.  Its
    sessions are ``session_module`` processes (``fakesession``, found on
    this folder, or the real ``sessionproc``)."""

    FAST = {
        "PING_INTERVAL": "2", "PING_TIMEOUT": "2", "LOAD_INTERVAL": "0.5", "RESTORE_STAGGER": "0.3",
        "BACKOFF_INITIAL": "0.2", "STOP_TIMEOUT": "10", "HEARTBEAT_INTERVAL": "1", "LEASE_TTL": "6",
        "AMQP_HEARTBEAT": "5", "LOG_LEVEL": "INFO",
        "METRICS_ADDR": "",  # many nodes at once on one machine: a test that wants it asks (port 0)
    }

    def __init__(self, node_id: str, data_dir: Path, env: dict, argv: list[str] | None = None,
                 session_module: str = "sessionproc"):
        self.node_id = node_id
        self.data_dir = data_dir
        self.session_module = session_module
        path = with_tests_dir(env.pop("PYTHONPATH", None) or os.environ.get("PYTHONPATH"))
        self.env = {**os.environ, **self.FAST, "NODE_ID": node_id, "DATA_DIR": str(data_dir),
                    "SESSION_MODULE": session_module, "PYTHONPATH": path, **env}
        self.argv = argv or [sys.executable, "-m", "wwnode.tools.cli", "run"]
        self.out_path = data_dir.parent / f"{node_id}.out"
        self.proc = None
        self.start()

    def start(self) -> None:
        out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 60) -> int:
        if self.alive():
            self.proc.terminate()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def session_pids(self) -> list[int]:
        """The node's session processes (not yet reaped)."""
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        found = []
        for p in children:
            try:
                cmdline = command_line(p.cmdline())  # the fork server names the module too (--module M)
                if self.session_module in cmdline and "sessionproc.forkserver" not in cmdline \
                        and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p.pid)
            except psutil.NoSuchProcess:
                continue
        return found

    def profile(self, key: str) -> Path:
        return (self.data_dir / "sessions" / key / "profile").resolve()

    def log_text(self) -> str:
        """The node's log (``logs/node.log``)."""
        path = self.data_dir / "logs" / "node.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def output(self) -> str:
        """What the process wrote to stdout and stderr: the log again, plus
        anything said before logging was set up (a bad setting, a crash)."""
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""


def idle_cgroup(folder: Path) -> Path:
    """A folder laid out as a cgroup v2 one whose readings say idle (eight
    CPUs, so eight boots at once; no use; a terabyte of memory, a megabyte
    used).  A node given it as
    ``LOAD_CGROUP_ROOT`` takes creates however busy the machine is; tests
    of admission on real readings do not use it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("cpu.max", "800000 100000"), ("cpu.stat", "usage_usec 0"), ("memory.max", str(10**12)),
                       ("memory.current", str(10**6)), ("memory.stat", "inactive_file 0")):
        (folder / name).write_text(text + "\n")
    return folder


def create_ready(rabbit: Client, phones, key: str, phone: str) -> dict:
    """Create a session and scan its QR code with ``phone``; its
    ``ready_instance`` event.  ``phones`` is the stand-in's ``Control`` or
    the fake sessions' ``FakeSessions``: both scan a QR code."""
    rabbit.publish("create_instance", {"key": key})
    qr = rabbit.expect("qr_instance", key=key)
    phones.scan(qr["qr"], phone)
    return rabbit.expect("ready_instance", key=key)


def heartbeats(r: redislib.Redis) -> dict[str, dict]:
    """Every node's heartbeat hash (``nodes:{node}``), by node."""
    return {name.split(":", 1)[1]: r.hgetall(name) for name in r.scan_iter(match="nodes:*")}


def takes_creates(r: redislib.Redis, node_id: str) -> bool:
    """Whether the node's heartbeat says it takes new sessions: what a
    drain asks of the other nodes (its create consumer can come first)."""
    return r.hget(f"nodes:{node_id}", "accepting") == "1"


def counter(r: redislib.Redis, node_id: str, name: str) -> int:
    """A counter from the node's heartbeat hash; 0 before the first."""
    return int(r.hget(f"nodes:{node_id}", name) or 0)


def owner(r: redislib.Redis, key: str) -> str | None:
    """The node that holds the key's lease, from its owner token."""
    token = r.get(f"instances:{key}:owner")
    return token.rsplit(":", 1)[0] if token else None


# ------------------------------------------------------ the fake session

class FakeSessions:
    """The controls of ``fakesession`` processes (see its docstring), with
    the names of the stand-in's ``Control`` where they mean the same:
    ``scan``, ``deliver``, ``sent_by``, ``logout``, ``conflict``,
    ``freeze``, ``sends``."""

    def __init__(self, folder: Path):
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self._keys: dict[str, str] = {}  # phone -> key it scanned
        self._ids = itertools.count(1)

    def script(self, key: str, **script) -> None:
        """How ``key``'s next starts go (see fakesession)."""
        if "me" in script:
            self._keys[script["me"]] = key
        tmp = self.dir / f"{key}.json.tmp"
        tmp.write_bytes(orjson.dumps(script))
        tmp.rename(self.dir / f"{key}.json")

    def act(self, key: str, action: dict, timeout: float = 10.0) -> None:
        """Hand the running session of ``key`` an action, waiting for one
        to run if need be."""
        line = orjson.dumps(action) + b"\n"
        assert len(line) <= select.PIPE_BUF, "an action must fit one atomic pipe write"
        fd = wait_for(lambda: self._open_fifo(key), timeout=timeout, what=f"a fake session of {key} to run")
        try:
            os.set_blocking(fd, True)  # a full FIFO: wait for the session to read
            os.write(fd, line)
        finally:
            os.close(fd)

    def _open_fifo(self, key: str) -> int | None:
        path = self.dir / f"{key}.fifo"
        if not path.exists() or not stat.S_ISFIFO(path.stat().st_mode):
            return None
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no session reads it now
                return None
            raise

    @staticmethod
    def key_of(qr: str) -> str:
        return qr.split(",")[1]

    def scan(self, qr: str, phone: str) -> None:
        key = self.key_of(qr)
        self._keys[phone] = key
        self.act(key, {"do": "scan", "me": phone})

    def deliver(self, phone: str, sender: str, body: str, media: dict | None = None) -> str:
        """``media``: ``{"size", "mimetype", "filename"}``, a document the
        message carries (see fakesession)."""
        msg_id = f"IN{next(self._ids)}{time.time_ns()}"
        action = {"do": "deliver", "from": sender, "body": body, "id": msg_id}
        if media is not None:
            action["media"] = media
        self.act(self._keys[phone], action)
        return msg_id

    def logout(self, phone: str) -> None:
        self.act(self._keys[phone], {"do": "logout"})

    def conflict(self, phone: str) -> None:
        self.act(self._keys[phone], {"do": "conflict"})

    def freeze(self, phone: str) -> None:
        self.act(self._keys[phone], {"do": "freeze"})

    def noise(self, key: str, line: str, repeat: int = 1) -> None:
        """The session of ``key`` writes ``line`` ``repeat`` times to its
        stderr (its log), as Chrome does."""
        self.act(key, {"do": "noise", "line": line, "repeat": repeat})

    def sends(self, phone: str, mode: str, delay: float = 0.0) -> None:
        self.act(self._keys[phone], {"do": "sends", "mode": mode, "delay_ms": int(delay * 1000)})

    def records(self, key: str) -> list[dict]:
        path = self.dir / f"{key}.record"
        return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []

    def starts(self, key: str) -> int:
        """How many times a session process of ``key`` started."""
        return sum(1 for r in self.records(key) if "start" in r)

    def sent_by(self, phone: str) -> list[dict]:
        """Messages the sessions linked to ``phone`` sent, in order."""
        me = f"{phone}@c.us"
        out = []
        for path in sorted(self.dir.glob("*.record")):
            out += [r["sent"] for r in self.records(path.stem) if "sent" in r and r["sent"]["me"] == me]
        return out


# ---------------------------------------------------------------- faults

class SmallDisk:
    """A tmpfs of ``size`` mounted on ``folder`` (root only): a disk the
    test fills (``fill``: a file that takes every free page) and frees."""

    def __init__(self, folder: Path, size: str):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)], check=True)
        self.filler = folder / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.folder)], check=True)


def heartbeat_field(r: redislib.Redis, node_id: str, name: str) -> str | None:
    return r.hget(f"nodes:{node_id}", name)


def wwnode_status(redis_url: str) -> str:
    """What ``wwnode status`` prints, run as an operator runs it."""
    env = {**os.environ, "REDIS_URL": redis_url}
    done = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "status"], env=env, capture_output=True, text=True,
                          timeout=30, cwd=TESTS_DIR)
    assert done.returncode == 0, done.stderr
    return done.stdout


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 the test controls: ``cut()`` drops every
    connection and refuses new ones, ``freeze()`` keeps connections open
    but forwards nothing (a link gone silent), ``restore()`` undoes both."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.state = "open"
        self.conns: list = []
        self._lock = threading.Lock()
        self._frozen = threading.Event()
        self._frozen.set()  # set = forwarding
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.state == "cut":
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # an idle link stays up: only cut() or the peers end it
            with self._lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst) -> None:
        try:
            while True:
                data = src.recv(65536)
                self._frozen.wait()  # a frozen link forwards nothing, not even a close
                if not data or self.state == "cut":
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    # shutdown, not only close: the other pipe thread is
                    # still in recv() on these sockets, and a close alone
                    # sends nothing while it is.
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        self.state = "cut"
        self._frozen.set()
        with self._lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def freeze(self) -> None:
        self.state = "frozen"
        self._frozen.clear()

    def restore(self) -> None:
        self.state = "open"
        self._frozen.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def amqp_url_via(proxy: TcpProxy, vhost: str) -> str:
    """The local RabbitMQ's URL, through ``proxy``."""
    return f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}"


class RedisServer:
    """A redis-server of the test's own, to restart at will."""

    def __init__(self, tmp: Path, password: str | None = None):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.dir = tmp
        self.password = password
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind",
                "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redislib.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), what="redis-server to start")
        client.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class S3Server:
    """moto's S3-compatible server on a free port of its own (a process),
    with test credentials; each test takes a bucket of its own."""

    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._buckets = itertools.count(1)
        wait_for(self._answers, timeout=30, interval=0.1, what="the S3 server to start")

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def env(self) -> dict[str, str]:
        return {"BLOB_STORE_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def new_bucket(self) -> str:
        import boto3
        name = f"wwnode-{os.getpid()}-{next(self._buckets)}"
        env = self.env()
        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                     region_name=env["AWS_DEFAULT_REGION"]).create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _pings(client) -> bool:
    try:
        return client.ping()
    except redislib.RedisError:
        return False


# ============================================ fakes for the node's unit tests
class FakeChild:
    """A session process as the node's rules see it: what it was told, and
    what the test makes it say (``say``) or how it ends (``exit``)."""

    _pids = itertools.count(10_000)

    def __init__(self, args):
        self.args = args
        self.pid = next(self._pids)
        self.sent: list[dict] = []
        self.killed = False
        self.eof = True  # no pipe to poll: the test hands its events over (say)
        self.wants_write = False
        self.warm = False  # as a cold start (the fork server is the real Spawner's)
        self.bad_output: str | None = None
        self.exit_code: int | None = None
        self._said: list[dict] = []
        self.heard: collections.Counter = collections.Counter()  # as ``Child.heard``: events read, by name

    def send(self, command: dict) -> None:
        self.sent.append(command)

    def commands(self, name: str) -> list[dict]:
        return [c for c in self.sent if c["cmd"] == name]

    def say(self, *events: dict) -> None:
        self._said.extend(events)

    def break_protocol(self, why: str = "not JSON") -> None:
        self.bad_output = why

    def exit(self, code: int) -> None:
        self.exit_code = code

    def read_events(self) -> list[dict]:
        said, self._said = self._said, []
        self.heard.update(e["event"] for e in said)
        return said

    def poll(self) -> int | None:
        return self.exit_code

    def kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        pass


class FakeSpawner:
    def __init__(self):
        self.children: list[FakeChild] = []
        self.broken = False  # spawning fails (no fork, no memory)

    def spawn(self, args) -> FakeChild:
        if self.broken:
            raise OSError("cannot fork")
        child = FakeChild(args)
        self.children.append(child)
        return child

    def keys(self) -> list[str]:
        return [c.args.key for c in self.children]

    # A chore and background work of the node, as the real one (its fork server).
    def tick(self, now: float) -> None:
        pass

    def waits_for_server(self) -> bool:
        return False

    def busy(self) -> bool:
        return False

    def close(self) -> None:
        pass


class FakeBroker:
    """The broker as the node sees it, publisher and consumer at once.  A
    publish is confirmed only when the test says so (``confirm_all``), as a
    real confirm arrives later: an ack sent before its confirm shows."""

    def __init__(self):
        self.published: list = []
        self.outbox: list = []  # published, not confirmed yet
        self.acked: list[int] = []
        self.requeued: list[int] = []
        self.copies: dict[int, int] = {}  # tag -> bytes of its parsed copy, as told (hold_copy)
        self.no_queue: set[str] = set()  # routing keys that have no queue (unroutable)
        self.is_router = False
        self.accepting_creates = True
        self.create_priority = 0
        self.create_prefetch = 1
        self.generation = 1  # of the consumer's connection (deliveries carry it)
        self.losses = self.cancels = self.blocks = 0  # the heartbeat's link counters

    # the connection, as the loop drives it: always up, nothing to read
    up = True
    connecting = False

    def connect(self, now: float) -> bool:
        return True

    def pump(self, now: float) -> None:
        pass

    def drain(self) -> None:
        pass

    def pace(self, seconds: float | None) -> None:
        pass

    def pending(self) -> bool:
        return False

    def behind(self) -> bool:
        return False

    def socket(self):
        return None

    def close(self) -> None:
        self.closed = True

    def publish(self, item) -> None:
        self.published.append(item)
        self.outbox.append(item)

    def confirm_all(self) -> None:
        items, self.outbox = self.outbox, []
        for item in items:
            if item.routing_key in self.no_queue and item.on_unroutable is not None:
                item.on_unroutable()
            elif item.on_confirmed is not None:
                item.on_confirmed()

    def ack(self, d: Delivery) -> None:
        self.acked.append(d.tag)

    def requeue(self, d: Delivery) -> None:
        self.requeued.append(d.tag)

    def hold_copy(self, d: Delivery, size: int) -> None:
        self.copies[d.tag] = size  # a parsed copy COMMAND_BYTES_LIMIT counts with its body

    def holds(self, d: Delivery) -> bool:
        return d.generation == self.generation

    def set_accepting_creates(self, accepting: bool, priority: int | None = None,
                              prefetch: int | None = None) -> None:
        self.accepting_creates = accepting
        if priority is not None:
            self.create_priority = priority
        if prefetch is not None:
            self.create_prefetch = prefetch

    def events(self, name: str) -> list[dict]:
        """Bodies of the events of that name, without the envelope."""
        found = []
        for item in self.published:
            if item.exchange == "wa.events" and item.routing_key == name:
                body = orjson.loads(item.body)
                found.append({k: v for k, v in body.items() if k not in ("event", "node", "ts", "id")})
        return found

    def failed(self) -> list[tuple[int, str]]:
        """(tag, reason) of the commands dead-lettered, in order."""
        return [(orjson.loads(i.body)["tag"], i.headers["x-reason"]) for i in self.published
                if i.routing_key == "wa.dead_letter"]

    def forwarded(self, queue: str) -> list:
        return [i for i in self.published if i.exchange == "" and i.routing_key == queue]


class FakeStore:
    """Redis as the node sees it: a few dicts, up or down at the test's word."""

    def __init__(self, node_id: str = "node-a"):
        self.node_id = node_id
        self.up = True
        self.outages = 0
        self.writes: list[tuple] = []
        self.owners: dict[str, str] = {}  # key -> token
        self.sends: dict[tuple[str, str], str] = {}
        self.heartbeats: list[dict] = []
        self.state_hashes: dict[str, dict] = {}  # key -> what its owner wrote (another node's too)
        self.nodes: dict[str, dict] = {}  # node -> a heartbeat hash found at start
        self.settings: dict[str, str] = {}  # key -> its settings as its owner wrote them (JSON)
        self._fence = itertools.count(1)

    def _check(self) -> None:
        if not self.up:
            raise Unavailable("down")

    def set_qr(self, key, qr):
        self.writes.append(("qr", key, qr))

    def clear_qr(self, key):
        self.writes.append(("clear_qr", key))

    def set_pairing_code(self, key, code):
        self.writes.append(("pairing_code", key, code))

    def clear_pairing_code(self, key):
        self.writes.append(("clear_pairing_code", key))

    def set_state(self, key, state, me=None):
        self.writes.append(("state", key, state))
        self.state_hashes[key] = {"state": state, "node": self.node_id}

    def set_settings(self, key, stored):
        self.writes.append(("settings", key, stored))
        self.settings[key] = stored

    def settings_of(self, key):
        self._check()
        return self.settings.get(key)

    def release(self, key, token, forget_sends=False):
        self.writes.append(("release", key))
        if self.owners.get(key) == token:
            del self.owners[key]
            self.state_hashes.pop(key, None)
            self.settings.pop(key, None)
            if forget_sends:
                self.sends = {k: v for k, v in self.sends.items() if k[0] != key}

    def let_go(self, key, token):
        self.writes.append(("let_go", key))
        if self.owners.get(key) == token:
            del self.owners[key]

    def state_of(self, key):
        self._check()
        return dict(self.state_hashes.get(key, {}))

    def heartbeat_of(self, node):
        self._check()
        return dict(self.nodes.get(node, {}))

    def states(self, key: str) -> list[str]:
        return [w[2] for w in self.writes if w[0] == "state" and w[1] == key]

    def claim(self, key):
        if not self.up:
            return None
        owner = self.owners.get(key)
        if owner is not None and owner.rpartition(":")[0] != self.node_id:
            return False
        self.owners[key] = f"{self.node_id}:{next(self._fence)}"
        return self.owners[key]

    def owner_of(self, key):
        self._check()
        owner = self.owners.get(key)
        return owner.rpartition(":")[0] if owner else None

    def renew(self, tokens, may_reclaim, heartbeat):
        if not self.up:
            return None
        self.heartbeats.append(heartbeat)
        statuses = {}
        for key, token in tokens.items():
            current = self.owners.get(key)
            if current == token:
                statuses[key] = 1
            elif current is None and may_reclaim:
                self.owners[key] = token
                statuses[key] = 2
            else:
                statuses[key] = 0
        return statuses

    def begin_send(self, key, command_id):
        self._check()
        seen = self.sends.get((key, command_id))
        if seen is None or seen.startswith("failed:"):
            self.sends[(key, command_id)] = "pending"
            return None
        return seen

    def send_record(self, key, command_id):
        self._check()
        return self.sends.get((key, command_id))

    def end_send(self, key, command_id, message_id, failed=None):
        if message_id is not None:
            self.sends[(key, command_id)] = f"done:{message_id}"
        elif failed is not None:
            self.sends[(key, command_id)] = f"failed:{failed}"
        else:
            self.sends.pop((key, command_id), None)

    def find_lost(self):
        return []

    def drain_requested(self):
        return False  # nobody asked this node to drain

    def retry(self, now):
        return False

    def drop_node(self):
        self.writes.append(("drop_node", self.node_id))

    def close(self):
        pass


class FakeLoad:
    def __init__(self, cpu: float = 10.0, mem: float = 10.0, cpus: float = 64.0):
        self.reading = Reading(cpu, mem)
        self._cpus = cpus  # many: boots are not paced unless a test says so

    def read(self):
        return self.reading

    def cpus(self):
        return self._cpus


class FakeProcesses:
    def __init__(self):
        self.buried: list = []

    def become_subreaper(self):
        pass

    def kill_orphans(self, sessions_dir, session_module):
        return 0

    def bury(self, process):
        self.buried.append(process)

    def reap(self, session_pids):
        pass


_tags = itertools.count(1)


def delivery(queue: str = "create_instance", body: dict | None = None, headers: dict | None = None) -> Delivery:
    """A delivery with a tag no other has; its body names the tag, so a dead
    letter can be traced back to it."""
    tag = next(_tags)
    return Delivery(queue, tag, 1, False, orjson.dumps({"tag": tag, **(body or {})}), headers or {})


UNIT_SETTINGS = dict(node_id="node-a", backoff_initial=1, backoff_max=8, stable_after=100, crash_limit=3,
                     crash_window=60, ping_interval=30, ping_timeout=10, send_hold=20, stop_timeout=20,
                     boot_timeout=60, lease_ttl=15, heartbeat_interval=5)


@dataclasses.dataclass
class Rig:
    """A node assembled from its real parts around fake edges."""

    node: object
    broker: FakeBroker
    store: FakeStore
    spawner: FakeSpawner
    processes: FakeProcesses
    cfg: Config

    def __getattr__(self, name):  # rig.sessions, rig.sends, rig.dispatch, ...
        return getattr(self.node, name)

    def start(self, key: str = "k", now: float = 0.0):
        """A create carried out here, its lease claimed first (as dispatch does)."""
        d = delivery()
        assert self.node.ownership.claim(key)
        self.carry_out(Command("create_instance", key), d, now)
        return self.node.sessions.get(key), d

    def carry_out(self, cmd: Command, d: Delivery, now: float = 0.0):
        """The command carried out on this node by the part that handles
        it, as ``Dispatch`` hands it over once it is routed (and, for a
        create, claimed)."""
        return self.node.dispatch.handlers[cmd.name](cmd, d, now)

    def say(self, rec, *events: dict, now: float = 0.0) -> None:
        """The session's process writes these events; the node reads them."""
        rec.child.say(*events)
        self.node._session_output(rec, rec.child, now)

    def make_ready(self, rec, now: float = 0.0) -> None:
        self.say(rec, {"event": "qr", "qr": "a,b,c,d,e", "attempt": 1}, now=now)
        self.say(rec, {"event": "authenticated"}, {"event": "ready", "me": "1@c.us"}, now=now)

    def exit(self, rec, code: int, now: float) -> None:
        """The session's process ends with ``code``; the node reaps it."""
        rec.child.exit(code)
        self.node._reap(now)


def node_rig(data_dir: Path, clock=lambda: 0.0, probe=None, measure=None, load=None, snapshots=None,
             blobs=None, **settings) -> Rig:
    """``probe``: the disk's probe (``Paths.probe``: raise OSError for a
    full disk); ``measure``: a session tree's memory in MB, by (pid, cutoff);
    ``load``: the load readings (a ``FakeLoad``; by default idle, 64 CPUs);
    ``snapshots``: a blob store's snapshots (portable logins; none by default);
    ``blobs``: the blob store of media (by default the one the settings name)."""
    cfg = dataclasses.replace(Config(), data_dir=data_dir, **{**UNIT_SETTINGS, **settings})
    paths = Paths(data_dir)
    paths.ensure()
    broker, store, spawner, processes = FakeBroker(), FakeStore(cfg.node_id), FakeSpawner(), FakeProcesses()
    leases = Leases(cfg.lease_ttl)
    edges = {"storage": Storage(probe or paths.probe, cfg.heartbeat_interval)}
    if measure is not None:
        edges["measure"] = measure
    if snapshots is not None:
        edges["snapshots"] = snapshots
    if blobs is not None:
        edges["blobs"] = blobs
    node = assemble(cfg, paths, inbox=deque(), consumer=broker, publisher=broker, store=store, leases=leases,
                    spawner=spawner, load=load or FakeLoad(), processes=processes, clock=clock, **edges)
    return Rig(node, broker, store, spawner, processes, cfg)


# ------------------------------------------------------- whatsapp-web.js

WWEBJS_DIR = Path(__file__).parent / "wwebjs"


class WwebjsClient(SessionProcess):
    """whatsapp-web.js (tests/wwebjs, installed by deploy/setup-debian.sh)
    run by ``tests/wwebjs/driver.js``: one client, spoken to in JSON lines
    like a session process.  It opens ``https://web.whatsapp.com/``, which
    its browser maps to the stand-in at 127.0.0.1:``port`` (served with
    TLS).  Its profile is ``LocalAuth``'s folder under ``data_path``.
    ``pair_with_phone``: it links with a pairing code for that number
    (``pairWithPhoneNumber``) instead of a QR code."""

    def __init__(self, port: int, data_path: Path, client_id: str, chrome: str = "/usr/bin/chromium",
                 pair_with_phone: str = ""):
        import shutil

        node = shutil.which("node") or shutil.which("nodejs")
        if node is None or not (WWEBJS_DIR / "node_modules" / "whatsapp-web.js").is_dir():
            raise AssertionError("whatsapp-web.js is not installed: run deploy/setup-debian.sh (WITH_TESTS=1)")
        config = {"port": port, "dataPath": str(data_path), "clientId": client_id, "chrome": chrome,
                  "pairWithPhone": pair_with_phone}
        self.key = client_id
        self.profile = data_path / f"session-{client_id}"
        self.log_file = data_path / f"{client_id}.stderr"
        data_path.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as stderr:
            self.proc = subprocess.Popen([node, str(WWEBJS_DIR / "driver.js"), orjson.dumps(config).decode()],
                                         cwd=data_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self.events = queue.Queue()
        self.seen = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def stop(self) -> int:
        """Destroy the client (its browser with it) and wait for the exit;
        every event it wrote is then in ``seen``."""
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "destroy"})
            except BrokenPipeError:
                pass
        code = self.wait()
        self._reader.join(timeout=10)
        while True:
            try:
                _, event = self.events.get_nowait()  # (read at, event), as SessionProcess queues them
            except queue.Empty:
                break
            if event is not None:
                self.seen.append(event)
        return code


# ------------------------------------------------------- RabbitMQ parts

def turn_until(parts, condition, timeout: float = 10.0, what: str = "condition"):
    """Turn a node's RabbitMQ parts (``wwnode.amqp`` consumers and
    publishers) as its loop does, connect, pump, drain, until
    ``condition()`` holds; return its value."""

    def turn():
        now = time.monotonic()
        for part in parts:
            part.connect(now)
            part.pump(now)
            if hasattr(part, "drain"):
                part.drain()
        return condition()

    return wait_for(turn, timeout, what=what)


# ------------------------------------------------------- the command line

def run_cli(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m wwnode.tools.cli ARGS`` to its end, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "wwnode.tools.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class CliProcess:
    """``python -m wwnode.tools.cli ARGS`` running in the background: its output
    collected as it comes, for a test to wait on."""

    def __init__(self, *args: str, env: dict):
        # Ctrl-C as a user's terminal gives it, whoever started the run: a
        # shell's background job (``... &``) ignores SIGINT, and a child
        # inherits that, so a run started so failed every Ctrl-C test.
        self.proc = subprocess.Popen([sys.executable, "-m", "wwnode.tools.cli", *args], env={**os.environ, **env},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self._out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._readers = [threading.Thread(target=self._read, args=(name, getattr(self.proc, name)), daemon=True)
                         for name in self._out]
        for t in self._readers:
            t.start()

    def _read(self, name: str, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            self._out[name] += chunk

    def text(self, name: str = "stdout") -> str:
        return self._out[name].decode(errors="replace")

    def wait_output(self, needle: str, name: str = "stdout", timeout: float = 30.0) -> str:
        wait_for(lambda: needle in self.text(name), timeout=timeout, what=f"{needle!r} on {name}; so far: {self.text(name)[-500:]!r} "
                                       f"{self.text('stderr')[-500:]!r}")
        return self.text(name)

    def wait(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout)
        for t in self._readers:
            t.join(5)
        return code

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def closed_port() -> socket.socket:
    """A socket bound to a port of 127.0.0.1 that does not listen: a
    connection there is refused.  Keep it open while the port is used."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


class SilentServer:
    """A port of 127.0.0.1 that accepts connections and never answers (a
    service gone slow).  With ``head_size``, HEAD requests are answered
    (an object of that many bytes) and only the others get silence: an S3
    service that stalls mid-download.  ``requests``: the methods of the
    requests it got, in order.  ``close()`` ends every connection (and the
    port)."""

    def __init__(self, head_size: int | None = None):
        self.head_size = head_size
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.conns: list[socket.socket] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.conns.append(conn)
                reader = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(reader)
            reader.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                method = head.split(b" ", 1)[0].decode()
                with self._lock:
                    self.requests.append(method)
                if method != "HEAD" or self.head_size is None:
                    return  # silence from now on; the connection stays open
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: \"e\"\r\n"
                             b"Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                             b"Content-Type: application/octet-stream\r\n\r\n" % self.head_size)
        except OSError:  # closed by the client or by close()
            return

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self.conns)

    def count(self, method: str) -> int:
        with self._lock:
            return self.requests.count(method)

    def close(self) -> None:
        # shutdown() wakes the accept() blocked in its thread; close() alone
        # does not.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            for conn in self.conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)


def terminal_qr_matrix(text: str) -> list[list[int]]:
    """The first QR code drawn in this text (``wwnode.tools.qrterm``: a character
    per two rows of modules, light ones drawn) back to modules, 1 for dark."""
    halves = {"█": (0, 0), " ": (1, 1), "▀": (0, 1), "▄": (1, 0)}
    rows: list[list[int]] = []
    for line in text.splitlines():
        if not line or any(ch not in halves for ch in line):
            if rows:
                break
            continue
        rows.append([halves[ch][0] for ch in line])
        rows.append([halves[ch][1] for ch in line])
    return rows


def decode_qr_matrix(rows: list[list[int]]) -> list[str]:
    """What a QR decoder reads in these modules (drawn 4 pixels a module)."""
    import zxingcpp

    scale = 4
    width, height = len(rows[0]) * scale, len(rows) * scale
    pixels = bytearray()
    for row in rows:
        line = bytes(0 if dark else 255 for dark in row for _ in range(scale))
        pixels += line * scale
    image = memoryview(bytes(pixels)).cast("B", (height, width))
    return [r.text for r in zxingcpp.read_barcodes(image)]


def decode_qr_png(path: Path) -> list[str]:
    """What a QR decoder reads in a PNG image."""
    import zxingcpp
    from PIL import Image

    with Image.open(path) as image:
        return [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]


def make_profile_template(folder: Path, chrome: str = "/usr/bin/chromium") -> int:
    """Make the profile template of ``chrome`` in ``folder`` as a node
    would (``python -m sessionproc.profiletemplate``, wwnode/templates.py);
    its exit code (0: made, or there already)."""
    from sessionproc.useragent import chrome_version

    argv = [sys.executable, "-m", "sessionproc.profiletemplate", "--dir", str(folder),
            "--version", chrome_version(chrome), "--chrome", chrome]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=120, check=False).returncode

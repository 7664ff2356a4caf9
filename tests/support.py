"""Helpers shared by the tests: waiting on conditions, a session process
driven over its pipes, and process-tree checks."""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import psutil

_phones = itertools.count(int(time.time()) % 10_000_000 * 100)


def new_phone() -> str:
    """A phone number no other test in this run uses."""
    return f"55{next(_phones):011d}"


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


def chrome_processes_using(profile: Path) -> list[psutil.Process]:
    """Chromium processes started on this profile folder."""
    marker = f"--user-data-dir={profile}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(arg == marker for arg in cmdline):
            found.append(proc)
    return found


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def all_gone(procs: list[psutil.Process]) -> bool:
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


class SessionProcess:
    """``python -m sessionproc`` as its parent sees it: lines in, lines out."""

    def __init__(self, key: str, profile: Path, url: str, log_file: Path, *extra: str):
        self.key = key
        self.profile = profile
        self.log_file = log_file
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sessionproc", "--key", key, "--profile", str(profile),
             "--url", url, "--log-file", str(log_file), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put(orjson.loads(line))
        self.events.put(None)

    def send(self, obj: dict | bytes) -> None:
        data = obj if isinstance(obj, bytes) else orjson.dumps(obj) + b"\n"
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def expect(self, name: str, timeout: float = 20.0, **fields) -> dict:
        """The next event called ``name`` (with these field values); events
        before it are kept in ``seen``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {name} event {fields or ''} within {timeout} s; seen {self.names()}")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                self.events.put(None)
                raise AssertionError(f"process ended (code {self.proc.wait()}) before {name}; seen {self.seen}")
            self.seen.append(event)
            if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
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
        import pika

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
        """(messages ready, consumers) of a queue."""
        ok = self.ch.queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


class NodeProcess:
    """``wwnode run`` in a process of its own, with settings for tests."""

    FAST = {
        "PING_INTERVAL": "2", "PING_TIMEOUT": "2", "LOAD_INTERVAL": "0.5", "RESTORE_STAGGER": "0.3",
        "BACKOFF_INITIAL": "0.2", "STOP_TIMEOUT": "10", "HEARTBEAT_INTERVAL": "1", "LEASE_TTL": "6",
        "AMQP_HEARTBEAT": "5", "LOG_LEVEL": "INFO",
    }

    def __init__(self, node_id: str, data_dir: Path, env: dict, argv: list[str] | None = None):
        self.node_id = node_id
        self.data_dir = data_dir
        self.env = {**os.environ, **self.FAST, "NODE_ID": node_id, "DATA_DIR": str(data_dir), **env}
        self.argv = argv or [sys.executable, "-m", "wwnode.cli", "run"]
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
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children() if "sessionproc" in " ".join(p.cmdline())]
        except psutil.NoSuchProcess:
            return []

    def profile(self, key: str) -> Path:
        return (self.data_dir / "sessions" / key / "profile").resolve()

    def log_text(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""


# ---------------------------------------------------------------- faults

class TcpProxy:
    """A TCP forwarder on 127.0.0.1 the test controls: ``cut()`` drops every
    connection and refuses new ones, ``freeze()`` keeps connections open
    but forwards nothing (a link gone silent), ``restore()`` undoes both."""

    def __init__(self, target_port: int):
        import socket

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
        import socket

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
        import socket

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
        import socket

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
        import socket

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
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import shutil

        args = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind",
                "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis as redislib

        client = redislib.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), what="redis-server to start")
        client.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _pings(client) -> bool:
    import redis as redislib

    try:
        return client.ping()
    except redislib.RedisError:
        return False


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

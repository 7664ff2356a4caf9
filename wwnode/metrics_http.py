"""``GET /metrics`` (Prometheus text) and ``GET /healthz`` on
``METRICS_ADDR``, served by threads of their own beside the node's loop.

Nothing here is called by the loop, and nothing the loop waits on is
taken here: a scrape raises the number the loop answers with a snapshot
(``metrics.Readings``) and waits for it at most ``ANSWER_WAIT``; a loop
that does not answer in time is served with its last snapshot (the age of
its last turn then says why).  ``/healthz`` reads only the loop's vitals.

What the thread measures itself, off the loop: each session's browser
tree memory (RSS, summed over the tree: cheap, unlike PSS; see
``memory.py``), every session at once at most every ``MEMORY_EVERY``
seconds (finding the trees means reading every process's parent in
``/proc``: once for all sessions, not once each), and the node process's
own figures (``process_*``, from ``prometheus_client``).

``/healthz`` answers 200 when the loop turned within ``LOOP_STALL``
seconds and the node's last word from Redis and from RabbitMQ was an
answer; 503 otherwise.  The body is JSON: each check and the problems.

Whoever reaches the port may be hostile, and each connection costs the
node a thread and a file descriptor: at most ``MAX_CONNECTIONS`` are served
at once (one more is closed as soon as it is accepted), and each is closed
``CONNECTION_DEADLINE`` seconds after it was accepted, whatever it is doing
(a client that trickles its request a byte at a time included: a socket
timeout alone restarts at every byte).  A scrape takes a fraction of a
second; Prometheus gives up on one after 10 s by default.
"""

from __future__ import annotations

import http.server
import logging
import math
import os
import select
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

from .metrics import Readings, families

log = logging.getLogger(__name__)

LOOP_STALL = 10.0  # seconds without a turn: the loop is stuck
ANSWER_WAIT = 1.0  # longest wait of a scrape for the loop's snapshot
MEMORY_EVERY = 30.0  # seconds between two measures of the sessions' trees
MAX_CONNECTIONS = 16  # served at once: a thread and a descriptor each
CONNECTION_DEADLINE = 10.0  # seconds a connection may last, its request and its answer
READ_TIMEOUT = 5.0  # seconds a connection may stay silent (the deadline bounds the whole)
PAGE = os.sysconf("SC_PAGE_SIZE")


def parse_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); ValueError if not."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{addr!r} is not host:port")
    return host.strip("[]"), int(port)


def trees_rss_bytes(roots: dict[str, int], proc: Path = Path("/proc")) -> dict[str, int]:
    """The RSS of each root's process tree, summed, by key.  One pass over
    ``/proc`` finds every tree (``stat``: each process's parent), then
    ``statm`` gives each one's resident pages.  Read directly: the same
    through psutil objects costs several times the CPU, and this runs on
    a machine with many processes.  Processes that end meanwhile count 0."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            stat = (proc / entry.name / "stat").read_bytes()
        except OSError:
            continue  # ended
        # pid (comm) state ppid ...: the name may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2:].split(b" ", 2)
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    sizes = {}
    for key, root in roots.items():
        total, todo = 0, [root]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, ()))
            try:
                total += int((proc / str(pid) / "statm").read_bytes().split()[1]) * PAGE
            except (OSError, IndexError, ValueError):
                continue  # ended
        sizes[key] = total
    return sizes


class Endpoint:
    def __init__(self, readings: Readings, addr: str, *, clock: Callable[[], float] = time.monotonic,
                 measure: Callable[[dict[str, int]], dict[str, int]] = trees_rss_bytes,
                 max_connections: int = MAX_CONNECTIONS, deadline: float = CONNECTION_DEADLINE):
        self.readings = readings
        self.max_connections = max_connections
        self.deadline = deadline
        self.host, self.port = parse_addr(addr)
        self.clock = clock
        self.measure = measure
        self._ask = threading.Lock()  # one scrape at a time asks the loop; the loop never takes it
        self._answers, readings.answer_fd = os.pipe()  # the loop writes a byte when it answered
        os.set_blocking(readings.answer_fd, False)
        self._measuring = threading.Lock()  # two scrapes at once share the memory readings
        self._memory: dict[str, int] = {}  # key -> bytes
        self._measured: tuple[float, dict[str, int]] = (-math.inf, {})  # when, of which processes
        self._server: _Server | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)

    # ------------------------------------------------------------ serving
    def start(self) -> tuple[str, int]:
        """Bind and serve on a daemon thread; the address bound (a port 0
        asked for becomes the port the system gave).  OSError if the
        address cannot be bound."""
        endpoint = self

        class Handler(_Handler):
            pass

        Handler.endpoint = endpoint
        self._server = _Server((self.host, self.port), Handler, self.max_connections, self.deadline)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()
        return self.host, self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---------------------------------------------------------- answers
    def metrics(self) -> bytes:
        return generate_latest(self.registry)

    def health(self) -> tuple[bool, dict]:
        vitals = self.readings.vitals
        problems = []
        if vitals is None:
            problems.append("the loop has not turned yet")
            age, redis_up, rabbit_up = None, False, False
        else:
            turned, redis_up, rabbit_up = vitals
            age = round(self.clock() - turned, 3)
            if age > LOOP_STALL:
                problems.append(f"the loop has not turned for {age:.0f} s")
            if not redis_up:
                problems.append("Redis does not answer")
            if not rabbit_up:
                problems.append("RabbitMQ is not connected")
        return not problems, {"ok": not problems, "loop_turn_age": age, "redis": redis_up,
                              "rabbitmq": rabbit_up, "problems": problems}

    def fresh_snapshot(self) -> dict | None:
        """The loop's readings as of its next turn, or its last ones if it
        does not turn within ``ANSWER_WAIT``."""
        with self._ask:
            wanted = self.readings.asked + 1
            self.readings.asked = wanted
            deadline = time.monotonic() + ANSWER_WAIT
            while self.readings.answered < wanted:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                    break  # the loop did not turn in time
                os.read(self._answers, 4096)  # this answer, and any earlier one left unread
            return self.readings.snapshot

    def memory(self, pids: dict[str, int]) -> dict[str, int]:
        """Each session's tree RSS in bytes, measured again when older than
        ``MEMORY_EVERY`` or the sessions' processes changed."""
        with self._measuring:
            now = time.monotonic()
            when, of = self._measured
            if pids != of or now - when >= MEMORY_EVERY:
                self._memory = self.measure(pids) if pids else {}
                self._measured = (now, dict(pids))
            return dict(self._memory)

    def turn_age(self) -> float | None:
        vitals = self.readings.vitals
        return None if vitals is None else max(0.0, self.clock() - vitals[0])


class _Server(http.server.ThreadingHTTPServer):
    """A thread per connection, as many as ``limit`` at once, each cut off
    at its ``deadline`` by the accepting thread (``service_actions`` runs
    between two accepts, at least every half second)."""

    daemon_threads = True  # a connection never holds up the node's exit

    def __init__(self, addr: tuple[str, int], handler, limit: int, deadline: float):
        self.limit = limit
        self.deadline = deadline
        self._open: dict[socket.socket, float] = {}  # connection -> when it is cut off
        self._cut: set[socket.socket] = set()  # cut off: what they asked so far is not answered
        self._lock = threading.Lock()  # _open is changed by the accepting thread and each connection's
        super().__init__(addr, handler)

    def verify_request(self, request, client_address) -> bool:
        with self._lock:
            if len(self._open) >= self.limit:
                return False  # closed at once by the caller (socketserver)
            self._open[request] = time.monotonic() + self.deadline
        return True

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._open.pop(request, None)
            self._cut.discard(request)
        super().shutdown_request(request)

    def served(self) -> int:
        """Connections open now."""
        with self._lock:
            return len(self._open)

    def was_cut(self, request) -> bool:
        with self._lock:
            return request in self._cut

    def service_actions(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [conn for conn, until in self._open.items() if until <= now and conn not in self._cut]
            self._cut.update(late)
        for conn in late:
            # Its thread, blocked reading or writing, then sees the end of
            # the connection and closes it (shutdown_request above).
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile

    def handle_error(self, request, client_address) -> None:
        # Called by socketserver while the handler's exception is current.
        # A connection cut off (above, or by its client) mid-answer is no
        # news; anything else is a bug of ours, said with its traceback.
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("metrics connection from %s ended early", client_address[0], exc_info=True)
        else:
            log.error("metrics: answering %s failed", client_address[0], exc_info=True)


class _Collector:
    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint

    def collect(self):
        e = self.endpoint
        snap = e.fresh_snapshot() or {}
        yield from families(snap, e.turn_age(), e.memory(snap.get("pids", {})))


class _Handler(http.server.BaseHTTPRequestHandler):
    endpoint: Endpoint
    server: _Server  # the server above, which has was_cut
    server_version = "wwnode"
    timeout = READ_TIMEOUT  # each read and write; the server's deadline bounds the whole connection

    def do_GET(self) -> None:
        if self.server.was_cut(self.connection):
            return  # a request cut off midway (its headers end early): no scrape for it
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, CONTENT_TYPE_LATEST, self.endpoint.metrics())
        elif path == "/healthz":
            ok, doc = self.endpoint.health()
            self._reply(200 if ok else 503, "application/json", orjson.dumps(doc))
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

    def _reply(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args) -> None:  # not one line per scrape in the node's log
        log.debug("%s %s", self.address_string(), fmt % args)


def serve(readings: Readings, addr: str) -> Endpoint | None:
    """The endpoint on ``addr`` (``METRICS_ADDR``), serving; None when
    ``addr`` is empty or cannot be bound (said in the log: the node runs
    on without it)."""
    if not addr:
        return None
    endpoint = Endpoint(readings, addr)
    try:
        host, port = endpoint.start()
    except OSError as e:
        log.error("cannot serve /metrics and /healthz on %s (%s); running without them", addr, e.strerror or e)
        return None
    log.info("serving /metrics and /healthz on %s:%d", host, port)
    return endpoint

#!/usr/bin/env python3
"""Density: how many sessions one node keeps on this machine, and what each
costs.  A node (``python -m wwnode.tools.cli run``) against the stand-in, the
local RabbitMQ and Redis, through the public contract only, as
bench_node.py drives it.

Not a pytest test (the name keeps pytest from collecting it): it prints a
table and exits 0 whether or not the targets are met; it exits 1 only when
the run itself breaks.

    python tests/bench/bench_density.py --sessions 10
    python tests/bench/bench_density.py --sessions 30 --weight real
    WWNODE_BENCH_VHOST=mine WWNODE_BENCH_REDIS_DB=7 python tests/bench/bench_density.py --sessions 100

For N sessions: N ``create_instance`` published at once, each QR code
scanned as it shows in Redis, the time until all N are ready; then a
settle (a minute by default: the start-up tail, its CPU printed) and a
minute of idle (the node's RSS and CPU, the whole trees' CPU, in all and
per kind of process, PSS per session); then sends and inbound messages, one at a time, over all N
sessions (p50/p99); last, PSS once more, ``--late-pss`` seconds after the
last ready (Chromium's delayed start-up work done).  The loop's turn time is the p99 the node writes with
each heartbeat (``loop_turn_p99_ms``), the worst window of each phase.

PSS per session is the PSS of every process of the session's tree (session
process, chromedriver, Chromium) summed, divided by N.  PSS shares a page
among all processes that map it, other Chromiums of the machine included.

The node's CPU admission is given a quiet reading (a cgroup folder of the
benchmark's own): others share this machine's CPU, and a create refused
for their load would measure them, not the node.  Memory admission stays
real.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pika.exceptions
import psutil
import redis as redislib

from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control
from wwnode.fakewa.settings import REAL_WEIGHT
from wwnode.procs import command_line

from benchlib import (MB, DeliverClock, SentClock, Table, cpu_by_kind, percentile, progress, pss_by_kind, run_bench, run_main,
                      tree_cpu)
from bench_node import (COMMAND_QUEUES, LEGACY_QUEUES, NODE_ID, REDIS_DB, REDIS_URL, VHOST, Commands, Events, Node,
                        destroy_all, ensure_vhost, measure_inbound, measure_sends, wait_none_under)

TARGET_PSS = 120.0  # MB per session, whole tree, page unweighted
TARGET_READY = 180.0  # s from the creates until all are ready
TARGET_NODE_RSS = 60.0  # MB
TARGET_NODE_CPU = 1.0  # % of a core, idle
TARGET_SESSION_CPU = 0.2  # % of a core per session, whole tree, idle
TARGET_SEND_P99 = 50.0  # ms
TARGET_INBOUND_P99 = 20.0  # ms
HEARTBEAT_WAIT = 8.0  # s: the node's heartbeat interval (5 s) and the reader's poll, with room
QR_POLL = 0.05  # s between Redis reads while QR codes are awaited


def quiet_cgroup(folder: Path) -> Path:
    """A cgroup folder as the kernel lays it out, whose CPU never moves:
    two CPUs of quota, no use.  No memory files: memory is read for real."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpu.max").write_text("200000 100000\n")
    (folder / "cpu.stat").write_text("usage_usec 0\n")
    return folder


def link_all(cmds: Commands, events: Events, r: redislib.Redis, control: Control, keys: list[str],
             phones: dict[str, str], timeout: float) -> tuple[float, dict[str, float]]:
    """Publish every create at once; scan each QR code as soon as Redis
    has it (paced starts show them over minutes); return seconds from the
    first create until the last ``ready_instance``, and each key's."""
    t0 = time.monotonic()
    for k in keys:
        cmds.publish("create_instance", {"key": k})
    scanned: set[str] = set()
    ready: dict[str, float] = {}
    deadline = t0 + timeout
    while len(ready) < len(keys):
        waiting = [k for k in keys if k not in scanned]
        if waiting:
            for k, qr in zip(waiting, r.mget([f"instances:{k}:qr_code" for k in waiting])):
                if qr is not None:
                    control.scan(qr, phones[k])
                    scanned.add(k)
        for t, e in events.all("ready_instance"):
            if e.get("key") in phones and e["key"] not in ready:
                ready[e["key"]] = t - t0
        if time.monotonic() > deadline:
            missing = [k for k in keys if k not in ready]
            raise RuntimeError(f"{len(missing)} of {len(keys)} sessions not ready within {timeout:g} s "
                               f"({len(scanned)} scanned): {', '.join(missing[:10])}")
        time.sleep(QR_POLL)
    return max(ready.values()), ready


def session_trees(node: Node) -> list[list[psutil.Process]]:
    """Each session process of the node with all its descendants (not the
    fork server: it is the node's, ``fork_servers``)."""
    trees = []
    for child in psutil.Process(node.proc.pid).children():
        try:
            if "--key" in command_line(child.cmdline()):
                trees.append([child, *child.children(recursive=True)])
        except psutil.Error:
            continue
    return trees


def fork_servers(node: Node) -> list[psutil.Process]:
    """The node's fork server (warm starts), if it runs one."""
    found = []
    for child in psutil.Process(node.proc.pid).children():
        try:
            if "sessionproc.forkserver" in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


def cpu_of(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            continue
    return out


def cpu_since(before: dict[int, dict[int, tuple[str, float]]],
              until: dict[int, dict[int, tuple[str, float]]] | None = None) -> dict[str, float]:
    """CPU seconds per kind of process, all sessions together, from the
    ``tree_cpu`` readings ``before`` (keyed by session pid) until ``until``
    (or now).  A session gone meanwhile is left out: it was not idle."""
    kinds: dict[str, float] = {}
    for pid, first in before.items():
        if until is not None:
            last = until.get(pid)
        else:
            try:
                last = tree_cpu(pid)
            except psutil.Error:
                last = None
        if last is None:
            continue
        for k, sec in cpu_by_kind(first, last).items():
            kinds[k] = kinds.get(k, 0.0) + sec
    return kinds


def sum_kinds(per_session: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kinds in per_session:
        for k, v in kinds.items():
            out[k] = out.get(k, 0.0) + v
    return out


class Heartbeats(threading.Thread):
    """Reads the node's heartbeat hash as it changes and keeps each
    window's loop turn figures, stamped with their arrival."""

    def __init__(self, r: redislib.Redis, node_id: str):
        super().__init__(daemon=True, name="heartbeats")
        self.r, self.key = r, f"nodes:{node_id}"
        self.windows: list[tuple[float, float, float, float]] = []  # (t, p99 ms, max ms, CPU p99 ms)
        self._stopping = threading.Event()
        self._new_window = threading.Condition()

    def run(self) -> None:
        last = None
        while not self._stopping.wait(0.5):
            hb = self.r.hgetall(self.key)
            if hb and hb.get("ts") != last and "loop_turn_p99_ms" in hb:
                last = hb.get("ts")
                with self._new_window:
                    self.windows.append((time.monotonic(), float(hb["loop_turn_p99_ms"]),
                                         float(hb["loop_turn_max_ms"]), float(hb["loop_turn_cpu_p99_ms"])))
                    self._new_window.notify_all()

    def await_window_after(self, t: float, timeout: float) -> None:
        """Until a window reported after ``t`` is in: a phase shorter than
        the heartbeat's interval would otherwise have none."""
        with self._new_window:
            self._new_window.wait_for(lambda: self.windows and self.windows[-1][0] > t, timeout)

    def worst(self, since: float, until: float) -> tuple[float, float, float]:
        """(worst window p99, longest turn, worst window CPU p99) of the
        windows reported from ``since`` to ``until`` and one heartbeat."""
        nan = float("nan")
        inside = [w for w in self.windows if since <= w[0] <= until + 6] or [(0, nan, nan, nan)]
        return max(w[1] for w in inside), max(w[2] for w in inside), max(w[3] for w in inside)

    def stop(self) -> None:
        self._stopping.set()
        self.join(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Density benchmark: N sessions on one node; prints figures beside "
                                             "their targets.")
    ap.add_argument("--sessions", type=int, default=10, help="sessions (default %(default)s)")
    ap.add_argument("--weight", choices=("off", "real"), default="off",
                    help="the stand-in page's weight (docs/standin.md, Page weight) (default %(default)s)")
    ap.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default %(default)s)")
    # A session's first minute after ready is not idle: Chromium writes its
    # profile (Preferences, Local State) and takes its first memory dumps,
    # and a weighted page builds its heap and IndexedDB, then V8 collects.
    # Measured (10 sessions, load 13-27): unweighted, 0.15 % of a core per
    # session 10-70 s after the last ready, 0.06 % 60-120 s after it;
    # weighted, 2.2 % 10-70 s after (the renderer's GC threads), and with
    # two sessions 0.08 % after 90 s.  The settle's own CPU is printed too.
    ap.add_argument("--settle", type=float, default=60.0,
                    help="seconds after the last ready before the idle window (default %(default)s)")
    # Chromium does some of its start-up work minutes after its start (at
    # three minutes, before --optimization-guide-performance-class was set,
    # it started a service of 21 MB per session): PSS is read once more this
    # long after the last ready, after the traffic.
    ap.add_argument("--late-pss", type=float, default=200.0,
                    help="seconds after the last ready for a second PSS reading, 0 for none (default %(default)s)")
    ap.add_argument("--messages", type=int, default=200, help="sends, and inbound messages, measured (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=5, help="sends and inbound messages not counted (default %(default)s)")
    ap.add_argument("--start-concurrency", type=int, default=4,
                    help="the node's START_CONCURRENCY (default %(default)s)")
    ap.add_argument("--ready-timeout", type=float, default=900.0,
                    help="seconds all N may take to be ready before the run fails (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (node data, node output)")
    args = ap.parse_args(argv)
    if args.sessions < 1 or args.messages < 1 or args.idle_seconds <= 0:
        ap.error("--sessions and --messages must be at least 1, --idle-seconds positive")

    work = Path(tempfile.mkdtemp(prefix="bench-density-")).resolve()
    progress(f"vhost {VHOST}, Redis db {REDIS_DB}; load {os.getloadavg()[0]:.1f}, "
             f"{psutil.virtual_memory().available / MB / 1024:.1f} GB available")
    ensure_vhost()
    r = redislib.Redis.from_url(REDIS_URL, decode_responses=True)
    r.flushdb()
    cmds = Commands()
    cmds.purge(COMMAND_QUEUES + LEGACY_QUEUES)
    if cmds.consumers("create_instance"):
        cmds.close()
        print(f"another node consumes create_instance on vhost {VHOST}; stop it first", file=sys.stderr)
        return 1
    events = Events()
    events.start_and_wait()
    weight = REAL_WEIGHT if args.weight == "real" else {}
    # QR codes live long enough for paced starts of many sessions to be scanned.
    wa = FakeWA(settings=Settings(qr_first=600, **weight)).start()
    control = Control(wa.url)
    sent_clock = SentClock(wa.world)
    deliver_clock = DeliverClock(wa.world)
    beats = Heartbeats(r, NODE_ID)
    node: Node | None = None
    keys = [f"dense-{i}" for i in range(args.sessions)]
    phones = {k: f"55219{i:08d}" for i, k in enumerate(keys)}
    friend = "5511888000001"
    created: list[str] = []
    n = args.sessions

    def body(table: Table) -> None:
        nonlocal node
        node = Node(work, wa.url, start_concurrency=args.start_concurrency, heartbeat_interval=5,
                    load_cgroup_root=str(quiet_cgroup(work / "cgroup")), qr_ttl=600)
        deadline = time.monotonic() + 60
        while not all(cmds.consumers(q) for q in COMMAND_QUEUES):
            if not node.alive() or time.monotonic() > deadline:
                raise RuntimeError("the node did not start consuming its command queues")
            time.sleep(0.05)
        beats.start()

        progress(f"{n} create_instance at once; scanning each QR code as it shows")
        created.extend(keys)
        load_at_create = os.getloadavg()[0]
        all_ready, _ = link_all(cmds, events, r, control, keys, phones, args.ready_timeout)
        progress(f"all {n} ready after {all_ready:.1f} s; settling {args.settle:g} s")
        ready_at = time.monotonic()
        settle_cpu0, settle_t0 = {t[0].pid: tree_cpu(t[0].pid) for t in session_trees(node)}, time.monotonic()
        table.add(f"time until all {n} ready, from the creates (START_CONCURRENCY={args.start_concurrency}, "
                  f"load {load_at_create:.1f})", all_ready, "s", TARGET_READY, fmt="{:.1f}")
        time.sleep(args.settle)

        progress(f"idle window, {args.idle_seconds:g} s")
        node_proc = psutil.Process(node.proc.pid)
        trees = session_trees(node)
        cpu0, node_cpu0, t0 = {t[0].pid: tree_cpu(t[0].pid) for t in trees}, cpu_of([node_proc]), time.monotonic()
        load0 = os.getloadavg()[0]
        rss = [node_proc.memory_info().rss]
        while time.monotonic() < t0 + args.idle_seconds:
            time.sleep(1.0)
            rss.append(node_proc.memory_info().rss)
        t1 = time.monotonic()
        wall = t1 - t0
        kinds = cpu_since(cpu0)
        node_cpu1 = cpu_of([node_proc])
        idle_cpu = sum(kinds.values()) / wall * 100
        settle_cpu = sum(cpu_since(settle_cpu0, until=cpu0).values()) / (t0 - settle_t0) * 100
        node_cpu = (node_cpu1[node_proc.pid] - node_cpu0[node_proc.pid]) / wall * 100
        pss_kinds = [pss_by_kind(tree) for tree in session_trees(node)]
        pss = [sum(k.values()) for k in pss_kinds]
        idle_turn_p99, idle_turn_max, idle_turn_cpu = beats.worst(t0, t1)
        load = f"load {load0:.1f}-{os.getloadavg()[0]:.1f}"
        table.add(f"PSS per session, whole tree, mean of {len(pss)} (weight {args.weight}, {load})",
                  sum(pss) / len(pss), "MB", TARGET_PSS if args.weight == "off" else None, fmt="{:.1f}")
        table.add("PSS per session, whole tree, min", min(pss), "MB", fmt="{:.1f}")
        table.add("PSS per session, whole tree, max", max(pss), "MB", fmt="{:.1f}")
        table.add(f"PSS of all {len(pss)} sessions", sum(pss), "MB", fmt="{:.0f}")
        server_pss = sum(sum(pss_by_kind([p]).values()) for p in fork_servers(node))
        table.add("PSS of the node's fork server (WARM_STARTS; not in the sessions' figures)", server_pss, "MB",
                  fmt="{:.1f}")
        for k, mb in sorted(sum_kinds(pss_kinds).items(), key=lambda kv: kv[1], reverse=True):
            table.add(f"  of which {k}, per session", mb / len(pss), "MB", fmt="{:.1f}")
        table.add(f"CPU per session, whole tree, while settling ({args.settle:g} s after the last ready)",
                  settle_cpu / max(len(trees), 1), "% of a core", fmt="{:.3f}")
        table.add(f"idle CPU per session, whole tree ({wall:.0f} s window)", idle_cpu / max(len(trees), 1),
                  "% of a core", TARGET_SESSION_CPU, fmt="{:.3f}")
        for k in sorted(kinds, key=kinds.get, reverse=True):
            table.add(f"  of which {k}", kinds[k] / wall * 100 / max(len(trees), 1), "% of a core", fmt="{:.3f}")
        table.add(f"node CPU, idle, {len(trees)} sessions", node_cpu, "% of a core", TARGET_NODE_CPU, fmt="{:.3f}")
        table.add("node RSS, idle, max over the window", max(rss) / MB, "MB", TARGET_NODE_RSS, fmt="{:.1f}")
        table.add("loop turn p99, idle (worst 5 s window)", idle_turn_p99, "ms", fmt="{:.2f}")
        table.add("loop turn max, idle", idle_turn_max, "ms", fmt="{:.2f}")
        table.add("loop turn CPU time p99, idle (worst 5 s window)", idle_turn_cpu, "ms", fmt="{:.2f}")

        progress(f"sends: {args.messages}, one at a time over {n} sessions")
        t2, load2 = time.monotonic(), os.getloadavg()[0]
        node_cpu2 = cpu_of([node_proc])
        sends = measure_sends(cmds, events, sent_clock, keys, friend, args.messages, args.warmup)
        progress(f"inbound: {args.messages}, one at a time over {n} sessions")
        inbound = measure_inbound(events, control, deliver_clock, keys, phones, friend, args.messages, args.warmup)
        t3 = time.monotonic()
        busy_cpu = (cpu_of([node_proc])[node_proc.pid] - node_cpu2[node_proc.pid]) / (t3 - t2) * 100
        beats.await_window_after(t3, timeout=HEARTBEAT_WAIT)
        busy_turn_p99, busy_turn_max, busy_turn_cpu = beats.worst(t2, t3)
        load = f"load {load2:.1f}-{os.getloadavg()[0]:.1f}"
        table.add(f"send_message -> stand-in recorded, p50 (n={len(sends['record'])}, {load})",
                  percentile(sends["record"], 50), "ms")
        table.add(f"send_message -> stand-in recorded, p99, all {n} linked", percentile(sends["record"], 99), "ms",
                  TARGET_SEND_P99)
        table.add("inbound, stand-in queued it -> message_instance, p50", percentile(inbound["after_queue"], 50), "ms")
        table.add(f"inbound, stand-in queued it -> message_instance, p99, all {n} linked",
                  percentile(inbound["after_queue"], 99), "ms", TARGET_INBOUND_P99)
        table.add("inbound, deliver call returned -> message_instance, p99", percentile(inbound["after_return"], 99),
                  "ms")
        table.add("node CPU during the traffic", busy_cpu, "% of a core", fmt="{:.2f}")
        table.add("node RSS after the traffic", node_proc.memory_info().rss / MB, "MB", TARGET_NODE_RSS, fmt="{:.1f}")
        table.add("loop turn p99, traffic (worst 5 s window)", busy_turn_p99, "ms", fmt="{:.2f}")
        table.add("loop turn max, traffic", busy_turn_max, "ms", fmt="{:.2f}")
        table.add("loop turn CPU time p99, traffic (worst 5 s window)", busy_turn_cpu, "ms", fmt="{:.2f}")

        if args.late_pss > 0:
            wait = ready_at + args.late_pss - time.monotonic()
            if wait > 0:
                progress(f"{wait:.0f} s until the second PSS reading")
                time.sleep(wait)
            late = [pss_by_kind(tree) for tree in session_trees(node)]
            table.add(f"PSS per session, whole tree, {args.late_pss:g} s after the last ready",
                      sum(sum(k.values()) for k in late) / len(late), "MB",
                      TARGET_PSS if args.weight == "off" else None, fmt="{:.1f}")
            for k, mb in sorted(sum_kinds(late).items(), key=lambda kv: kv[1], reverse=True):
                table.add(f"  of which {k}, per session", mb / len(late), "MB", fmt="{:.1f}")

    def explain() -> None:
        if node is not None:
            print("--- end of the node's output ---", file=sys.stderr)
            print(node.tail(), file=sys.stderr)

    def cleanup() -> None:
        # A broker gone away (restarted by someone else on a shared machine)
        # must not keep the figures measured from being printed, nor leave
        # the node and its browsers behind: the node's SIGTERM stops them.
        if node is not None:
            if node.alive() and created:
                progress(f"destroying {len(created)} sessions")
                try:
                    destroy_all(cmds, events, created, timeout=120)
                except (pika.exceptions.AMQPError, OSError) as e:
                    progress(f"could not destroy them through RabbitMQ ({e!r}); the node's stop ends them")
            progress("stopping the node (SIGTERM)")
            node.terminate(timeout=180)
        if beats.is_alive():
            beats.stop()
        wait_none_under(work)
        events.stop()
        try:
            cmds.purge(COMMAND_QUEUES + LEGACY_QUEUES)
            cmds.close()
        except (pika.exceptions.AMQPError, OSError) as e:
            progress(f"could not empty the queues at the end: {e!r}")
        r.flushdb()
        r.close()
        wa.stop()
        if args.keep:
            progress(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    return run_bench(f"density benchmark, {n} sessions, weight {args.weight}", body, cleanup, explain)


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""Figures for one session process (``python -m sessionproc``) against the
stand-in, driven over its pipes only, as a node drives it.

Not a pytest test (the name keeps pytest from collecting it): it prints a
table and exits 0 whether or not the targets are met; it exits 1 only when
the run itself breaks.

    python tests/bench/bench_session.py                  # defaults: about two minutes
    python tests/bench/bench_session.py --messages 50 --idle-seconds 10 --launches 2

What is measured (all clocks are ``time.monotonic()`` in this process; the
stand-in runs in a thread of this process, so its clock is the same one):

- launch to first QR: ``Popen`` to the moment the ``qr`` line is read;
- inbound: ``Control.deliver`` (an HTTP call to the stand-in) to the moment
  the ``message`` line is read, counted from before the call and from its
  return; plus, from the stand-in's side, the moment it queued the message
  for the page;
- send: the ``send`` line written to the moment the stand-in recorded the
  message, and to the moment the ``sent`` line is read;
- memory (PSS) and idle CPU of the session process, its chromedriver and
  the Chrome processes below chromedriver, for an authenticated idle session.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

from benchlib import MB, DeliverClock, SentClock, Table, percentile, progress, run_bench, run_main
from support import SessionProcess, chrome_processes_under

TARGET_INBOUND_P50 = 5.0  # ms
TARGET_INBOUND_P99 = 20.0  # ms
TARGET_SEND_P50 = 20.0  # ms
TARGET_IDLE_CPU = 0.5  # percent of one core, session process only
TARGET_PSS = 50.0  # MB, session process + chromedriver


# ------------------------------------------------------------------ figures
class Session(SessionProcess):
    """One session process seen from its pipes (the tests' SessionProcess,
    whose reader thread stamps each event line the moment it is read, so a
    slow main thread does not add to the latencies)."""

    def chromedriver(self) -> psutil.Process:
        """The session's chromedriver: the pid its ``browser`` event named,
        else the child of that name."""
        for event in self.seen:
            if event.get("event") == "browser" and event.get("pids"):
                return psutil.Process(event["pids"][0])
        for child in psutil.Process(self.proc.pid).children():
            if "chromedriver" in child.name():
                return child
        raise RuntimeError("the session process has no chromedriver")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "stop"})
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                progress(f"session {self.proc.pid} did not stop in {timeout} s; killing it")
                self.proc.kill()
                self.proc.wait()
        wait_no_chrome(self.profile)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_no_chrome(profile: Path, timeout: float = 15.0) -> None:
    """The session takes its Chrome along when it ends; if that fails, the
    benchmark must still not leave browsers behind, so it kills them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in chrome_processes_under(profile) if _alive(p)]:
            return
        time.sleep(0.1)
    for p in chrome_processes_under(profile):
        progress(f"Chrome {p.pid} on {profile} outlived its session; killing it")
        try:
            p.kill()
        except psutil.Error:
            pass


# ------------------------------------------------------ stand-in clocks
def measure_launches(n: int, url: str, work: Path) -> list[float]:
    times = []
    for i in range(n):
        s = Session(f"launch{i}", work / "profiles" / f"launch{i}", url, work / "logs" / f"launch{i}.log")
        try:
            s.expect("qr", timeout=60)
            times.append((s.last_at - s.t_launch) * 1000)
            progress(f"launch {i + 1}/{n}: first QR after {times[-1]:.0f} ms")
        finally:
            s.stop()
    return times


def authenticate(s: Session, control: Control, phone: str) -> None:
    qr = s.expect("qr", timeout=60)
    control.scan(qr["qr"], phone)
    s.expect("ready", timeout=60)


def measure_inbound(s: Session, control: Control, deliveries: DeliverClock, phone: str, friend: str,
                    n: int, warmup: int) -> dict[str, list[float]]:
    full, after_return, after_queue = [], [], []
    for i in range(warmup + n):
        body = f"bench inbound {i}"
        t0 = time.monotonic()
        msg_id = control.deliver(phone, friend, body)
        t_ret = time.monotonic()
        s.expect("message", timeout=10, match=lambda e: e["message"].get("body") == body)
        t1 = s.last_at
        if i < warmup:
            continue
        full.append((t1 - t0) * 1000)
        after_return.append((t1 - t_ret) * 1000)
        after_queue.append((t1 - deliveries.at[msg_id]) * 1000)
    return {"full": full, "after_return": after_return, "after_queue": after_queue}


def measure_sends(s: Session, clock: SentClock, friend: str, n: int, warmup: int) -> dict[str, list[float]]:
    to_record, to_event = [], []
    chat = f"{friend}@c.us"
    for i in range(warmup + n):
        cid = f"bench-{i}"
        t0 = time.monotonic()
        s.send({"cmd": "send", "id": cid, "chat_id": chat, "text": f"bench send {i}"})
        event = s.expect("sent", timeout=30, id=cid)
        t_event = s.last_at
        # message_id is "true_<chat>_<id>", the id being the one the page chose.
        t_rec = clock.at(event["message_id"].rsplit("_", 1)[1])
        if i < warmup:
            continue
        to_record.append((t_rec - t0) * 1000)
        to_event.append((t_event - t0) * 1000)
    return {"record": to_record, "event": to_event}


def pss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total / MB


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def measure_idle(s: Session, seconds: float) -> dict:
    """CPU over the window and PSS at its end, for the session process and
    for its browser tree.  Chrome may start or end helper processes during
    the window: those that end are lost to the sum (counted in ``gone``),
    those that start count in full."""
    session = psutil.Process(s.proc.pid)
    driver = s.chromedriver()

    def tree() -> dict[int, psutil.Process]:
        procs = {driver.pid: driver}
        procs.update({c.pid: c for c in driver.children(recursive=True)})
        return procs

    before_tree = {}
    for pid, p in tree().items():
        try:
            before_tree[pid] = cpu_seconds(p)
        except psutil.NoSuchProcess:
            pass
    before_session = cpu_seconds(session)
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    after_session = cpu_seconds(session)
    procs_now = tree()
    tree_used, gone = 0.0, 0
    for pid, p in procs_now.items():
        try:
            tree_used += cpu_seconds(p) - before_tree.get(pid, 0.0)
        except psutil.NoSuchProcess:
            gone += 1
    gone += len(set(before_tree) - set(procs_now))
    chrome = [p for pid, p in procs_now.items() if pid != driver.pid]
    return {
        "wall": wall,
        "session_cpu": (after_session - before_session) / wall * 100,
        "tree_cpu": tree_used / wall * 100,
        "tree_gone": gone,
        "session_pss": pss_mb([session]),
        "driver_pss": pss_mb([driver]),
        "chrome_pss": pss_mb(chrome),
        "chrome_count": len(chrome),
        "other_children": [c for c in session.children() if c.pid != driver.pid],
    }


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark one session process (python -m sessionproc) against the stand-in; "
                    "prints a table of figures beside their targets.")
    ap.add_argument("--messages", type=int, default=200, help="inbound messages and sends measured (default %(default)s)")
    ap.add_argument("--idle-seconds", type=float, default=60.0, help="idle CPU window in seconds (default %(default)s)")
    ap.add_argument("--launches", type=int, default=5, help="launches timed to the first QR (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=5,
                    help="inbound messages and sends done before measuring, not counted (default %(default)s)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds the session is left alone before the idle window (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (profiles, session logs)")
    args = ap.parse_args(argv)
    if args.messages < 1 or args.launches < 1 or args.idle_seconds <= 0 or args.warmup < 0 or args.settle < 0:
        ap.error("--messages and --launches must be at least 1, --idle-seconds positive, --warmup and --settle not negative")

    work = Path(tempfile.mkdtemp(prefix="bench-session-")).resolve()
    wa = FakeWA(settings=Settings()).start()
    control = Control(wa.url)
    sent_clock = SentClock(wa.world)
    deliver_clock = DeliverClock(wa.world)
    measured: list[Session] = []  # the measured session, once started

    def body(table: Table) -> None:
        progress(f"timing {args.launches} launch(es) to the first QR")
        launches = measure_launches(args.launches, wa.url, work)

        progress("starting the measured session and scanning its QR")
        phone, friend = "5511900000001", "5511900000002"
        session = Session("bench", work / "profiles" / "bench", wa.url, work / "logs" / "bench.log")
        measured.append(session)
        authenticate(session, control, phone)

        progress(f"inbound: {args.messages} messages, one at a time")
        inbound = measure_inbound(session, control, deliver_clock, phone, friend, args.messages, args.warmup)
        progress(f"send: {args.messages} sends, one at a time")
        sends = measure_sends(session, sent_clock, friend, args.messages, args.warmup)

        progress(f"idle: settling {args.settle:g} s, then a {args.idle_seconds:g} s window")
        time.sleep(args.settle)
        idle = measure_idle(session, args.idle_seconds)

        table.add(f"launch -> first QR, median of {len(launches)}", percentile(launches, 50), "ms", fmt="{:.0f}")
        table.add(f"launch -> first QR, max of {len(launches)}", max(launches), "ms", fmt="{:.0f}")
        n = len(inbound["full"])
        table.add(f"inbound, before deliver call -> event, p50 (n={n})", percentile(inbound["full"], 50), "ms",
                  TARGET_INBOUND_P50)
        table.add(f"inbound, before deliver call -> event, p99 (n={n})", percentile(inbound["full"], 99), "ms",
                  TARGET_INBOUND_P99)
        table.add("inbound, deliver call returned -> event, p50", percentile(inbound["after_return"], 50), "ms",
                  TARGET_INBOUND_P50)
        table.add("inbound, deliver call returned -> event, p99", percentile(inbound["after_return"], 99), "ms",
                  TARGET_INBOUND_P99)
        table.add("inbound, stand-in queued it -> event, p50", percentile(inbound["after_queue"], 50), "ms")
        table.add("inbound, stand-in queued it -> event, p99", percentile(inbound["after_queue"], 99), "ms")
        n = len(sends["record"])
        table.add(f"send, command written -> stand-in recorded, p50 (n={n})", percentile(sends["record"], 50), "ms",
                  TARGET_SEND_P50)
        table.add("send, command written -> stand-in recorded, p99", percentile(sends["record"], 99), "ms")
        table.add("send, command written -> sent event, p50", percentile(sends["event"], 50), "ms")
        table.add("send, command written -> sent event, p99", percentile(sends["event"], 99), "ms")
        table.add("PSS session process (idle, authenticated)", idle["session_pss"], "MB", fmt="{:.1f}")
        table.add("PSS chromedriver", idle["driver_pss"], "MB", fmt="{:.1f}")
        table.add("PSS session process + chromedriver", idle["session_pss"] + idle["driver_pss"], "MB", TARGET_PSS,
                  fmt="{:.1f}")
        table.add(f"PSS Chrome tree ({idle['chrome_count']} processes below chromedriver)", idle["chrome_pss"], "MB",
                  fmt="{:.1f}")
        others = idle["other_children"]
        if others:
            table.add(f"PSS other children of the session ({', '.join(p.name() for p in others)})",
                      pss_mb(others), "MB", fmt="{:.1f}")
        table.add(f"idle CPU session process, {idle['wall']:.0f} s window", idle["session_cpu"], "% of a core",
                  TARGET_IDLE_CPU, fmt="{:.3f}")
        gone = f", {idle['tree_gone']} process(es) ended in the window" if idle["tree_gone"] else ""
        table.add(f"idle CPU chromedriver + Chrome tree{gone}", idle["tree_cpu"], "% of a core", fmt="{:.3f}")

    def explain() -> None:
        log = work / "logs" / "bench.log"
        if measured and log.exists():
            print("--- end of the session's log ---", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-30:]), file=sys.stderr)

    def cleanup() -> None:
        if measured:
            progress("stopping the session")
            measured[0].stop()
        wa.stop()
        if args.keep:
            progress(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    return run_bench("session process benchmark", body, cleanup, explain)


if __name__ == "__main__":
    run_main(main)

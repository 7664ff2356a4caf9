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

"""When a node takes new sessions: stop at 90 % CPU or RAM, resume once
both are under 80 % (the old service's rule), from smoothed readings, plus
an optional cap on the number of sessions.

Readings come from :class:`LoadReader`: the cgroup's limits where the node
runs in a container with limits (v2, then v1), the host's otherwise.
:class:`Admission` itself is pure: it is handed readings and decides.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import psutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    cpu: float  # percent of the CPU the node may use
    mem: float  # percent of the memory the node may use


class Admission:
    def __init__(self, high: float = 90.0, low: float = 80.0, window: int = 5, max_sessions: int = 0):
        self.high = high
        self.low = low
        self.max_sessions = max_sessions
        self._cpu: deque[float] = deque(maxlen=window)
        self._mem: deque[float] = deque(maxlen=window)
        self.accepting = True
        self.reason = ""

    @property
    def cpu(self) -> float:
        return sum(self._cpu) / len(self._cpu) if self._cpu else 0.0

    @property
    def mem(self) -> float:
        return sum(self._mem) / len(self._mem) if self._mem else 0.0

    def update(self, reading: Reading, sessions: int) -> bool:
        """Add a reading; return whether the node takes new sessions now."""
        self._cpu.append(reading.cpu)
        self._mem.append(reading.mem)
        return self.decide(sessions)

    def decide(self, sessions: int) -> bool:
        """Whether the node takes new sessions now, kept (``accepting``)."""
        self.accepting, self.reason = self._verdict(sessions)
        return self.accepting

    def would_accept(self, sessions: int) -> bool:
        """What :meth:`decide` would say with ``sessions``, changing nothing
        (asked before each create: ``creategate.py``)."""
        return self._verdict(sessions)[0]

    def _verdict(self, sessions: int) -> tuple[bool, str]:
        """(accepting, why not): stop at ``high`` or the cap, resume only
        under ``low`` and below the cap."""
        cpu, mem = self.cpu, self.mem
        full = self.max_sessions and sessions >= self.max_sessions
        if self.accepting:
            if cpu >= self.high or mem >= self.high or full:
                return False, (f"at the session cap ({self.max_sessions})" if full
                               else f"load cpu {cpu:.0f}% mem {mem:.0f}% reached {self.high:g}%")
            return True, ""
        if cpu < self.low and mem < self.low and not full:
            return True, ""
        return False, self.reason


class LoadReader:
    """CPU and memory use, from the cgroup where it sets limits."""

    def __init__(self, cgroup_root: Path = Path("/sys/fs/cgroup")):
        self.root = cgroup_root
        self._cpu_prev: tuple[float, float] | None = None  # (monotonic, usage seconds)
        psutil.cpu_percent(None)  # the first call only primes the counter

    def read(self) -> Reading:
        return Reading(cpu=self._cpu(), mem=self._mem())

    def cpus(self) -> float | None:
        """The cgroup's CPU quota in CPUs; None without one."""
        return self._cgroup_cpus()

    # -------------------------------------------------------------- memory
    def _mem(self) -> float:
        limited = self._cgroup_mem()
        return limited if limited is not None else psutil.virtual_memory().percent

    def _cgroup_mem(self) -> float | None:
        v2_max = self.root / "memory.max"
        if v2_max.exists():
            limit = _read(v2_max)
            if limit in (None, "max"):
                return None
            usage = int(_read(self.root / "memory.current") or 0)
            inactive = _stat(self.root / "memory.stat", "inactive_file")
            return 100.0 * max(0, usage - inactive) / int(limit)
        v1 = self.root / "memory"
        limit_file = v1 / "memory.limit_in_bytes"
        if limit_file.exists():
            limit_bytes = int(_read(limit_file) or 0)
            if limit_bytes <= 0 or limit_bytes >= psutil.virtual_memory().total:
                return None  # "no limit" is a huge number in v1
            usage = int(_read(v1 / "memory.usage_in_bytes") or 0)
            inactive = _stat(v1 / "memory.stat", "total_inactive_file")
            return 100.0 * max(0, usage - inactive) / limit_bytes
        return None

    # ----------------------------------------------------------------- cpu
    def _cpu(self) -> float:
        quota_cpus = self._cgroup_cpus()
        usage = self._cgroup_cpu_seconds() if quota_cpus else None
        if quota_cpus is None or usage is None:
            return psutil.cpu_percent(None)
        now = time.monotonic()
        prev, self._cpu_prev = self._cpu_prev, (now, usage)
        if prev is None or now <= prev[0]:
            return 0.0
        return min(100.0, 100.0 * (usage - prev[1]) / (now - prev[0]) / quota_cpus)

    def _cgroup_cpus(self) -> float | None:
        quota: str | None  # cpu.max's fields, or v1's files (None: not there)
        period: str | None
        v2 = _read(self.root / "cpu.max")
        if v2 is not None:
            quota, _, period = v2.partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or 100000)
        quota = _read(self.root / "cpu" / "cpu.cfs_quota_us")
        period = _read(self.root / "cpu" / "cpu.cfs_period_us")
        if quota is None or period is None or int(quota) <= 0:
            return None
        return int(quota) / int(period)

    def _cgroup_cpu_seconds(self) -> float | None:
        usec = _stat(self.root / "cpu.stat", "usage_usec", default=None)
        if usec is not None:
            return usec / 1e6
        nsec = _read(self.root / "cpuacct" / "cpuacct.usage")
        return int(nsec) / 1e9 if nsec is not None else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, PermissionError, OSError):
        return None


@overload
def _stat(path: Path, name: str, default: int = 0) -> int: ...


@overload
def _stat(path: Path, name: str, default: None) -> int | None: ...


def _stat(path: Path, name: str, default: int | None = 0) -> int | None:
    text = _read(path)
    if text:
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    return default

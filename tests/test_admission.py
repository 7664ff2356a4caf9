"""Admission: 90 % in, 80 % out, smoothed, with a session cap.  Readings
are fed in directly, and read from cgroup files laid out as the kernel does."""

from __future__ import annotations

import errno

import pytest

from support import FakeLoad, node_rig
from wwnode import admission
from wwnode.admission import Admission, LoadReader, Reading


def feed(adm: Admission, cpu: float, mem: float, n: int = 1, sessions: int = 0) -> bool:
    for _ in range(n):
        result = adm.update(Reading(cpu, mem), sessions)
    return result


def test_stops_at_high_and_resumes_only_under_low():
    adm = Admission(high=90, low=80, window=1)
    assert feed(adm, 50, 50)
    assert not feed(adm, 90, 10)  # CPU reached 90
    assert not feed(adm, 85, 10)  # under 90 but not under 80
    assert not feed(adm, 70, 85)  # CPU fine, RAM not under 80
    assert feed(adm, 79, 79)
    assert not feed(adm, 10, 95)  # RAM alone stops it too


def test_one_spike_does_not_flip_it():
    adm = Admission(high=90, low=80, window=5)
    feed(adm, 40, 40, n=5)
    assert feed(adm, 100, 40)  # average 52
    feed(adm, 100, 40, n=4)  # sustained: average 100
    assert not adm.accepting
    assert not feed(adm, 0, 40)  # average 80: not under 80 yet
    assert feed(adm, 0, 40, n=2)


def test_session_cap():
    adm = Admission(max_sessions=2, window=1)
    assert feed(adm, 1, 1, sessions=1)
    assert not feed(adm, 1, 1, sessions=2)
    assert "cap" in adm.reason
    assert feed(adm, 1, 1, sessions=1)


def write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


class Clock:
    """Monotonic time the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(admission, "time", c)  # the reader's clock only
    return c


def test_cgroup_v2_limits_are_used(tmp_path, clock):
    write(tmp_path, "memory.max", "1000000\n")
    write(tmp_path, "memory.current", "950000\n")
    write(tmp_path, "memory.stat", "anon 500000\ninactive_file 100000\nactive_file 1\n")
    write(tmp_path, "cpu.max", "50000 100000\n")  # half a CPU
    write(tmp_path, "cpu.stat", "usage_usec 1000000\nuser_usec 1\n")
    reader = LoadReader(tmp_path)
    first = reader.read()
    assert first.mem == pytest.approx(85.0)  # (950000 - 100000) / 1000000
    assert first.cpu == 0.0  # one sample of usage: no rate yet
    clock.now += 2
    write(tmp_path, "cpu.stat", "usage_usec 1500000\nuser_usec 1\n")
    assert reader.read().cpu == pytest.approx(50.0)  # 0.5 s of CPU in 2 s, of half a CPU
    clock.now += 1
    write(tmp_path, "cpu.stat", "usage_usec 2500000\nuser_usec 1\n")
    assert reader.read().cpu == 100.0  # a full second in one: over the quota, capped


def test_cgroup_v2_without_limits_falls_back_to_the_host(tmp_path):
    write(tmp_path, "memory.max", "max\n")
    write(tmp_path, "cpu.max", "max 100000\n")
    reader = LoadReader(tmp_path)
    assert reader._cgroup_mem() is None and reader._cgroup_cpus() is None
    reading = reader.read()
    assert 0 <= reading.mem <= 100 and 0 <= reading.cpu <= 100


def test_cgroup_v1_limits_are_used(tmp_path, clock):
    write(tmp_path, "memory/memory.limit_in_bytes", "2000000\n")
    write(tmp_path, "memory/memory.usage_in_bytes", "1500000\n")
    write(tmp_path, "memory/memory.stat", "total_inactive_file 500000\n")
    write(tmp_path, "cpu/cpu.cfs_quota_us", "200000\n")  # two CPUs
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "cpuacct/cpuacct.usage", "0\n")
    reader = LoadReader(tmp_path)
    assert reader.read().mem == pytest.approx(50.0)  # (1500000 - 500000) / 2000000
    clock.now += 4
    write(tmp_path, "cpuacct/cpuacct.usage", str(2 * 10**9) + "\n")  # nanoseconds
    assert reader.read().cpu == pytest.approx(25.0)  # 2 s of CPU in 4 s, of two CPUs


def test_this_machine_gives_sane_readings():
    reader = LoadReader()
    reading = reader.read()
    assert 0 <= reading.cpu <= 100 and 0 < reading.mem < 100


# -------------------------------------------- a reading that fails
class Unreadable(FakeLoad):
    """Load figures that the system may refuse, as /proc/stat does to a
    process without a free file descriptor (EMFILE)."""

    def __init__(self):
        super().__init__()
        self.refuse = False

    def read(self):
        if self.refuse:
            raise OSError(errno.EMFILE, "Too many open files", "/proc/stat")
        return super().read()


def test_a_load_that_cannot_be_read_leaves_the_node_running_on_its_last_figures(tmp_path, caplog):
    load = Unreadable()
    rig = node_rig(tmp_path / "data", load=load)
    load.reading = Reading(95.0, 10.0)
    for i in range(5):
        rig.node.gate.sample_load(float(i))  # the average reaches 90 %: full
    assert rig.broker.accepting_creates is False
    load.refuse = True
    for i in range(5, 10):
        rig.node.gate.sample_load(float(i))  # raised out of the loop before: the node ended, sessions killed
    assert rig.broker.accepting_creates is False and rig.node.admission.cpu == pytest.approx(95.0)
    assert sum("cannot read the load" in r.message for r in caplog.records) == 1  # said once, not each time
    load.refuse, load.reading = False, Reading(10.0, 10.0)
    for i in range(10, 15):
        rig.node.gate.sample_load(float(i))
    assert rig.broker.accepting_creates is True

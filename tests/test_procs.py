"""What a starting node kills: only processes provably its own sessions'
(its uid; a session process on one of its profiles; Chromium with exactly
``--user-data-dir=`` one of its profiles).  Real processes, no services."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from support import wait_for
from wwnode.paths import Paths
from wwnode.procs import Processes, left_on

SLEEP = "import time; time.sleep(120)"


@pytest.fixture
def started():
    procs: list[subprocess.Popen] = []

    def start(argv0: str, *args: str, python: str = sys.executable, **popen) -> subprocess.Popen:
        # argv[0] as given (``chromium``...), the program Python itself.
        proc = subprocess.Popen([argv0, "-c", SLEEP, *args], executable=python, **popen)
        procs.append(proc)
        wait_for(lambda: psutil.Process(proc.pid).cmdline()[:1] == [argv0], what="its command line")
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_node_kills_only_what_runs_its_sessions_at_start(tmp_path, started):
    paths = Paths(tmp_path / "data")
    paths.ensure()
    profile = paths.profile("k")
    profile.mkdir(parents=True)
    log = paths.session_dir("k") / "notes.txt"
    log.write_text("an operator's file\n")

    browser = started("chromium", f"--user-data-dir={profile}", "--type=browser")
    session = started("python3", "-m", "sessionproc", "--key", "k", "--profile", str(profile))
    tail = subprocess.Popen(["tail", "-f", str(log)], stdout=subprocess.DEVNULL)
    near = started("chromium", f"--user-data-dir={profile}-old")  # another folder beside ours
    mentions = started("python3", f"--profile={profile}", str(paths.sessions))  # no session process
    server = started("python3", "-m", "sessionproc.forkserver", "--module", "sessionproc",
                     "--sessions-dir", str(paths.sessions))
    another_server = started("python3", "-m", "sessionproc.forkserver", "--module", "sessionproc",
                             "--sessions-dir", str(paths.sessions) + "-old")
    try:
        assert Processes().kill_orphans(paths.sessions, "sessionproc") == 3
        for proc in (browser, session, server):
            assert proc.wait(10) == -9
        for proc in (tail, near, mentions, another_server):
            assert proc.poll() is None
    finally:
        tail.kill()
        tail.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs another user to run a process as")
def test_a_node_leaves_another_users_processes_alone(tmp_path, started):
    paths = Paths(tmp_path / "data")
    paths.ensure()
    profile = paths.profile("k")
    profile.mkdir(parents=True)
    # The system's Python: another user may not reach the one of this venv.
    theirs = started("chromium", f"--user-data-dir={profile}", python="/usr/bin/python3", user="nobody", cwd="/")
    assert Processes().kill_orphans(paths.sessions, "sessionproc") == 0
    assert theirs.poll() is None


def test_what_counts_as_a_session_or_a_browser_of_ours():
    ours = {"/d/sessions/k/profile"}
    assert left_on(["python", "-m", "sessionproc", "--key", "k", "--profile", "/d/sessions/k/profile"], ours,
                   "sessionproc")
    assert not left_on(["python", "-m", "sessionproc", "--profile", "/d/sessions/x/profile"], ours, "sessionproc")
    assert not left_on(["python", "-m", "other", "--profile", "/d/sessions/k/profile"], ours, "sessionproc")
    assert left_on(["/usr/lib/chromium/chromium", "--user-data-dir=/d/sessions/k/profile"], ours, "sessionproc")
    assert not left_on(["/usr/lib/chromium/chromium", "--user-data-dir=/d/sessions/k/profile/x"], ours,
                       "sessionproc")
    assert not left_on(["less", "--user-data-dir=/d/sessions/k/profile"], ours, "sessionproc")
    assert not left_on(["tail", "-f", "/d/sessions/k/profile/Default/Preferences"], ours, "sessionproc")
    assert not left_on([], ours, "sessionproc")
    server = ["python", "-m", "sessionproc.forkserver", "--module", "sessionproc", "--sessions-dir", "/d/sessions"]
    assert left_on(server, ours, "sessionproc", "/d/sessions")
    assert not left_on(server, ours, "sessionproc", "/e/sessions")
    assert not left_on(server, ours, "sessionproc")

"""Warm starts (``wwnode/warmstarts.py``, ``sessionproc/forkserver.py``): a
node's sessions forked from one server that has imported them, each the
node's own child with a cold start's command line; a server gone costs
cold starts, never a session; and a server that is asked nonsense answers
it and lives on."""

from __future__ import annotations

import array
import os
import signal
import socket
import subprocess
import sys

import orjson
import psutil
import pytest

from support import wait_for, with_tests_dir
from wwnode.procs import command_line
from wwnode.warmstarts import FIRST_SERVER_WAIT, WarmStarts

pytestmark = pytest.mark.services


def session_process(node, key: str) -> psutil.Process:
    [pid] = [pid for pid in node.session_pids() if key in command_line(psutil.Process(pid).cmdline())]
    return psutil.Process(pid)


def fork_servers(node) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(node.proc.pid).children():
        try:
            if "sessionproc.forkserver" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:  # ended meanwhile
            continue
    return found


def test_sessions_are_forked_warm_as_the_nodes_children_named_as_cold_ones(fake_nodes, rabbit, fake):
    node = fake_nodes()
    wait_for(lambda: "fork server ready" in node.log_text(), what="the fork server to be ready")
    [server] = fork_servers(node)
    for key in ("k-warm-1", "k-warm-2"):
        rabbit.publish("create_instance", {"key": key})
        rabbit.expect("qr_instance", key=key)
    for key in ("k-warm-1", "k-warm-2"):
        session = session_process(node, key)
        assert session.ppid() == node.proc.pid  # adopted: the node waits for it and reads its status
        assert os.getpgid(session.pid) == session.pid  # a group of its own: a kill reaches its browser
        cmdline = command_line(session.cmdline())  # its title, as ps shows it
        assert cmdline[1:5] == ["-m", "fakesession", "--key", key]
        assert "--profile" in cmdline
        # The title was written over the server's command line, not over the
        # environment: /proc says what the session runs with.
        assert session.environ().get("FAKESESSION_DIR")
        # Forked, not a new Python: it started after the server and shares its executable.
        assert session.create_time() >= server.create_time()
    assert node.log_text().count("(forked warm)") == 2  # the node's log says which starts were warm

    # The exit status is the session's own, as with a cold start: a crash
    # is a crash (restarted), a stop is a stop.
    fake.act("k-warm-1", {"do": "crash"})
    rabbit.expect("state_instance", key="k-warm-1", state="restarting")
    rabbit.expect("qr_instance", key="k-warm-1")  # its next, from the restarted session
    rabbit.publish("destroy_instance", {"key": "k-warm-2"})
    rabbit.expect("state_instance", key="k-warm-2", state="stopped")
    wait_for(lambda: len(node.session_pids()) == 1, what="k-warm-2's process to be reaped")


def test_a_fork_server_gone_costs_cold_starts_then_is_started_again(fake_nodes, rabbit, fake):
    node = fake_nodes()
    wait_for(lambda: "fork server ready" in node.log_text(), what="the fork server to be ready")
    rabbit.publish("create_instance", {"key": "k-before"})
    rabbit.expect("qr_instance", key="k-before")
    [server] = fork_servers(node)
    server.kill()
    # The session it forked is the node's, and lives on.
    before = session_process(node, "k-before")
    rabbit.publish("create_instance", {"key": "k-after"})
    rabbit.expect("qr_instance", key="k-after")
    assert before.is_running() and before.status() != psutil.STATUS_ZOMBIE
    wait_for(lambda: node.log_text().count("fork server ready") == 2, timeout=30,
             what="a new fork server (after its backoff)")
    assert "sessions start cold until it is started again" in node.log_text()
    [again] = fork_servers(node)
    assert again.pid != server.pid
    rabbit.publish("create_instance", {"key": "k-warm-again"})
    rabbit.expect("qr_instance", key="k-warm-again")
    assert session_process(node, "k-warm-again").create_time() >= again.create_time()


def test_the_sessions_a_node_restores_as_it_starts_wait_for_its_fork_server(fake_nodes, rabbit):
    # Restores go at the node's first turn, before its fork server has
    # imported the session's program: they wait for the server rather than
    # each import the same itself.
    node = fake_nodes()
    rabbit.publish("create_instance", {"key": "k-early"})
    rabbit.expect("qr_instance", key="k-early")
    node.terminate()
    node.start()
    rabbit.expect("qr_instance", key="k-early")  # its restored session's
    [server] = fork_servers(node)
    assert session_process(node, "k-early").create_time() >= server.create_time()
    assert node.log_text().count("(forked warm)") == 2


def test_starts_wait_for_the_first_server_only_until_it_is_late(tmp_path, caplog):
    env = {**os.environ, "PYTHONPATH": with_tests_dir(os.environ.get("PYTHONPATH"))}
    warm = WarmStarts("stuckimport", tmp_path, env)  # its import never ends: never ready
    try:
        assert warm.awaited()  # before its first tick too: the restores at a node's start wait
        warm.tick(100.0)
        [server] = [p for p in psutil.Process().children() if "sessionproc.forkserver" in p.cmdline()]
        warm.tick(100.0 + FIRST_SERVER_WAIT - 0.01)
        assert warm.awaited()
        warm.tick(100.0 + FIRST_SERVER_WAIT)
        assert not warm.awaited() and "not ready after" in caplog.text
        assert warm.spawn(["--key", "k"], 2) is None  # a cold start, then
        assert server.is_running()  # still welcome once ready
    finally:
        warm.close()


def test_warm_starts_off_starts_every_session_as_a_new_python(fake_nodes, rabbit):
    node = fake_nodes(warm_starts="false")
    rabbit.publish("create_instance", {"key": "k-cold"})
    rabbit.expect("qr_instance", key="k-cold")
    assert fork_servers(node) == []
    assert "started process" in node.log_text() and "forked warm" not in node.log_text()
    assert session_process(node, "k-cold").cmdline()[1:3] == ["-m", "fakesession"]  # as Popen started it


# ------------------------------------------------- the server on its own
@pytest.fixture
def server():
    """A fork server of the stand-in session, spoken to as the node does."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = {**os.environ, "PYTHONPATH": with_tests_dir(os.environ.get("PYTHONPATH"))}
    proc = subprocess.Popen([sys.executable, "-m", "sessionproc.forkserver", "--module", "fakesession",
                             "--sessions-dir", "/nonexistent"], stdin=theirs.fileno(), env=env)
    theirs.close()
    ours.settimeout(30)
    assert orjson.loads(ours.recv(4096)) == {"ready": True}
    yield proc, ours
    ours.close()
    assert proc.wait(10) == 0  # it ends with its socket


def ask(sock: socket.socket, data: bytes, fds: list[int]) -> dict:
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    sock.sendmsg([data], ancillary)
    return orjson.loads(sock.recv(4096))


@pytest.mark.parametrize("data, count", [
    (b"not json", 3),
    (b"[1, 2]", 3),
    (orjson.dumps({"argv": "--key k"}), 3),
    (orjson.dumps({"argv": ["--key", "k"]}), 2),
    (orjson.dumps({"argv": ["--key", "k"]}), 0),
])
def test_the_server_answers_a_bad_start_with_why_and_lives_on(server, data, count):
    proc, sock = server
    fds = [os.open(os.devnull, os.O_RDWR) for _ in range(count)]
    try:
        answer = ask(sock, data, fds)
    finally:
        for fd in fds:
            os.close(fd)
    assert set(answer) == {"error"} and answer["error"]
    assert proc.poll() is None
    # and the next, equally bad, is answered too: it did not stop reading.
    assert "error" in ask(sock, b"{}", [os.open(os.devnull, os.O_RDONLY) for _ in range(3)])


def test_a_session_the_node_did_not_adopt_gives_up(server, tmp_path):
    """Here the asker (this test) is no subreaper: the forked session is
    adopted by someone else, so it must not run a session its node cannot
    wait for.  It says why in its log and exits as one that cannot start."""
    proc, sock = server
    log = tmp_path / "session.log"
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT, 0o600)
    answer = ask(sock, orjson.dumps({"argv": ["--key", "k-orphan", "--profile", str(tmp_path / "p"),
                                              "--url", "http://127.0.0.1:1/"]}), [stdin_r, stdout_w, log_fd])
    for fd in (stdin_r, stdout_w, log_fd):
        os.close(fd)
    pid = answer["pid"]
    wait_for(lambda: "was not adopted" in log.read_text(), timeout=20, what="the session to give up")
    assert os.read(stdout_r, 100) == b""  # it said nothing on the protocol's pipe, and closed it
    os.close(stdin_w)
    os.close(stdout_r)
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             what="the session to exit")
    assert proc.poll() is None


def test_a_fork_server_dies_with_its_node(fake_nodes, rabbit):
    node = fake_nodes()
    wait_for(lambda: fork_servers(node), what="the fork server")
    [server] = fork_servers(node)
    os.kill(node.proc.pid, signal.SIGKILL)
    node.proc.wait()
    wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, timeout=15,
             what="the fork server to die with its node")


def test_what_the_fork_server_imports_includes_the_driver_a_session_starts():
    # selenium.webdriver imports Chrome at its first use: a session forked
    # warm would import it itself at each start (0.13-0.21 s of CPU, and its
    # own copy of the modules).  The server imports what the session's
    # program imports, so that program names Chrome at import.
    probe = ("import sys, sessionproc.__main__; "
             "print(sorted(m for m in ('selenium.webdriver.chrome.webdriver', 'selenium.webdriver.chrome.options') "
             "if m not in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"

"""The README's quick start, run as written: its two offline blocks (the run
command with the stand-in as WhatsApp Web, then a client that creates a
session, has the stand-in's phone scan its code, sends, receives and
destroys), copied out of the README itself so that the text cannot drift
from what works.  Only the setup is not run here (it installs packages);
the blocks get this test's ports, virtual host and Redis database through
the environment and the stand-in's port, nothing else."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from support import all_gone, chrome_processes_under, free_ports, idle_cgroup, wait_for

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
STAND_IN_PORT = "8090"  # the port the README's blocks use


def stand_ins(port: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        if any("fakewa" in part for part in cmdline) and str(port) in cmdline:
            found.append(p)
    return found


def readme_block(name: str) -> str:
    """The ```sh block after ``<!-- quick-start:NAME -->`` in the README."""
    found = re.search(rf"<!-- quick-start:{name} -->\s*```sh\n(.*?)```", README.read_text(), re.S)
    assert found, f"the README has no quick-start:{name} block"
    return found.group(1)


def test_the_readme_blocks_use_one_spelling_of_the_command():
    text = readme_block("node") + readme_block("client")
    assert not re.search(r"(?<![/\w])wwnode (create|send|events|destroy|status|demo)", text)
    assert ".venv/bin/wwnode create" in text


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_the_quick_start_runs_as_written(tmp_path, rabbit, rabbit_url, redis_url):
    # ``rabbit``: the worker's virtual host emptied first.  A create an
    # earlier test left waiting there (one no node was to take) was taken by
    # the quick start's node, whose second page then showed a QR code too,
    # and the block's scan of "the one code shown" was refused for 150 s.
    assert (ROOT / ".venv" / "bin" / "wwnode").exists(), "the setup (deploy/setup-debian.sh) makes .venv"
    (port,) = free_ports(1)
    node_block = readme_block("node").replace(STAND_IN_PORT, str(port))
    client_block = readme_block("client").replace(STAND_IN_PORT, str(port))
    env = {
        **os.environ, "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, "WWNODE_RUN": str(tmp_path / "run"),
        "DATA_DIR": str(tmp_path / "data"), "NODE_ID": "quickstart-node", "METRICS_ADDR": "127.0.0.1:0",
        "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp_path / "idle-cgroup")),  # a busy machine still takes the create
    }
    node_out = tmp_path / "node-terminal.out"
    with open(node_out, "wb") as out:
        # A session of its own, as a terminal's foreground job: Ctrl-C goes to its whole group.
        node = subprocess.Popen(["bash", "-c", node_block], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: "run-node: ready:" in node_out.read_text() or node.poll() is not None, timeout=180,
                 interval=0.3, what="the run command's ready block")
        assert node.poll() is None, node_out.read_text()
        # The second terminal: a folder of its own (no data/run of a run command in the checkout is
        # read), with the checkout's .venv, as the README's "in the same folder" has it.
        client_dir = tmp_path / "client"
        client_dir.mkdir()
        (client_dir / ".venv").symlink_to(ROOT / ".venv")
        # Its output to a file, and a session of its own: the jobs it puts
        # in the background (the stand-in, the create) hold a pipe open, and
        # a block that stops early would leave them holding it.
        client_out = tmp_path / "client-terminal.out"
        with open(client_out, "wb") as out:
            client = subprocess.Popen(["bash", "-e", "-c", client_block], cwd=client_dir, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = client.wait(timeout=240)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(client.pid, signal.SIGKILL)  # what it left in the background, if anything
            except ProcessLookupError:
                pass
        said = client_out.read_text(errors="replace")
        print("\n" + said)
        assert code == 0, f"the client block {'did not end in 240 s' if code is None else f'exited {code}'}:\n{said}"
        assert "shop1 is ready as 5511999990001@c.us" in said
        assert re.search(r"sent: message_id=\S+ id=\w+", said)
        assert re.search(r"message_instance .*shop1.*Hi!", said), "the events show the contact's answer"
        assert "shop1 stopped" in said
        wait_for(lambda: not stand_ins(port), timeout=10, what="the block's last line to stop the stand-in")
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGINT)  # Ctrl-C in the first terminal
        for p in stand_ins(port):  # only after a failure
            p.kill()
        assert node.wait(120) == 0
    wait_for(lambda: all_gone(chrome_processes_under(tmp_path / "data")), timeout=15, what="no Chrome left")

"""What the run command (``deploy/run-node.sh``) says once the node takes
commands: one block on its terminal, with what to do next.

supervisord runs this once per start, beside the node, with the node's
environment (its URLs, with the passwords of the servers run here) and its
standard output on the run command's terminal.  It waits until the node's
own command queue has a consumer: from then on a create, a send or a
destroy is taken, which is what "ready" means to whoever sends them.  A
node that supervisord gave up on (FATAL: a bad setting, a twin elsewhere)
is said instead, with where its output is; so is a node still not taking
commands after ``WWNODE_READY_TIMEOUT`` seconds (300).

Only the block goes to the terminal: supervisord's own lines go to its log
(``silent`` in deploy/supervisord.conf), so a normal start shows nothing
that looks like trouble.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_TIMEOUT = 300.0
POLL = 0.5


def shown(path: Path, home: Path) -> str:
    """A path as the operator typed the command: relative to the checkout
    when inside it."""
    try:
        return str(path.relative_to(home))
    except ValueError:
        return str(path)


def block(node_id: str, took: float, rabbit_where: str, run_dir: Path, home: Path, credentials: bool,
          panel_port: str | None, python: str) -> str:
    """The lines the terminal gets once the node takes commands."""
    wwnode = shown(Path(python).parent / "wwnode", home)
    run = shown(run_dir, home)
    if credentials:
        urls = f"set -a; . {run}/credentials; set +a      (the servers' passwords are in that file)"
    else:
        urls = "the node's RABBIT_MQ_URL and REDIS_URL (.env or the environment): no server was started here"
    lines = [
        f"run-node: ready: node {node_id} takes commands from RabbitMQ at {rabbit_where} ({took:.1f} s)",
        f"  a client's URLs: {urls}",
        f"  then:            {wwnode} status   ({wwnode} --help lists create, send, events, destroy, dashboard)",
        f"  logs:            {run}/wwnode.out (the node), {run}/supervisord.log, and a .out per server there",
    ]
    if panel_port:
        lines.append(f"  broker's panel:  http://127.0.0.1:{panel_port}/ (user wwnode, WWNODE_RABBITMQ_PASSWORD "
                     f"in {run}/credentials)")
    lines.append("  stop:            Ctrl-C here (or SIGTERM to this command): the node first, then the servers")
    return "\n".join(lines)


def node_state(run_dir: Path, conf: Path, supervisorctl: str) -> str:
    """supervisord's word for the node (RUNNING, STARTING, BACKOFF, FATAL, ...)."""
    done = subprocess.run([supervisorctl, "-c", str(conf), "status", "wwnode"], capture_output=True, text=True,
                          env={**os.environ, "WWNODE_RUN": str(run_dir)})
    words = done.stdout.split()
    return words[1] if len(words) > 1 else "UNKNOWN"


def consumers(rabbit_mq_url: str, queue: str) -> int:
    """Consumers of the node's own queue now; 0 while the broker is not
    there yet, or the queue not declared yet."""
    from wwnode.tools.client import Broker, Unreachable

    try:
        with Broker(rabbit_mq_url) as broker:
            depth = broker.queue_depth(queue)
    except Unreachable:
        return 0
    return depth[1] if depth else 0


def wait_ready(taking: Callable[[], bool], state: Callable[[], str], clock: Callable[[], float],
               pause: Callable[[float], None], timeout: float) -> str:
    """``ready``, ``fatal`` or ``timeout``: polls until one holds."""
    deadline = clock() + timeout
    while True:
        if taking():
            return "ready"
        if state() == "FATAL":
            return "fatal"
        if clock() >= deadline:
            return "timeout"
        pause(POLL)


def main() -> int:
    from wwnode.amqp.topology import node_queue_name
    from wwnode.config import ConfigError, load, redact_url

    logging.getLogger("pika").setLevel(logging.CRITICAL)  # a broker still starting is expected here
    began = time.monotonic()
    home = Path(os.environ["WWNODE_HOME"])
    run_dir = Path(os.environ["WWNODE_RUN"])
    os.chdir(home)
    try:
        cfg = load()
    except ConfigError as e:  # the node says it too, in its own log; FATAL follows
        print(f"run-node: the node cannot start: {e}", flush=True)
        return 0
    conf = home / "deploy" / "supervisord.conf"
    supervisorctl = str(Path(sys.executable).parent / "supervisorctl")
    timeout = float(os.environ.get("WWNODE_READY_TIMEOUT") or DEFAULT_TIMEOUT)
    queue = node_queue_name(cfg.node_id)
    outcome = wait_ready(lambda: consumers(cfg.rabbit_mq_url, queue) > 0,
                         lambda: node_state(run_dir, conf, supervisorctl), time.monotonic, time.sleep, timeout)
    run = shown(run_dir, home)
    if outcome == "ready":
        local_rabbitmq = os.environ.get("WWNODE_LOCAL_RABBITMQ") == "true"
        print(block(cfg.node_id, time.monotonic() - began, redact_url(cfg.rabbit_mq_url), run_dir, home,
                    (run_dir / "credentials").exists() and bool(os.environ.get("WWNODE_CREDENTIALS")),
                    os.environ.get("WWNODE_RABBITMQ_MANAGEMENT_PORT") if local_rabbitmq else None,
                    sys.executable), flush=True)
    elif outcome == "fatal":
        print(f"run-node: the node could not start and supervisord gave up on it (FATAL); why is at the end "
              f"of {run}/wwnode.out. Ctrl-C stops the rest.", flush=True)
    else:
        print(f"run-node: the node takes no commands after {timeout:g} s (still trying); see "
              f"{run}/wwnode.out and {run}/supervisord.log", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

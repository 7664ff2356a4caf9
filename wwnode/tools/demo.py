"""``wwnode demo``: the whole product in one command, offline and without a phone.

It starts the WhatsApp Web stand-in in this process and a real node
(``wwnode run``, real Chromium) in a temporary ``DATA_DIR``, then, as a
client would, through RabbitMQ and Redis only: creates a session, shows its
QR code in the terminal, lets the stand-in's phone scan it, sends a message
and has a contact answer, printing every event as it comes; then destroys
the session and cleans up: the node stopped, no Chrome left, the temporary
folder removed, Ctrl-C included.

RabbitMQ and Redis are the ones the settings name (``RABBIT_MQ_URL``,
``REDIS_URL``); they must run (``deploy/run-node.sh`` starts them on a
fresh machine).  The demo's node must not take creates meant for a real
fleet on the same broker, nor a real node the demo's: so the demo runs in
a RabbitMQ virtual host of its own (``--vhost``, made with ``rabbitmqctl``
when missing; see :func:`demo_vhost_url`).  In Redis it uses a key and a
node name of its own (``demo-...``), removed at the end.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pika.exceptions
import psutil

from ..amqp.topology import (COMMAND_QUEUES, DEAD_LETTER_QUEUE, LEGACY_EVENT_QUEUES, REROUTE_QUEUE,
                             node_queue_name)
from .client import Broker, Unreachable, open_redis
from .eventlines import describe
from ..fakewa import FakeWA, Settings
from ..fakewa.client import Control
from .qrterm import QrScreen

PHONE = "5511900000001"  # the stand-in's phone that links the session
CONTACT = "5511900000002"  # a contact who gets a message and answers
PR_SET_PDEATHSIG = 1


class DemoFailed(Exception):
    pass


# ---------------------------------------------------------------- broker

def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, ""))


def _rabbitmqctl_nodes(url: str) -> list[list[str]]:
    """How to reach the broker with ``rabbitmqctl``: the machine's own
    service (the default node), then the one ``deploy/run-node.sh`` runs
    (its node name follows the port)."""
    port = urlsplit(url).port or 5672
    own = os.environ.get("WWNODE_RABBITMQ_NODENAME", f"wwnode-{port}@localhost")
    return [[], ["-n", own]]


def demo_vhost_url(url: str, vhost: str, say) -> str:
    """The URL of the demo's virtual host.  One that the user may use
    already is taken as it is; otherwise it is made with ``rabbitmqctl``
    (AMQP cannot make one), on a broker of this machine.  Anything else is
    a clear error saying what to do."""
    target = with_vhost(url, vhost)
    try:
        Broker(target).close()
        return target
    except Unreachable:
        pass
    user = urlsplit(url).username or "guest"
    host = urlsplit(url).hostname or "127.0.0.1"
    ctl = shutil.which("rabbitmqctl", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if ctl and host in ("127.0.0.1", "localhost", "::1"):
        for node in _rabbitmqctl_nodes(url):
            made = subprocess.run([ctl, *node, "add_vhost", vhost], capture_output=True, timeout=60)
            if made.returncode != 0 and b"already exists" not in made.stdout + made.stderr:
                continue
            subprocess.run([ctl, *node, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                           capture_output=True, timeout=60, check=False)
            try:
                Broker(target).close()
                say(f"made the RabbitMQ virtual host {vhost} for the demo")
                return target
            except Unreachable:
                continue
    raise DemoFailed(
        f"the demo runs in a RabbitMQ virtual host of its own ({vhost}) and could not use or make it. "
        f"Make it where the broker runs: rabbitmqctl add_vhost {vhost} && "
        f"rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*', or name one with --vhost")


# ------------------------------------------------------------------ node

class DemoNode:
    """``wwnode run`` in a temporary data folder, stopped by ``stop()`` (and
    by the kernel if this process dies first)."""

    def __init__(self, data_dir: Path, env: dict):
        self.data_dir = data_dir
        self.out_path = data_dir.parent / "node.out"
        with open(self.out_path, "wb") as out:
            # A session of its own: Ctrl-C in the terminal reaches the demo,
            # which stops the node in order, not both at once.
            self.proc = subprocess.Popen([sys.executable, "-m", "wwnode.tools.cli", "run"], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output_tail(self, lines: int = 15) -> str:
        text = self.out_path.read_text(errors="replace") if self.out_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int:
        """Stop the node; the number of browsers it left (killed here)."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        left = chrome_under(self.data_dir)  # the node stops its sessions; this is the belt
        for p in left:
            p.kill()
        return len(left)


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def chrome_under(folder: Path) -> list[psutil.Process]:
    """Browser processes whose profile is inside ``folder``."""
    marker = "--user-data-dir=" + str(folder.resolve()) + os.sep
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(arg.startswith(marker) for arg in p.info["cmdline"] or []):
            found.append(p)
    return found


# ------------------------------------------------------------------ flow

class Demo:
    def __init__(self, cfg, vhost: str, timeout: float, out=None):
        self.cfg = cfg
        self.vhost = vhost
        self.timeout = timeout
        self.screen = QrScreen(out)
        self.started = time.monotonic()
        self.key = f"demo-{uuid.uuid4().hex[:8]}"
        self.session_up = False  # created and not yet destroyed

    def say(self, text: str) -> None:
        self.screen.say(f"[{time.monotonic() - self.started:5.1f} s] {text}")

    def run(self) -> float:
        """The whole demo; its time in seconds.  ``DemoFailed`` or
        ``Unreachable`` say what went wrong; cleanup happens either way."""
        open_redis(self.cfg.redis_url).close()  # says clearly if Redis is not there
        Broker(self.cfg.rabbit_mq_url).close()
        url = demo_vhost_url(self.cfg.rabbit_mq_url, self.vhost, self.say)
        tmp = Path(tempfile.mkdtemp(prefix="wwnode-demo-"))
        wa = node = None
        try:
            wa = FakeWA(settings=Settings(sync_delay=0.3)).start()
            self.say(f"WhatsApp Web stand-in at {wa.url}")
            node = DemoNode(tmp / "data", self._node_env(url, wa.url, tmp / "data"))
            self.say(f"node {self.node_id} started (pid {node.proc.pid}, data in {tmp})")
            with Broker(url) as broker:
                broker.follow(("#",))
                self._walk(broker, Control(wa.url), node)
        finally:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
            try:
                if self.session_up and node is not None and node.alive():
                    self._destroy_left_session(url, node)
                if node is not None:
                    left = node.stop()
                    self.say(f"node stopped (exit {node.proc.returncode}); "
                             + (f"killed {left} browser process(es) it left" if left else "no Chrome left"))
                    self._clear_broker(url)
                if wa is not None:
                    wa.stop()
                shutil.rmtree(tmp, ignore_errors=True)
                self.say(f"removed {tmp}")
            finally:
                signal.signal(signal.SIGINT, previous)
        return time.monotonic() - self.started

    @property
    def node_id(self) -> str:
        return f"{self.key}-node"

    def _node_env(self, url: str, wa_url: str, data_dir: Path) -> dict:
        return {**os.environ, "RABBIT_MQ_URL": url, "REDIS_URL": self.cfg.redis_url, "WA_URL": wa_url,
                "NODE_ID": self.node_id, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING",
                # One session: a machine that is busy right now should not
                # keep the demo's node from taking it.
                "ADMIT_HIGH": "100", "ADMIT_LOW": "99.9", "MAX_SESSIONS": "1",
                # Its metrics on a port of its own: 9464 may be a real node's.
                "METRICS_ADDR": "127.0.0.1:0"}

    FATAL = ("command_failed", "auth_failure_instance", "disconnected_instance")

    def _wait(self, broker: Broker, node: DemoNode, what: str, done, fatal=FATAL) -> dict:
        """Print events until ``done(event)`` is true for one; that event."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not node.alive():
                raise DemoFailed(f"the node exited ({node.proc.returncode}) while waiting for {what}:\n"
                                 f"{node.output_tail()}")
            e = broker.next_event(0.5)
            if e is None:
                continue
            self.say(describe(e))
            if e.get("event") == "qr_instance" and e.get("key") == self.key:
                self.screen.show_qr(e["qr"], f"QR code {e.get('attempt')} of {self.key} (the stand-in's phone "
                                             "scans it; a real phone would, too)")
            if e.get("key") == self.key and e.get("event") in fatal:
                raise DemoFailed(f"{e.get('event')}: {e.get('reason')} {e.get('detail', '')}")
            if done(e):
                return e
        raise DemoFailed(f"no {what} within {self.timeout:g} s:\n{node.output_tail()}")

    def _walk(self, broker: Broker, phone: Control, node: DemoNode) -> None:
        key = self.key
        broker.publish("create_instance", {"key": key})
        self.session_up = True
        self.say(f"published create_instance {{\"key\": \"{key}\"}}")
        qr = self._wait(broker, node, "a QR code",
                        lambda e: e.get("event") == "qr_instance" and e.get("key") == key)
        me = phone.scan(qr["qr"], PHONE, pushname="Demo phone")
        self.screen.forget_qr()
        self.say(f"the phone {PHONE} scanned the code; linked as {me}")
        self._wait(broker, node, "ready_instance",
                   lambda e: e.get("event") == "ready_instance" and e.get("key") == key)

        text = "Hello from wwnode"
        broker.publish("send_message", {"key": key, "chat_id": f"{CONTACT}@c.us", "message": text, "id": "demo-1"})
        self.say(f"published send_message to {CONTACT}@c.us: {text!r}")
        self._wait(broker, node, "message_sent_instance",
                   lambda e: e.get("event") == "message_sent_instance" and e.get("command_id") == "demo-1")
        got = [m for m in phone.sent_by(PHONE) if m["body"] == text]
        if not got:
            raise DemoFailed("the stand-in never saw the message sent")
        self.say(f"WhatsApp (the stand-in) has it, for {got[0]['to']}")

        answer = "Hi! Got it."
        phone.deliver(to=PHONE, sender=CONTACT, body=answer)
        self.say(f"the contact {CONTACT} answers {answer!r}")
        self._wait(broker, node, "message_instance",
                   lambda e: e.get("event") == "message_instance" and e.get("key") == key
                   and e.get("message", {}).get("body") == answer)

        self._destroy(broker, node)

    def _destroy(self, broker: Broker, node: DemoNode) -> None:
        broker.publish("destroy_instance", {"key": self.key, "logout": True})
        self.say("published destroy_instance with logout")
        self._wait(broker, node, "the session to stop",
                   lambda e: e.get("event") == "state_instance" and e.get("key") == self.key
                   and e.get("state") == "stopped", fatal=("command_failed",))
        self.session_up = False

    def _clear_broker(self, url: str) -> None:
        """Once the node stopped: the queues its start declared, gone from
        the demo's virtual host.  Its own queue would wait an hour for a
        node that never comes back (a new demo is a new node), and the old
        event queues keep a copy of the events for clients that read them,
        which no one does here: each run would leave its messages there.
        A queue another demo's node reads, or (for the command queues) one
        that holds a command, is left alone: demos may run side by side."""
        try:
            with Broker(url) as broker:
                broker.delete_queue(node_queue_name(self.node_id))
                for queue in LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE,):
                    broker.delete_queue(queue, if_unused=True)
                for queue in COMMAND_QUEUES + (REROUTE_QUEUE,):
                    broker.delete_queue(queue, if_unused=True, if_empty=True)
            self.say(f"removed the node's queues from the virtual host {self.vhost}")
        except (Unreachable, pika.exceptions.AMQPError) as e:
            self.say(f"could not remove the node's queues from {self.vhost}: {e}")

    def _destroy_left_session(self, url: str, node: DemoNode) -> None:
        """After Ctrl-C or a failed step.  A session left behind would keep
        its keys in Redis until they expire (and a fleet sharing that Redis
        would report it lost): it is destroyed as on the normal path,
        within a short wait."""
        self.timeout = min(self.timeout, 15.0)
        try:
            with Broker(url) as broker:
                # The create may still wait in the queue (interrupted early):
                # dropped, so no node starts it later, here or in the next
                # demo.  The queue is the demo's own virtual host's.
                if broker.purge("create_instance"):
                    self.say(f"dropped the create of {self.key}: no node had taken it yet")
                    return
                broker.follow(("state_instance", "command_failed"))
                self._destroy(broker, node)
        except (Unreachable, DemoFailed, pika.exceptions.AMQPError) as e:
            self.say(f"could not destroy {self.key}: {e}")

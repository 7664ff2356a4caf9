"""The command line's client commands: ``create``, ``send``, ``destroy``,
``qr`` and ``events``.  Each checks its input with the node's own rules
before it connects, follows the events it needs through a private queue
bound before it publishes, and says how things ended in its exit code.

Exit codes are the ``EXIT_*`` names below (the README's "Command line"
lists them): one meaning each, the same for every command.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from .client import Broker, checked, current_qr, open_redis, session_state
from .eventlines import describe
from .qrterm import QrScreen, write_png

EXIT_OK = 0
EXIT_FAILED = 1  # command_failed, or nothing to show (qr)
EXIT_BAD_INPUT = 2  # refused before anything was published, or a bad setting
EXIT_UNREACHABLE = 3  # RabbitMQ or Redis did not answer
EXIT_TIMEOUT = 4  # no outcome within --timeout
EXIT_AUTH_FAILURE = 5  # create: auth_failure_instance
EXIT_ENDED = 6  # create: the session disconnected, failed, stopped or was lost
EXIT_INTERRUPTED = 130  # Ctrl-C

ENDED_STATES = ("failed", "stopped", "lost")
# A topic binding: event names, or patterns with * and #.
EVENT_PATTERN_RE = re.compile(r"\A[A-Za-z0-9_*#-]+(\.[A-Za-z0-9_*#-]+)*\Z")


@dataclass
class Outcome:
    code: int
    text: str


def check_key(key: str) -> None:
    """A key as the node accepts it (``Rejected`` otherwise)."""
    checked("create_instance", {"key": key})


def _follow(broker: Broker, until, timeout: float | None) -> Outcome:
    """Hand each event to ``until`` until it returns an Outcome."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = 1.0 if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return Outcome(EXIT_TIMEOUT, f"no outcome within {timeout:g} s")
        event = broker.next_event(min(left, 1.0))
        if event is not None:
            outcome = until(event)
            if outcome is not None:
                return outcome


# ------------------------------------------------------------------ create

CREATE_EVENTS = ("qr_instance", "authenticated_instance", "ready_instance", "auth_failure_instance",
                 "disconnected_instance", "state_instance", "command_failed")


class CreateWatch:
    """Reads the events of one key after its create: shows each QR code,
    and decides when the command is done (ready, or authenticated without
    ``--wait``) and how."""

    def __init__(self, key: str, wait: bool, screen: QrScreen, png: Path | None):
        self.key, self.wait, self.screen, self.png = key, wait, screen, png

    def show_qr(self, qr: str, attempt) -> None:
        if self.png:
            write_png(qr, self.png)
        where = f"; also in {self.png}" if self.png else ""
        self.screen.show_qr(qr, f"QR code {attempt} for {self.key}: scan it with WhatsApp on the phone "
                                f"(Settings > Linked devices > Link a device){where}")

    def __call__(self, e: dict) -> Outcome | None:
        name = e.get("event")
        if e.get("key") != self.key:
            return None
        if name == "command_failed":
            if e.get("command") != "create_instance":
                return None
            return Outcome(EXIT_FAILED, f"create refused: {e.get('reason')}: {e.get('detail')}")
        if name == "qr_instance":
            self.show_qr(e["qr"], e.get("attempt", "?"))
            return None
        self.screen.forget_qr()
        self.screen.say(describe(e))
        if name == "ready_instance":
            return Outcome(EXIT_OK, f"{self.key} is ready as {e.get('me')}")
        if name == "authenticated_instance" and not self.wait:
            return Outcome(EXIT_OK, f"{self.key} is linked; it will be ready once the phone synced")
        if name == "auth_failure_instance":
            return Outcome(EXIT_AUTH_FAILURE, f"{self.key}: authentication failed ({e.get('reason')})")
        if name == "disconnected_instance":
            return Outcome(EXIT_ENDED, f"{self.key} disconnected ({e.get('reason')})")
        if name == "state_instance" and e.get("state") in ENDED_STATES:
            return Outcome(EXIT_ENDED, f"{self.key} ended: {e.get('state')}")
        return None


def create(cfg, key: str, wait: bool, png: Path | None, timeout: float | None, screen: QrScreen) -> Outcome:
    body = {"key": key}
    checked("create_instance", body)
    r = open_redis(cfg.redis_url, cfg.redis_sentinels, cfg.redis_master_name)
    watch = CreateWatch(key, wait, screen, png)
    with Broker(cfg.rabbit_mq_url) as broker:
        broker.follow(CREATE_EVENTS)
        broker.publish("create_instance", body)
        screen.say(f"create_instance published for {key}")
        # A session of this key may run already (a create then makes
        # nothing new): what Redis says now, then the events.
        state = session_state(r, key).get("state")
        if state == "ready":
            return Outcome(EXIT_OK, f"{key} runs already and is ready")
        qr = current_qr(r, key)
        if qr:
            watch.show_qr(qr, "(current)")
        return _follow(broker, watch, timeout)


# -------------------------------------------------------- send, destroy

def send(cfg, key: str, chat_id: str, text: str, command_id: str | None, timeout: float) -> Outcome:
    """Without ``--id`` a fresh one is used: the answer is found by it, and
    a send with an id goes out at most once."""
    command_id = command_id if command_id is not None else uuid.uuid4().hex
    body = {"key": key, "chat_id": chat_id, "message": text, "id": command_id}
    checked("send_message", body)

    def answer(e: dict) -> Outcome | None:
        if e.get("command_id") != command_id or e.get("key") != key:
            return None
        if e.get("event") == "message_sent_instance":
            dup = " (already sent earlier with this id)" if e.get("duplicate") else ""
            return Outcome(EXIT_OK, f"sent: message_id={e.get('message_id')} id={command_id}{dup}")
        return Outcome(EXIT_FAILED, f"not sent: {e.get('reason')}: {e.get('detail')} (id={command_id})")

    with Broker(cfg.rabbit_mq_url) as broker:
        broker.follow(("message_sent_instance", "command_failed"))
        broker.publish("send_message", body)
        outcome = _follow(broker, answer, timeout)
    if outcome.code == EXIT_TIMEOUT:
        outcome.text += f"; the command (id={command_id}) waits in its queue for a node that runs {key}"
    return outcome


def destroy(cfg, key: str, logout: bool, timeout: float) -> Outcome:
    body = {"key": key, "logout": True} if logout else {"key": key}
    checked("destroy_instance", body)

    def answer(e: dict) -> Outcome | None:
        if e.get("key") != key:
            return None
        if e.get("event") == "state_instance" and e.get("state") == "stopped":
            return Outcome(EXIT_OK, f"{key} stopped" + (" and unlinked" if logout else ""))
        if e.get("event") == "command_failed" and e.get("command") == "destroy_instance":
            return Outcome(EXIT_FAILED, f"not destroyed: {e.get('reason')}: {e.get('detail')}")
        return None

    with Broker(cfg.rabbit_mq_url) as broker:
        broker.follow(("state_instance", "command_failed"))
        broker.publish("destroy_instance", body)
        return _follow(broker, answer, timeout)


# ------------------------------------------------------------- qr, events

def show_qr(cfg, key: str, png: Path | None, screen: QrScreen) -> Outcome:
    check_key(key)
    r = open_redis(cfg.redis_url, cfg.redis_sentinels, cfg.redis_master_name)
    qr = current_qr(r, key)
    if qr is None:
        state = session_state(r, key).get("state")
        why = f"its session is {state}" if state else "no session of it is known"
        return Outcome(EXIT_FAILED, f"no QR code for {key} now ({why})")
    if png:
        write_png(qr, png)
    screen.show_qr(qr, f"QR code for {key}" + (f"; also in {png}" if png else ""))
    return Outcome(EXIT_OK, "")


def events(cfg, key: str | None, names: list[str], as_json: bool, count: int | None, screen: QrScreen) -> Outcome:
    if key is not None:
        check_key(key)
    for name in names:
        if not EVENT_PATTERN_RE.match(name) or len(name) > 255:
            return Outcome(EXIT_BAD_INPUT, f"not an event name or pattern: {name!r}")
    shown = 0
    with Broker(cfg.rabbit_mq_url) as broker:
        broker.follow(names or ("#",))
        # On stderr, so stdout holds events only; it also tells a script
        # that the queue is bound.
        print("wwnode: following events" + (f" of {key}" if key else "") + "; Ctrl-C to stop",
              file=sys.stderr, flush=True)
        while count is None or shown < count:
            e = broker.next_event(1.0)
            if e is None or (key is not None and e.get("key") != key):
                continue
            screen.say(orjson.dumps(e).decode() if as_json else describe(e))
            shown += 1
    return Outcome(EXIT_OK, "")

"""The command line's client commands: ``create``, ``send``, ``destroy``,
``qr``, ``events`` and ``command`` (any other command that is answered).  Each checks its input with the node's own rules
before it connects, follows the events it needs through a private queue
bound before it publishes, and says how things ended in its exit code.

Exit codes are the ``EXIT_*`` names below (the README's "Command line"
lists them): one meaning each, the same for every command.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import orjson
import pika.exceptions

from .client import Broker, Rejected, Unreachable, checked, current_qr, open_redis, session_state
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
RECONNECT_PAUSE = 1.0  # seconds between tries of `events` to reach RabbitMQ again
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
    published = False
    try:
        with Broker(cfg.rabbit_mq_url) as broker:
            broker.follow(CREATE_EVENTS)
            broker.publish("create_instance", body)
            published = True
            screen.say(f"create_instance published for {key}")
            # A session of this key may run already (a create then makes
            # nothing new): what Redis says now, then the events.
            state = session_state(r, key).get("state")
            if state == "ready":
                return Outcome(EXIT_OK, f"{key} runs already and is ready")
            qr = current_qr(r, key)
            if qr:
                watch.show_qr(qr, "(current)")
            outcome = _follow(broker, watch, timeout)
            if outcome.code == EXIT_TIMEOUT:
                outcome.text += "; " + still_going(key, session_state(r, key).get("state"))
            return outcome
    except KeyboardInterrupt:
        if not published:
            raise  # nothing was published: nothing goes on
        # The create is published: it goes on without us, wherever the
        # Ctrl-C came (reading Redis, waiting, closing the connection).
        # Say what is left behind, and how to end it.
        return Outcome(EXIT_INTERRUPTED, f"interrupted; the create of {key} goes on: a node with room starts "
                                         f"it, and it shows QR codes until one is scanned or QR_MAX is reached "
                                         f"(`wwnode destroy {key}` ends it)")


def still_going(key: str, state: str | None) -> str:
    """What a create that gave up waiting leaves behind, and how to see or
    end it: a timeout ends the command, not the session."""
    if state is None:
        return (f"the create of {key} waits in its queue for a node with room (`wwnode status` shows the creates "
                f"waiting; `wwnode destroy {key}` once it runs ends it)")
    return (f"the session of {key} still runs ({state}): `wwnode qr {key}` shows its code now, "
            f"`wwnode events --key {key}` follows it, `wwnode destroy {key}` stops it")


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


# ------------------------------------------------------------------ command

# The event that answers each command ``wwnode command`` publishes (the
# contract's tables), found by the command's id.  A create and a destroy
# have commands of their own: they are answered by state changes.
ANSWERS = {
    "send_message": "message_sent_instance",
    "message_action": "message_action_done_instance",
    "check_number": "number_checked_instance",
    "update_settings": "settings_updated_instance",
    "call_action": "call_action_done_instance",
    "chat_action": "chat_action_done_instance",
    "set_presence": "presence_set_instance",
    "query": "query_result_instance",
    "group_action": "group_action_done_instance",
}


def parse_body(text: str) -> dict:
    """The command's body from the command line: a JSON object."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise Rejected("not_json", f"the body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise Rejected("not_object", "the body must be a JSON object, {...}")
    return body


def command(cfg, queue: str, body: dict, timeout: float) -> Outcome:
    """Publish ``body`` to ``queue`` with an id (its own, or a new one) and
    wait for the event that answers it, printed whole (a query's items, a
    group's invite link): its JSON on success, the refusal on failure."""
    if queue not in ANSWERS:
        raise Rejected("unknown_command", f"{queue} is not one of {', '.join(ANSWERS)} (create and destroy have "
                                          "commands of their own)")
    body = {**body}
    body.setdefault("id", uuid.uuid4().hex)
    command_id, key = body["id"], body.get("key")
    checked(queue, body)

    def answer(e: dict) -> Outcome | None:
        if e.get("command_id") != command_id or e.get("key") != key:
            return None
        if e.get("event") == ANSWERS[queue]:
            return Outcome(EXIT_OK, orjson.dumps(e, option=orjson.OPT_INDENT_2).decode())
        return Outcome(EXIT_FAILED, f"failed: {e.get('reason')}: {e.get('detail')} (id={command_id})")

    with Broker(cfg.rabbit_mq_url) as broker:
        broker.follow((ANSWERS[queue], "command_failed"))
        broker.publish(queue, body)
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


def events(cfg, key: str | None, names: list[str], as_json: bool, count: int | None, screen: QrScreen,
           pause=time.sleep) -> Outcome:
    if key is not None:
        check_key(key)
    for name in names:
        if not EVENT_PATTERN_RE.match(name) or len(name) > 255:
            return Outcome(EXIT_BAD_INPUT, f"not an event name or pattern: {name!r}")
    shown = 0
    lost = False  # the link to RabbitMQ was lost and is being made again
    while True:
        try:
            with Broker(cfg.rabbit_mq_url) as broker:
                broker.follow(names or ("#",))
                # On stderr, so stdout holds events only; it also tells a
                # script that the queue is bound.
                print(("wwnode: following events again" if lost else "wwnode: following events")
                      + (f" of {key}" if key else "") + "; Ctrl-C to stop", file=sys.stderr, flush=True)
                lost = False
                while count is None or shown < count:
                    e = broker.next_event(1.0)
                    if e is None or (key is not None and e.get("key") != key):
                        continue
                    screen.say(orjson.dumps(e).decode() if as_json else describe(e))
                    shown += 1
            return Outcome(EXIT_OK, "")
        except Unreachable:
            if not lost:
                raise  # the first connection: say so and exit, as every command does
            pause(RECONNECT_PAUSE)  # still away: try again
        except pika.exceptions.AMQPError as e:
            # The broker restarted or the network dropped: follow again, as
            # the dashboard does.  The private queue went with the link, so
            # what was published meanwhile is not shown: said, not hidden.
            print(f"wwnode: lost RabbitMQ ({type(e).__name__}); following again once it answers (events "
                  f"published meanwhile are not shown)", file=sys.stderr, flush=True)
            lost = True


def blob_get(cfg, blob_id: str, out: Path | None) -> Outcome:
    """Fetch a blob from the store ``BLOB_STORE_URL`` names: to ``out``, or
    to standard output."""
    from .blobstore import BlobError, BlobNotFound, check_id, open_blob_store

    try:
        check_id(blob_id)
        store = open_blob_store(cfg.blob_store_url, cfg.data_dir, cfg.blob_store_endpoint)
    except BlobError as e:
        return Outcome(EXIT_BAD_INPUT, str(e))
    if out is not None:
        problem = _unwritable(out)
        if problem:
            return Outcome(EXIT_BAD_INPUT, f"cannot write {out}: {problem}; nothing was fetched")
    try:
        if out is None:
            data = store.get_bytes(blob_id)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return Outcome(EXIT_OK, "")
        store.get_file(blob_id, out)
    except BlobNotFound as e:
        return Outcome(EXIT_FAILED, str(e))
    except BlobError as e:
        return Outcome(EXIT_UNREACHABLE, str(e))
    except OSError as e:  # the copy itself: a disk that filled, a file the store's folder does not let us read
        return Outcome(EXIT_FAILED, f"{blob_id}: {e.filename or out}: {e.strerror or e}")
    return Outcome(EXIT_OK, f"{blob_id} written to {out}")


def _unwritable(out: Path) -> str | None:
    """Why the file ``out`` cannot be written, asked before the store is
    (so a bad ``-o`` is not mistaken for a missing blob, and leaves
    nothing behind); None when it can."""
    if out.is_dir():
        return "it is a folder (name a file in it)"
    folder = out.parent
    if not folder.is_dir():
        return f"there is no folder {folder}"
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        return "permission denied"
    return None


def blob_put(cfg, key: str, source: Path) -> Outcome:
    """Put the file ``source`` in the store as one of ``key``'s media, under
    a new id nobody can guess (``mediablobs.py``); the id is the outcome:
    what a ``send_message`` of that key names as ``media.blob``."""
    from .blobstore import BlobError, open_blob_store
    from .mediablobs import upload_id

    check_key(key)
    try:
        with open(source, "rb"):
            pass
    except OSError as e:
        return Outcome(EXIT_BAD_INPUT, f"cannot read {source}: {e.strerror}")
    try:
        store = open_blob_store(cfg.blob_store_url, cfg.data_dir, cfg.blob_store_endpoint)
    except BlobError as e:
        return Outcome(EXIT_BAD_INPUT, str(e))
    blob_id = upload_id(key)
    try:
        store.put_file(blob_id, source)
    except BlobError as e:
        return Outcome(EXIT_UNREACHABLE, str(e))
    except OSError as e:  # a folder store that takes no write (full, read-only, not ours)
        return Outcome(EXIT_UNREACHABLE, f"cannot write to the blob store: {e.strerror or e}")
    return Outcome(EXIT_OK, blob_id)


# --------------------------------------------------------- drain, undrain

NODE_ID_RE = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")


def drain(cfg, node: str, timeout: float | None, out=sys.stdout, clock=time.monotonic, sleep=time.sleep,
          force: bool = False) -> Outcome:
    """Ask ``node`` to drain (``nodes:{node}:drain``) and show its progress
    until it holds none: the keys it held when asked, each until it is
    ready on another node (or gone), and the node's own count from its
    heartbeat.  (A move can take less than a heartbeat: the keys are read
    from their leases, not only from the heartbeat.)"""
    from .keys import DRAIN_TTL_MS, drain_key, node_key

    if not NODE_ID_RE.match(node):
        return Outcome(EXIT_BAD_INPUT, "a node id is 1 to 64 characters of A-Z a-z 0-9 _ . -")
    r = open_redis(cfg.redis_url, cfg.redis_sentinels, cfg.redis_master_name)
    beat = r.hgetall(node_key(node))
    if not beat:
        return Outcome(EXIT_FAILED, f"no node {node} is running (no heartbeat)")
    held = keys_held_by(r, node)
    if held and not force:
        refusal = _cannot_move(r, node, beat)
        if refusal:
            return Outcome(EXIT_FAILED, f"{node} not drained: {refusal} ({len(held)} sessions; "
                                        "--force drains it all the same)")
    r.set(drain_key(node), "1", px=DRAIN_TTL_MS)
    print(f"{node}: draining (no new sessions); moving its sessions one at a time", file=out, flush=True)
    print(f"{node}: {len(held)} sessions left", file=out, flush=True)
    deadline = None if timeout is None else clock() + timeout
    started = clock()
    moving: dict[str, float] = {}  # key -> since its move was seen
    last = (len(held), "")
    while True:
        beat = r.hgetall(node_key(node))
        if not beat:
            return Outcome(EXIT_FAILED, f"{node} stopped before it was drained")
        left, key = int(beat.get("drain_left") or 0), cast(str, beat.get("drain_moving") or "")  # decoded
        if key and key not in moving:
            moving[key] = clock()
        for k in sorted(held):
            state = session_state(r, k)
            if state.get("node") not in (None, "", node) and state.get("state") == "ready":
                since = moving.pop(k, started)
                print(f"  {k}: ready on {state['node']} ({clock() - since:.1f} s)", file=out, flush=True)
                held.discard(k)
            elif not state and k not in keys_held_by(r, node):
                held.discard(k)  # destroyed or failed meanwhile: nothing to wait for
                moving.pop(k, None)
        if (left, key) != last and beat.get("draining") == "1":
            print(f"{node}: {left} sessions left" + (f", moving {key}" if key else ""), file=out, flush=True)
            last = (left, key)
        if left == 0 and not key and not held and beat.get("draining") == "1":
            return Outcome(EXIT_OK, f"{node} is drained")
        if deadline is not None and clock() >= deadline:
            return Outcome(EXIT_TIMEOUT, f"{node} not drained within {timeout:g} s (it goes on)")
        sleep(0.25)


def _cannot_move(r, node: str, beat: dict) -> str:
    """Why ``node``'s sessions could not move now ("" if they can): its
    logins are in a store no other node reads (they would come back with
    a QR code, and each phone's owner would have to scan again), or no
    other node sharing its store takes new sessions (they would wait,
    stopped, for one)."""
    from .keys import NODES_PATTERN, node_key, node_of

    store = beat.get("blob_store")
    if store is None:
        return ""  # a node of a version that does not say: as before
    if store == "":
        return ("its logins are in its own folder (BLOB_STORE_URL unset), so they would come back "
                "elsewhere with a QR code; give the fleet one blob store first")
    takers = []
    for name in r.scan_iter(match=NODES_PATTERN, count=500):
        other = node_of(name)
        if other is None or other == node:
            continue
        them = r.hgetall(node_key(other))
        if them.get("blob_store") == store and them.get("accepting") == "1":
            takers.append(other)
    if not takers:
        return "no other node that shares its blob store takes new sessions now"
    return ""


def keys_held_by(r, node: str) -> set[str]:
    """The keys whose lease ``node`` holds (``instances:{key}:owner`` is
    ``{node}:{fence}``)."""
    from .keys import OWNER, instances_with, key_of, owner_node

    held = set()
    for name in r.scan_iter(match=instances_with(OWNER), count=500):
        if owner_node(r.get(name)) == node:
            held.add(key_of(name, OWNER))
    return held


def undrain(cfg, node: str) -> Outcome:
    from .keys import drain_key, node_key

    if not NODE_ID_RE.match(node):
        return Outcome(EXIT_BAD_INPUT, "a node id is 1 to 64 characters of A-Z a-z 0-9 _ . -")
    r = open_redis(cfg.redis_url, cfg.redis_sentinels, cfg.redis_master_name)
    asked = r.delete(drain_key(node))
    if not asked and not r.exists(node_key(node)):
        return Outcome(EXIT_FAILED, f"no node {node} is running (no heartbeat) and none was draining")
    return Outcome(EXIT_OK, f"{node} takes new sessions again (within a heartbeat)")

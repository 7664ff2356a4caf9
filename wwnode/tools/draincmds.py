"""``wwnode drain`` and ``undrain``: a node asked to move its sessions away, its progress shown, or to take new ones again."""

from __future__ import annotations

import re
import sys
import time
from typing import cast

from .client import open_redis, session_state
from .outcomes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, Outcome

NODE_ID_RE = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")


def drain(cfg, node: str, timeout: float | None, out=sys.stdout, clock=time.monotonic, sleep=time.sleep,
          force: bool = False) -> Outcome:
    """Ask ``node`` to drain (``nodes:{node}:drain``) and show its progress
    until it holds none: the keys it held when asked, each until it is
    ready on another node (or gone), and the node's own count from its
    heartbeat.  (A move can take less than a heartbeat: the keys are read
    from their leases, not only from the heartbeat.)"""
    from ..redis_side.keys import DRAIN_TTL_MS, drain_key, node_key

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
    from ..redis_side.keys import NODES_PATTERN, node_key, node_of

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
    from ..redis_side.keys import OWNER, instances_with, key_of, owner_node

    held = set()
    for name in r.scan_iter(match=instances_with(OWNER), count=500):
        if owner_node(r.get(name)) == node:
            held.add(key_of(name, OWNER))
    return held


def undrain(cfg, node: str) -> Outcome:
    from ..redis_side.keys import drain_key, node_key

    if not NODE_ID_RE.match(node):
        return Outcome(EXIT_BAD_INPUT, "a node id is 1 to 64 characters of A-Z a-z 0-9 _ . -")
    r = open_redis(cfg.redis_url, cfg.redis_sentinels, cfg.redis_master_name)
    asked = r.delete(drain_key(node))
    if not asked and not r.exists(node_key(node)):
        return Outcome(EXIT_FAILED, f"no node {node} is running (no heartbeat) and none was draining")
    return Outcome(EXIT_OK, f"{node} takes new sessions again (within a heartbeat)")

"""``wwnode capacity``: what an autoscaler needs to decide to add a machine.

Three readings from the public contract:

- creates waiting: the ``create_instance`` queue's ready messages (a
  passive declare), and how many nodes consume it now (a node consumes
  creates only while it has room);
- nodes accepting: the ``accepting`` field of each node's heartbeat
  (``nodes:{node}``);
- sessions that still fit, per accepting node.  The heartbeat carries the
  node's ``max_sessions`` (0: no cap): a capped node's room is what is
  left under its cap.  The room is also estimated from load: the node's
  busier reading (CPU or RAM, in %) divided by its sessions is what one
  session costs (an over-estimate: the node's own use is counted in), and
  the room is what fits under ``ADMIT_HIGH`` (this client's setting; the
  node's own is not published) at that cost.  The smaller of the two
  wins.  An uncapped node without sessions gives no cost to divide by:
  its room is unknown, and the total is then a lower bound
  (``fits_known`` false).

``scale_up`` is true when creates wait and the fleet cannot take them:
no node accepts, or the room known is smaller than the queue.
"""

from __future__ import annotations

import math

import orjson
import redis

from .client import Broker, open_redis
from .outcomes import EXIT_OK, Outcome
from .status import collect


def node_room(hb: dict, admit_high: float) -> tuple[int | None, str]:
    """Sessions that still fit on a node, and how that was found."""
    if hb.get("accepting") != "1":
        return 0, "not accepting"
    sessions = int(hb.get("sessions") or 0)
    rooms = []
    cap = int(hb.get("max_sessions") or 0)
    if cap > 0:
        rooms.append((max(0, cap - sessions), "max_sessions"))
    load = max(float(hb.get("cpu") or 0), float(hb.get("mem") or 0))
    if sessions > 0 and load > 0:
        per_session = load / sessions
        rooms.append((max(0, math.floor((admit_high - load) / per_session)), "load"))
    if not rooms:
        return None, "unknown (no session to measure one by, no max_sessions)"
    return min(rooms)


def measure(r: redis.Redis, broker: Broker, admit_high: float) -> dict:
    depth = broker.queue_depth("create_instance")
    waiting, consumers = depth if depth else (0, 0)
    nodes = {}
    for name, hb in sorted(collect(r)["nodes"].items()):
        room, basis = node_room(hb, admit_high)
        nodes[name] = {"accepting": hb.get("accepting") == "1", "sessions": int(hb.get("sessions") or 0),
                       "cpu": float(hb.get("cpu") or 0), "mem": float(hb.get("mem") or 0),
                       "fits": room, "basis": basis}
    accepting = [n for n in nodes.values() if n["accepting"]]
    fits = sum(n["fits"] for n in accepting if n["fits"] is not None)
    fits_known = all(n["fits"] is not None for n in accepting)
    return {
        "creates_waiting": waiting,
        "create_consumers": consumers,
        "nodes": len(nodes),
        "nodes_accepting": len(accepting),
        "sessions_fit": fits,
        "fits_known": fits_known,
        "scale_up": waiting > 0 and (not accepting or (fits_known and fits < waiting)),
        "per_node": nodes,
    }


def render(m: dict) -> str:
    lines = [
        f"creates waiting      {m['creates_waiting']} (consumed by {m['create_consumers']} node(s) now)",
        f"nodes accepting      {m['nodes_accepting']} of {m['nodes']}",
        f"sessions that fit    {m['sessions_fit']}{'' if m['fits_known'] else ' or more'}",
        f"scale up             {'yes' if m['scale_up'] else 'no'}",
    ]
    if m["per_node"]:
        lines.append("")
        lines.append(f"{'NODE':20} {'ACCEPTING':>9} {'SESSIONS':>8} {'CPU%':>6} {'MEM%':>6} {'FITS':>5}  BASIS")
        for name, n in m["per_node"].items():
            fits = "?" if n["fits"] is None else n["fits"]
            lines.append(f"{name:20} {('yes' if n['accepting'] else 'no'):>9} {n['sessions']:>8} {n['cpu']:>6} "
                         f"{n['mem']:>6} {fits:>5}  {n['basis']}")
    return "\n".join(lines)


def report(cfg, as_json: bool) -> Outcome:
    r = open_redis(cfg.redis_url, cfg.redis_sentinels, cfg.redis_master_name)
    try:
        with Broker(cfg.rabbit_mq_url) as broker:
            m = measure(r, broker, cfg.admit_high)
    finally:
        r.close()
    return Outcome(EXIT_OK, orjson.dumps(m, option=orjson.OPT_INDENT_2).decode() if as_json else render(m))

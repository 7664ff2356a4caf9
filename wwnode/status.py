"""``wwnode status``: the fleet as Redis sees it.  ``--json`` gives every
field of each node's heartbeat, its counters included (README,
"Architecture"); the table shows a few."""

from __future__ import annotations

import orjson
import redis

from .config import Config


def collect(r: redis.Redis) -> dict:
    nodes = {}
    for name in r.scan_iter(match="nodes:*", count=500):
        if name.count(":") != 1:
            continue
        nodes[name.split(":", 1)[1]] = r.hgetall(name)
    sessions = {}
    for name in r.scan_iter(match="instances:*:state", count=500):
        key = name[len("instances:"):-len(":state")]
        sessions[key] = r.hgetall(name)
    return {"nodes": nodes, "sessions": sessions}


def fleet_status(cfg: Config, as_json: bool = False) -> str:
    r = redis.Redis.from_url(cfg.redis_url, socket_timeout=5, decode_responses=True)
    data = collect(r)
    if as_json:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    lines = [f"{'NODE':20} {'SESSIONS':>8} {'ACCEPTING':>9} {'CPU%':>6} {'MEM%':>6} {'CRASHES':>7} {'FAILED':>6} "
             f"{'DISK':>6}"]
    for node, hb in sorted(data["nodes"].items()):
        lines.append(f"{node:20} {hb.get('sessions', '?'):>8} {('yes' if hb.get('accepting') == '1' else 'no'):>9} "
                     f"{hb.get('cpu', '?'):>6} {hb.get('mem', '?'):>6} {hb.get('crashes', '?'):>7} "
                     f"{hb.get('commands_failed', '?'):>6} {_disk(hb):>6}")
    for node, hb in sorted(data["nodes"].items()):
        if hb.get("disk_ok") == "0":
            lines.append(f"{node}: DATA_DIR takes no writes (full or read-only): creates fail, events go out "
                         f"without their copy on disk ({hb.get('events_not_journaled', '?')} so far)")
    lines.append("")
    lines.append(f"{'KEY':64} {'STATE':10} NODE")
    for key, st in sorted(data["sessions"].items()):
        lines.append(f"{key:64} {st.get('state', '?'):10} {st.get('node', '?')}")
    return "\n".join(lines)


def _disk(hb: dict) -> str:
    """The DISK column: ``ok``, ``ERROR`` while DATA_DIR takes no writes,
    ``?`` for a node too old to say."""
    return {"1": "ok", "0": "ERROR"}.get(hb.get("disk_ok", ""), "?")

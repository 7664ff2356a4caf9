"""``wwnode status``: the fleet as Redis sees it, and the creates waiting in RabbitMQ.

``--json`` gives every field of each node's heartbeat, its counters included
(docs/architecture.md, "Architecture"); the table shows a few.

A server that cannot be reached is said so in one line (which, where,
why) and makes the exit code 3; what the other server said is still
shown."""

from __future__ import annotations

import sys
import time
from typing import cast

import orjson
import redis

from .client import REDIS_DOWN, Broker, Unreachable, open_redis
from .outcomes import EXIT_INTERRUPTED, EXIT_UNREACHABLE
from ..config import Config, redact_url
from ..redis_side.keys import NODES_PATTERN, SETTINGS, STATE, instance_key, instances_with, key_of, node_of
from ..sessionsettings import proxy_host_of


def collect(r: redis.Redis) -> dict:
    nodes = {}
    for name in r.scan_iter(match=NODES_PATTERN, count=500):
        node = node_of(name)
        if node is not None:
            nodes[node] = r.hgetall(name)
    sessions = {}
    for name in r.scan_iter(match=instances_with(STATE), count=500):
        key = key_of(name, STATE)
        sessions[key] = r.hgetall(name)
        # The proxy by host and port only: the settings hold its password.
        proxy = proxy_host_of(cast("str | None", r.get(instance_key(key, SETTINGS))))  # decoded
        if proxy:
            sessions[key]["proxy"] = proxy
    return {"nodes": nodes, "sessions": sessions}


def read_fleet(cfg: Config) -> tuple[dict, list[str]]:
    """What Redis and RabbitMQ say, and a line for each that did not
    answer."""
    data: dict = {}
    problems = []
    try:
        r = open_redis(cfg.redis_url, cfg.redis_sentinels, cfg.redis_master_name)
        try:
            data.update(collect(r))
        finally:
            r.close()
    except Unreachable as e:
        problems.append(str(e))
    except REDIS_DOWN as e:
        problems.append(f"Redis at {redact_url(cfg.redis_url)} stopped answering: {e}")
    try:
        with Broker(cfg.rabbit_mq_url) as broker:
            depth = broker.queue_depth("create_instance")
        data["creates_waiting"] = depth[0] if depth else 0
    except Unreachable as e:
        problems.append(str(e))
    return data, problems


# The node table's columns: (header, what it shows).  CRASHES and
# CMD-FAILED count since the node started: session processes that died,
# commands answered with command_failed -- neither is a count of sessions.
NODE_COLUMNS = ("SESSIONS", "READY", "TAKES-CREATES", "CPU%", "MEM%", "CRASHES", "CMD-FAILED", "DISK")
KEY_WIDTH_MAX = 64  # a key may be 64 characters; the column is as wide as the longest one shown


def render(data: dict) -> str:
    lines = []
    if "nodes" in data:
        node_width = max([4, *(len(n) for n in data["nodes"])])
        lines.append(f"{'NODE':{node_width}} " + " ".join(f"{h:>{len(h)}}" for h in NODE_COLUMNS))
        for node, hb in sorted(data["nodes"].items()):
            cells = (hb.get("sessions", "?"), hb.get("sessions_ready", "0" if "sessions" in hb else "?"),
                     "yes" if hb.get("accepting") == "1" else "no", hb.get("cpu", "?"), hb.get("mem", "?"),
                     hb.get("crashes", "?"), hb.get("commands_failed", "?"), _disk(hb))
            lines.append(f"{node:{node_width}} " + " ".join(f"{c:>{len(h)}}" for h, c in zip(NODE_COLUMNS, cells)))
        for node, hb in sorted(data["nodes"].items()):
            if hb.get("disk_ok") == "0":
                lines.append(f"{node}: DATA_DIR takes no writes (full or read-only): creates fail, events go out "
                             f"without their copy on disk ({hb.get('events_not_journaled', '?')} so far)")
        lines.append("")
        key_width = min(KEY_WIDTH_MAX, max([3, *(len(k) for k in data["sessions"])]))
        state_width = max([5, *(len(st.get("state", "?")) for st in data["sessions"].values())])
        lines.append(f"{'KEY':{key_width}} {'STATE':{state_width}} {'NODE':{node_width}} PROXY")
        for key, st in sorted(data["sessions"].items()):
            lines.append(f"{key:{key_width}} {st.get('state', '?'):{state_width}} {st.get('node', '?'):{node_width}} "
                         f"{st.get('proxy', '')}".rstrip())
    if "creates_waiting" in data:
        if lines:
            lines.append("")
        lines.append(f"creates waiting: {data['creates_waiting']}")
    return "\n".join(lines)


def fleet_status(cfg: Config, as_json: bool = False) -> tuple[str, list[str]]:
    """The report (table or JSON) and the servers that did not answer."""
    data, problems = read_fleet(cfg)
    if as_json:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(), problems
    return render(data), problems


def show(cfg: Config, as_json: bool, watch: float | None) -> int:
    """Print the report once (exit 0, or 3 when a server did not answer),
    or every ``watch`` seconds until Ctrl-C (exit 0)."""
    try:
        while True:
            report, problems = fleet_status(cfg, as_json)
            if watch is not None:
                if sys.stdout.isatty():
                    print("\x1b[H\x1b[2J", end="")
                print(time.strftime("%H:%M:%S"), f"(every {watch:g} s; Ctrl-C to stop)")
            if report:
                print(report, flush=True)
            for problem in problems:
                print(f"wwnode: {problem}", file=sys.stderr, flush=True)
            if watch is None:
                return EXIT_UNREACHABLE if problems else 0
            time.sleep(watch)
    except KeyboardInterrupt:
        return 0 if watch is not None else EXIT_INTERRUPTED


def _disk(hb: dict) -> str:
    """The DISK column: ``ok``, ``ERROR`` while DATA_DIR takes no writes,
    ``?`` for a node too old to say."""
    return {"1": "ok", "0": "ERROR"}.get(hb.get("disk_ok", ""), "?")

"""Benchmark of portable logins, with real nodes, Chromium and the stand-in:
the size and time of one session's snapshot (save and restore), and each
session's downtime while a drain moves it to another node (from its
``stopping`` on the drained node to its ``ready`` on the other).

    .venv/bin/python tests/bench/bench_portable.py [--sessions 3]

Needs RabbitMQ and Redis as the tests do; uses the virtual host
``WWNODE_BENCH_VHOST`` (``wwnode-bench-portable``) and the Redis database
``WWNODE_BENCH_REDIS_DB`` (14), emptied first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis as redislib  # noqa: E402
from benchlib import Table, progress, run_bench, run_main  # noqa: E402
from support import (Client, NodeProcess, all_gone, chrome_processes_under, create_ready, idle_cgroup,  # noqa: E402
                     purge_queues, rabbitmqctl, wait_for)

from wwnode.tools import draincmds  # noqa: E402
from wwnode.amqp.topology import COMMAND_QUEUES  # noqa: E402
from wwnode.blobstore import open_blob_store  # noqa: E402
from wwnode.config import Config  # noqa: E402
from wwnode.fakewa import FakeWA, Settings  # noqa: E402
from wwnode.fakewa.client import Control  # noqa: E402
from wwnode.snapshots import Snapshots, capture, extract  # noqa: E402

VHOST = os.environ.get("WWNODE_BENCH_VHOST", "wwnode-bench-portable")
REDIS_DB = int(os.environ.get("WWNODE_BENCH_REDIS_DB", "14"))
TARGET_DOWNTIME = 5.0  # s, per session moved by a drain


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=3, help="sessions on the drained node (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (the nodes' logs)")
    args = ap.parse_args(argv)
    rabbitmqctl("add_vhost", VHOST, check=False)
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    rabbit_url = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    r = redislib.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    work = Path(tempfile.mkdtemp(prefix="bench-portable-")).resolve()
    wa = FakeWA(settings=Settings(sync_delay=0.3)).start()
    control = Control(wa.url)
    client = Client(rabbit_url)
    for queue in COMMAND_QUEUES:
        client.ch.queue_declare(queue, durable=True)
    purge_queues(client.conn, COMMAND_QUEUES)
    blobs = (work / "blobs").as_uri()
    env = {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url, "WA_URL": wa.url, "BLOB_STORE_URL": blobs,
           "LOAD_CGROUP_ROOT": str(idle_cgroup(work / "idle-cgroup"))}
    started: list[NodeProcess] = []

    def body(table: Table) -> None:
        a = NodeProcess("bench-pa", work / "a", dict(env))
        started.append(a)
        keys = [f"bp{i}" for i in range(args.sessions)]
        progress(f"{len(keys)} sessions on bench-pa")
        for i, key in enumerate(keys):
            create_ready(client, control, key, f"5511777{i:06d}")
        store = Snapshots(open_blob_store(blobs, work))
        for key in keys:
            wait_for(lambda: store.newest(key) is not None, timeout=30, what=f"{key}'s login saved")

        progress("one session's snapshot, taken from its live profile")
        profile = a.profile(keys[0])
        times, sizes = [], []
        for i in range(5):
            out = work / f"s{i}.tgz"
            t0 = time.perf_counter()
            sizes.append(capture(profile, out))
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        extract(work / "s0.tgz", work / "restored" / "profile")
        restore = time.perf_counter() - t0
        whole = sum(f.stat().st_size for f in profile.rglob("*") if f.is_file())
        table.add("snapshot size, one session (gzip'd)", statistics.median(sizes) / 1024, "kB", fmt="{:.0f}")
        table.add("its profile on disk, whole", whole / 1024, "kB", fmt="{:.0f}")
        table.add("snapshot time (copy + compress), median of 5", statistics.median(times) * 1000, "ms",
                  fmt="{:.0f}")
        table.add("restore time (extract), one session", restore * 1000, "ms", fmt="{:.0f}")

        b = NodeProcess("bench-pb", work / "b", dict(env))
        started.append(b)
        wait_for(lambda: client.depth("create_instance")[1] == 2, timeout=60, what="bench-pb to take creates")
        progress("draining bench-pa")
        cfg = Config(rabbit_mq_url=rabbit_url, redis_url=redis_url)
        t0 = time.monotonic()
        outcome = draincmds.drain(cfg, "bench-pa", 300, out=sys.stderr)
        total = time.monotonic() - t0
        if outcome.code != 0:
            raise RuntimeError(f"the drain did not end: {outcome.text}")
        downtimes = []
        for key in keys:
            stop = client.expect("state_instance", key=key, state="stopping", node="bench-pa")
            ready = client.expect("ready_instance", key=key, node="bench-pb", timeout=60)
            downtimes.append((ready["ts"] - stop["ts"]) / 1000)
        qr_after = [e for e in client.find("qr_instance") if e["node"] == "bench-pb"]
        for key, d in zip(keys, downtimes):
            table.add(f"drain downtime of {key} (stopping -> ready elsewhere)", d, "s", TARGET_DOWNTIME)
        table.add(f"drain of {len(keys)} sessions, whole", total, "s")
        table.add("QR codes shown on the new node", len(qr_after), "", 0, fmt="{:.0f}")

    def cleanup() -> None:
        for node in started:
            node.terminate()
        for node in started:
            wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), timeout=30, what="no Chrome left")
        client.close()
        wa.stop()
        r.flushdb()
        if args.keep:
            progress(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    return run_bench("portable logins benchmark", body, cleanup)


if __name__ == "__main__":
    run_main(main)

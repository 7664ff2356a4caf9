#!/usr/bin/env python3
"""Figures for media sends through a node (``wwnode run``, a real session
and Chromium) against the stand-in: ``send_message`` with media published
to the moment the stand-in's media server holds all the file's bytes (and
to ``message_sent_instance``), for a 1 MB image given as base64 ``data``
and a 15 MB video given as a URL and as a blob; and the node process's
memory (RSS, its sessions and browsers excluded) while it does, against
its idle figure.  The session process's own peak RSS is shown too.

Not a pytest test: it prints a table and exits 0 whether or not targets
are met (1 only when the run breaks).

    WWNODE_TEST_VHOST=wt-me WWNODE_TEST_REDIS_DB=12 python tests/bench/bench_media.py --rounds 3

It uses the tests' RabbitMQ virtual host and Redis database
(``WWNODE_TEST_VHOST``, ``WWNODE_TEST_REDIS_DB``; the database is emptied).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil
import redis as redislib

from benchlib import MB, Table, percentile, progress, run_bench, run_main  # noqa: F401  (sets sys.path)
from mediafiles import FileServer, jpeg, mp4
from support import (TEST_REDIS_DB, TEST_VHOST, Client, NodeProcess, create_ready, idle_cgroup, new_phone,
                     purge_queues, rabbitmqctl)
from wwnode.amqp.topology import COMMAND_QUEUES, DEAD_LETTER_QUEUE, node_queue_name
from wwnode.blobstore import open_blob_store
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

NODE = "bench-media"
KEY = "bench-media-1"


class UploadClock:
    """The moment the stand-in's media server holds a whole file, by its
    SHA-256 (wraps ``MediaStore.put`` of this instance)."""

    def __init__(self, store) -> None:
        self._put = store.put
        self.at: dict[str, float] = {}
        store.put = self._wrapped

    def _wrapped(self, data, media_type, mimetype):
        entry = self._put(data, media_type, mimetype)
        self.at[hashlib.sha256(data).hexdigest()] = time.monotonic()
        return entry


class Peak:
    """Peak RSS of a process, sampled every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="sends of each kind (default %(default)s)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-media-"))
    parts: dict = {}

    def body(table: Table) -> None:
        rabbitmqctl("add_vhost", TEST_VHOST, check=False)
        rabbitmqctl("set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*")
        rabbit_url = f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}"
        r = redislib.Redis(db=TEST_REDIS_DB)
        r.flushdb()
        r.close()
        wa = parts["wa"] = FakeWA(settings=Settings(sync_delay=0.25)).start()
        clock = UploadClock(wa.world.media)
        control = Control(wa.url, timeout=60)
        files = parts["files"] = FileServer()
        rabbit = parts["rabbit"] = Client(rabbit_url)
        for queue in COMMAND_QUEUES + (DEAD_LETTER_QUEUE,):
            rabbit.ch.queue_declare(queue, durable=True)
        purge_queues(rabbit.conn, COMMAND_QUEUES + (DEAD_LETTER_QUEUE, node_queue_name(NODE)))
        data_dir = tmp / NODE
        progress("starting a node and linking a session")
        node = parts["node"] = NodeProcess(NODE, data_dir, {
            "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": f"redis://127.0.0.1:6379/{TEST_REDIS_DB}",
            "WA_URL": wa.url, "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp / "idle")), "MEDIA_ALLOW_PRIVATE_URLS": "true",
            "SEND_TIMEOUT": "120", "PING_TIMEOUT": "10"})
        phone, friend = new_phone(), new_phone()
        create_ready(rabbit, control, KEY, phone)
        blobs = open_blob_store("", data_dir)
        node_proc = psutil.Process(node.proc.pid)
        [session_pid] = node.session_pids()
        time.sleep(1)  # let the node settle before its idle figure
        idle_rss = node_proc.memory_info().rss
        table.add("node RSS, idle with one ready session", idle_rss / MB, "MB")

        def one(cid: str, data: bytes, media: dict) -> tuple[float, float]:
            start = time.monotonic()
            rabbit.publish("send_message", {"key": KEY, "chat_id": f"{friend}@c.us", "message": "bench",
                                            "media": media, "id": cid})
            digest = hashlib.sha256(data).hexdigest()
            deadline = start + 180
            while digest not in clock.at:  # keep the client's connection served meanwhile
                failed = rabbit.find("command_failed", command_id=cid)
                if failed or time.monotonic() > deadline:
                    raise RuntimeError(f"{cid}: {failed[0] if failed else 'the stand-in never got the file'}")
                rabbit.pump(0.01)
            held = clock.at[digest] - start
            rabbit.expect("message_sent_instance", timeout=180, command_id=cid)
            return held, time.monotonic() - start

        kinds = {
            "1 MB image (data)": lambda n: (lambda d: (d, {"data": base64.b64encode(d).decode()}))(jpeg(MB)),
            "15 MB video (url)": lambda n: _served(files, f"v{n}.mp4", mp4(15 * MB)),
            "15 MB video (blob)": lambda n: _blob(blobs, f"media/{KEY}/v{n}", mp4(15 * MB)),
        }
        for k, (kind, make) in enumerate(kinds.items()):
            held, answered = [], []
            node_peak, session_peak = Peak(node_proc.pid), Peak(session_pid)
            for n in range(args.rounds):
                data, media = make(n)
                progress(f"{kind}, send {n + 1} of {args.rounds}")
                h, a = one(f"bench-{k}-{n}", data, media)
                held.append(h)
                answered.append(a)
            table.add(f"{kind}: publish -> stand-in holds all bytes, median", percentile(held, 50), "s")
            table.add(f"{kind}: publish -> message_sent_instance, max", max(answered), "s")
            table.add(f"{kind}: node RSS peak (idle {idle_rss / MB:.0f} MB)", node_peak.stop() / MB, "MB")
            table.add(f"{kind}: session process RSS peak", session_peak.stop() / MB, "MB")

    def cleanup() -> None:
        for name in ("node",):
            if name in parts:
                parts[name].terminate()
        for name in ("rabbit",):
            if name in parts:
                parts[name].close()
        for name in ("files", "wa"):
            if name in parts:
                parts[name].stop()
        shutil.rmtree(tmp, ignore_errors=True)

    load = ", ".join(f"{x:.1f}" for x in psutil.getloadavg())
    return run_bench(f"Media sends (load average {load} at the start)", body, cleanup)


def _served(files: FileServer, name: str, data: bytes):
    files.files[name] = (data, "video/mp4")
    return data, {"url": files.url(name)}


def _blob(blobs, blob_id: str, data: bytes):
    blobs.put_bytes(blob_id, data)
    return data, {"blob": blob_id}


if __name__ == "__main__":
    run_main(main)

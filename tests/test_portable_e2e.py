"""Portable logins with the real page path: Chromium, the stand-in, two
nodes with their own DATA_DIR, an S3 blob store.  A node is killed and its
disk is gone: one key comes back on the other node without a QR code; the
other's phone unlinked it meanwhile, so it ends ``credentials_rejected``
and its saved logins go."""

from __future__ import annotations

import shutil

import pytest

from support import all_gone, chrome_processes_under, counter, create_ready, new_phone, owner, wait_for
from wwnode.blobstore import open_blob_store
from wwnode.snapshots import Snapshots

pytestmark = pytest.mark.browser

FAST = {"lease_ttl": 4, "heartbeat_interval": 0.5, "node_queue_ttl": 4, "amqp_heartbeat": 2}


def test_logins_follow_the_key_to_another_node(nodes, control, rabbit, redis_client, tmp_path):
    url = (tmp_path / "shared-blobs").as_uri()
    settings = {"blob_store_url": url, **FAST}
    store = Snapshots(open_blob_store(url, tmp_path))
    a = nodes("node-a", **settings)
    phones = {"p1": new_phone(), "p2": new_phone()}
    for key, phone in phones.items():
        create_ready(rabbit, control, key, phone)
        wait_for(lambda: store.newest(key) is not None, timeout=30, what=f"{key}'s login saved")
    b = nodes("node-b", **settings)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 2, timeout=60, what="two create consumers")
    a.kill()
    wait_for(lambda: all_gone(chrome_processes_under(a.data_dir)), timeout=30, what="node-a's Chrome to go")
    shutil.rmtree(a.data_dir)  # the machine is gone, its disk with it
    control.logout(phones["p2"])  # while its session is down
    for key in phones:
        rabbit.expect("state_instance", key=key, state="lost", timeout=60)
    seen_qr = len(rabbit.find("qr_instance"))
    qr_keys_before = set(redis_client.scan_iter(match="instances:*:qr_code"))

    rabbit.publish("create_instance", {"key": "p1"})
    rabbit.expect("authenticated_instance", key="p1", node="node-b", timeout=60)
    ready = rabbit.expect("ready_instance", key="p1", node="node-b", timeout=60)
    assert ready["me"] == f"{phones['p1']}@c.us"
    assert owner(redis_client, "p1") == "node-b"
    # Counted in node-b's heartbeat, which may come after ready does.
    wait_for(lambda: counter(redis_client, "node-b", "snapshots_restored") == 1, what="the restore counted")

    rabbit.publish("create_instance", {"key": "p2"})
    failure = rabbit.expect("auth_failure_instance", key="p2", node="node-b", timeout=60)
    assert failure["reason"] == "credentials_rejected"
    wait_for(lambda: store.names("p2") == [], timeout=30, what="p2's saved logins deleted")
    assert store.newest("p1") is not None
    # p1 never showed a QR code on node-b (p2 did: the phone forgot it).
    assert not [e for e in rabbit.find("qr_instance")[seen_qr:] if e["key"] == "p1"]
    assert "instances:p1:qr_code" not in set(redis_client.scan_iter(match="instances:*:qr_code")) - qr_keys_before
    assert b.alive()
